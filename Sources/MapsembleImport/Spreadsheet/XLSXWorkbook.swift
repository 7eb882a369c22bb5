import Foundation

/// An `.xlsx` workbook opened for reading: its sheets, date system, cell styles and shared
/// strings, read from the ZIP with `ZipParts`. Sheets themselves are streamed (`stream`).
final class XLSXWorkbook: @unchecked Sendable {  // read by one thread at a time: the opener, then the scanner
    struct Sheet: Sendable, Equatable {
        var name: String
        /// The sheet's part in the archive, e.g. `xl/worksheets/sheet1.xml`.
        var part: String
        var hidden: Bool
    }

    /// How a cell's number is shown, from its style's number format.
    enum NumberStyle: Equatable {
        case general
        /// A date, with or without a time of day.
        case date(time: Bool)
        /// A time of day only.
        case time
        /// `@`: the cell holds text.
        case text
    }

    let name: String
    let sheets: [Sheet]
    /// The 1904 date system (old Mac workbooks): serial 0 is 1904-01-01.
    let date1904: Bool
    /// By cell style index (`s` attribute).
    let styles: [NumberStyle]
    private let archive: ZipParts
    private let sharedStringsPart: String?

    /// Opens `path`; a file that is not a workbook stops here with one sentence.
    init(path: String, name: String) throws {
        self.name = name
        guard access(path, R_OK) == 0 else {
            throw ImportError.system(.unreadableInput, "cannot open the input", file: name)
        }
        let head = RawInput.head(path, 8)
        if head.starts(with: [0xD0, 0xCF, 0x11, 0xE0]) {
            throw ImportError(
                .unreadableInput,
                "is an encrypted workbook or an old .xls file (an OLE container), not .xlsx: save it as .xlsx without a password",
                file: name)
        }
        guard head.starts(with: [0x50, 0x4B, 0x03, 0x04]) else {
            throw ImportError(.unreadableInput, "is not an .xlsx workbook (not a ZIP archive)", file: name)
        }
        do {
            archive = try ZipParts(path: path)
        } catch {
            throw ImportError(
                .unreadableInput, "is not a readable .xlsx workbook (the ZIP archive is damaged or truncated)",
                file: name)
        }
        let rootRelations = Self.relations(try Self.entry(archive, "_rels/.rels", name: name))
        let workbookPart =
            rootRelations.first { $0.type.hasSuffix("/officeDocument") }.map { Self.resolve($0.target, from: "") }
            ?? "xl/workbook.xml"
        let workbookFolder = (workbookPart as NSString).deletingLastPathComponent
        let relations = Self.relations(
            (try? Self.entry(
                archive, workbookFolder + "/_rels/" + (workbookPart as NSString).lastPathComponent + ".rels", name: name
            ))
                ?? [])
        var targets: [String: String] = [:]
        for relation in relations { targets[relation.id] = Self.resolve(relation.target, from: workbookFolder) }
        sharedStringsPart = relations.first { $0.type.hasSuffix("/sharedStrings") }.map {
            Self.resolve($0.target, from: workbookFolder)
        }
        let stylesPart = relations.first { $0.type.hasSuffix("/styles") }.map {
            Self.resolve($0.target, from: workbookFolder)
        }

        var sheets: [Sheet] = []
        var date1904 = false
        var scanner = XMLScanner()
        let workbook = try Self.entry(archive, workbookPart, name: name)
        try workbook.withUnsafeBytes { bytes in
            try scanner.feed(bytes) { event in
                guard case .start(let tag, let attributes, _) = event else { return }
                if XMLText.equals(tag, "sheet") {
                    let id = XMLText.attributeString("id", in: attributes) ?? ""
                    sheets.append(
                        Sheet(
                            name: XMLText.attributeString("name", in: attributes) ?? "",
                            part: targets[id] ?? "",
                            hidden: XMLText.attributeString("state", in: attributes).map { $0 != "visible" } ?? false))
                } else if XMLText.equals(tag, "workbookPr") {
                    let value = XMLText.attributeString("date1904", in: attributes)
                    date1904 = value == "1" || value == "true"
                }
            }
        }
        guard !sheets.isEmpty else {
            throw ImportError(.unreadableInput, "is a workbook without sheets", file: name)
        }
        self.sheets = sheets
        self.date1904 = date1904
        if let stylesPart {
            styles = try Self.styles(Self.entry(archive, stylesPart, name: name))
        } else {
            styles = []
        }
    }

