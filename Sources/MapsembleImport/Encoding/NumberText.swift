#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A decimal number read strictly from a field, kept both as a value (for range checks) and as its
/// digits (so the JSON written carries exactly the precision the file had, with no re-formatting).
///
/// Accepted: optional spaces around, an optional sign, digits with one decimal separator, an
/// optional exponent. Not accepted: anything else (`abc`, `1.2.3`, `0x10`, thousands separators).
/// `NaN` and `Inf` are recognised so they can be named as what they are.
struct NumberText {
    enum Failure: Error {
        case empty
        case invalid
        case nonFinite
    }

    var value: Double
    var negative: Bool
    /// Integer digits without leading zeros (empty means 0), fraction digits, exponent digits.
    var integer: Range<Int>
    var fraction: Range<Int>
    var exponentNegative: Bool
    var exponent: Range<Int>
    /// The number's text when it is already JSON as `appendJSON` writes it (no `+`, no leading
    /// zeros, a `.` separator, no exponent): the common case, copied in one piece.
    var json: Range<Int>? = nil

    /// Parses `bytes`; `separator` is the decimal separator (`.` or `,`).
    @inline(__always)
    static func parse(_ bytes: UnsafeRawBufferPointer, separator: UInt8 = UInt8(ascii: ".")) -> Result<
        NumberText, Failure
    > {
        if separator == UInt8(ascii: "."), let number = parsePlain(bytes) { return .success(number) }
        return parseAny(bytes, separator: separator)
    }

    /// The common shape in one pass: `-?digits(.digits)?`, 15 digits at most, no leading zero but
    /// a lone one, nothing around it (a coordinate as files write it). Nil for anything else, which
    /// `parseAny` reads; both give the same result for what this one takes (tested).
    @inline(__always)
    static func parsePlain(_ bytes: UnsafeRawBufferPointer) -> NumberText? {
        let count = bytes.count
        guard count > 0, count <= 17 else { return nil }
        let negative = bytes[0] == UInt8(ascii: "-")
        var i = negative ? 1 : 0
        let integerStart = i
        var mantissa: UInt64 = 0
        while i < count {
            let digit = bytes[i] &- 0x30
            if digit >= 10 { break }
            mantissa = mantissa &* 10 &+ UInt64(digit)
            i += 1
        }
        let integerEnd = i
        guard integerEnd > integerStart else { return nil }
        let leadingZero = bytes[integerStart] == UInt8(ascii: "0")
        if leadingZero && integerEnd - integerStart > 1 { return nil }
        var fraction = i..<i
        if i < count {
            guard bytes[i] == UInt8(ascii: ".") else { return nil }
            i += 1
            let fractionStart = i
            while i < count {
                let digit = bytes[i] &- 0x30
                if digit >= 10 { return nil }
                mantissa = mantissa &* 10 &+ UInt64(digit)
                i += 1
            }
            fraction = fractionStart..<i
            if fraction.isEmpty { return nil }
        }
        // Up to 15 digits: the mantissa is exact in a Double, and one division by an exact power
        // of ten rounds correctly (Clinger's fast path).
        guard (integerEnd - integerStart) + fraction.count <= 15 else { return nil }
        var value = Double(mantissa)
        if !fraction.isEmpty { value /= exactPowersOfTen[fraction.count] }
        return NumberText(
            value: negative ? -value : value, negative: negative,
            integer: (leadingZero ? integerEnd : integerStart)..<integerEnd, fraction: fraction,
            exponentNegative: false, exponent: count..<count, json: 0..<count)
    }

    /// Any number `parse` accepts.
    static func parseAny(_ bytes: UnsafeRawBufferPointer, separator: UInt8) -> Result<NumberText, Failure> {
        var start = 0
        var end = bytes.count
        while start < end && (bytes[start] == 0x20 || bytes[start] == 0x09) { start += 1 }
        while end > start && (bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09) { end -= 1 }
        if start == end { return .failure(.empty) }
        var i = start
        var negative = false
        if bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") {
            negative = bytes[i] == UInt8(ascii: "-")
            i += 1
        }
        let intStart = i
        while i < end && bytes[i] &- 0x30 < 10 { i += 1 }
        var integer = intStart..<i
        var fraction = i..<i
        if i < end && bytes[i] == separator {
            i += 1
            let fracStart = i
            while i < end && bytes[i] &- 0x30 < 10 { i += 1 }
            fraction = fracStart..<i
        }
        if integer.isEmpty && fraction.isEmpty {
            return .failure(isNonFinite(bytes, from: intStart, to: end) ? .nonFinite : .invalid)
        }
        var exponentNegative = false
        var exponent = i..<i
        if i < end && (bytes[i] | 0x20) == UInt8(ascii: "e") {
            i += 1
            if i < end && (bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+")) {
                exponentNegative = bytes[i] == UInt8(ascii: "-")
                i += 1
            }
            let expStart = i
            while i < end && bytes[i] &- 0x30 < 10 { i += 1 }
            exponent = expStart..<i
            if exponent.isEmpty { return .failure(.invalid) }
        }
        if i != end { return .failure(.invalid) }
        let rawInteger = integer
        while !integer.isEmpty && bytes[integer.lowerBound] == UInt8(ascii: "0") {
            integer = (integer.lowerBound + 1)..<integer.upperBound
        }

