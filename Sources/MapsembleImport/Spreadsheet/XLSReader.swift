import CFreeXL
import Foundation

/// Legacy Excel workbooks (`.xls`, BIFF8, Excel 97–2003) through libfreexl, GDAL's reader for
/// them: it reads the cells in the file's code page to UTF-8, and tells dates from numbers by the
/// cell's format (1900 and 1904 date systems alike). An `.xls` holds at most 65,536 rows, which
/// libfreexl keeps in memory while the sheet is read.
///
/// Values follow the `.xlsx` rules: numbers with their digits (15 significant, no exponent),
/// dates and date-times as ISO 8601, text as it is. libfreexl reads a boolean cell as 1 or 0,
/// and an error cell as empty.
enum XLSSheet {
    static func reader(
        path: String, sheet setting: String?, hasHeader: Bool, headerRow: Int?, blockBytes: Int, name: String
    ) throws -> SheetReader {
        let (handle, names) = try open(path, name: name, cells: true)
        var ownership = Handle(handle)
        defer { ownership.closeIfOwned() }
        let index: Int
        if let setting, !setting.isEmpty {
            if let found = names.firstIndex(of: setting) {
                index = found
            } else if let position = Int(setting), position >= 1, position <= names.count {
                index = position - 1
            } else {
                throw ImportError(
                    .config,
                    "has no sheet \"\(setting)\"; its sheets are: \(names.enumerated().map { "\($0.offset + 1) \"\($0.element)\"" }.joined(separator: ", "))",
                    file: name)
            }
        } else {
            index = 0
        }
        return try reader(
            ownership.take(), sheet: names[index], index: index, path: path, hasHeader: hasHeader,
            headerRow: headerRow, blockBytes: blockBytes, name: name)
    }

    /// The workbook's sheet names, in order (its cells are not read).
    static func sheetNames(path: String, name: String) throws -> [String] {
        let (handle, names) = try open(path, name: name, cells: false)
        freexl_close(handle)
        return names
    }

    /// Opens the workbook (with its cells, or its metadata only) and reads its sheet names; a
    /// file that is not a readable, unprotected .xls is one sentence.
    private static func open(_ path: String, name: String, cells: Bool) throws -> (UnsafeRawPointer, [String]) {
        guard access(path, R_OK) == 0 else {
            throw ImportError.system(.unreadableInput, "cannot open the input", file: name)
        }
        let head = RawInput.head(path, 8)
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
            throw ImportError(
                .unreadableInput, "is a ZIP archive (an .xlsx or .ods workbook?), not a legacy .xls file", file: name)
        }
        guard head.starts(with: [0xD0, 0xCF, 0x11, 0xE0]) else {
            throw ImportError(
                .unreadableInput,
                head.first == UInt8(ascii: "<")
                    ? "is an HTML or XML page named .xls, not an Excel 97–2003 file: open it in a spreadsheet and save it as .xlsx or CSV"
                    : "is not an Excel 97–2003 file (no OLE container): give source.format csv if it is text",
                file: name)
        }
        var opened: UnsafeRawPointer?
        let code = cells ? freexl_open(path, &opened) : freexl_open_info(path, &opened)
        guard code == FREEXL_OK, let handle = opened else {
            if let opened { freexl_close(opened) }
            throw ImportError(.unreadableInput, "is not a readable .xls workbook (\(describe(code)))", file: name)
        }
        var ownership = Handle(handle)
        defer { ownership.closeIfOwned() }
        var password: UInt32 = 0
        if freexl_get_info(handle, UInt16(FREEXL_BIFF_PASSWORD), &password) == FREEXL_OK,
            password == UInt32(FREEXL_BIFF_OBFUSCATED)
        {
            throw ImportError(
                .unreadableInput, "is a password-protected .xls workbook: save it again without a password",
                file: name)
        }
        var count: UInt32 = 0
        _ = freexl_get_info(handle, UInt16(FREEXL_BIFF_SHEET_COUNT), &count)
        var names: [String] = []
        for index in 0..<UInt16(clamping: count) {
            var text: UnsafePointer<CChar>?
            if freexl_get_worksheet_name(handle, index, &text) == FREEXL_OK, let text {
                names.append(String(cString: text))
            } else {
                names.append("\(index + 1)")
            }
        }
        guard !names.isEmpty else { throw ImportError(.unreadableInput, "is a workbook without sheets", file: name) }
        return (ownership.take().pointer, names)
    }

    /// The reader of sheet `index` (`sheet`) of the open workbook, which it closes.
    private static func reader(
        _ ownership: Handle, sheet: String, index: Int, path: String, hasHeader: Bool, headerRow: Int?,
        blockBytes: Int, name: String
    ) throws -> SheetReader {
        var ownership = ownership
        defer { ownership.closeIfOwned() }
        let handle = ownership.pointer
        guard freexl_select_active_worksheet(handle, UInt16(index)) == FREEXL_OK else {
            throw ImportError(.unreadableInput, "cannot read sheet \"\(sheet)\"", file: name)
        }
        var rowCount: UInt32 = 0
        var columnCount: UInt16 = 0
        _ = freexl_worksheet_dimensions(handle, &rowCount, &columnCount)
        let (rowTotal, columnTotal) = (rowCount, columnCount)
        let shared = UncheckedBox(ownership.take())
        return try SheetReader(
            path: path, name: name, hasHeader: hasHeader, headerRow: headerRow, blockBytes: blockBytes,
            total: Int(rowCount), threadName: "mapsemble-import.xls"
        ) { rows, chosen, scanned, emit in
            let handle = shared.value
            defer { freexl_close(handle.pointer) }
            chosen.sheet = sheet
            var cell = FreeXL_CellValue()
            var bytes: [UInt8] = []
            for row in 0..<rowTotal {
                rows.begin(Int(row) + 1)
                for column in 0..<columnTotal {
                    guard freexl_get_cell_value(handle.pointer, row, column, &cell) == FREEXL_OK else { continue }
                    bytes.removeAll(keepingCapacity: true)
                    switch Int32(cell.type) {
                    case FREEXL_CELL_INT:
                        bytes += Array(String(cell.value.int_value).utf8)
                    case FREEXL_CELL_DOUBLE:
                        let value = cell.value.double_value
                        guard value.isFinite else { continue }
                        bytes += Array(SpreadsheetValue.format(value).utf8)
                    case FREEXL_CELL_TEXT, FREEXL_CELL_SST_TEXT, FREEXL_CELL_DATE, FREEXL_CELL_TIME:
                        guard let text = cell.value.text_value else { continue }
                        bytes += UnsafeRawBufferPointer(start: text, count: strlen(text))
                    case FREEXL_CELL_DATETIME:
                        // `YYYY-MM-DD HH:MM:SS` → ISO 8601.
                        guard let text = cell.value.text_value else { continue }
                        bytes += UnsafeRawBufferPointer(start: text, count: strlen(text))
                        if bytes.count > 10 && bytes[10] == 0x20 { bytes[10] = UInt8(ascii: "T") }
                    default:
                        continue
                    }
                    if !bytes.isEmpty { rows.add(Int(column), bytes) }
                }
                for item in try rows.end() { try emit(item) }
                scanned.bytes.add(1, ordering: .relaxed)
            }
        }
    }

    /// A libfreexl error code in words.
    static func describe(_ code: Int32) -> String {
        switch code {
        case FREEXL_FILE_NOT_FOUND: "it cannot be opened"
        case FREEXL_INVALID_CFBF_HEADER, FREEXL_CFBF_INVALID_SIGNATURE:
            "it is not an Excel 97–2003 file (no OLE container)"
        case FREEXL_BIFF_WORKBOOK_NOT_FOUND: "it holds no workbook stream"
        case FREEXL_CFBF_READ_ERROR, FREEXL_CFBF_SEEK_ERROR: "it is cut short"
        case FREEXL_UNSUPPORTED_CHARSET, FREEXL_INVALID_CHARACTER: "its text is in a code page that cannot be read"
        default: "damaged: libfreexl error \(code)"
        }
    }

    /// The open workbook, closed once (by the reading thread, or here when the reader is not made).
    struct Handle {
        let pointer: UnsafeRawPointer
        private var owned = true

        init(_ pointer: UnsafeRawPointer) { self.pointer = pointer }

        mutating func take() -> Handle {
            owned = false
            return Handle(pointer)
        }

        /// Closes the workbook unless it was handed on.
        func closeIfOwned() {
            if owned { freexl_close(pointer) }
        }
    }
}
