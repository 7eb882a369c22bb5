/// Writing JSON straight into byte buffers: the hot path builds every feature this way, with no
/// `String` per field and no `JSONEncoder`.
enum JSONBytes {
    /// Appends `bytes` as a JSON string literal (quotes included). Returns false, appending
    /// nothing, when `bytes` is not valid UTF-8.
    @inline(__always)
    static func appendString(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) -> Bool {
        let mark = out.count
        out.append(UInt8(ascii: "\""))
        guard appendEscaped(bytes, to: &out) else {
            out.removeSubrange(mark...)
            return false
        }
        out.append(UInt8(ascii: "\""))
        return true
    }

    /// Appends a Swift string as a JSON string literal.
    static func appendString(_ string: String, to out: inout [UInt8]) {
        var string = string
        _ = string.withUTF8 { appendString(UnsafeRawBufferPointer($0), to: &out) }
    }

    /// Appends ASCII text as is.
    @inline(__always)
    static func appendRaw(_ text: StaticString, to out: inout [UInt8]) {
        out.appendBytes(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Appends the escaped body of a JSON string; false when `bytes` is not valid UTF-8.
    @inline(__always)
    static func appendEscaped(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) -> Bool {
        let count = bytes.count
        var runStart = 0
        var i = 0
        while i < count {
            let byte = bytes[i]
            if byte >= 0x20 && byte != 0x22 && byte != 0x5C && byte < 0x80 {
                i += 1
                continue
            }
            if byte >= 0x80 {
                let length = utf8SequenceLength(bytes, at: i)
                if length == 0 { return false }
                i += length
                continue
            }
            if i > runStart { out.appendBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<i])) }
            switch byte {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
            default:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            }
            i += 1
            runStart = i
        }
        if count > runStart { out.appendBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<count])) }
        return true
    }

    /// Whether `bytes` are well-formed UTF-8.
    static func utf8Valid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        while index < bytes.count {
            if bytes[index] < 0x80 {
                index += 1
                continue
            }
            let length = utf8SequenceLength(bytes, at: index)
            if length == 0 { return false }
            index += length
        }
        return true
    }

    /// Length of the well-formed UTF-8 sequence starting at `i`, or 0 when it is not one
    /// (overlong forms, surrogates and values past U+10FFFF are not well formed).
    @inline(__always)
    static func utf8SequenceLength(_ bytes: UnsafeRawBufferPointer, at i: Int) -> Int {
        let count = bytes.count
        let lead = bytes[i]
        @inline(__always) func continuation(_ k: Int) -> Bool { k < count && bytes[k] & 0xC0 == 0x80 }
        switch lead {
        case 0xC2...0xDF:
            return continuation(i + 1) ? 2 : 0
        case 0xE0...0xEF:
            guard continuation(i + 1), continuation(i + 2) else { return 0 }
            let second = bytes[i + 1]
            if lead == 0xE0 && second < 0xA0 { return 0 }
            if lead == 0xED && second >= 0xA0 { return 0 }
            return 3
        case 0xF0...0xF4:
            guard continuation(i + 1), continuation(i + 2), continuation(i + 3) else { return 0 }
            let second = bytes[i + 1]
            if lead == 0xF0 && second < 0x90 { return 0 }
            if lead == 0xF4 && second >= 0x90 { return 0 }
            return 4
        default:
            return 0
        }
    }
}