        // Value: exact fast path for up to 15 significant digits and small powers of ten
        // (Clinger), strtod otherwise.
        var mantissa: UInt64 = 0
        var digits = 0
        var fastPath = true
        for k in integer {
            mantissa = mantissa &* 10 &+ UInt64(bytes[k] &- 0x30)
            digits += 1
        }
        for k in fraction {
            mantissa = mantissa &* 10 &+ UInt64(bytes[k] &- 0x30)
            if mantissa != 0 { digits += 1 }
        }
        var exp10 = -fraction.count
        if !exponent.isEmpty {
            if exponent.count > 4 {
                fastPath = false
            } else {
                var e = 0
                for k in exponent { e = e * 10 + Int(bytes[k] &- 0x30) }
                exp10 += exponentNegative ? -e : e
            }
        }
        var value: Double
        if fastPath && digits <= 15 && exp10 >= -22 && exp10 <= 22 {
            value = Double(mantissa)
            if exp10 < 0 { value /= exactPowersOfTen[-exp10] } else { value *= exactPowersOfTen[exp10] }
        } else {
            value = slowParse(bytes, start: start, end: end, separator: separator)
        }
        if negative { value = -value }
        if !value.isFinite { return .failure(.nonFinite) }
        let canonical =
            (intStart == start || bytes[start] == UInt8(ascii: "-"))
            && (integer.count == rawInteger.count ? !integer.isEmpty : rawInteger.count == 1 && integer.isEmpty)
            && (fraction.isEmpty ? fraction.lowerBound == rawInteger.upperBound : separator == UInt8(ascii: "."))
            && exponent.isEmpty
        return .success(
            NumberText(
                value: value, negative: negative, integer: integer, fraction: fraction,
                exponentNegative: exponentNegative, exponent: exponent, json: canonical ? start..<end : nil))
    }

    private static func isNonFinite(_ bytes: UnsafeRawBufferPointer, from: Int, to: Int) -> Bool {
        let word = UnsafeRawBufferPointer(rebasing: bytes[from..<to])
        func equals(_ text: StaticString) -> Bool {
            word.count == text.utf8CodeUnitCount
                && (0..<word.count).allSatisfy { word[$0] | 0x20 == text.utf8Start[$0] }
        }
        return equals("nan") || equals("inf") || equals("infinity")
    }

    /// strtod on a NUL-terminated copy with a `.` separator, made on the stack: no allocation.
    private static func slowParse(_ bytes: UnsafeRawBufferPointer, start: Int, end: Int, separator: UInt8) -> Double {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: end - start + 1) { text in
            for k in start..<end {
                let byte = bytes[k]
                text[k - start] = CChar(bitPattern: byte == separator ? UInt8(ascii: ".") : byte)
            }
            text[end - start] = 0
            return abs(strtod(text.baseAddress!, nil))
        }
    }

    /// Appends the number as JSON: no leading `+` or zeros, `0.` before a bare fraction.
    @inline(__always)
    func appendJSON(from bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        if let json {
            out.appendBytes(UnsafeRawBufferPointer(rebasing: bytes[json]))
            return
        }
        if negative { out.append(UInt8(ascii: "-")) }
        if integer.isEmpty {
            out.append(UInt8(ascii: "0"))
        } else {
            out.appendBytes(UnsafeRawBufferPointer(rebasing: bytes[integer]))
        }
        if !fraction.isEmpty {
            out.append(UInt8(ascii: "."))
            out.appendBytes(UnsafeRawBufferPointer(rebasing: bytes[fraction]))
        }
        if !exponent.isEmpty {
            out.append(UInt8(ascii: "e"))
            if exponentNegative { out.append(UInt8(ascii: "-")) }
            out.appendBytes(UnsafeRawBufferPointer(rebasing: bytes[exponent]))
        }
    }
}

/// 10^0 through 10^22, every one exact in a Double (a literal: the optimizer can lay it out at
/// build time instead of computing it on first use).
private let exactPowersOfTen: [Double] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
    1e20, 1e21, 1e22,
]
