/// The workbook formats read, and the one place that opens a sheet of any of them.
enum WorkbookFormat: String, Sendable {
    case xlsx, ods, xls

    /// The input's workbook format: `source.format`, or for `auto` the file's extension (`.xlsx`,
    /// `.xlsm`, `.ods`, `.xls`), else its signature (a ZIP is taken for `.xlsx`, an OLE container
    /// for `.xls`; a CSV starts with neither). Nil for a CSV, and for a text file named `.xls`.
    static func of(format: String, path: String) throws -> WorkbookFormat? {
        if let stated = WorkbookFormat(rawValue: format) {
            guard path != "-" else {
                throw ImportError(
                    .usage,
                    "a workbook cannot be read from standard input (it is read out of order): give its path")
            }
            return stated
        }
        guard format == "auto", path != "-" else { return nil }
        let lower = path.lowercased()
        if lower.hasSuffix(".xlsx") || lower.hasSuffix(".xlsm") { return .xlsx }
        if lower.hasSuffix(".ods") { return .ods }
        let head = RawInput.head(path, 4)
        // Many downloads named .xls are text (a CSV or tab-separated export): read as such.
        if lower.hasSuffix(".xls") && !head.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
            return head.starts(with: [0xD0, 0xCF, 0x11, 0xE0]) || head.first == UInt8(ascii: "<") ? .xls : nil
        }
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return .xlsx }
        if head.starts(with: [0xD0, 0xCF, 0x11, 0xE0]) { return .xls }
        return nil
    }

    /// The names of the sheets of an `.ods` or `.xls` workbook, in order (an `.xlsx` lists them
    /// with its used ranges: `XLSXWorkbook`).
    func sheetNames(path: String, name: String) throws -> [String] {
        switch self {
        case .xlsx: return try XLSXWorkbook(path: path, name: name).sheets.map(\.name)
        case .xls: return try XLSSheet.sheetNames(path: path, name: name)
        case .ods:
            do {
                return try ODSSheet.sheetNames(ZipParts(path: path), name: name)
            } catch is ZipParts.Damaged {
                throw ImportError(
                    .unreadableInput, "is not a readable .ods spreadsheet (the ZIP archive is damaged or truncated)",
                    file: name)
            }
        }
    }

    /// A reader of sheet `sheet` (a name or a 1-based position; the first when nil), and the
    /// name of the sheet it reads.
    func reader(
        path: String, sheet: String?, hasHeader: Bool, headerRow: Int?, blockBytes: Int, name: String,
        maxRecordBytes: Int = ReaderOptions().maxRecordBytes
    ) throws -> (reader: any RecordReader, sheet: String) {
        switch self {
        case .xlsx:
            let reader = try XLSXReader(
                path: path, sheet: sheet, hasHeader: hasHeader, headerRow: headerRow, blockBytes: blockBytes,
                name: name, maxRecordBytes: maxRecordBytes)
            return (reader, reader.sheet)
        case .ods:
            let reader = try ODSSheet.reader(
                path: path, sheet: sheet, hasHeader: hasHeader, headerRow: headerRow, blockBytes: blockBytes,
                name: name, maxRecordBytes: maxRecordBytes)
            return (reader, reader.sheet)
        case .xls:
            let reader = try XLSSheet.reader(
                path: path, sheet: sheet, hasHeader: hasHeader, headerRow: headerRow, blockBytes: blockBytes,
                name: name)
            return (reader, reader.sheet)
        }
    }
}
