import Foundation

/// OpenDocument spreadsheets (`.ods`, LibreOffice's format): the ZIP's `content.xml` inflated
/// and scanned as it comes, on the sheet reader's thread, so memory stays a few blocks whatever
/// the number of rows.
///
/// Values as the sheet shows them: numbers (also percentages and currencies) with their digits
/// from `office:value`, dates and date-times as ISO 8601 (`office:date-value`), times of day as
/// `HH:MM:SS`, booleans as `true`/`false`, text as it is (paragraphs joined by a line break,
/// `<text:s>` spaces and tabs kept, comments left out). Repeated rows and columns
/// (`number-rows-repeated`, `number-columns-repeated`) are expanded only when they hold a value,
/// and no further than a spreadsheet's 1,048,576 rows and 16,384 columns: the empty row a sheet
/// repeats a million times at its end costs nothing. A cell holding an error (`#DIV/0!`)
/// rejects its row as `invalid_cell`.
enum ODSSheet {
    static let maxRows = 1_048_576
    static let maxColumns = 16_384

    /// Opens sheet `setting` (a name, or a 1-based position; the first when nil) of the
    /// OpenDocument spreadsheet at `path`.
    static func reader(
        path: String, sheet setting: String?, hasHeader: Bool, headerRow: Int?, blockBytes: Int, name: String,
        maxRecordBytes: Int = ReaderOptions().maxRecordBytes
    ) throws -> SheetReader {
        guard access(path, R_OK) == 0 else {
            throw ImportError.system(.unreadableInput, "cannot open the input", file: name)
        }
        guard RawInput.head(path, 4).starts(with: [0x50, 0x4B, 0x03, 0x04]) else {
            throw ImportError(.unreadableInput, "is not an .ods spreadsheet (not a ZIP archive)", file: name)
        }
        let archive: ZipParts
        do {
            archive = try ZipParts(path: path)
        } catch {
            throw ImportError(
                .unreadableInput, "is not a readable .ods spreadsheet (the ZIP archive is damaged or truncated)",
                file: name)
        }
        guard let content = archive.parts["content.xml"] else {
            throw ImportError(.unreadableInput, "is not an .ods spreadsheet (it has no content.xml)", file: name)
        }
        if archive.parts["META-INF/manifest.xml"] != nil {
            var manifest: [UInt8] = []
            try? archive.read("META-INF/manifest.xml") { manifest.appendBytes($0) }
            if String(decoding: manifest, as: UTF8.self).contains("encryption-data") {
                throw ImportError(
                    .unreadableInput,
                    "is a password-protected .ods spreadsheet: save it again without a password", file: name)
            }
        }
        return try SheetReader(
            path: path, name: name, hasHeader: hasHeader, headerRow: headerRow, blockBytes: blockBytes,
            total: content.uncompressedSize, threadName: "mapsemble-import.ods"
        ) { rows, chosen, scanned, emit in
            // A number names a position, unless a sheet has that name (as for .xlsx): the names
            // are known only from a first scan of the tables' opening tags.
            var wanted = setting
            if let setting, let position = Int(setting) {
                let names = try sheetNames(archive, name: name)
                if !names.contains(setting), position >= 1, position <= names.count { wanted = names[position - 1] }
            }
            let builder = ODSRowBuilder(rows: rows, setting: wanted, maxRecordBytes: maxRecordBytes, emit: emit)
            do {
                try scan(archive, name: name, counting: scanned) { try builder.handle($0, chosen: chosen) }
            } catch is SheetEnded {
                return
            }
            guard builder.found else {
                let list = builder.names.enumerated().map { "\($0.offset + 1) \"\($0.element)\"" }
                throw ImportError(
                    builder.names.isEmpty ? .unreadableInput : .config,
                    builder.names.isEmpty
                        ? "is a spreadsheet without sheets"
                        : "has no sheet \"\(setting ?? "")\"; its sheets are: \(list.joined(separator: ", "))",
                    file: name)
            }
        }
    }

