import MapsembleJSON

/// Splits a GeoJSON input into its features' texts, as a stream: a FeatureCollection's `features`
/// array element by element (never the whole file in memory), or GeoJSONSeq's one feature per
/// line (RFC 8142's record separators or plain newlines). A file holding a single Feature or a
/// bare geometry is one feature.
public struct FeatureSplitter {
    public enum Kind: Sendable, Equatable {
        /// A FeatureCollection (`.geojson`, `.json`).
        case collection
        /// One feature per line (`.geojsonl`, `.geojsons`, `.ndjson`).
        case sequence
    }

    private let input: RawInput
    private let kind: Kind
    private let name: String
    private var chunk = [UInt8](repeating: 0, count: 1 << 20)
    private var position = 0
    private var filled = 0
    private var ended = false
    /// The line of the next byte.
    private(set) var line = 1
    /// In a collection: inside the `features` array, after its elements began.
    private var inFeatures = false
    private var featuresSeen = false
    private var finished = false
    private var started = false
    /// The top-level `type`, once read.
    private var topType: String?
    /// Members of the top-level object seen so far.
    private var topKeys = Set<String>()
    /// The reference system a `crs` member names (GeoJSON 2008; RFC 7946 dropped it), as
    /// `EPSG:n`; nil when there is none or it is WGS 84 longitude and latitude.
    private(set) var declaredCRS: String?
    /// The top-level object as read so far, until `features` is found (a lone Feature or geometry
    /// is that object), capped.
    private var whole: [UInt8] = []
    private static let wholeCap = 256 << 20

    var bytesRead: Int { input.offset }

    init(path: String, kind: Kind, name: String) throws {
        guard let input = RawInput(path: path) else {
            throw ImportError(.unreadableInput, "cannot open the file", file: name)
        }
        self.init(input: input, kind: kind, name: name)
    }

    init(input: RawInput, kind: Kind, name: String) {
        self.input = input
        self.kind = kind
        self.name = name
    }

    private func failure(_ message: String) -> ImportError {
        ImportError(.unreadableInput, message, file: name, line: line)
    }

    private mutating func peek() throws -> UInt8? {
        if position == filled {
            guard !ended else { return nil }
            filled = try chunk.withUnsafeMutableBytes { try input.read(into: $0.baseAddress!, $0.count) }
            position = 0
            if filled == 0 {
                ended = true
                return nil
            }
        }
        return chunk[position]
    }

    @discardableResult
    private mutating func take() throws -> UInt8? {
        guard let byte = try peek() else { return nil }
        position += 1
        if byte == 0x0A { line += 1 }
        if !inFeatures && kind == .collection && whole.count < Self.wholeCap { whole.append(byte) }
        return byte
    }

    private mutating func skipSpaces() throws {
        while let byte = try peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 || byte == 0x1E {
            try take()
        }
    }

    /// The next feature's text and the line it starts on; nil at the end of the input.
    mutating func next() throws -> (text: [UInt8], line: Int)? {
        kind == .sequence ? try nextLine() : try nextElement()
    }

    private mutating func nextLine() throws -> (text: [UInt8], line: Int)? {
        while true {
            try skipSpaces()
            guard try peek() != nil else { return nil }
            let start = line
            var text: [UInt8] = []
            // Up to the line's end, a span of the chunk at a time.
            while try peek() != nil {
                let from = position
                var end = from
                let filled = filled
                chunk.withUnsafeBufferPointer { buffer in
                    while end < filled, buffer[end] != 0x0A, buffer[end] != 0x1E { end += 1 }
                }
                text += chunk[from..<end]
                position = end
                if end < filled { break }
            }
            while let last = text.last, last == 0x0D || last == 0x20 || last == 0x09 { text.removeLast() }
            if !text.isEmpty { return (text, start) }
        }
    }

