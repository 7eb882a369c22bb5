import Foundation

/// How a mapped field's value is checked and written, from the map's field type (pre-flight) or
/// pipeline.yml's `type`. Numbers stay on the transformer's fast path (`Field.isNumber`).
public enum FieldKind: Sendable, Equatable {
    /// Text as it is; `text` fields longer than 255 characters are counted (the server cuts them).
    case text(limited: Bool)
    /// ISO 8601 as is, or one of `formats` (`DD.MM.YYYY`, `MM/DD/YYYY hh:mm`), sent as ISO 8601.
    case date(formats: [String])
    /// An http(s) URL.
    case image
    /// An option key or label (case-insensitive), sent as the key; with `multiple`, several
    /// separated by `separator`. No options known (no map read): sent as written.
    case select(options: [SelectOption], multiple: Bool, separator: String)

    public struct SelectOption: Sendable, Equatable {
        public var key: String
        public var label: String
        public init(key: String, label: String) {
            self.key = key
            self.label = label
        }
    }

    /// The kind for a Mapsemble field type.
    public static func from(
        type: String, formats: [String] = [], separator: String = ",", options: [SelectOption] = []
    ) -> FieldKind {
        switch type {
        case "date": .date(formats: formats)
        case "image": .image
        case "single_select": .select(options: options, multiple: false, separator: separator)
        case "multi_select": .select(options: options, multiple: true, separator: separator)
        case "multiline_text": .text(limited: false)
        default: .text(limited: true)
        }
    }
}

/// Values of typed fields, checked and written as JSON.
enum FieldValue {
    enum Outcome {
        /// The JSON to write.
        case json([UInt8])
        /// Written as a string, and counted: longer than `text` fields keep.
        case longText
        case invalid(String)
    }