    /// The sheets' names, in order (a scan of `content.xml` for `<table:table>` tags only).
    static func sheetNames(_ archive: ZipParts, name: String) throws -> [String] {
        var names: [String] = []
        try scan(archive, name: name) { event in
            if case .start(let tag, let attributes, _) = event, XMLText.equals(tag, "table") {
                names.append(XMLText.attributeString("name", in: attributes) ?? "")
            }
        }
        return names
    }

    /// `content.xml`'s events, as it is inflated; a damaged part is one sentence naming the file.
    private static func scan(
        _ archive: ZipParts, name: String, counting scanned: ByteCount? = nil,
        _ handle: (XMLScanner.Event) throws -> Void
    ) throws {
        var scanner = XMLScanner()
        do {
            try archive.read("content.xml") { chunk in
                try scanner.feed(chunk, handle)
                scanned?.bytes.add(chunk.count, ordering: .relaxed)
            }
        } catch let error as ImportError {
            throw error
        } catch let error as HandoffStopped {
            throw error
        } catch let error as SheetEnded {
            throw error
        } catch {
            throw ImportError(
                .unreadableInput, "cannot read content.xml from the spreadsheet (damaged or truncated: \(error))",
                file: name)
        }
    }
}

/// Turns `content.xml`'s events for the chosen `<table:table>` into `SheetRows`. Used by the
/// scanning thread alone.
/// Thrown once the chosen sheet has ended: the rest of the file is not scanned.
private struct SheetEnded: Error {}

private final class ODSRowBuilder {
    let rows: SheetRows
    let setting: String?
    let maxRecordBytes: Int
    let emit: (SheetItem) throws -> Void
    private(set) var names: [String] = []
    private(set) var found = false
    private var inSheet = false
    private var nextRow = 1
    private var rowRepeat = 1
    private var column = 0
    // The cell being read.
    private var inCell = false
    private var cellRepeat = 1
    private var cellSpan = 1
    /// The row's merged cells: first column and width.
    private var spans: [(column: Int, width: Int)] = []
    private var kind: Kind = .none
    private var attributeValue: [UInt8] = []
    /// The value is in the cell's attributes (`office:value`, …), not its text.
    private var fromAttribute = false
    private var text: [UInt8] = []
    private var paragraphs = 0
    private var textDepth = 0
    private var hidden = 0

    enum Kind { case none, number, date, time, boolean, string, error }

    init(rows: SheetRows, setting: String?, maxRecordBytes: Int, emit: @escaping (SheetItem) throws -> Void) {
        self.rows = rows
        self.setting = setting
        self.maxRecordBytes = maxRecordBytes
        self.emit = emit
    }

    /// One event; the header and full blocks go to `emit` as they are made.
    func handle(_ event: XMLScanner.Event, chosen: SheetReader.Chosen) throws {
        switch event {
        case .start(let tag, let attributes, let selfClosing):
            if !inSheet {
                if XMLText.equals(tag, "table") { startSheet(attributes, selfClosing: selfClosing, chosen: chosen) }
                return
            }
            if hidden > 0 {
                if !selfClosing { hidden += 1 }
                return
            }
            if XMLText.equals(tag, "table-row") {
                rowRepeat = max(
                    1, XMLText.attribute("number-rows-repeated", in: attributes).flatMap(XMLText.integer) ?? 1)
                column = 0
                rows.begin(nextRow)
                spans.removeAll()
                if selfClosing { try endRow() }
            } else if XMLText.equals(tag, "table-cell") || XMLText.equals(tag, "covered-table-cell") {
                startCell(attributes)
                if selfClosing { endCell() }
            } else if inCell {
                if XMLText.equals(tag, "annotation") {
                    // A comment on the cell: not its value.
                    if !selfClosing { hidden = 1 }
                } else if XMLText.equals(tag, "p") || XMLText.equals(tag, "h") {
                    if paragraphs > 0 { text.append(0x0A) }
                    paragraphs += 1
                } else if XMLText.equals(tag, "s") {
                    let count = XMLText.attribute("c", in: attributes).flatMap(XMLText.integer) ?? 1
                    text += repeatElement(0x20, count: min(count, 1 << 16))
                } else if XMLText.equals(tag, "tab") {
                    text.append(0x09)
                } else if XMLText.equals(tag, "line-break") {
                    text.append(0x0A)
                }
            }
        case .end(let tag):
            if hidden > 0 {
                hidden -= 1
                return
            }
            guard inSheet else { return }
            if XMLText.equals(tag, "table-cell") || XMLText.equals(tag, "covered-table-cell") {
                endCell()
            } else if XMLText.equals(tag, "table-row") {
                try endRow()
            } else if XMLText.equals(tag, "table") {
                throw SheetEnded()
            }
        case .text(let bytes, let isRaw):
            guard inCell, hidden == 0, paragraphs > 0 else { return }
            if isRaw { text.appendBytes(bytes) } else { XMLText.appendDecoded(bytes, to: &text, ooxml: false) }
        }
        return
    }