    /// One JSON value's bytes, from its first byte, brackets and strings followed: the chunk is
    /// scanned in place and the value's bytes copied a span at a time.
    private mutating func value(into out: inout [UInt8]?) throws {
        var depth = 0
        var inString = false
        var escaped = false
        while try peek() != nil {
            let start = position
            var end = start
            var done = false
            var newlines = 0
            let filled = filled
            chunk.withUnsafeBufferPointer { buffer in
                while end < filled {
                    let byte = buffer[end]
                    if inString {
                        if escaped {
                            escaped = false
                        } else if byte == 0x5C {
                            escaped = true
                        } else if byte == 0x22 {
                            inString = false
                            if depth == 0 {
                                end += 1
                                done = true
                                return
                            }
                        } else if byte == 0x0A {
                            newlines += 1
                        }
                    } else {
                        switch byte {
                        case 0x22: inString = true
                        case 0x7B, 0x5B: depth += 1
                        case 0x7D, 0x5D:
                            // A closing bracket of the enclosing value ends a number or literal.
                            if depth == 0 {
                                done = true
                                return
                            }
                            depth -= 1
                            if depth == 0 {
                                end += 1
                                done = true
                                return
                            }
                        case 0x2C, 0x20, 0x0D, 0x09:
                            if depth == 0 {
                                done = true
                                return
                            }
                        case 0x0A:
                            if depth == 0 {
                                done = true
                                return
                            }
                            newlines += 1
                        default: break
                        }
                    }
                    end += 1
                }
            }
            out?.append(contentsOf: chunk[start..<end])
            if !inFeatures && kind == .collection && whole.count < Self.wholeCap { whole += chunk[start..<end] }
            line += newlines
            position = end
            if done { return }
        }
        if depth > 0 || inString { throw failure("the file ends inside a value: it is cut short or not JSON") }
    }

    private mutating func string() throws -> String {
        var bytes: [UInt8]? = []
        try value(into: &bytes)
        guard let text = JSONParser.parse(bytes!)?.string else { throw failure("expected a member name (a string)") }
        return text
    }

    private mutating func nextElement() throws -> (text: [UInt8], line: Int)? {
        guard !finished else { return nil }
        if !inFeatures {
            guard try topMembers() else { return try loneFeature() }
        }
        // Inside `features`: an element, then `,` or `]`.
        try skipSpaces()
        guard let first = try peek() else { throw failure("the file ends inside the features array") }
        if first == 0x5D {
            try take()
            inFeatures = false
            whole = []
            guard try topMembers() else {
                try finish()
                return nil
            }
            return try nextElement()
        }
        let start = line
        var text: [UInt8]? = []
        try value(into: &text)
        try skipSpaces()
        switch try peek() {
        case 0x2C: try take()
        case 0x5D: break
        default: throw failure("expected \",\" or \"]\" after a feature")
        }
        return (text!, start)
    }

    /// Reads top-level members up to the `features` array (true: its elements come next) or the
    /// end of the top-level object (false).
    private mutating func topMembers() throws -> Bool {
        try skipSpaces()
        if !started {
            started = true
            guard try take() == 0x7B else {
                throw failure("not GeoJSON: the file does not start with {")
            }
        } else if try peek() == 0x2C {
            try take()
        }
        while true {
            try skipSpaces()
            guard let byte = try peek() else { throw failure("the file ends inside the top-level object") }
            if byte == 0x7D {
                try take()
                return false
            }
            if byte == 0x2C {
                try take()
                continue
            }
            let key = try string()
            try skipSpaces()
            guard try take() == 0x3A else { throw failure("expected \":\" after \"\(key)\"") }
            try skipSpaces()
            if key == "features" {
                guard try peek() == 0x5B else {
                    throw failure("the FeatureCollection's \"features\" must be an array")
                }
                try take()
                if let topType, topType != "FeatureCollection" {
                    throw failure("the top-level \"type\" is \"\(topType)\", expected \"FeatureCollection\"")
                }
                try checkCollectionMembers()
                featuresSeen = true
                inFeatures = true
                whole = []
                return true
            }
            topKeys.insert(key)
            var text: [UInt8]? = key == "type" || key == "crs" ? [] : nil
            try value(into: &text)
            if let text {
                if key == "type" {
                    topType = JSONParser.parse(text)?.string ?? ""
                } else {
                    declaredCRS = JSONParser.parse(text).flatMap(Self.crsName)
                }
            }
        }
    }

    /// RFC 7946 7.1: a FeatureCollection is not a Feature or a geometry.
    private func checkCollectionMembers() throws {
        for member in ["properties", "geometry", "coordinates", "geometries"] where topKeys.contains(member) {
            throw failure("a FeatureCollection cannot have a \"\(member)\" member (RFC 7946, 7.1)")
        }
    }

