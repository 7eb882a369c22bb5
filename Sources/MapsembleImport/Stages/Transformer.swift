/// Features as JSON, back to back, with the rows they came from.
public struct FeatureBlock: Sendable {
    /// The features' JSON objects, back to back; `ends` delimits them.
    public var bytes: [UInt8] = []
    public var ends: [Int] = []
    /// Input line of each feature.
    public var lines: [Int] = []
    /// Rows of this block that were not turned into features, in line order.
    public var rejections: [Rejection] = []
    /// The records this block came from, and each feature's record in it: kept (by reference,
    /// not copied) when the uploader may need a row for the report.
    public var source: RecordBlock?
    public var records: [Int] = []
    /// Values of `text` fields longer than the 255 characters the server keeps.
    public var longTexts = 0

    public var count: Int { lines.count }

    /// Byte range of feature `index` in `bytes`.
    public func range(_ index: Int) -> Range<Int> { (index == 0 ? 0 : ends[index - 1])..<ends[index] }
}

/// How the properties of a feature are made from the columns of a row.
public struct PropertyMapping: Sendable {
    /// One piece of the label: literal text or a column's value.
    public enum LabelPart: Sendable, Equatable {
        case literal(String)
        case column(Int)
    }

    public struct Field: Sendable {
        public var slug: String
        public var column: Int
        public var isNumber: Bool
        /// For fields that are not numbers: how the value is checked and written.
        public var kind: FieldKind

        public init(slug: String, column: Int, isNumber: Bool, kind: FieldKind = .text(limited: false)) {
            self.slug = slug
            self.column = column
            self.isNumber = isNumber
            self.kind = kind
        }
    }

    public var label: [LabelPart]?
    /// Column holding the remote id, and the map's slug it is sent under.
    public var remoteID: (column: Int, slug: String)?
    public var fields: [Field]

    /// Properties a stage adds (`ValidatedBlock.addedProperties`: the map's geocode field, the
    /// geocoder's quality field), compared as the mapped ones are.
    var addedSlugs: [String] = []

    /// The properties a feature is sent with, whose values tell whether the map's copy is current.
    var digestKeys: [String] {
        (remoteID.map { [$0.slug] } ?? []) + (label != nil && !geometryless ? ["label"] : []) + fields.map(\.slug)
            + addedSlugs
    }
    public var header: [String]
    public var decimalSeparator: UInt8
    /// Also accepted in number fields (`source.decimal: auto` where the comma is not the delimiter).
    public var alternateSeparator: UInt8?
    /// Deletes: `"geometry":null` and the remote id as the only property.
    public var geometryless: Bool

    public init(
        label: [LabelPart]?, remoteID: (column: Int, slug: String)?, fields: [Field], header: [String],
        decimalSeparator: UInt8 = UInt8(ascii: "."), alternateSeparator: UInt8? = nil, geometryless: Bool = false
    ) {
        self.alternateSeparator = alternateSeparator
        self.geometryless = geometryless
        self.label = label
        self.remoteID = remoteID
        self.fields = fields
        self.header = header
        self.decimalSeparator = decimalSeparator
    }
}

/// Stage 3: builds each feature's JSON. `ValidatedBlock` → `FeatureBlock`.
///
/// `properties.label` comes from a column or a template; each mapped column goes under its field
/// slug (JSON numbers for `number` fields, strings otherwise); the remote id goes under the remote
/// field's slug. A row without a remote id is `missing_remote_id`; a remote id seen before in the
/// file is `duplicate_remote_id` on its second occurrence. Stateful (remembers remote ids), so it
/// is confined to one task. Memory for the ids is 8 bytes each (a 64-bit hash: two different ids
/// collide with odds of about n²/2⁶⁵, one in 30 million for a million rows).
public final class Transformer {
    private let mapping: PropertyMapping
    /// Keep each feature's original row (the uploader reports rows the server refuses).
    private let keepRows: Bool
    private var seenRemoteIDs = Set<Int>()
    /// Values of `text` fields past 255 characters, so far.
    private var longTexts = 0
    /// Property prefixes written once: `"slug":`.
    private let fieldKeys: [[UInt8]]
    /// Per field, as flat scalars for the loop over every row: its column, whether it is a
    /// number, and whether it is text written as it is (no check beyond the 255-character count).
    private let fieldColumns: [Int]
    private let numberFields: [Bool]
    private let plainTextFields: [Bool]
    private let remoteKey: [UInt8]
    /// A feature larger than this is rejected (`too_many_vertices`) instead of sent: no request
    /// could carry it (the chunker's `maxFeatureBytes`).
    public var maxFeatureBytes = Int.max