    /// The sheet a setting names: a name, or a 1-based position; nil means the first sheet.
    func sheet(_ setting: String?) throws -> Sheet {
        guard let setting, !setting.isEmpty else { return sheets[0] }
        if let sheet = sheets.first(where: { $0.name == setting }) { return sheet }
        if let index = Int(setting), index >= 1, index <= sheets.count { return sheets[index - 1] }
        throw ImportError(
            .config,
            "has no sheet \"\(setting)\"; its sheets are: \(sheets.enumerated().map { "\($0.offset + 1) \"\($0.element.name)\"" }.joined(separator: ", "))",
            file: name)
    }

    /// The shared strings table (cells with `t="s"` hold an index into it). It is held in
    /// memory, so it may hold at most `limit` bytes of text: a zip bomb (a small file whose
    /// strings inflate to gigabytes) stops here with an error instead of exhausting memory.
    func sharedStrings(limit: Int = 1 << 30) throws -> SharedStrings {
        var strings = SharedStrings()
        guard let part = sharedStringsPart, archive.parts[part] != nil else { return strings }
        var scanner = XMLScanner()
        var inItem = false
        var inText = false
        var inPhonetic = false
        var current: [UInt8] = []
        try stream(part) { chunk in
            try scanner.feed(chunk) { event in
                switch event {
                case .start(let tag, _, let selfClosing):
                    if XMLText.equals(tag, "si") {
                        inItem = true
                        current.removeAll(keepingCapacity: true)
                        if selfClosing {
                            strings.append(current)
                            inItem = false
                        }
                    } else if XMLText.equals(tag, "t") && inItem && !inPhonetic {
                        inText = !selfClosing
                    } else if XMLText.equals(tag, "rPh") {
                        inPhonetic = !selfClosing
                    }
                case .end(let tag):
                    if XMLText.equals(tag, "si") {
                        strings.append(current)
                        inItem = false
                    } else if XMLText.equals(tag, "t") {
                        inText = false
                    } else if XMLText.equals(tag, "rPh") {
                        inPhonetic = false
                    }
                case .text(let text, let raw):
                    guard inText else { return }
                    if raw { current.appendBytes(text) } else { XMLText.appendDecoded(text, to: &current) }
                    if strings.bytes.count + current.count > limit {
                        throw ImportError(
                            .unreadableInput,
                            "its shared strings inflate past \(limit) bytes, more than this reader holds (64 × source.max_record_bytes): a zip bomb, or a workbook to export as CSV",
                            file: name)
                    }
                }
            }
        }
        return strings
    }

    /// The decompressed bytes of a part, chunk by chunk, as they are inflated.
    func stream(_ part: String, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard archive.parts[part] != nil else {
            throw ImportError(.unreadableInput, "is missing the part \(part) its workbook names", file: name)
        }
        do {
            try archive.read(part, consume)
        } catch let error as ImportError {
            throw error
        } catch let error as XLSXReader.Stopped {
            throw error
        } catch {
            throw ImportError(
                .unreadableInput, "cannot read \(part) from the workbook (damaged or truncated: \(error))", file: name)
        }
    }

    /// The used range a sheet declares at its top (`<dimension ref="A1:K500001"/>`); only the
    /// start of the part is inflated.
    func dimension(of part: String) throws -> String? {
        var scanner = XMLScanner()
        var found: String?
        do {
            try stream(part) { chunk in
                try scanner.feed(chunk) { event in
                    guard case .start(let tag, let attributes, _) = event else { return }
                    if XMLText.equals(tag, "dimension") { found = XMLText.attributeString("ref", in: attributes) }
                    if found != nil || XMLText.equals(tag, "sheetData") { throw XLSXReader.Stopped() }
                }
            }
        } catch is XLSXReader.Stopped {}
        return found
    }

    /// The merged ranges of a sheet (`<mergeCell ref="B1:C1"/>`, after its rows): 1-based rows,
    /// 0-based columns.
    func merges(of part: String) throws -> [(rows: ClosedRange<Int>, columns: ClosedRange<Int>)] {
        var scanner = XMLScanner()
        var merges: [(rows: ClosedRange<Int>, columns: ClosedRange<Int>)] = []
        try stream(part) { chunk in
            try scanner.feed(chunk) { event in
                guard case .start(let tag, let attributes, _) = event, XMLText.equals(tag, "mergeCell"),
                    let ref = XMLText.attributeString("ref", in: attributes)
                else { return }
                let corners = ref.split(separator: ":").map { Self.cell(String($0)) }
                guard corners.count == 2, let first = corners[0], let last = corners[1], first.row <= last.row,
                    first.column <= last.column
                else { return }
                merges.append((first.row...last.row, first.column...last.column))
            }
        }
        return merges
    }

    /// `C12` → (row 12, column 2).
    static func cell(_ reference: String) -> (row: Int, column: Int)? {
        let letters = reference.prefix { $0.isLetter }
        guard !letters.isEmpty, let row = Int(reference.dropFirst(letters.count)) else { return nil }
        let column = letters.uppercased().unicodeScalars.reduce(0) { $0 * 26 + Int($1.value) - 64 } - 1
        return (row, column)
    }

    /// Uncompressed size of a part, for progress.
    func size(of part: String) -> Int {
        archive.parts[part]?.uncompressedSize ?? 0
    }

    // MARK: Parts read whole (small)

    private static func entry(_ archive: ZipParts, _ part: String, name: String) throws -> [UInt8] {
        guard archive.parts[part] != nil else {
            throw ImportError(.unreadableInput, "is not an .xlsx workbook (it has no \(part))", file: name)
        }
        var bytes: [UInt8] = []
        do {
            try archive.read(part) { chunk in
                bytes.append(contentsOf: chunk)
                // These parts (workbook, relations, styles) take kilobytes.
                if bytes.count > 64 << 20 {
                    throw ImportError(.unreadableInput, "its part \(part) inflates past 64 MiB", file: name)
                }
            }
        } catch let error as ImportError {
            throw error
        } catch {
            throw ImportError(
                .unreadableInput, "cannot read \(part) from the workbook (damaged or truncated)", file: name)
        }
        return bytes
    }

    private struct Relation {
        var id: String
        var type: String
        var target: String
    }

    private static func relations(_ xml: [UInt8]) -> [Relation] {
        var result: [Relation] = []
        var scanner = XMLScanner()
        xml.withUnsafeBytes { bytes in
            try? scanner.feed(bytes) { event in
                guard case .start(let tag, let attributes, _) = event, XMLText.equals(tag, "Relationship") else {
                    return
                }
                result.append(
                    Relation(
                        id: XMLText.attributeString("Id", in: attributes) ?? "",
                        type: XMLText.attributeString("Type", in: attributes) ?? "",
                        target: XMLText.attributeString("Target", in: attributes) ?? ""))
            }
        }
        return result
    }

    /// A relationship target as a part name: absolute (`/xl/…`) or relative to `folder`.
    private static func resolve(_ target: String, from folder: String) -> String {
        if target.hasPrefix("/") { return String(target.dropFirst()) }
        var parts = folder.isEmpty ? [] : folder.split(separator: "/").map(String.init)
        for piece in target.split(separator: "/") {
            if piece == ".." { _ = parts.popLast() } else if piece != "." { parts.append(String(piece)) }
        }
        return parts.joined(separator: "/")
    }

    /// The number style of each cell format (`cellXfs`), from built-in and custom number formats.
    private static func styles(_ xml: [UInt8]) throws -> [NumberStyle] {
        var custom: [Int: String] = [:]
        var formats: [Int] = []
        var inCellFormats = false
        var scanner = XMLScanner()
        try xml.withUnsafeBytes { bytes in
            try scanner.feed(bytes) { event in
                switch event {
                case .start(let tag, let attributes, let selfClosing):
                    if XMLText.equals(tag, "numFmt"),
                        let id = XMLText.attributeString("numFmtId", in: attributes).flatMap({ Int($0) })
                    {
                        custom[id] = XMLText.attributeString("formatCode", in: attributes) ?? ""
                    } else if XMLText.equals(tag, "cellXfs") {
                        inCellFormats = !selfClosing
                    } else if XMLText.equals(tag, "xf") && inCellFormats {
                        formats.append(XMLText.attributeString("numFmtId", in: attributes).flatMap { Int($0) } ?? 0)
                    }
                case .end(let tag):
                    if XMLText.equals(tag, "cellXfs") { inCellFormats = false }
                case .text: break
                }
            }
        }
        return formats.map { id in
            if let code = custom[id] { return numberStyle(code: code) }
            switch id {
            case 14...17, 27...31, 34...36, 50...58: return .date(time: false)
            case 22: return .date(time: true)
            case 18...21, 32, 33, 45...47: return .time
            case 49: return .text
            default: return .general
            }
        }
    }

    /// Reads a custom number format code: date and time letters outside quotes, brackets and
    /// escapes make it a date or a time; `@` makes it text.
    static func numberStyle(code: String) -> NumberStyle {
        var date = false
        var time = false
        var text = false
        var quoted = false
        var bracket = false
        var escaped = false
        let section = code.split(separator: ";", omittingEmptySubsequences: false).first ?? ""
        for character in section.lowercased() {
            if escaped {
                escaped = false
                continue
            }
            switch character {
            case "\\": escaped = true
            case "\"": quoted.toggle()
            case "[": if !quoted { bracket = true }
            case "]": if !quoted { bracket = false }
            case "d", "y": if !quoted && !bracket { date = true }
            case "m": if !quoted && !bracket { date = true }
            case "h", "s": if !quoted && !bracket { time = true }
            case "@": if !quoted { text = true }
            default: break
            }
        }
        // "mm" next to hours or seconds is minutes.
        if time && !section.lowercased().contains(where: { $0 == "d" || $0 == "y" }) { return .time }
        if date { return .date(time: time) }
        if time { return .time }
        return text ? .text : .general
    }
}

/// Shared strings, back to back in one buffer (a sheet of a million distinct names holds them
/// once, without a `String` each).
struct SharedStrings {
    private(set) var bytes: [UInt8] = []
    private(set) var ends: [Int] = []

    var count: Int { ends.count }

    mutating func append(_ string: [UInt8]) {
        bytes += string
        ends.append(bytes.count)
    }

    /// Byte range of string `index`.
    func range(_ index: Int) -> Range<Int>? {
        guard index >= 0 && index < ends.count else { return nil }
        return (index == 0 ? 0 : ends[index - 1])..<ends[index]
    }
}
