/// A streaming scanner of the XML in a workbook: fed chunks as they are decompressed, it hands
/// out start tags (local name and raw attributes), end tags and text, as byte slices that live
/// for the duration of the call. Enough XML for SpreadsheetML (no DTDs); a token cut by a chunk
/// boundary waits for the next chunk, so memory is one chunk plus the longest token.
struct XMLScanner {
    enum Event {
        /// A start tag: local name (prefix dropped), the raw attribute text, and whether it closes itself.
        case start(name: UnsafeRawBufferPointer, attributes: UnsafeRawBufferPointer, selfClosing: Bool)
        case end(name: UnsafeRawBufferPointer)
        /// Character data, still escaped (`XMLText.appendDecoded`); CDATA comes unescaped, with `raw`.
        case text(UnsafeRawBufferPointer, raw: Bool)
    }

    private var buffer: [UInt8] = []
    private var position = 0

    /// Scans `chunk` after what was left of the previous one.
    mutating func feed(_ chunk: UnsafeRawBufferPointer, _ handle: (Event) throws -> Void) throws {
        if position > 0 {
            buffer.removeSubrange(0..<position)
            position = 0
        }
        buffer.appendBytes(chunk)
        try buffer.withUnsafeBytes { bytes in
            var index = 0
            let count = bytes.count
            while index < count {
                if bytes[index] != UInt8(ascii: "<") {
                    var end = index
                    while end < count && bytes[end] != UInt8(ascii: "<") { end += 1 }
                    // Text runs to the next tag; at the end of the chunk it may go on in the next.
                    if end == count { break }
                    try handle(.text(UnsafeRawBufferPointer(rebasing: bytes[index..<end]), raw: false))
                    index = end
                    continue
                }
                guard let close = Self.tagEnd(bytes, from: index) else { break }
                try Self.token(UnsafeRawBufferPointer(rebasing: bytes[index..<close]), handle)
                index = close
            }
            position = index
        }
    }

    /// Where the markup starting at `start` (a `<`) ends, one past its `>`; nil when it goes on in
    /// the next chunk.
    private static func tagEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        let count = bytes.count
        func find(_ pattern: [UInt8], from: Int) -> Int? {
            var index = from
            while index + pattern.count <= count {
                if bytes[index] == pattern[0] && (1..<pattern.count).allSatisfy({ bytes[index + $0] == pattern[$0] }) {
                    return index + pattern.count
                }
                index += 1
            }
            return nil
        }
        if start + 1 < count && bytes[start + 1] == UInt8(ascii: "!") {
            if start + 3 < count && bytes[start + 2] == UInt8(ascii: "-") {
                return find(Array("-->".utf8), from: start + 4)
            }
            if start + 8 < count && bytes[start + 2] == UInt8(ascii: "[") {
                return find(Array("]]>".utf8), from: start + 9)
            }
            if start + 8 >= count { return nil }
        }
        var index = start + 1
        var quote: UInt8 = 0
        while index < count {
            let byte = bytes[index]
            if quote != 0 {
                if byte == quote { quote = 0 }
            } else if byte == 0x22 || byte == 0x27 {
                quote = byte
            } else if byte == UInt8(ascii: ">") {
                return index + 1
            }
            index += 1
        }
        return nil
    }

    private static func token(_ tag: UnsafeRawBufferPointer, _ handle: (Event) throws -> Void) throws {
        let second = tag.count > 1 ? tag[1] : 0
        if second == UInt8(ascii: "?") { return }
        if second == UInt8(ascii: "!") {
            if tag.starts(with: Array("<![CDATA[".utf8)) {
                try handle(.text(UnsafeRawBufferPointer(rebasing: tag[9..<(tag.count - 3)]), raw: true))
            }
            return
        }
        let closing = second == UInt8(ascii: "/")
        var nameStart = closing ? 2 : 1
        var nameEnd = nameStart
        while nameEnd < tag.count {
            let byte = tag[nameEnd]
            if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == UInt8(ascii: ">")
                || byte == UInt8(ascii: "/")
            {
                break
            }
            if byte == UInt8(ascii: ":") { nameStart = nameEnd + 1 }
            nameEnd += 1
        }
        let name = UnsafeRawBufferPointer(rebasing: tag[nameStart..<nameEnd])
        if closing {
            try handle(.end(name: name))
            return
        }
        let selfClosing = tag.count >= 2 && tag[tag.count - 2] == UInt8(ascii: "/")
        let attributesEnd = tag.count - (selfClosing ? 2 : 1)
        try handle(
            .start(
                name: name,
                attributes: UnsafeRawBufferPointer(rebasing: tag[min(nameEnd, attributesEnd)..<attributesEnd]),
                selfClosing: selfClosing))
    }
}

