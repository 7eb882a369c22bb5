import Foundation

/// A field a map should have for a column the pipeline maps: what `maps create`, `fields add` and
/// `run --create-fields` send.
public struct PlannedField: Sendable, Equatable {
    public var slug: String
    /// A Mapsemble field type (`text`, `multiline_text`, `number`, `date`, `image`,
    /// `single_select`, `multi_select`).
    public var type: String
    /// The column's name: the label the field shows on Mapsemble.
    public var label: String
    /// Select fields: their options, each value as written (the label) under a slug (the key).
    public var options: [FieldKind.SelectOption] = []
    /// Why this type: `type: in pipeline.yml`, `every value a number`, ...
    public var reason: String

    /// The field as `POST /api/v1/maps` and `PATCH /api/v1/maps/{id}` take it.
    func json(weight: Int) -> [String: Any] {
        var field: [String: Any] = [
            "slug": slug, "type": type, "label": label, "weight": weight, "required": false,
        ]
        if type.hasSuffix("_select") {
            field["config"] = [
                "options": options.enumerated().map { ["key": $1.key, "label": $1.label, "weight": $0] }
            ]
        }
        return field
    }
}

/// What every value of one column looks like, over the whole file: the evidence a field's type
/// is chosen from.
struct ColumnEvidence {
    var filled = 0
    /// Plain numbers (`.` decimal point), and those of them that are codes (below).
    var numbers = 0
    var codes = 0
    /// Numbers with a decimal comma or thousands groups, which the import reads as numbers.
    var otherNumbers = 0
    /// Whether a lone comma is a decimal comma (the file is not comma-delimited).
    var decimalComma = false
    var dates = 0
    var imageURLs = 0
    var lineBreaks = 0
    var longest = 0
    /// Distinct values as written, in the order first seen; nil once there are more than
    /// `FieldPlanner.maxStatedOptions`.
    var distinct: [String]? = []
    private var seen = Set<String>()
    /// Distinct parts of the values split at the multi_select separator; nil past the limit.
    var parts: [String]? = []
    private var seenParts = Set<String>()
    /// Values holding more than one part.
    var multiValued = 0

    static let imageExtensions = [".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".avif", ".bmp"]

    mutating func add(_ raw: UnsafeRawBufferPointer, separator: String) {
        let text = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return }
        filled += 1
        longest = max(longest, text.count)
        let bytes = Array(text.utf8)
        if NumberText.parse(bytes, UInt8(ascii: ".")) != nil {
            numbers += 1
            // Codes, not quantities: a leading zero (`01234`), a `+` (`+4930…`), or more digits
            // than a double keeps (an id of 16 digits).
            let digits =
                bytes.first == UInt8(ascii: "-") || bytes.first == UInt8(ascii: "+") ? bytes.dropFirst() : bytes[...]
            let integerDigits = digits.prefix { $0 &- 0x30 < 10 }.count
            if bytes.first == UInt8(ascii: "+") || integerDigits > 15
                || (integerDigits > 1 && digits.first == UInt8(ascii: "0"))
            {
                codes += 1
            }
        } else if FieldValue.groupedNumber(text, decimalComma: nil, loneCommaIsDecimal: decimalComma) != nil {
            // 3,5 (a decimal comma) or 1,234.5 (groups): numbers the import reads too.
            otherNumbers += 1
        } else if FieldValue.isoDate(text) != nil {
            dates += 1
        }
        if text.contains(where: { $0 == "\n" || $0 == "\r" }) { lineBreaks += 1 }
        let lower = text.lowercased()
        if lower.hasPrefix("https://") || lower.hasPrefix("http://") {
            let path = lower.split(separator: "?", maxSplits: 1).first.map(String.init) ?? lower
            if Self.imageExtensions.contains(where: { path.hasSuffix($0) }) { imageURLs += 1 }
        }
        if distinct != nil, seen.insert(text).inserted {
            distinct?.append(text)
            if seen.count > FieldPlanner.maxStatedOptions { distinct = nil }
        }
        if parts != nil {
            let pieces = text.components(separatedBy: separator).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            if pieces.count > 1 { multiValued += 1 }
            for piece in pieces where seenParts.insert(piece).inserted {
                parts?.append(piece)
                if seenParts.count > FieldPlanner.maxStatedOptions { parts = nil }
            }
        }
    }
}