    public init(mapping: PropertyMapping, keepRows: Bool = false) {
        self.mapping = mapping
        self.keepRows = keepRows
        fieldKeys = mapping.fields.map { Array(",\"\($0.slug)\":".utf8) }
        fieldColumns = mapping.fields.map(\.column)
        numberFields = mapping.fields.map(\.isNumber)
        plainTextFields = mapping.fields.map { if case .text = $0.kind { true } else { false } }
        remoteKey = Array("\"\(mapping.remoteID?.slug ?? "")\":".utf8)
    }

    public func transform(_ input: ValidatedBlock) -> FeatureBlock {
        let records = input.records
        var output = FeatureBlock()
        let longTextsBefore = longTexts
        output.rejections = records.rejections
        if keepRows { output.source = records }
        output.bytes.reserveCapacity(records.bytes.count + input.accepted.count * 96)
        output.ends.reserveCapacity(input.accepted.count)
        output.lines.reserveCapacity(input.accepted.count)
        records.bytes.withUnsafeBytes { bytes in
            input.coordinates.withUnsafeBytes { coordinates in
                for (position, record) in input.accepted.enumerated() {
                    let coordinateRange =
                        (position == 0 ? 0 : input.coordinateEnds[position - 1])..<input.coordinateEnds[position]
                    let mark = output.bytes.count
                    if let rejection = appendFeature(
                        record, of: records, bytes,
                        coordinates: UnsafeRawBufferPointer(rebasing: coordinates[coordinateRange]),
                        geometry: input.geometries,
                        added: input.addedProperties.isEmpty ? nil : input.addedProperties[record],
                        to: &output.bytes)
                    {
                        output.bytes.removeSubrange(mark...)
                        output.rejections.append(rejection)
                    } else if output.bytes.count - mark > maxFeatureBytes {
                        let size = output.bytes.count - mark
                        output.bytes.removeSubrange(mark...)
                        output.rejections.append(
                            Rejection(
                                line: records.lines[record], code: .tooManyVertices, column: "",
                                message:
                                    "the feature is \(size) bytes as JSON, more than one request of upload.max_body_bytes can carry (\(maxFeatureBytes) bytes); simplify it (coordinates.simplify_m) or raise upload.max_body_bytes",
                                fields: records.originalCells(record)))
                    } else {
                        output.ends.append(output.bytes.count)
                        output.lines.append(records.lines[record])
                        if keepRows { output.records.append(record) }
                    }
                }
            }
        }
        if output.rejections.count > 1 { output.rejections.sort { $0.line < $1.line } }
        output.longTexts = longTexts - longTextsBefore
        return output
    }

