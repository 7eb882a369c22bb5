import Foundation
import Synchronization

/// Stage 1 for workbooks: a sheet of an `.xlsx` file as `RecordBlock`s, like the CSV reader's
/// (a record's line is the sheet's row number), so everything after the reader is the same.
///
/// The sheet's XML is inflated (`ZipParts`) and scanned as it comes, on a thread of its own
/// that hands full blocks over (at most two waiting): memory is a few blocks and the shared
/// strings, whatever the number of rows. Values are written as the user sees them: text as it
/// is (leading zeros kept), numbers with their digits (without exponent, to the 15 significant
/// digits a spreadsheet keeps), date and time cells as ISO 8601, booleans as `true`/`false`.
/// A cell holding an error (`#N/A`) rejects its row as `invalid_cell`; a value right of the
/// header's last column rejects it as `malformed_row`; empty rows are skipped.
public final class XLSXReader: SheetReader, @unchecked Sendable {
    /// Thrown into the extraction when the reader is let go before the end (by the hand-off's
    /// `put`), or to stop a scan early.
    typealias Stopped = HandoffStopped

    /// Scanning threads running now (in this process).
    static var scanningThreads: Int { liveThreads.load(ordering: .relaxed) }
    private static let liveThreads = Atomic<Int>(0)

    /// Opens sheet `sheet` (a name or a 1-based position; the first when nil) of the workbook at
    /// `path` and reads up to its header row.
    /// `headerRow`: the sheet row holding the header (the rows above it are skipped); by
    /// default the first row with a value.
    public init(
        path: String, sheet setting: String?, hasHeader: Bool, headerRow: Int? = nil, blockBytes: Int, name: String,
        maxRecordBytes: Int = ReaderOptions().maxRecordBytes
    ) throws {
        let workbook = try XLSXWorkbook(path: path, name: name)
        let chosen = try workbook.sheet(setting)
        let strings = try workbook.sharedStrings(limit: maxRecordBytes * 64)
        // The thread holds the hand-off, not the reader: a reader let go early (an error
        // downstream, a sample of the first rows) stops it from its deinit.
        Self.liveThreads.add(1, ordering: .relaxed)
        try super.init(
            path: path, name: name, hasHeader: hasHeader, headerRow: headerRow, blockBytes: blockBytes,
            total: workbook.size(of: chosen.part), threadName: "mapsemble-import.xlsx",
            fixHeader: { names, row, empty in
                try Self.mergedHeader(names, row: row, empty: empty, path: path, part: chosen.part, name: name)
            }
        ) { rows, chosenSheet, scanned, emit in
            defer { Self.liveThreads.subtract(1, ordering: .relaxed) }
            chosenSheet.sheet = chosen.name
            let builder = SheetRowBuilder(
                styles: workbook.styles, date1904: workbook.date1904, strings: strings, rows: rows)
            var scanner = XMLScanner()
            try workbook.stream(chosen.part) { chunk in
                try scanner.feed(chunk) { event in
                    for item in try builder.handle(event) { try emit(item) }
                }
                scanned.bytes.add(chunk.count, ordering: .relaxed)
            }
        }
    }

    /// Empty header cells covered by a merged cell of the header row take its name, numbered
    /// (`Address`, `Address 2`). The merges are listed after the rows, so the sheet is scanned
    /// once more for them (with an archive of its own), only when the header has empty cells.
    private static func mergedHeader(
        _ names: [String], row: Int, empty: [Int], path: String, part: String, name: String
    ) throws -> [String] {
        var names = names
        let merges = try XLSXWorkbook(path: path, name: name).merges(of: part)
        for merge in merges where merge.rows.contains(row) && merge.columns.lowerBound < names.count {
            let first = merge.columns.lowerBound
            guard !empty.contains(first) else { continue }
            for (offset, column) in merge.columns.dropFirst().enumerated()
            where empty.contains(column) && column < names.count {
                names[column] = "\(names[first]) \(offset + 2)"
            }
        }
        return names
    }

}

/// Turns the scanner's events for `<sheetData>` into records: cells placed by their column
/// (`r="D7"`), gaps filled with empty fields, values written as the user sees them.
private final class SheetRowBuilder: @unchecked Sendable {  // used by the scanning thread alone
    let styles: [XLSXWorkbook.NumberStyle]
    let date1904: Bool
    let strings: SharedStrings
    let rows: SheetRows
    // The cell being read.
    private var column = -1
    private var type: UInt8 = 0
    private var style = 0
    private var inValue = false
    private var inInline = false
    private var raw: [UInt8] = []