/// Reading the pieces of a tag and of text.
enum XMLText {
    /// Calls `body` with each attribute's local name (prefix dropped) and raw value.
    static func forEachAttribute(
        _ attributes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void
    ) {
        var index = 0
        let count = attributes.count
        while index < count {
            let byte = attributes[index]
            if byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                index += 1
                continue
            }
            var keyStart = index
            while index < count && attributes[index] != UInt8(ascii: "=") {
                if attributes[index] == UInt8(ascii: ":") { keyStart = index + 1 }
                index += 1
            }
            let keyEnd = index
            index += 1
            guard index < count else { return }
            let quote = attributes[index]
            guard quote == 0x22 || quote == 0x27 else { return }
            let valueStart = index + 1
            var valueEnd = valueStart
            while valueEnd < count && attributes[valueEnd] != quote { valueEnd += 1 }
            body(
                UnsafeRawBufferPointer(rebasing: attributes[keyStart..<keyEnd]),
                UnsafeRawBufferPointer(rebasing: attributes[valueStart..<min(valueEnd, count)]))
            index = valueEnd + 1
        }
    }

    /// A non-negative decimal integer, read from bytes.
    static func integer(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty, bytes.count < 19 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// The raw value of attribute `name` (local name, prefix ignored) in a tag's attribute text.
    static func attribute(_ name: String, in attributes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let wanted = Array(name.utf8)
        var found: UnsafeRawBufferPointer?
        forEachAttribute(attributes) { key, value in
            if found == nil && key.elementsEqual(wanted) { found = value }
        }
        return found
    }

    /// The attribute as a string (entities decoded).
    static func attributeString(_ name: String, in attributes: UnsafeRawBufferPointer) -> String? {
        attribute(name, in: attributes).map { raw in
            var out: [UInt8] = []
            appendDecoded(raw, to: &out)
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// Whether `bytes` spell `name`.
    @inline(__always)
    static func equals(_ bytes: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        guard bytes.count == name.utf8CodeUnitCount else { return false }
        let pointer = name.utf8Start
        for index in 0..<bytes.count where bytes[index] != pointer[index] { return false }
        return true
    }

    /// Appends escaped XML text decoded: the five entities, character references, and with
    /// `ooxml` (an `.xlsx` part) OOXML's `_xHHHH_` escapes of characters XML cannot hold.
    static func appendDecoded(_ text: UnsafeRawBufferPointer, to out: inout [UInt8], ooxml: Bool = true) {
        var index = 0
        let count = text.count
        while index < count {
            let byte = text[index]
            if byte == UInt8(ascii: "&"),
                let semicolon = (index + 1..<min(count, index + 12)).first(where: {
                    text[$0] == UInt8(ascii: ";")
                })
            {
                let entity = String(
                    decoding: UnsafeRawBufferPointer(rebasing: text[(index + 1)..<semicolon]), as: UTF8.self)
                var scalar: Unicode.Scalar?
                switch entity {
                case "amp": scalar = "&"
                case "lt": scalar = "<"
                case "gt": scalar = ">"
                case "quot": scalar = "\""
                case "apos": scalar = "'"
                default:
                    if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                        scalar = UInt32(entity.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init)
                    } else if entity.hasPrefix("#") {
                        scalar = UInt32(entity.dropFirst()).flatMap(Unicode.Scalar.init)
                    }
                }
                if let scalar {
                    out.append(contentsOf: Array(String(scalar).utf8))
                    index = semicolon + 1
                    continue
                }
            }
            if ooxml && byte == UInt8(ascii: "_") && index + 6 < count && text[index + 1] == UInt8(ascii: "x")
                && text[index + 6] == UInt8(ascii: "_"),
                let value = UInt32(
                    String(decoding: UnsafeRawBufferPointer(rebasing: text[(index + 2)..<(index + 6)]), as: UTF8.self),
                    radix: 16),
                let scalar = Unicode.Scalar(value)
            {
                out.append(contentsOf: Array(String(scalar).utf8))
                index += 7
                continue
            }
            out.append(byte)
            index += 1
        }
    }
}