    private func startSheet(_ attributes: UnsafeRawBufferPointer, selfClosing: Bool, chosen: SheetReader.Chosen) {
        let name = XMLText.attributeString("name", in: attributes) ?? ""
        names.append(name)
        let wanted: Bool
        if let setting, !setting.isEmpty {
            wanted = name == setting || (Int(setting) == names.count && !names.dropLast().contains(setting))
        } else {
            wanted = names.count == 1
        }
        guard wanted, !found else { return }
        found = true
        chosen.sheet = name
        inSheet = !selfClosing
    }

    private func startCell(_ attributes: UnsafeRawBufferPointer) {
        inCell = true
        cellRepeat = 1
        cellSpan = 1
        kind = .none
        attributeValue.removeAll(keepingCapacity: true)
        text.removeAll(keepingCapacity: true)
        paragraphs = 0
        var stringValue: [UInt8]?
        var values: (number: UnsafeRawBufferPointer?, date: UnsafeRawBufferPointer?, time: UnsafeRawBufferPointer?) =
            (nil, nil, nil)
        var boolean: UnsafeRawBufferPointer?
        XMLText.forEachAttribute(attributes) { key, value in
            if XMLText.equals(key, "value-type") {
                // office:value-type, then LibreOffice's calcext:value-type, which says "error".
                if XMLText.equals(value, "float") || XMLText.equals(value, "percentage")
                    || XMLText.equals(value, "currency")
                {
                    kind = .number
                } else if XMLText.equals(value, "date") {
                    kind = .date
                } else if XMLText.equals(value, "time") {
                    kind = .time
                } else if XMLText.equals(value, "boolean") {
                    kind = .boolean
                } else if XMLText.equals(value, "error") {
                    kind = .error
                } else if kind != .error {
                    kind = .string
                }
            } else if XMLText.equals(key, "value") {
                values.number = value
            } else if XMLText.equals(key, "date-value") {
                values.date = value
            } else if XMLText.equals(key, "time-value") {
                values.time = value
            } else if XMLText.equals(key, "boolean-value") {
                boolean = value
            } else if XMLText.equals(key, "string-value") {
                var decoded: [UInt8] = []
                XMLText.appendDecoded(value, to: &decoded, ooxml: false)
                stringValue = decoded
            } else if XMLText.equals(key, "number-columns-spanned") {
                cellSpan = min(max(1, XMLText.integer(value) ?? 1), ODSSheet.maxColumns)
            } else if XMLText.equals(key, "number-columns-repeated") {
                cellRepeat = max(1, XMLText.integer(value) ?? 1)
            }
        }
        switch kind {
        case .number:
            if let number = values.number { attributeValue = SpreadsheetValue.plain(Array(number)) }
        case .date:
            if let date = values.date { attributeValue = Array(date) }
        case .time:
            if let time = values.time { attributeValue = Array(ODSValue.clock(time).utf8) }
        case .boolean:
            if let boolean {
                attributeValue = XMLText.equals(boolean, "true") ? Array("true".utf8) : Array("false".utf8)
            }
        case .string:
            if let stringValue { attributeValue = stringValue }
        case .none, .error: break
        }
        fromAttribute = kind != .string || stringValue != nil
    }

