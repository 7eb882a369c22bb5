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
    /// spaces around a value).
    var originals = OriginalTexts()
    /// How `originals` are split.
    var delimiter = UInt8(ascii: ",")
    var quote: UInt8 = 0
    /// GeoJSON: `originals` holds every record's feature text, given as one cell past the
    /// record's own by `originalCells` (for `NAME.rejected.geojsonl`).
    var featureTexts = false

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
        if featureTexts {
            return strings(record) + [originals.text(of: record).map { String(decoding: $0, as: UTF8.self) } ?? ""]
        }
        guard let text = originals.text(of: record),
            var cells = LibCSVParser.cells(of: Array(text), delimiter: delimiter, quote: quote)
        else { return strings(record) }
        let count = fieldCount(record)
        if cells.count < count {
            cells += Array(repeating: "", count: count - cells.count)
        } else if cells.count > count {
            cells.removeSubrange(count...)
        }
        return cells
    }

    /// Appends a record of cell values (a workbook's row): each value trimmed of spaces and tabs,
    /// as the CSV reader reads values; when that changed a value, the cells as they were are kept
    /// (`originals`, as one CSV record) for the report.
    mutating func appendRecord(cells: [UnsafeRawBufferPointer], line: Int) {
        var changed = false
        for cell in cells {
            let value = CoordinateText.trimmed(cell)
            if value.count != cell.count { changed = true }
            appendField(value)
        }
        if changed {
            var text: [UInt8] = []
            for (index, cell) in cells.enumerated() {
                if index > 0 { text.append(delimiter) }
                text.append(0x22)
                for byte in cell {
                    if byte == 0x22 { text.append(0x22) }
                    text.append(byte)
                }
                text.append(0x22)
            }
            quote = 0x22
            originals.append(text, for: count)
        }
        closeRecord(line: line)
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

/// The input text of some of a block's records, back to back: a record's lines as read, the last
/// line's end left out. Kept for the few records whose cells differ from the values read, so it
/// costs no allocation per record.
struct OriginalTexts: Sendable {
    /// Record indices, ascending.
    var records: [Int] = []
    /// End offset in `bytes` of each record's text.
    var ends: [Int] = []
    var bytes: [UInt8] = []

    /// The text of `record`, when kept.
    func text(of record: Int) -> ArraySlice<UInt8>? {
        var low = 0
        var high = records.count
        while low < high {
            let middle = (low + high) / 2
            if records[middle] < record { low = middle + 1 } else { high = middle }
        }
        guard low < records.count, records[low] == record else { return nil }
        return bytes[(low == 0 ? 0 : ends[low - 1])..<ends[low]]
    }

    /// Keeps `text` for `record`, which comes after every record kept so far.
    mutating func append(_ text: some Collection<UInt8>, for record: Int) {
        bytes.append(contentsOf: text)
        records.append(record)
        ends.append(bytes.count)
    }

    /// Forgets the texts of records from `record` on.
    mutating func removeRecords(from record: Int) {
        let kept = records.firstIndex { $0 >= record } ?? records.count
        guard kept < records.count else { return }
        bytes.removeSubrange((kept == 0 ? 0 : ends[kept - 1])...)
        records.removeSubrange(kept...)
        ends.removeSubrange(kept...)
    }
}
