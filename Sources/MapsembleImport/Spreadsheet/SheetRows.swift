import Foundation
import Synchronization

/// What a sheet's scanning thread hands to its reader.
enum SheetItem: Sendable {
    /// The column names, the header's row, and the columns whose header cell was empty.
    case header([String], row: Int, empty: [Int])
    case block(RecordBlock)
}

/// A count one thread adds to and another reads.
final class ByteCount: Sendable {
    let bytes = Atomic<Int>(0)
}

/// Turns a sheet's rows, cell by cell, into the header and blocks of records, whatever the
/// workbook format (`.xlsx`, `.ods`, `.xls`): the first row with a value is the header (or the
/// row `source.header: N` names), empty rows are skipped, a row with an error cell is an
/// `invalid_cell` rejection and one with a value right of the header a `malformed_row`. Used by
/// the scanning thread alone.
final class SheetRows {
    let hasHeader: Bool
    let headerRow: Int?
    let blockBytes: Int
    let name: String

    /// The row being read: its number (1-based), its cells (column and range in `values`) and
    /// the error cells it holds.
    var rowNumber = 0
    var cells: [(column: Int, value: Range<Int>)] = []
    var values: [UInt8] = []
    var errors: [(column: Int, text: String)] = []
    /// The last row ended.
    private(set) var lastRow = 0
    /// The header is at least this wide (a merged header cell spans columns without values).
    var minimumWidth = 0

    private var block: RecordBlock
    private var width = 0
    private var names: [String] = []
    private(set) var headerDone = false

    init(hasHeader: Bool, headerRow: Int?, blockBytes: Int, name: String) {
        self.hasHeader = hasHeader
        self.headerRow = headerRow
        self.blockBytes = blockBytes
        self.name = name
        block = RecordBlock(reservingBytes: blockBytes)
    }

    /// Starts row `number`.
    func begin(_ number: Int) {
        rowNumber = number
        cells.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        errors.removeAll()
    }

    /// Adds a cell holding `bytes` in `column`.
    func add(_ column: Int, _ bytes: some Collection<UInt8>) {
        let start = values.count
        values += bytes
        cells.append((column, start..<values.count))
    }

    /// Whether the row begun holds a value or an error.
    var rowHasValue: Bool { cells.contains { !$0.value.isEmpty } || !errors.isEmpty }

    /// `3` → `D`.
    static func columnName(_ index: Int) -> String {
        var index = index + 1
        var name = ""
        while index > 0 {
            let remainder = (index - 1) % 26
            name = String(UnicodeScalar(UInt8(65 + remainder))) + name
            index = (index - 1) / 26
        }
        return name
    }

    /// Ends the row begun; returns what to hand over (the header, a full block).
    func end() throws -> [SheetItem] {
        lastRow = rowNumber
        if !headerDone, let headerRow {
            // Rows above the stated header are a title, notes: not data.
            if rowNumber < headerRow { return [] }
            if rowNumber > headerRow || !cells.contains(where: { !$0.value.isEmpty }) {
                throw ImportError(
                    .unreadableInput, "row \(headerRow) of the sheet has no value, expected the header there",
                    file: name, line: headerRow)
            }
        }
        guard rowHasValue else { return [] }
        if !headerDone {
            headerDone = true
            width = max((cells.map(\.column).max() ?? 0) + 1, minimumWidth)
            names = (0..<width).map { Self.columnName($0) }
            guard hasHeader else { return [.header(names, row: rowNumber, empty: [])] + appendRecord() }
            var empty = Set(0..<width)
            for cell in cells {
                let text = String(decoding: values[cell.value], as: UTF8.self).trimmingSpaces
                if !text.isEmpty {
                    names[cell.column] = text
                    empty.remove(cell.column)
                }
            }
            // A name given twice is made unique by the reader (`HeaderNames`).
            return [.header(names, row: rowNumber, empty: empty.sorted())]
        }
        return appendRecord()
    }

    /// Adds the row to the block; returns the block when it is full.
    private func appendRecord() -> [SheetItem] {
        var fields = [Range<Int>?](repeating: nil, count: width)
        var past: Int?
        for cell in cells {
            if cell.column < width {
                fields[cell.column] = cell.value
            } else if !cell.value.isEmpty {
                past = past ?? cell.column
            }
        }
        if let error = errors.first {
            reject(
                .invalidCell, column: error.column,
                message: "cell \(Self.columnName(error.column))\(rowNumber) holds \(error.text), expected a value",
                fields: fields)
        } else if let past {
            reject(
                .malformedRow, column: past,
                message: "cell \(Self.columnName(past))\(rowNumber) has a value right of the header's \(width) columns",
                fields: fields)
        } else {
            values.withUnsafeBytes { bytes in
                block.appendRecord(
                    cells: fields.map {
                        $0.map { UnsafeRawBufferPointer(rebasing: bytes[$0]) }
                            ?? UnsafeRawBufferPointer(start: nil, count: 0)
                    }, line: rowNumber)
            }
        }
        guard block.bytes.count >= blockBytes || block.count + block.rejections.count >= blockBytes / 16 else {
            return []
        }
        let full = block
        block = RecordBlock(reservingBytes: blockBytes)
        return [.block(full)]
    }

