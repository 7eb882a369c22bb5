/// How a coordinate was written; counted per run and reported in the summary.
public enum CoordinateNotation: String, Sendable, CaseIterable, Comparable {
    /// `50.94`
    case decimal
    /// `50,94`
    case decimalComma = "decimal_comma"
    /// Degrees, minutes, seconds: `51°53'00.9"N`, `51-53-00.8954N`, `51 53 0.9 N`.
    case dms
    /// Degrees and decimal minutes: `51°53.015'N`, `N 51 53.015`.
    case ddm
    /// Decimal degrees with a hemisphere letter: `51.88N`, `W 0.12`.
    case decimalHemisphere = "decimal_hemisphere"
    /// ISO 6709 packed in one field: `+4230+00131/`, `+50.94+006.96/`.
    case iso6709 = "iso_6709"
    /// WKT in one field: `POINT(6.96 50.94)`.
    case wkt

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A coordinate read from text: its value, and (for plain decimals) the digits to write back as
/// they were, else written from the value.
struct Coordinate {
    var value: Double
    var notation: CoordinateNotation
    /// For plain decimals: the number and the bytes it was read from.
    var number: NumberText?
    var bytes: UnsafeRawBufferPointer
    /// `N`, `S`, `E` or `W` when the text carried one.
    var hemisphere: UInt8?

    func appendJSON(to out: inout [UInt8]) {
        if let number {
            number.appendJSON(from: bytes, to: &out)
        } else {
            CoordinateText.appendDegrees(value, to: &out)
        }
    }
}

/// Coordinates in the notations people write them in, read from bytes.
enum CoordinateText {
    /// Reads degrees written with minutes and seconds, minutes, or a hemisphere letter. Nil when
    /// the text is none of these.
    ///
    /// Accepted: an optional sign or a hemisphere letter (N, S, E, W) before or after; one to three
    /// numbers separated by `°`, `º`, `'`, `′`, `"`, `″`, `:`, `-`, `d`/`m`/`s` or spaces; minutes and
    /// seconds below 60; a decimal fraction on the last number only.
    static func sexagesimal(_ raw: UnsafeRawBufferPointer, separator: UInt8) -> Coordinate? {
        var bytes = trimmed(raw)
        guard !bytes.isEmpty else { return nil }
        var hemisphere: UInt8?
        if let first = bytes.first, let letter = hemisphereLetter(first) {
            hemisphere = letter
            bytes = trimmed(UnsafeRawBufferPointer(rebasing: bytes[1...]))
        } else if let last = bytes.last, let letter = hemisphereLetter(last),
            // A lower-case s or e right after a digit is a unit or a typo, not a hemisphere.
            last < 0x61 || last == UInt8(ascii: "n") || last == UInt8(ascii: "w") || bytes.count < 2
                || bytes[bytes.count - 2] == 0x20
        {
            hemisphere = letter
            bytes = trimmed(UnsafeRawBufferPointer(rebasing: bytes[..<(bytes.count - 1)]))
        }
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            bytes = UnsafeRawBufferPointer(rebasing: bytes[1...])
        }
        // Numbers and what separates them.
        var parts: [(value: Double, fraction: Bool)] = []
        var index = 0
        var sawSymbol = false
        while index < bytes.count {
            let start = index
            var fraction = false
            while index < bytes.count {
                let byte = bytes[index]
                if byte &- 0x30 < 10 {
                    index += 1
                } else if (byte == UInt8(ascii: ".") || byte == separator) && !fraction && index > start {
                    fraction = true
                    index += 1
                } else {
                    break
                }
            }
            guard index > start, bytes[index - 1] &- 0x30 < 10 else { return nil }
            let digits = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
            let point = digits.first { $0 &- 0x30 >= 10 } ?? UInt8(ascii: ".")
            guard case .success(let number) = NumberText.parse(digits, separator: point) else { return nil }
            parts.append((number.value, fraction))
            // Separators up to the next number.
            let separatorStart = index
            while index < bytes.count && bytes[index] &- 0x30 >= 10 {
                let length = symbolLength(bytes, at: index)
                guard length > 0 else { return nil }
                if length > 1 || bytes[index] != 0x20 { sawSymbol = true }
                index += length
            }
            if index == separatorStart && index < bytes.count { return nil }
        }
        guard (1...3).contains(parts.count), parts.dropLast().allSatisfy({ !$0.fraction }) else { return nil }
        if parts.count == 1 && hemisphere == nil && !sawSymbol { return nil }  // a plain number
        if parts.count > 1 && parts.dropFirst().contains(where: { $0.value >= 60 }) { return nil }
        var value = parts[0].value
        if parts.count > 1 { value += parts[1].value / 60 }
        if parts.count > 2 { value += parts[2].value / 3600 }
        if negative || hemisphere == UInt8(ascii: "S") || hemisphere == UInt8(ascii: "W") { value = -value }
        let notation: CoordinateNotation =
            switch parts.count {
            case 3: .dms
            case 2: .ddm
            default: hemisphere == nil ? .decimal : .decimalHemisphere
            }
        return Coordinate(value: value, notation: notation, number: nil, bytes: raw, hemisphere: hemisphere)
    }

