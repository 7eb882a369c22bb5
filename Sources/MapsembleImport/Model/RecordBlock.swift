/// A block of raw CSV records as the reader hands it downstream.
///
/// Field bytes are stored back to back in one buffer (no `String` per field); a record is a run of
/// consecutive fields. Every record keeps the physical line (1-based, header included) where it
/// starts. Rows the reader could not parse travel beside the records as `rejections`, so a block
/// accounts for every row it covers: `count + rejections.count`.
public struct RecordBlock: Sendable {
    /// Field contents, concatenated.
    public var bytes: [UInt8] = []
    /// End offset in `bytes` of every field.
    public var fieldEnds: [Int] = []
    /// Index into `fieldEnds` of the first field of each record, plus one final entry.
    public var recordFieldStarts: [Int] = [0]
    /// Physical line where each record starts.
    public var lines: [Int] = []
    /// Rows rejected so far for this block, in line order.
    public var rejections: [Rejection] = []
    /// The input text of records whose cells may differ from the values read (quoted, or with
    /// spaces around a value): record index → the record's lines, the last line's end left out.
    var originals: [Int: [UInt8]] = [:]
    /// How `originals` are split.
    var delimiter = UInt8(ascii: ",")
    var quote: UInt8 = 0

    public init() {}

    /// A block for the reader to fill: room for `bytes` field bytes, and the fields and records
    /// they usually make, so it does not grow (and leave differently sized holes in the heap) as
    /// it fills.
    init(reservingBytes bytes: Int) {
        self.bytes.reserveCapacity(bytes)
        fieldEnds.reserveCapacity(bytes / 8)
        recordFieldStarts.reserveCapacity(bytes / 48)
        lines.reserveCapacity(bytes / 48)
    }

    /// Number of records (not counting rejections).
    public var count: Int { lines.count }

    /// Number of fields of record `record`.
    @inline(__always)
    public func fieldCount(_ record: Int) -> Int {
        recordFieldStarts[record + 1] - recordFieldStarts[record]
    }

    /// Byte range of field `field` of record `record`.
    @inline(__always)
    public func fieldRange(_ record: Int, _ field: Int) -> Range<Int> {
        let index = recordFieldStarts[record] + field
        let start = index == 0 ? 0 : fieldEnds[index - 1]
        return start..<fieldEnds[index]
    }

    /// Field `field` of record `record` as a string (for reports and errors, not for the hot path).
    public func string(_ record: Int, _ field: Int) -> String {
        String(decoding: bytes[fieldRange(record, field)], as: UTF8.self)
    }

    /// All fields of record `record` as strings.
    public func strings(_ record: Int) -> [String] {
        (0..<fieldCount(record)).map { string(record, $0) }
    }

    /// Record `record`'s cells as the input has them, byte for byte (spaces around values kept),
    /// for the report of rejected rows. Values read are trimmed of spaces and tabs; the cells of a
    /// record whose text was kept (`originals`) are split from it again. A record read short of
    /// fields has empty ones after its own, one with empty extra fields does not have those.
    public func originalCells(_ record: Int) -> [String] {
        guard let text = originals[record], var cells = LibCSVParser.cells(of: text, delimiter: delimiter, quote: quote)
        else { return strings(record) }
        let count = fieldCount(record)
        if cells.count < count {
            cells += Array(repeating: "", count: count - cells.count)
        } else if cells.count > count {
            cells.removeSubrange(count...)
        }
        return cells
    }

    /// Appends one field's bytes.
    @inline(__always)
    mutating func appendField(_ field: UnsafeRawBufferPointer) {
        bytes.appendBytes(field)
        fieldEnds.append(bytes.count)
    }

    /// Closes the record made of the fields appended since the last call.
    @inline(__always)
    mutating func closeRecord(line: Int) {
        recordFieldStarts.append(fieldEnds.count)
        lines.append(line)
    }
}
