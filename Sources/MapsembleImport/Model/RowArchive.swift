/// The original fields of the rows in a batch, kept so that a row the server refuses can be
/// written to the rejected-rows report unchanged. Bytes back to back, like `RecordBlock`.
public struct RowArchive: Sendable {
    var bytes: [UInt8] = []
    var fieldEnds: [Int] = []
    /// Index into `fieldEnds` of each row's first field, plus one final entry.
    var rowStarts: [Int] = [0]

    public init() {}

    public var count: Int { rowStarts.count - 1 }

    /// Copies record `record` of `block`.
    @inline(__always)
    mutating func append(_ record: Int, of block: RecordBlock) {
        let first = block.recordFieldStarts[record]
        let last = block.recordFieldStarts[record + 1]
        let start = first == 0 ? 0 : block.fieldEnds[first - 1]
        let end = last == 0 ? 0 : block.fieldEnds[last - 1]
        let shift = bytes.count - start
        bytes.append(contentsOf: block.bytes[start..<end])
        for index in first..<last { fieldEnds.append(block.fieldEnds[index] + shift) }
        rowStarts.append(fieldEnds.count)
    }

    /// Copies row `row` of another archive.
    @inline(__always)
    mutating func append(_ row: Int, of archive: RowArchive) {
        let first = archive.rowStarts[row]
        let last = archive.rowStarts[row + 1]
        let start = first == 0 ? 0 : archive.fieldEnds[first - 1]
        let end = last == 0 ? 0 : archive.fieldEnds[last - 1]
        let shift = bytes.count - start
        bytes.append(contentsOf: archive.bytes[start..<end])
        for index in first..<last { fieldEnds.append(archive.fieldEnds[index] + shift) }
        rowStarts.append(fieldEnds.count)
    }

    /// Row `row` as strings.
    public func strings(_ row: Int) -> [String] {
        (rowStarts[row]..<rowStarts[row + 1]).map { index in
            let start = index == 0 ? 0 : fieldEnds[index - 1]
            return String(decoding: bytes[start..<fieldEnds[index]], as: UTF8.self)
        }
    }
}