    /// Splits a field holding both coordinates: WKT `POINT(lon lat)`; ISO 6709 `+DD.dd+DDD.dd/`
    /// (also `±DDMM[SS]` packed); else two numbers, latitude first, optionally in parentheses or
    /// brackets. Returns the latitude and longitude texts, or nil.
    ///
    /// The notation is decided from the whole value's shape, never from a leading sign: ISO 6709
    /// is a run of signs, digits and points with no separator (`-38.18-016.77/`), so
    /// `-38.18, -16.77` is a pair. The pair's separator, in this order: a semicolon; a comma
    /// followed by a space or tab (`-38,18, -16,77` has decimal commas); the only comma; the middle
    /// one of three commas (`52,5,13,4`); else the first run of spaces or tabs (`52,5 13,4`).
    static func splitPoint(_ raw: UnsafeRawBufferPointer) -> (
        latitude: UnsafeRawBufferPointer, longitude: UnsafeRawBufferPointer, notation: CoordinateNotation?
    )? {
        var bytes = trimmed(raw)
        guard !bytes.isEmpty else { return nil }
        // WKT
        if bytes.count > 7, bytes.prefix(5).map({ $0 | 0x20 }) == Array("point".utf8) {
            bytes = trimmed(UnsafeRawBufferPointer(rebasing: bytes[5...]))
            guard bytes.first == UInt8(ascii: "("), bytes.last == UInt8(ascii: ")") else { return nil }
            let inner = trimmed(UnsafeRawBufferPointer(rebasing: bytes[1..<(bytes.count - 1)]))
            guard let space = inner.firstIndex(where: { $0 == 0x20 }) else { return nil }
            let longitude = trimmed(UnsafeRawBufferPointer(rebasing: inner[..<space]))
            let latitude = trimmed(UnsafeRawBufferPointer(rebasing: inner[(space + 1)...]))
            return (latitude, longitude, .wkt)
        }
        if let (latitude, longitude) = iso6709Parts(bytes) { return (latitude, longitude, .iso6709) }
        if let first = bytes.first, let last = bytes.last,
            (first == UInt8(ascii: "(") && last == UInt8(ascii: ")"))
                || (first == UInt8(ascii: "[") && last == UInt8(ascii: "]"))
        {
            bytes = trimmed(UnsafeRawBufferPointer(rebasing: bytes[1..<(bytes.count - 1)]))
        }
        guard let cut = pairSeparator(bytes) else { return nil }
        let latitude = trimmed(UnsafeRawBufferPointer(rebasing: bytes[..<cut]))
        let longitude = trimmed(UnsafeRawBufferPointer(rebasing: bytes[(cut + 1)...]))
        guard !latitude.isEmpty, !longitude.isEmpty else { return nil }
        return (latitude, longitude, nil)
    }