    /// Appends one feature; returns the rejection instead when the row cannot become one.
    @inline(__always)
    private func appendFeature(
        _ record: Int, of records: RecordBlock, _ bytes: UnsafeRawBufferPointer,
        coordinates: UnsafeRawBufferPointer, geometry: Bool, added: [UInt8]?, to out: inout [UInt8]
    ) -> Rejection? {
        @inline(__always) func field(_ column: Int) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(rebasing: bytes[records.fieldRange(record, column)])
        }
        func reject(_ code: RejectCode, _ column: Int, _ message: String) -> Rejection {
            Rejection(
                line: records.lines[record], code: code, column: mapping.header[column], message: message,
                fields: records.originalCells(record))
        }
        if mapping.geometryless || coordinates.isEmpty {
            // A delete by remote id, or an update that leaves the point where it is.
            JSONBytes.appendRaw(#"{"type":"Feature","geometry":null,"properties":{"#, to: &out)
        } else if geometry {
            // A whole GeoJSON geometry object (a geometry column).
            JSONBytes.appendRaw(#"{"type":"Feature","geometry":"#, to: &out)
            out.appendBytes(coordinates)
            JSONBytes.appendRaw(#","properties":{"#, to: &out)
        } else {
            JSONBytes.appendRaw(#"{"type":"Feature","geometry":{"type":"Point","coordinates":["#, to: &out)
            out.appendBytes(coordinates)
            JSONBytes.appendRaw(#"]},"properties":{"#, to: &out)
        }
        var first = true
        if let (column, _) = mapping.remoteID {
            let value = field(column)
            if value.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                return reject(.missingRemoteId, column, "the remote id is empty, expected a unique id for every row")
            }
            var hasher = Hasher()
            hasher.combine(bytes: value)
            if !seenRemoteIDs.insert(hasher.finalize()).inserted {
                return reject(
                    .duplicateRemoteId, column,
                    "remote id \"\(String(decoding: value, as: UTF8.self))\" appeared on an earlier row; only its first row is imported"
                )
            }
            out.append(contentsOf: remoteKey)
            guard JSONBytes.appendString(value, to: &out) else { return invalidEncoding(column, reject) }
            first = false
        }
        if let label = mapping.label, !mapping.geometryless {
            if !first { out.append(UInt8(ascii: ",")) }
            JSONBytes.appendRaw(#""label":""#, to: &out)
            for part in label {
                switch part {
                case .literal(let text):
                    var text = text
                    _ = text.withUTF8 { JSONBytes.appendEscaped(UnsafeRawBufferPointer($0), to: &out) }
                case .column(let column):
                    guard JSONBytes.appendEscaped(field(column), to: &out) else {
                        return invalidEncoding(column, reject)
                    }
                }
            }
            out.append(UInt8(ascii: "\""))
            first = false
        }
        for index in fieldColumns.indices where !mapping.geometryless {
            fieldKeys[index].withUnsafeBytes { key in
                out.appendBytes(first ? UnsafeRawBufferPointer(rebasing: key[1...]) : key)
            }
            first = false
            let column = fieldColumns[index]
            let value = field(column)
            if numberFields[index] {
                switch NumberText.parse(value, separator: mapping.decimalSeparator) {
                case .success(let number): number.appendJSON(from: value, to: &out)
                case .failure(.empty): JSONBytes.appendRaw("null", to: &out)
                case .failure(.invalid)
                where mapping.alternateSeparator != nil || Self.isNullMarker(value):
                    if let alternate = mapping.alternateSeparator,
                        case .success(let number) = NumberText.parse(value, separator: alternate)
                    {
                        number.appendJSON(from: value, to: &out)
                    } else if Self.isNullMarker(value) {
                        JSONBytes.appendRaw("null", to: &out)
                    } else if let plain = groupedNumber(value) {
                        out.append(contentsOf: Array(plain.utf8))
                    } else {
                        return reject(
                            .invalidFieldValue, column,
                            "\"\(String(decoding: value, as: UTF8.self))\" is not a number, expected one for the number field \"\(mapping.fields[index].slug)\""
                        )
                    }
                case .failure(.invalid) where groupedNumber(value) != nil:
                    out.append(contentsOf: Array(groupedNumber(value)!.utf8))
                case .failure:
                    return reject(
                        .invalidFieldValue, column,
                        "\"\(String(decoding: value, as: UTF8.self))\" is not a number, expected one for the number field \"\(mapping.fields[index].slug)\""
                    )
                }
            } else if plainTextFields[index] && value.count <= 255 {
                // Most values: no more characters than bytes, so within any limit.
                if !JSONBytes.appendString(value, to: &out) { return invalidEncoding(column, reject) }
            } else {
                let mapped = mapping.fields[index]
                guard JSONBytes.utf8Valid(value) else { return invalidEncoding(column, reject) }
                let text = String(decoding: value, as: UTF8.self)
                switch FieldValue.convert(text, kind: mapped.kind, slug: mapping.fields[index].slug) {
                case nil:
                    JSONBytes.appendString(text, to: &out)
                case .longText:
                    JSONBytes.appendString(text, to: &out)
                    longTexts += 1
                case .json(let json):
                    out.append(contentsOf: json)
                case .invalid(let message):
                    return reject(.invalidFieldValue, column, message)
                }
            }
        }
        if let added {
            if !first { out.append(UInt8(ascii: ",")) }
            out += added
        }
        JSONBytes.appendRaw("}}", to: &out)
        return nil
    }

    /// A number written with thousands separators, as plain number text.
    private func groupedNumber(_ value: UnsafeRawBufferPointer) -> String? {
        guard value.contains(where: { $0 == 0x20 || $0 == 0x27 || $0 >= 0x80 || $0 == 0x2C || $0 == 0x2E }) else {
            return nil
        }
        let decimalComma: Bool? =
            mapping.alternateSeparator != nil ? nil : mapping.decimalSeparator == UInt8(ascii: ",")
        guard
            let plain = FieldValue.groupedNumber(
                String(decoding: value, as: UTF8.self), decimalComma: decimalComma,
                loneCommaIsDecimal: mapping.alternateSeparator != nil),
            case .success = Array(plain.utf8).withUnsafeBytes({ NumberText.parse($0) })
        else { return nil }
        return plain
    }

    /// What exports write for a missing value: `\N` (MySQL, PostgreSQL), `NULL`, `NA`, `N/A`.
    static func isNullMarker(_ value: UnsafeRawBufferPointer) -> Bool {
        let text = CoordinateText.trimmed(value)
        guard text.count <= 4 else { return false }
        let lower = text.map { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 }
        return lower == Array("\\n".utf8) || lower == Array("null".utf8) || lower == Array("na".utf8)
            || lower == Array("n/a".utf8)
    }

    private func invalidEncoding(_ column: Int, _ reject: (RejectCode, Int, String) -> Rejection) -> Rejection {
        reject(.invalidEncoding, column, "the value is not valid UTF-8, expected UTF-8 text")
    }
}

extension PropertyMapping {
    /// Parses a label setting: a column name, or a template where `{column}` stands for a
    /// column's value and `{{`/`}}` for literal braces. `key` names the setting in errors (the
    /// geocoder's address is such a template too).
    public static func labelParts(_ setting: String, header: [String], key: String = "properties.label") -> Result<
        [LabelPart], ImportError
    > {
        guard setting.contains("{") else {
            guard let column = header.firstIndex(of: setting) else {
                return .failure(
                    ImportError(
                        .config,
                        "\(key) names the column \"\(setting)\", which the input does not have; its columns are: \(header.joined(separator: ", "))"
                    ))
            }
            return .success([.column(column)])
        }
        var parts: [LabelPart] = []
        var literal = ""
        var rest = Substring(setting)
        while let character = rest.first {
            rest = rest.dropFirst()
            if character == "{" && rest.first == "{" || character == "}" && rest.first == "}" {
                literal.append(character)
                rest = rest.dropFirst()
            } else if character == "{" {
                guard let close = rest.firstIndex(of: "}") else {
                    return .failure(ImportError(.config, "\(key) has a \"{\" without its closing \"}\""))
                }
                let name = String(rest[..<close])
                guard let column = header.firstIndex(of: name) else {
                    return .failure(
                        ImportError(
                            .config,
                            "\(key) uses the column \"{\(name)}\", which the input does not have; its columns are: \(header.joined(separator: ", "))"
                        ))
                }
                if !literal.isEmpty { parts.append(.literal(literal)) }
                literal = ""
                parts.append(.column(column))
                rest = rest[rest.index(after: close)...]
            } else {
                literal.append(character)
            }
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        return .success(parts)
    }
}