    /// `EPSG:n` from a `crs` member (`{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::2154"}}`).
    static func crsName(_ crs: JSONValue) -> String? {
        guard let name = crs["properties"]?["name"]?.string else { return nil }
        if name.hasSuffix("CRS84") || name.hasSuffix("CRS:84") { return nil }
        guard let code = name.split(whereSeparator: { $0 == ":" }).last, Int(code) != nil,
            name.uppercased().contains("EPSG")
        else { return name }
        return code == "4326" ? nil : "EPSG:\(code)"
    }

    /// The top-level object ended: a FeatureCollection is done; a Feature or a geometry is one.
    private mutating func loneFeature() throws -> (text: [UInt8], line: Int)? {
        try finish()
        switch topType {
        case "FeatureCollection":
            if featuresSeen { return nil }
            throw failure("the FeatureCollection has no \"features\" member")
        case "Feature": return (whole, 1)
        case nil: throw failure("not GeoJSON: the top-level object has no \"type\"")
        case let type?:
            guard Shape.Kind.allCases.contains(where: { $0.name == type }) || type == "GeometryCollection" else {
                throw failure(
                    "not GeoJSON: the top-level \"type\" is \"\(type)\", expected FeatureCollection, Feature or a geometry"
                )
            }
            // A bare geometry: one feature without properties.
            return (Array(#"{"type":"Feature","properties":{},"geometry":"#.utf8) + whole + [0x7D], 1)
        }
    }

    private mutating func finish() throws {
        finished = true
        if featuresSeen {
            guard let topType else { throw failure("the FeatureCollection has no \"type\" member") }
            if topType != "FeatureCollection" {
                throw failure("the top-level \"type\" is \"\(topType)\", expected \"FeatureCollection\"")
            }
            try checkCollectionMembers()
        }
        try skipSpaces()
        if try peek() != nil { throw failure("unexpected text after the top-level object") }
    }
}

/// Reads GeoJSON features as records: a column `id` (the feature's id), a column per property
/// (in the order they first appear in the file; text as is, numbers and booleans as written,
/// nested values as JSON text, null as empty) and a column `geometry` holding the geometry's
/// GeoJSON (read by the geometry column's checks). The property names are found by a first pass
/// over the file, which streams as the second does.
///
/// A feature that is not a Feature object is a rejected row (`malformed_row`) with its line,
/// never the end of the file. Each record keeps its feature's text, for `NAME.rejected.geojsonl`
/// (`RecordBlock.featureTexts`).
public final class GeoJSONReader: RecordReader {
    public private(set) var header: [String] = []
    public private(set) var rowsRead = 0
    public let paddedRows = 0
    public let mayBlock = false
    public var bytesRead: Int { splitter.bytesRead }
    public let encoding = SourceEncoding.utf8
    /// The column the geometry is in (`geometry`, or `_geometry` when a property has that name).
    public private(set) var geometryColumn = "geometry"
    private var splitter: FeatureSplitter
    private let blockBytes: Int
    /// The reference system the file's `crs` member names (`EPSG:n`), if any.
    public private(set) var declaredCRS: String?
    /// Columns of the properties, by name.
    private var propertyColumns: [String: Int] = [:]
    /// Whether the features' `id` has a column (not when a property is called `id`).
    private(set) var idColumn: Int?
    private var geometryIndex = 0

    /// The kind of GeoJSON `format` (or the path's extension, for `auto`) says; nil: not GeoJSON.
    public static func kind(format: String, path: String) -> FeatureSplitter.Kind? {
        switch format {
        case "geojson": return .collection
        case "geojsonseq": return .sequence
        case "auto":
            let lower = path.lowercased()
            if lower.hasSuffix(".geojson") || lower.hasSuffix(".json") { return .collection }
            if [".geojsonl", ".geojsons", ".geojsonseq", ".ndjson", ".jsonl"].contains(where: { lower.hasSuffix($0) }) {
                return .sequence
            }
            return nil
        default: return nil
        }
    }

    init(path: String, kind: FeatureSplitter.Kind, blockBytes: Int, name: String) throws {
        self.blockBytes = blockBytes
        // Read twice (the property names first): standard input is kept in an owner-only
        // temporary file, unlinked at once (`RawInput.spoolStandardInput`).
        let spooled = path == "-" ? try RawInput.spoolStandardInput() : nil
        defer { if let spooled { RawInput.closeSpooled(spooled) } }
        func pass() throws -> FeatureSplitter {
            guard let spooled else { return try FeatureSplitter(path: path, kind: kind, name: name) }
            return FeatureSplitter(input: RawInput.rewound(spooled), kind: kind, name: name)
        }
        // First pass: the property names.
        var names: [String] = []
        var seen = Set<String>()
        var first = try pass()
        while let (text, _) = try first.next() {
            guard let members = FeatureText.members(text),
                let properties = FeatureText.member("properties", of: members, in: text),
                let entries = FeatureText.members(text, in: properties.value)
            else { continue }
            for entry in entries {
                let key = FeatureText.key(text, entry)
                if seen.insert(key).inserted { names.append(key) }
            }
        }
        declaredCRS = first.declaredCRS
        splitter = try pass()
        if !seen.contains("id") {
            idColumn = 0
            header.append("id")
        }
        for key in names {
            propertyColumns[key] = header.count
            header.append(key)
        }
        if seen.contains("geometry") { geometryColumn = "_geometry" }
        geometryIndex = header.count
        header.append(geometryColumn)
    }

    public func nextBlock() throws -> RecordBlock? {
        var block = RecordBlock(reservingBytes: blockBytes)
        block.featureTexts = true
        var cells = [[UInt8]](repeating: [], count: header.count)
        while block.bytes.count < blockBytes, let (text, line) = try splitter.next() {
            rowsRead += 1
            switch fields(text, into: &cells) {
            case .some(let problem):
                block.rejections.append(
                    Rejection(
                        line: line, code: .malformedRow, column: "", message: problem,
                        fields: Array(repeating: "", count: header.count) + [String(decoding: text, as: UTF8.self)]))
            case nil:
                for cell in cells { cell.withUnsafeBytes { block.appendField($0) } }
                block.originals.append(text, for: block.count)
                block.closeRecord(line: line)
            }
        }
        return block.count == 0 && block.rejections.isEmpty ? nil : block
    }

    /// The feature's cells; the problem instead when it is not a Feature.
    private func fields(_ text: [UInt8], into cells: inout [[UInt8]]) -> String? {
        for index in cells.indices { cells[index].removeAll(keepingCapacity: true) }
        guard let first = text.first(where: { ![0x20, 0x0A, 0x0D, 0x09].contains($0) }) else {
            return "the feature is empty"
        }
        guard first == 0x7B else { return "the features array holds a value that is not an object" }
        guard let members = FeatureText.members(text) else { return "the feature is not JSON" }
        func json(_ name: String) -> (FeatureText.Member, JSONValue?)? {
            FeatureText.member(name, of: members, in: text).map { ($0, JSONParser.parse(Array(text[$0.value]))) }
        }
        guard let (_, type) = json("type") else { return "the feature has no \"type\"" }
        guard let type = type?.string else { return "the feature's type is not a string" }
        guard type == "Feature" else { return "the feature's type is \"\(type)\", expected \"Feature\"" }
        if let (_, bbox) = json("bbox"), let problem = ShapeText.bboxProblem(bbox ?? .null) { return problem }
        guard let properties = FeatureText.member("properties", of: members, in: text) else {
            return "the feature has no \"properties\" member (RFC 7946 wants one, null when it has none)"
        }
        if text[properties.value].elementsEqual("null".utf8) {
            // No properties.
        } else if let entries = FeatureText.members(text, in: properties.value) {
            for entry in entries {
                guard let column = propertyColumns[FeatureText.key(text, entry)] else { continue }
                guard Self.cell(text[entry.value], into: &cells[column]) else {
                    return "the property \"\(FeatureText.key(text, entry))\" is not a JSON value"
                }
            }
        } else {
            return "the feature's properties are not an object"
        }
        if let idColumn, let (id, value) = json("id") {
            switch value {
            case .string?, .number?, .null?: _ = Self.cell(text[id.value], into: &cells[idColumn])
            default: return "the feature's id is not a string or a number"
            }
        }
        if let geometry = FeatureText.member("geometry", of: members, in: text),
            !text[geometry.value].elementsEqual("null".utf8)
        {
            guard text[geometry.value.lowerBound] == 0x7B else { return "the feature's geometry is not an object" }
            // As written: the geometry column's checks read it.
            cells[geometryIndex] += text[geometry.value]
        }
        return nil
    }

    /// A property's value as a cell: text as is (unescaped), numbers and booleans as written,
    /// nested values as their JSON text, null as empty. False when it is not a JSON value.
    private static func cell(_ raw: ArraySlice<UInt8>, into out: inout [UInt8]) -> Bool {
        guard let first = raw.first else { return false }
        switch first {
        case 0x22:
            let inner = raw.dropFirst().dropLast()
            guard raw.count >= 2, raw.last == 0x22 else { return false }
            if !inner.contains(0x5C) {
                out += inner
                return true
            }
            guard let text = JSONParser.parse(Array(raw))?.string else { return false }
            out += text.utf8
            return true
        case 0x7B, 0x5B:
            guard JSONParser.parse(Array(raw)) != nil else { return false }
            out += raw
            return true
        case 0x6E: return raw.elementsEqual("null".utf8)
        case 0x74, 0x66:
            guard raw.elementsEqual("true".utf8) || raw.elementsEqual("false".utf8) else { return false }
            out += raw
            return true
        default:
            guard JSONParser.parse(Array(raw))?.number != nil else { return false }
            out += raw
            return true
        }
    }
}

/// A feature's text read without building a JSON tree: the members of an object as byte
/// ranges (what the reader needs of a feature, and where the report adds its errors).
enum FeatureText {
    struct Member {
        /// The name's bytes between its quotes (escapes as written).
        var key: Range<Int>
        var value: Range<Int>
    }

    /// The members of the object spanning `range` of `bytes`; nil when it is not an object
    /// whose members can be told apart (brackets and strings followed, values not checked).
    static func members(_ bytes: [UInt8], in range: Range<Int>? = nil) -> [Member]? {
        bytes.withUnsafeBufferPointer { bytes -> [Member]? in
            let range = range ?? 0..<bytes.count
            var index = range.lowerBound
            let end = range.upperBound
            func skipSpaces() {
                while index < end, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 }
            }
            func skipValue() -> Bool { JSONSkip.value(UnsafeRawBufferPointer(bytes), &index, end: end) }
            skipSpaces()
            guard index < end, bytes[index] == 0x7B else { return nil }
            index += 1
            var members: [Member] = []
            skipSpaces()
            if index < end, bytes[index] == 0x7D {
                index += 1
                skipSpaces()
                return index == end ? [] : nil
            }
            while true {
                skipSpaces()
                guard index < end, bytes[index] == 0x22 else { return nil }
                let keyStart = index
                guard skipValue() else { return nil }
                let key = (keyStart + 1)..<(index - 1)
                skipSpaces()
                guard index < end, bytes[index] == 0x3A else { return nil }
                index += 1
                skipSpaces()
                let valueStart = index
                guard skipValue(), index > valueStart else { return nil }
                members.append(Member(key: key, value: valueStart..<index))
                skipSpaces()
                guard index < end else { return nil }
                if bytes[index] == 0x7D {
                    index += 1
                    skipSpaces()
                    return index == end ? members : nil
                }
                guard bytes[index] == 0x2C else { return nil }
                index += 1
            }
        }
    }

    /// A member name as text (decoded when it holds escapes).
    static func key(_ bytes: [UInt8], _ member: Member) -> String {
        let raw = bytes[member.key]
        guard raw.contains(0x5C) else { return String(decoding: raw, as: UTF8.self) }
        return JSONParser.parse(Array(bytes[(member.key.lowerBound - 1)..<(member.key.upperBound + 1)]))?.string
            ?? String(decoding: raw, as: UTF8.self)
    }

    /// The first member called `name`.
    static func member(_ name: String, of members: [Member], in bytes: [UInt8]) -> Member? {
        members.first { bytes[$0.key].elementsEqual(name.utf8) }
    }

    /// `insertAt`: just inside the properties object (`replacing` empty; `empty` when it has no
    /// members), or where a `null` (or any value that is not an object) to replace starts.
    struct Spot {
        var insertAt: Int
        var replacing: Range<Int>
        var empty: Bool
    }

    /// Nil when the text is not an object with a `properties` member.
    static func propertiesStart(_ bytes: [UInt8]) -> Spot? {
        guard let all = members(bytes), let properties = member("properties", of: all, in: bytes) else { return nil }
        let value = properties.value
        if bytes[value.lowerBound] == 0x7B {
            return Spot(
                insertAt: value.lowerBound + 1, replacing: 0..<0, empty: members(bytes, in: value)?.isEmpty == true)
        }
        return Spot(insertAt: value.lowerBound, replacing: value, empty: false)
    }
}