    /// ISO 6709 packed in one value: a sign, digits (a point among them), a second sign, digits, an
    /// optional third signed part (an altitude, ignored) and an optional `/`; nothing else. Returns
    /// the latitude and longitude texts with their signs.
    private static func iso6709Parts(_ bytes: UnsafeRawBufferPointer) -> (
        UnsafeRawBufferPointer, UnsafeRawBufferPointer
    )? {
        var end = bytes.count
        if bytes.last == UInt8(ascii: "/") { end -= 1 }
        var signs: [Int] = []
        for index in 0..<end {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") {
                // A sign starts a part, which needs a digit after it.
                guard index + 1 < end, bytes[index + 1] &- 0x30 < 10, signs.count < 3 else { return nil }
                signs.append(index)
            } else if byte &- 0x30 >= 10 && byte != UInt8(ascii: ".") {
                return nil
            }
        }
        guard signs.count >= 2, signs[0] == 0 else { return nil }
        let longitudeEnd = signs.count > 2 ? signs[2] : end
        return (
            UnsafeRawBufferPointer(rebasing: bytes[0..<signs[1]]),
            UnsafeRawBufferPointer(rebasing: bytes[signs[1]..<longitudeEnd])
        )
    }

    /// Where a pair of numbers splits (see `splitPoint`), or nil when it holds no separator.
    private static func pairSeparator(_ bytes: UnsafeRawBufferPointer) -> Int? {
        if let semicolon = bytes.firstIndex(of: UInt8(ascii: ";")) { return semicolon }
        var commas: [Int] = []
        var commaBeforeSpace: [Int] = []
        var firstSpace: Int?
        for index in bytes.indices {
            switch bytes[index] {
            case UInt8(ascii: ","):
                commas.append(index)
                if index + 1 < bytes.count, bytes[index + 1] == 0x20 || bytes[index + 1] == 0x09 {
                    commaBeforeSpace.append(index)
                }
            case 0x20, 0x09:
                if firstSpace == nil { firstSpace = index }
            default: break
            }
        }
        if commaBeforeSpace.count == 1 { return commaBeforeSpace[0] }
        if commas.count == 1 { return commas[0] }
        if commas.count == 3 && firstSpace == nil { return commas[1] }
        return firstSpace
    }

    /// ISO 6709 packed degrees: `+DD.dd`, `+DDMM.m`, `+DDMMSS.s` (latitude, 2 degree digits) or
    /// `+DDD…` (longitude, 3 degree digits).
    static func iso6709(_ bytes: UnsafeRawBufferPointer, degreeDigits: Int) -> Coordinate? {
        guard let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return nil }
        let body = UnsafeRawBufferPointer(rebasing: bytes[1...])
        let integerDigits = body.firstIndex(of: UInt8(ascii: ".")) ?? body.count
        guard body.prefix(integerDigits).allSatisfy({ $0 &- 0x30 < 10 }),
            case .success(let number) = NumberText.parse(body)
        else { return nil }
        let whole = number.value
        var value: Double
        switch integerDigits - degreeDigits {
        case 0: value = whole
        case 2:
            let degrees = (whole / 100).rounded(.down)
            let minutes = whole - degrees * 100
            guard minutes < 60 else { return nil }
            value = degrees + minutes / 60
        case 4:
            let degrees = (whole / 10_000).rounded(.down)
            let minutes = ((whole - degrees * 10_000) / 100).rounded(.down)
            let seconds = whole - degrees * 10_000 - minutes * 100
            guard minutes < 60, seconds < 60 else { return nil }
            value = degrees + minutes / 60 + seconds / 3600
        default: return nil
        }
        if sign == UInt8(ascii: "-") { value = -value }
        return Coordinate(value: value, notation: .iso6709, number: nil, bytes: bytes, hemisphere: nil)
    }

    /// Degrees as JSON: seven decimals at most (about a centimetre), trailing zeros dropped.
    /// Digits written straight into `out` (divisions by the constant 10 only), no text made on
    /// the way.
    static func appendDegrees(_ value: Double, to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { text in
            guard let end = writeDegrees(value, into: text, at: 0) else {
                // Not degrees: the shortest exact text.
                appendShortest(value, to: &out)
                return
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: text[0..<end]))
        }
    }

    /// `longitude,latitude` (`appendDegrees` for each), in one append.
    static func appendDegrees(_ longitude: Double, _ latitude: Double, to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 48) { text in
            guard let comma = writeDegrees(longitude, into: text, at: 0),
                let end = writeDegrees(latitude, into: text, at: comma + 1)
            else {
                appendDegrees(longitude, to: &out)
                out.append(UInt8(ascii: ","))
                appendDegrees(latitude, to: &out)
                return
            }
            text[comma] = UInt8(ascii: ",")
            out.append(contentsOf: UnsafeBufferPointer(rebasing: text[0..<end]))
        }
    }

    /// Writes `appendDegrees`'s text of `value` at `start` (room for 20 bytes) and returns where
    /// it ends; nil when the value is too large to be degrees (or not finite).
    @inline(__always)
    private static func writeDegrees(_ value: Double, into text: UnsafeMutableBufferPointer<UInt8>, at start: Int)
        -> Int?
    {
        let magnitude = abs(value) * 10_000_000
        guard magnitude < 9e17 else { return nil }
        let scaled = UInt64(magnitude.rounded())
        var end = start
        if value < 0 && scaled != 0 {
            text[end] = UInt8(ascii: "-")
            end += 1
        }
        // The whole degrees: at most 11 digits below 9e17 / 1e7.
        var whole = scaled / 10_000_000
        var digits = 1
        var bound: UInt64 = 10
        while whole >= bound && digits < 11 {
            digits += 1
            bound &*= 10
        }
        for index in stride(from: end + digits - 1, through: end, by: -1) {
            text[index] = UInt8(truncatingIfNeeded: whole % 10) &+ 0x30
            whole /= 10
        }
        end += digits
        var fraction = scaled % 10_000_000
        guard fraction != 0 else { return end }
        // Seven decimals, the trailing zeros dropped.
        var places = 7
        while fraction % 10 == 0 {
            fraction /= 10
            places -= 1
        }
        text[end] = UInt8(ascii: ".")
        for index in stride(from: end + places, through: end + 1, by: -1) {
            text[index] = UInt8(truncatingIfNeeded: fraction % 10) &+ 0x30
            fraction /= 10
        }
        return end + 1 + places
    }

    /// The decimal digits of `value`.
    @inline(__always)
    static func appendDigits(_ value: UInt64, to out: inout [UInt8]) {
        if value < 10 {
            out.append(UInt8(truncatingIfNeeded: value) &+ 0x30)
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { text in
            var rest = value
            var start = 20
            while rest > 0 {
                start -= 1
                text[start] = UInt8(truncatingIfNeeded: rest % 10) &+ 0x30
                rest /= 10
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: text[start..<20]))
        }
    }

    /// A number as the shortest JSON text that reads back as the same value (the file's own
    /// digits, for a number read from text): `12.5`, `-0.000123`, `1e-09`.
    static func appendShortest(_ value: Double, to out: inout [UInt8]) {
        if value == value.rounded(), abs(value) < 1e15 {
            if value < 0 { out.append(UInt8(ascii: "-")) }
            appendDigits(UInt64(abs(value)), to: &out)
            return
        }
        out.append(contentsOf: value.description.utf8)
    }

    private static func hemisphereLetter(_ byte: UInt8) -> UInt8? {
        switch byte | 0x20 {
        case UInt8(ascii: "n"): UInt8(ascii: "N")
        case UInt8(ascii: "s"): UInt8(ascii: "S")
        case UInt8(ascii: "e"): UInt8(ascii: "E")
        case UInt8(ascii: "w"): UInt8(ascii: "W")
        default: nil
        }
    }

    /// Length of the separator symbol at `index`, 0 when the byte is not one.
    private static func symbolLength(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Int {
        let byte = bytes[index]
        switch byte {
        case 0x20, 0x09, UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: ":"), UInt8(ascii: "-"),
            UInt8(ascii: "d"), UInt8(ascii: "m"), UInt8(ascii: "s"), UInt8(ascii: "D"), UInt8(ascii: "M"),
            UInt8(ascii: "S"):
            return 1
        case 0xC2:  // ° U+00B0, º U+00BA
            return index + 1 < bytes.count && (bytes[index + 1] == 0xB0 || bytes[index + 1] == 0xBA) ? 2 : 0
        case 0xCB:  // ˚ U+02DA
            return index + 1 < bytes.count && bytes[index + 1] == 0x9A ? 2 : 0
        case 0xE2:  // ′ U+2032, ″ U+2033
            return index + 2 < bytes.count && bytes[index + 1] == 0x80
                && (bytes[index + 2] == 0xB2 || bytes[index + 2] == 0xB3) ? 3 : 0
        default:
            return 0
        }
    }

    static func trimmed(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var start = 0
        var end = bytes.count
        while start < end && (bytes[start] == 0x20 || bytes[start] == 0x09) { start += 1 }
        while end > start && (bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09) { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }
}