/// Chooses the fields a map needs for a pipeline: the type stated in pipeline.yml (`type:`),
/// else one read from every value of the column in the file (thresholds below, documented in
/// docs/cli.md under "Map setup and export").
public enum FieldPlanner {
    /// A column is read as a select when it has at most this many distinct values.
    public static let maxOptions = 20
    /// A field stated as a select in pipeline.yml gets at most this many options from the values.
    public static let maxStatedOptions = 500
    /// A column is a select only when it holds at least this many values…
    public static let minSelectValues = 10
    /// …each distinct value used at least twice on average, and none longer than this.
    public static let maxOptionLength = 60

    /// Reads every row of the pipeline's input once and gathers the evidence for `columns`
    /// (header indexes), split at `separators` (per column) for multi_select.
    static func evidence(
        config: PipelineConfig, columns: [Int], separators: [Int: String] = [:]
    ) throws -> [Int: ColumnEvidence] {
        let plan = try PipelinePlan(config: config)
        var found: [Int: ColumnEvidence] = [:]
        var empty = ColumnEvidence()
        empty.decimalComma = plan.readerOptions.delimiter != UInt8(ascii: ",") && config.source.decimal != "point"
        for column in columns { found[column] = empty }
        while let block = try plan.reader.nextBlock() {
            block.bytes.withUnsafeBytes { bytes in
                for record in 0..<block.count {
                    for column in columns {
                        let field = UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, column)])
                        found[column]?.add(field, separator: separators[column] ?? ",")
                    }
                }
            }
        }
        return found
    }

    /// The type for a column's values when pipeline.yml states none, and why.
    static func type(_ evidence: ColumnEvidence) -> (type: String, reason: String) {
        let filled = evidence.filled
        guard filled > 0 else { return ("text", "no values") }
        if evidence.numbers + evidence.otherNumbers == filled && evidence.codes == 0 {
            return ("number", "every value a number")
        }
        if evidence.dates == filled { return ("date", "every value an ISO 8601 date") }
        if evidence.imageURLs == filled { return ("image", "every value an image URL") }
        if evidence.lineBreaks > 0 { return ("multiline_text", "values span lines") }
        if evidence.longest > 255 { return ("multiline_text", "values longer than a text field's 255 characters") }
        let repeats = filled >= minSelectValues && evidence.longest <= maxOptionLength
        // Several values in one cell in a tenth of the rows at least: one "Paris, France" is text.
        if repeats, evidence.multiValued * 10 >= filled, let parts = evidence.parts, parts.count <= maxOptions,
            parts.count * 2 <= filled
        {
            return ("multi_select", "\(parts.count) distinct values, several in one cell")
        }
        if repeats, let distinct = evidence.distinct, distinct.count <= maxOptions, distinct.count * 2 <= filled {
            return ("single_select", "\(distinct.count) distinct values in \(filled) rows")
        }
        return ("text", "text")
    }

    /// Option keys as Mapsemble makes slugs (lower case letters, digits, `_`), unique.
    static func options(_ values: [String]) -> [FieldKind.SelectOption] {
        var keys = SlugSet()
        return values.map {
            FieldKind.SelectOption(key: keys.unique(InspectReport.slug($0), empty: "option"), label: $0)
        }
    }

    /// The fields for `mapped` (pipeline fields), typed from pipeline.yml or from `evidence`.
    static func plan(
        _ mapped: [PipelineConfig.Field], header: [String], evidence: [Int: ColumnEvidence]
    ) -> [PlannedField] {
        mapped.map { field in
            let column = header.firstIndex(of: field.column)
            let found = column.flatMap { evidence[$0] } ?? ColumnEvidence()
            let stated = field.typeStated ? field.type : nil
            let (type, reasonFound) = stated.map { ($0, "type: in pipeline.yml") } ?? Self.type(found)
            var reason = reasonFound
            var options: [FieldKind.SelectOption] = []
            if type.hasSuffix("_select") {
                if let values = type == "single_select" ? found.distinct : found.parts {
                    options = Self.options(values)
                } else {
                    reason += "; more than \(maxStatedOptions) distinct values: no options made"
                }
            }
            return PlannedField(slug: field.slug, type: type, label: field.column, options: options, reason: reason)
        }
    }
}

/// Slugs handed out once each: a slug taken already gets `_2`, `_3`, … after it.
struct SlugSet {
    var taken: Set<String> = []

    mutating func unique(_ slug: String, empty: String = "field") -> String {
        let base = slug.isEmpty ? empty : slug
        var candidate = base
        var number = 2
        while taken.contains(candidate) {
            candidate = "\(base)_\(number)"
            number += 1
        }
        taken.insert(candidate)
        return candidate
    }
}