    private func endCell() {
        guard inCell else { return }
        inCell = false
        let value: [UInt8]
        switch kind {
        case .number, .date, .time, .boolean, .string: value = fromAttribute ? attributeValue : text
        case .none: value = text
        case .error:
            rows.errors.append((column, "the error \(String(decoding: text, as: UTF8.self))"))
            value = text
        }
        let count = min(cellRepeat, max(0, ODSSheet.maxColumns - column))
        if cellSpan > 1 && !value.isEmpty { spans.append((column, cellSpan)) }
        if !value.isEmpty {
            for offset in 0..<count {
                // A few bytes repeated across a row can make it as long as any: it stops at
                // source.max_record_bytes, and the row is rejected.
                guard rows.values.count + value.count <= maxRecordBytes else {
                    rows.errors.append(
                        (
                            column + offset,
                            "a value whose row, its repeated cells expanded, runs past the \(maxRecordBytes) bytes source.max_record_bytes allows"
                        ))
                    break
                }
                rows.add(column + offset, value)
            }
        }
        column += count
    }

    /// Ends the row, repeated as often as it says: each copy is handed on as it is made (the
    /// hand-off holds the thread while the reader is behind), so memory stays a few blocks.
    private func endRow() throws {
        let first = nextRow
        let count = min(rowRepeat, max(0, ODSSheet.maxRows + 1 - first))
        nextRow += count
        guard rows.rowHasValue else {
            // An empty row (however often repeated) is one look, for a stated header row.
            for item in try rows.end() { try emit(item) }
            return
        }
        if !rows.headerDone {
            rows.minimumWidth = min(spans.map { $0.column + $0.width }.max() ?? 0, ODSSheet.maxColumns)
        }
        for offset in 0..<count {
            rows.rowNumber = first + offset
            for item in try rows.end() { try emit(try named(item)) }
        }
    }

    /// A header whose empty cells lie under a merged cell of the header row takes its name for
    /// them, numbered (`Address`, `Address 2`), as for `.xlsx`.
    private func named(_ item: SheetItem) throws -> SheetItem {
        guard case .header(var names, let row, var empty) = item, !empty.isEmpty, !spans.isEmpty else { return item }
        var open = Set(empty)
        for span in spans where span.column < names.count && span.width > 1 {
            for column in (span.column + 1)..<min(span.column + span.width, names.count) where open.contains(column) {
                names[column] = "\(names[span.column]) \(column - span.column + 1)"
                open.remove(column)
            }
        }
        empty = empty.filter(open.contains)
        return .header(names, row: row, empty: empty)
    }
}

/// OpenDocument value notations.
enum ODSValue {
    /// `PT13H45M00S` (an ISO 8601 duration, as `office:time-value` holds a time of day) → `13:45:00`;
    /// a value it cannot read is kept as it is.
    static func clock(_ raw: UnsafeRawBufferPointer) -> String {
        let text = String(decoding: raw, as: UTF8.self)
        guard text.hasPrefix("PT") else { return text }
        var hours = 0
        var minutes = 0
        var seconds = "00"
        var number = ""
        for character in text.dropFirst(2) {
            switch character {
            case "H": hours = Int(number) ?? 0
            case "M": minutes = Int(number) ?? 0
            case "S":
                let parts = number.split(separator: ".", maxSplits: 1)
                let whole = Int(parts.first ?? "0") ?? 0
                seconds = (whole < 10 ? "0" : "") + "\(whole)"
                if parts.count == 2, parts[1].contains(where: { $0 != "0" }) {
                    seconds += "." + parts[1].reversed().drop { $0 == "0" }.reversed()
                }
            default:
                number.append(character)
                continue
            }
            number = ""
        }
        return String(format: "%02d:%02d:", hours, minutes) + seconds
    }
}
