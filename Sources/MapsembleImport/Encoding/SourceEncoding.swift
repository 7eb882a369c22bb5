/// The text encoding of an input file. Everything after the reader works in UTF-8: other
/// encodings are transcoded as the bytes are read (`Transcoder`).
public enum SourceEncoding: String, Sendable, CaseIterable {
    case utf8 = "utf-8"
    case utf16LE = "utf-16le"
    case utf16BE = "utf-16be"
    case windows1252 = "windows-1252"
    case latin1 = "iso-8859-1"

    /// A byte that is never part of UTF-8: written in place of a byte (or code unit) the encoding
    /// does not define, so the row is rejected as `invalid_encoding` where the value is used,
    /// instead of carrying a replacement character.
    static let invalidMarker: UInt8 = 0xFF

    /// `source.encoding` as written in pipeline.yml (`auto` is nil).
    public init?(setting: String) {
        switch String(setting.lowercased().map { $0 == "_" ? "-" : $0 }) {
        case "utf-8", "utf8": self = .utf8
        case "utf-16le", "utf16le": self = .utf16LE
        case "utf-16be", "utf16be": self = .utf16BE
        case "windows-1252", "cp1252", "win-1252": self = .windows1252
        case "iso-8859-1", "latin-1", "latin1", "iso8859-1": self = .latin1
        default: return nil
        }
    }

    /// The encoding a file's first bytes show: a byte-order mark; else UTF-16 by its zero bytes;
    /// else UTF-8 when the bytes are well-formed UTF-8 (a sequence cut by the end of `head` is not
    /// evidence against it); else Windows-1252, the encoding of Excel's "CSV" on Western systems
    /// (a superset of ISO-8859-1 for text).
    public static func detect(_ head: UnsafeRawBufferPointer) -> SourceEncoding {
        if head.starts(with: [0xEF, 0xBB, 0xBF]) { return .utf8 }
        if head.starts(with: [0xFF, 0xFE]) { return .utf16LE }
        if head.starts(with: [0xFE, 0xFF]) { return .utf16BE }
        if head.count >= 4 {
            // ASCII text in UTF-16 has a zero in every other byte.
            var evenZeros = 0
            var oddZeros = 0
            for index in 0..<(head.count & ~1) where head[index] == 0 {
                if index & 1 == 0 { evenZeros += 1 } else { oddZeros += 1 }
            }
            let pairs = head.count / 2
            if oddZeros * 10 >= pairs * 3 && evenZeros * 10 < pairs { return .utf16LE }
            if evenZeros * 10 >= pairs * 3 && oddZeros * 10 < pairs { return .utf16BE }
        }
        var index = 0
        while index < head.count {
            if head[index] < 0x80 {
                index += 1
                continue
            }
            let length = JSONBytes.utf8SequenceLength(head, at: index)
            if length == 0 { return head.count - index < 4 ? .utf8 : .windows1252 }
            index += length
        }
        return .utf8
    }

    /// Length of the byte-order mark at the start of `head` for this encoding, 0 when none.
    func byteOrderMarkLength(_ head: UnsafeRawBufferPointer) -> Int {
        switch self {
        case .utf8: return head.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        case .utf16LE: return head.starts(with: [0xFF, 0xFE]) ? 2 : 0
        case .utf16BE: return head.starts(with: [0xFE, 0xFF]) ? 2 : 0
        case .windows1252, .latin1: return 0
        }
    }
}

/// Turns bytes of a `SourceEncoding` into UTF-8, a read at a time: a UTF-16 code unit or
/// surrogate pair cut by the end of a read is completed by the next.
struct Transcoder {
    let encoding: SourceEncoding
    /// A UTF-16 byte waiting for its partner, and a high surrogate waiting for its low one.
    private var pendingByte: UInt8?
    private var pendingHigh: UInt16?

    init(_ encoding: SourceEncoding) { self.encoding = encoding }

    /// The most UTF-8 bytes `count` input bytes can become.
    static func maxOutput(_ count: Int) -> Int { count * 3 + 8 }

    /// Transcodes `input` into `out` (room for `maxOutput(input.count)` bytes); returns the bytes
    /// written. With `final`, a dangling half code unit or surrogate is written as invalid.
    mutating func transcode(_ input: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>, final: Bool)
        -> Int
    {
        var written = 0
        @inline(__always) func put(_ byte: UInt8) {
            out[written] = byte
            written += 1
        }
        @inline(__always) func scalar(_ value: UInt32) {
            switch value {
            case 0..<0x80:
                put(UInt8(value))
            case 0x80..<0x800:
                put(UInt8(0xC0 | (value >> 6)))
                put(UInt8(0x80 | (value & 0x3F)))
            case 0x800..<0x10000:
                put(UInt8(0xE0 | (value >> 12)))
                put(UInt8(0x80 | ((value >> 6) & 0x3F)))
                put(UInt8(0x80 | (value & 0x3F)))
            default:
                put(UInt8(0xF0 | (value >> 18)))
                put(UInt8(0x80 | ((value >> 12) & 0x3F)))
                put(UInt8(0x80 | ((value >> 6) & 0x3F)))
                put(UInt8(0x80 | (value & 0x3F)))
            }
        }
        switch encoding {
        case .utf8:
            if let base = input.baseAddress {
                out.update(from: base.assumingMemoryBound(to: UInt8.self), count: input.count)
            }
            written = input.count
        case .latin1:
            for byte in input { scalar(UInt32(byte)) }
        case .windows1252:
            for byte in input {
                if byte < 0x80 || byte >= 0xA0 {
                    scalar(UInt32(byte))
                } else {
                    let value = Self.windows1252High[Int(byte - 0x80)]
                    if value == 0 { put(SourceEncoding.invalidMarker) } else { scalar(UInt32(value)) }
                }
            }
        case .utf16LE, .utf16BE:
            let littleEndian = encoding == .utf16LE
            var index = 0
            func unit(_ first: UInt8, _ second: UInt8) -> UInt16 {
                littleEndian ? UInt16(first) | UInt16(second) << 8 : UInt16(first) << 8 | UInt16(second)
            }
            func take(_ unit: UInt16) {
                if let high = pendingHigh {
                    pendingHigh = nil
                    if unit >= 0xDC00 && unit < 0xE000 {
                        scalar(0x10000 + (UInt32(high - 0xD800) << 10) + UInt32(unit - 0xDC00))
                        return
                    }
                    put(SourceEncoding.invalidMarker)
                }
                switch unit {
                case 0xD800..<0xDC00: pendingHigh = unit
                case 0xDC00..<0xE000: put(SourceEncoding.invalidMarker)
                default: scalar(UInt32(unit))
                }
            }
            if let first = pendingByte, input.count > 0 {
                pendingByte = nil
                take(unit(first, input[0]))
                index = 1
            }
            while index + 1 < input.count {
                take(unit(input[index], input[index + 1]))
                index += 2
            }
            if index < input.count { pendingByte = input[index] }
            if final {
                if pendingByte != nil || pendingHigh != nil { put(SourceEncoding.invalidMarker) }
                pendingByte = nil
                pendingHigh = nil
            }
        }
        return written
    }

    /// Windows-1252 bytes 0x80–0x9F as Unicode scalars; 0 where the code page defines none.
    static let windows1252High: [UInt16] = [
        0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,
        0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A,
        0x0153, 0, 0x017E, 0x0178,
    ]
}