    /// The value for `kind`; nil means "write the text as it is".
    static func convert(_ text: String, kind: FieldKind, slug: String) -> Outcome? {
        let trimmed = text.trimmingSpaces
        switch kind {
        case .text(let limited):
            return limited && text.unicodeScalars.count > 255 ? .longText : nil
        case .date(let formats):
            if trimmed.isEmpty { return .json(Array("null".utf8)) }
            if let iso = isoDate(trimmed) { return .json(quoted(iso)) }
            for format in formats {
                if let iso = date(trimmed, format: format) { return .json(quoted(iso)) }
            }
            let accepted = (["ISO 8601 (YYYY-MM-DD)"] + formats).joined(separator: ", ")
            return .invalid("\"\(text)\" is not a date, expected one for the date field \"\(slug)\" as \(accepted)")
        case .image:
            if trimmed.isEmpty { return .json(Array("null".utf8)) }
            let lower = trimmed.lowercased()
            guard lower.hasPrefix("https://") || lower.hasPrefix("http://"), !trimmed.contains(" "),
                trimmed.count > 8
            else {
                return .invalid("\"\(text)\" is not a URL, expected an http(s) address for the image field \"\(slug)\"")
            }
            return .json(quoted(trimmed))
        case .select(let options, let multiple, let separator):
            if trimmed.isEmpty { return .json(Array(multiple ? "[]".utf8 : "null".utf8)) }
            let values =
                multiple
                ? trimmed.components(separatedBy: separator).map(\.trimmingSpaces).filter { !$0.isEmpty } : [trimmed]
            var keys: [String] = []
            for value in values {
                if options.isEmpty {
                    keys.append(value)
                    continue
                }
                let lower = value.lowercased()
                guard
                    let option = options.first(where: { $0.key.lowercased() == lower || $0.label.lowercased() == lower }
                    )
                else {
                    let allowed = options.map { $0.label == $0.key ? $0.key : "\($0.key) (\($0.label))" }
                    return .invalid(
                        "\"\(value)\" is not an option of the field \"\(slug)\"; its options are: \(allowed.joined(separator: ", "))"
                    )
                }
                keys.append(option.key)
            }
            if !multiple { return .json(quoted(keys[0])) }
            var out: [UInt8] = [UInt8(ascii: "[")]
            for (index, key) in keys.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out += quoted(key)
            }
            out.append(UInt8(ascii: "]"))
            return .json(out)
        }
    }

    /// Numbers written with thousands separators: `1 234,5`, `1.234,5`, `1,234.5`, `1'234.5`.
    /// With `decimalComma` nil the last of `.` and `,` is the decimal separator when both appear;
    /// when only commas appear, one comma is decimal if `loneCommaIsDecimal`, several are groups.
    /// Returns the plain number text (`1234.5`), or nil.
    static func groupedNumber(_ text: String, decimalComma: Bool?, loneCommaIsDecimal: Bool) -> String? {
        var body = text.trimmingSpaces
        var sign = ""
        if body.hasPrefix("-") || body.hasPrefix("+") {
            sign = body.hasPrefix("-") ? "-" : ""
            body.removeFirst()
        }
        let groupingSpaces: Set<Character> = [" ", "\u{00A0}", "\u{202F}", "'", "’"]
        body.removeAll { groupingSpaces.contains($0) }
        let comma =
            decimalComma
            ?? {
                guard let lastComma = body.lastIndex(of: ",") else { return false }
                if let lastPoint = body.lastIndex(of: ".") { return lastComma > lastPoint }
                return body.filter { $0 == "," }.count == 1 && loneCommaIsDecimal
            }()
        let decimal: Character = comma ? "," : "."
        let group: Character = comma ? "." : ","
        let parts = body.split(separator: decimal, omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = parts.first else { return nil }
        let groups = whole.split(separator: group, omittingEmptySubsequences: false)
        // Thousands groups: 1 to 3 digits first, then exactly 3.
        guard let head = groups.first, (1...3).contains(head.count) || groups.count == 1,
            groups.dropFirst().allSatisfy({ $0.count == 3 }),
            groups.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) })
        else { return nil }
        var result = sign + groups.joined()
        if parts.count == 2 {
            let fraction = parts[1]
            guard !fraction.isEmpty, fraction.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            result += "." + fraction
        }
        return result
    }

    // MARK: Dates

    /// `YYYY-MM-DD`, optionally `Thh:mm[:ss[.fff]]` and a zone (`Z`, `±hh:mm`), checked and kept.
    static func isoDate(_ text: String) -> String? {
        let scalars = Array(text.utf8)
        guard scalars.count >= 10, let year = digits(scalars, 0, 4), scalars[4] == UInt8(ascii: "-"),
            let month = digits(scalars, 5, 2), scalars[7] == UInt8(ascii: "-"), let day = digits(scalars, 8, 2),
            valid(year, month, day)
        else { return nil }
        if scalars.count == 10 { return text }
        guard scalars[10] == UInt8(ascii: "T") || scalars[10] == 0x20, scalars.count >= 16,
            let hour = digits(scalars, 11, 2), scalars[13] == UInt8(ascii: ":"), let minute = digits(scalars, 14, 2),
            hour < 24, minute < 60
        else { return nil }
        var rest = scalars[16...]
        if rest.first == UInt8(ascii: ":") {
            guard rest.count >= 3, let second = digits(Array(rest), 1, 2), second < 61 else { return nil }
            rest = rest.dropFirst(3)
            if rest.first == UInt8(ascii: ".") {
                rest = rest.dropFirst()
                guard let end = rest.firstIndex(where: { $0 &- 0x30 >= 10 }) ?? Optional(rest.endIndex),
                    end > rest.startIndex
                else { return nil }
                rest = rest[end...]
            }
        }
        let zone = String(decoding: rest, as: UTF8.self)
        guard zone.isEmpty || zone == "Z" || isOffset(zone) else { return nil }
        var iso = text
        if scalars[10] == 0x20 { iso = String(text.prefix(10)) + "T" + String(text.dropFirst(11)) }
        return iso
    }

    /// A date in `format` (tokens `YYYY`, `YY`, `MM`, `DD`, `hh`, `mm`, `ss`; anything else is
    /// literal), as ISO 8601. Day, month and hour may be written with one digit.
    static func date(_ text: String, format: String) -> String? {
        let value = Array(text.utf8)
        let pattern = Array(format.utf8)
        let tokens: [(name: [UInt8], width: Int)] = ["YYYY", "YY", "MM", "DD", "hh", "mm", "ss"].map {
            (Array($0.utf8), $0 == "YYYY" ? 4 : 2)
        }
        var parts: [String: Int] = [:]
        var i = 0
        var p = 0
        while p < pattern.count {
            if let token = tokens.first(where: {
                p + $0.name.count <= pattern.count && Array(pattern[p..<(p + $0.name.count)]) == $0.name
            }) {
                var end = i
                while end < value.count && end - i < token.width && value[end] &- 0x30 < 10 { end += 1 }
                guard end > i, token.width != 4 || end - i == 4 else { return nil }
                parts[String(decoding: token.name, as: UTF8.self)] = Int(
                    String(decoding: value[i..<end], as: UTF8.self))
                i = end
                p += token.name.count
            } else {
                guard i < value.count, value[i] == pattern[p] else { return nil }
                i += 1
                p += 1
            }
        }
        let year = parts["YYYY"] ?? parts["YY"].map { $0 < 70 ? 2000 + $0 : 1900 + $0 } ?? 0
        guard i == value.count, let month = parts["MM"], let day = parts["DD"], valid(year, month, day) else {
            return nil
        }
        let date = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
        guard let hour = parts["hh"] else { return date }
        let minute = parts["mm"] ?? 0
        let second = parts["ss"] ?? 0
        guard hour < 24, minute < 60, second < 61 else { return nil }
        return date + "T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))"
    }

    private static func digits(_ bytes: [UInt8], _ start: Int, _ count: Int) -> Int? {
        guard start + count <= bytes.count else { return nil }
        var value = 0
        for byte in bytes[start..<(start + count)] {
            guard byte &- 0x30 < 10 else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value
    }

    private static func valid(_ year: Int, _ month: Int, _ day: Int) -> Bool {
        guard (1...12).contains(month), day >= 1, year >= 1 else { return false }
        let days = [
            31, year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
        ]
        return day <= days[month - 1]
    }

    private static func isOffset(_ zone: String) -> Bool {
        let bytes = Array(zone.utf8)
        guard bytes.count == 6, bytes[0] == UInt8(ascii: "+") || bytes[0] == UInt8(ascii: "-"),
            digits(bytes, 1, 2) != nil, bytes[3] == UInt8(ascii: ":"), digits(bytes, 4, 2) != nil
        else { return false }
        return true
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }

    private static func quoted(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        JSONBytes.appendString(text, to: &out)
        return out
    }
}