    private func reject(_ code: RejectCode, column: Int, message: String, fields: [Range<Int>?]) {
        let strings = fields.map { $0.map { String(decoding: values[$0], as: UTF8.self) } ?? "" }
        block.rejections.append(
            Rejection(
                line: rowNumber, code: code, column: column < width ? names[column] : Self.columnName(column),
                message: message, fields: strings))
    }

    /// What is left at the end of the sheet.
    func finish() -> [SheetItem] {
        headerDone && block.count + block.rejections.count > 0 ? [.block(block)] : []
    }
}

/// A sheet of a workbook (`.xlsx`, `.ods`, `.xls`) as `RecordBlock`s: a thread of its own reads
/// the sheet (`produce`) into `SheetRows` and hands the header and full blocks over, at most two
/// waiting; the reader takes them. A reader let go early stops the thread.
public class SheetReader: RecordReader, @unchecked Sendable {  // used by one task at a time
    public private(set) var header: [String] = []
    public private(set) var rowsRead = 0
    public let paddedRows = 0
    public let mayBlock = true
    public let encoding = SourceEncoding.utf8
    public var bytesRead: Int {
        total > 0 ? Int(Double(scanned.bytes.load(ordering: .relaxed)) / Double(total) * Double(fileSize)) : 0
    }
    /// The sheet read.
    public private(set) var sheet = ""
    public private(set) var duplicateNames: [String: [String]] = [:]
    public private(set) var headerLine = 1

    private let handoff = BoundedHandoff<SheetItem>(capacity: 2)
    private let scanned = ByteCount()
    private let fileSize: Int
    private let total: Int

    /// What the thread tells the reader besides rows: the sheet's name once chosen.
    final class Chosen: @unchecked Sendable {  // written by the thread before the header is put
        var sheet = ""
    }

    /// - Parameters:
    ///   - total: the bytes `produce` counts in `scanned` over the whole sheet (for progress).
    ///   - produce: reads the sheet into the rows it is given, calling `emit` with what `SheetRows`
    ///     returns; sets the chosen sheet's name first.
    ///   - fixHeader: what becomes of a header with empty cells (their columns are given): by
    ///     default they keep their column's letter.
    init(
        path: String, name: String, hasHeader: Bool, headerRow: Int?, blockBytes: Int, total: Int,
        threadName: String, fixHeader: (([String], Int, [Int]) throws -> [String])? = nil,
        produce: @escaping @Sendable (SheetRows, Chosen, ByteCount, @escaping (SheetItem) throws -> Void) throws -> Void
    ) throws {
        fileSize = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        self.total = total
        let handoff = handoff
        let scanned = scanned
        let chosen = Chosen()
        let rows = UncheckedBox(
            SheetRows(hasHeader: hasHeader, headerRow: headerRow, blockBytes: blockBytes, name: name))
        handoff.startProducer(named: threadName) {
            try produce(rows.value, chosen, scanned) { try handoff.put($0) }
            for item in rows.value.finish() { try handoff.put(item) }
        }
        do {
            switch try handoff.take() {
            case .header(let names, let row, let empty):
                header = names
                headerLine = row
                sheet = chosen.sheet
                if hasHeader && !empty.isEmpty, let fixHeader {
                    header = try fixHeader(names, row, empty)
                }
                if hasHeader { (header, duplicateNames) = HeaderNames.unique(header) }
            case .block, nil:
                throw ImportError(
                    .unreadableInput,
                    headerRow.map { "sheet \"\(chosen.sheet)\" ends before row \($0), expected the header there" }
                        ?? "sheet \"\(chosen.sheet)\" is empty, expected a header row", file: name)
            }
        } catch {
            handoff.stop()
            throw error
        }
    }

    deinit { handoff.stop() }

    public func nextBlock() throws -> RecordBlock? {
        switch try handoff.take() {
        case .block(let block):
            rowsRead += block.count + block.rejections.count
            return block
        case .header, nil: return nil
        }
    }
}

/// A value handed to the one thread that uses it.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
