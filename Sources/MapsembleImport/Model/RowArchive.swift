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
        appendFields(
            block.recordFieldStarts[record]..<block.recordFieldStarts[record + 1], bytes: block.bytes,
            fieldEnds: block.fieldEnds)
    }

    /// Copies row `row` of another archive.
    @inline(__always)
    mutating func append(_ row: Int, of archive: RowArchive) {
        appendFields(
            archive.rowStarts[row]..<archive.rowStarts[row + 1], bytes: archive.bytes, fieldEnds: archive.fieldEnds)
    }

    /// Copies the fields `fields` (indexes into `fieldEnds`) as one row.
    @inline(__always)
    private mutating func appendFields(_ fields: Range<Int>, bytes source: [UInt8], fieldEnds ends: [Int]) {
        let start = fields.lowerBound == 0 ? 0 : ends[fields.lowerBound - 1]
        let end = fields.upperBound == 0 ? 0 : ends[fields.upperBound - 1]
        let shift = bytes.count - start
        bytes.append(contentsOf: source[start..<end])
        for index in fields { fieldEnds.append(ends[index] + shift) }
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
