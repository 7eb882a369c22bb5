/// How a row's address is put together for a geocoder: `geocode.address` (a column or a template
/// over columns, as `properties.label` is) or structured parts (street, postcode, city, state,
/// country), each a column or a template.
struct AddressQuery: Sendable {
    /// The parts a structured query can have, in the order they are written out.
    enum Part: String, Sendable, CaseIterable {
        case street, postcode, city, state, country
    }

    /// A free-form address, or nil when the parts are structured.
    let freeForm: [PropertyMapping.LabelPart]?
    let parts: [(part: Part, template: [PropertyMapping.LabelPart])]

    /// Reads the settings against the input's header.
    init(address: String?, parts settings: [String: String], header: [String]) throws {
        func template(_ setting: String, key: String) throws -> [PropertyMapping.LabelPart] {
            try PropertyMapping.labelParts(setting, header: header, key: key).get()
        }
        if let address {
            guard settings.isEmpty else {
                throw ImportError(
                    .config, "geocode.address and the structured parts (street, postcode, city, …) exclude each other")
            }
            freeForm = try template(address, key: "geocode.address")
            parts = []
        } else {
            guard !settings.isEmpty else {
                throw ImportError(
                    .config,
                    "geocode needs the address: geocode.address (a column or a template such as \"{Street}, {City}\") or its parts (street, postcode, city, state, country)"
                )
            }
            if let unknown = settings.keys.first(where: { Part(rawValue: $0) == nil }) {
                throw ImportError(
                    .config,
                    "geocode.\(unknown) is not an address part; the parts are \(Part.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            freeForm = nil
            parts = try Part.allCases.compactMap { part in
                try settings[part.rawValue].map { (part, try template($0, key: "geocode.\(part.rawValue)")) }
            }
        }
    }

    /// The address of record `record`, cleaned (`AddressText.cleaned`); nil when it has none
    /// (`missing_address`).
    func address(_ record: Int, of block: RecordBlock) -> Address? {
        func render(_ template: [PropertyMapping.LabelPart]) -> String {
            var text = ""
            for piece in template {
                switch piece {
                case .literal(let literal): text += literal
                case .column(let column): text += block.string(record, column)
                }
            }
            return AddressText.cleaned(text)
        }
        if let freeForm {
            let text = render(freeForm)
            return AddressText.hasWords(text) ? Address(freeForm: text) : nil
        }
        var values: [Part: String] = [:]
        for (part, template) in parts {
            let value = render(template)
            if AddressText.hasWords(value) { values[part] = value }
        }
        return values.isEmpty ? nil : Address(parts: values)
    }
}

/// An address as a geocoder is asked it: free-form text, or structured parts.
struct Address: Sendable, Hashable {
    var freeForm: String?
    var parts: [AddressQuery.Part: String] = [:]

    init(freeForm: String) { self.freeForm = freeForm }
    init(parts: [AddressQuery.Part: String]) { self.parts = parts }

    /// The address as one line, for messages and for providers that take free text only.
    var text: String {
        freeForm ?? AddressQuery.Part.allCases.compactMap { parts[$0] }.joined(separator: ", ")
    }

    /// What one distinct address is asked (and cached) under: the normalised text, parts named.
    var key: String {
        if let freeForm { return AddressText.normalised(freeForm) }
        return AddressQuery.Part.allCases.compactMap { part in
            parts[part].map { "\(part.rawValue)=\(AddressText.normalised($0))" }
        }.joined(separator: "|")
    }
}

/// Address text, cleaned for asking and normalised for comparing.
enum AddressText {
    /// As a geocoder is asked: runs of spaces and tabs made one space, and the separators left by
    /// empty columns removed (`"Main St 5, , Berlin"` → `"Main St 5, Berlin"`), trimmed.
    static func cleaned(_ text: String) -> String {
        var pieces: [String] = []
        for piece in text.split(separator: ",", omittingEmptySubsequences: false) {
            let words = piece.split(whereSeparator: { $0 == " " || $0 == "\t" || $0.isNewline })
            if !words.isEmpty { pieces.append(words.joined(separator: " ")) }
        }
        return pieces.joined(separator: ", ")
    }

    /// For comparing: case folded, punctuation as spaces, runs of spaces made one, trimmed. Two
    /// addresses written alike but for these ask the geocoder once. Case is folded through upper
    /// case, so that `STRASSE`, `Strasse` and `Straße` are one word (lower case alone keeps `ß`).
    static func normalised(_ text: String) -> String {
        // Most addresses are ASCII: folded byte by byte, as the general path would.
        if let ascii = asciiNormalised(text) { return ascii }
        var words: [String] = []
        var word = ""
        for character in text.uppercased().lowercased() {
            if character.isLetter || character.isNumber {
                word.append(character)
            } else if !word.isEmpty {
                words.append(word)
                word = ""
            }
        }
        if !word.isEmpty { words.append(word) }
        return words.joined(separator: " ")
    }

    /// `normalised` for ASCII text (letters and digits kept, lower case, anything else a
    /// separator); nil for text with other characters.
    private static func asciiNormalised(_ text: String) -> String? {
        var text = text
        return text.withUTF8 { bytes -> String? in
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count)
            var pendingSpace = false
            for byte in bytes {
                guard byte < 0x80 else { return nil }
                let isLetter = (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A
                if isLetter || (byte >= 0x30 && byte <= 0x39) {
                    if pendingSpace && !out.isEmpty { out.append(0x20) }
                    pendingSpace = false
                    out.append(isLetter ? byte | 0x20 : byte)
                } else {
                    pendingSpace = true
                }
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// Whether the text holds a letter or a digit (an address of separators only is none).
    static func hasWords(_ text: String) -> Bool {
        text.contains { $0.isLetter || $0.isNumber }
    }
}