    init(styles: [XLSXWorkbook.NumberStyle], date1904: Bool, strings: SharedStrings, rows: SheetRows) {
        self.styles = styles
        self.date1904 = date1904
        self.strings = strings
        self.rows = rows
    }

    /// One event; returns what to hand over (the header, a full block).
    func handle(_ event: XMLScanner.Event) throws -> [SheetItem] {
        switch event {
        case .start(let tag, let attributes, let selfClosing):
            if XMLText.equals(tag, "row") {
                rows.begin(XMLText.attribute("r", in: attributes).flatMap(XMLText.integer) ?? rows.lastRow + 1)
                column = -1
                if selfClosing { return try rows.end() }
            } else if XMLText.equals(tag, "c") {
                // One pass over the attributes: r (where), t (type), s (style).
                var reference: UnsafeRawBufferPointer?
                type = UInt8(ascii: "n")
                style = 0
                XMLText.forEachAttribute(attributes) { key, value in
                    guard key.count == 1 else { return }
                    switch key[0] {
                    case UInt8(ascii: "r"): reference = value
                    case UInt8(ascii: "s"): style = XMLText.integer(value) ?? 0
                    case UInt8(ascii: "t"):
                        if XMLText.equals(value, "inlineStr") {
                            type = UInt8(ascii: "I")
                        } else if XMLText.equals(value, "str") {
                            type = UInt8(ascii: "S")
                        } else {
                            type = value.first ?? UInt8(ascii: "n")
                        }
                    default: break
                    }
                }
                column = reference.map(Self.columnIndex) ?? column + 1
                raw.removeAll(keepingCapacity: true)
                if selfClosing { try endCell() }
            } else if XMLText.equals(tag, "v") {
                inValue = !selfClosing
            } else if XMLText.equals(tag, "is") {
                inInline = true
            } else if XMLText.equals(tag, "t") && inInline {
                inValue = !selfClosing
            } else if XMLText.equals(tag, "rPh") {
                inInline = false
            }
        case .end(let tag):
            if XMLText.equals(tag, "v") || XMLText.equals(tag, "t") {
                inValue = false
            } else if XMLText.equals(tag, "is") {
                inInline = false
            } else if XMLText.equals(tag, "c") {
                try endCell()
            } else if XMLText.equals(tag, "row") {
                return try rows.end()
            }
        case .text(let text, let isRaw):
            guard inValue else { return [] }
            if isRaw { raw.appendBytes(text) } else { XMLText.appendDecoded(text, to: &raw) }
        }
        return []
    }

    /// `D7` → 3.
    static func columnIndex(_ reference: UnsafeRawBufferPointer) -> Int {
        var index = 0
        for byte in reference {
            guard byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") else { break }
            index = index * 26 + Int(byte - UInt8(ascii: "A") + 1)
        }
        return index - 1
    }

    private func endCell() throws {
        defer {
            inValue = false
            inInline = false
        }
        guard column >= 0 else { return }
        let start = rows.values.count
        switch type {
        case UInt8(ascii: "s"):
            guard !raw.isEmpty else { return }
            guard let index = Int(String(decoding: raw, as: UTF8.self)), let range = strings.range(index) else {
                rows.errors.append(
                    (column, "a shared string index \(String(decoding: raw, as: UTF8.self)) the workbook does not have")
                )
                return
            }
            rows.values += strings.bytes[range]
        case UInt8(ascii: "I"), UInt8(ascii: "S"), UInt8(ascii: "d"):
            rows.values += raw
        case UInt8(ascii: "b"):
            guard !raw.isEmpty else { return }
            rows.values += Array((raw == [UInt8(ascii: "1")] ? "true" : "false").utf8)
        case UInt8(ascii: "e"):
            rows.errors.append((column, "the error \(String(decoding: raw, as: UTF8.self))"))
            rows.values += raw
        default:
            guard !raw.isEmpty else { return }
            let numberStyle = style < styles.count ? styles[style] : .general
            SpreadsheetValue.appendNumber(raw, style: numberStyle, date1904: date1904, to: &rows.values)
        }
        if rows.values.count > start || type == UInt8(ascii: "I") || type == UInt8(ascii: "S") {
            rows.cells.append((column, start..<rows.values.count))
        }
    }

}
