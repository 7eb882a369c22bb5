#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A column's statistics while the rows stream past.
struct Accumulator {
    let decimal: UInt8
    var values = 0
    var nulls = 0
    var integers = 0
    var leadingZeros = 0
    var numeric = 0
    var commaNumbers = 0
    var booleans = 0
    var dates = 0
    var datetimes = 0
    var urls = 0
    var fractionDigits = 0
    var shortestInteger = Int.max
    var longestInteger = 0
    var minimum = Double.infinity
    var maximum = -Double.infinity
    var examples: [String] = []
    /// Values read as coordinates in another notation, per notation; and values holding a point.
    var sexagesimal: [CoordinateNotation: Int] = [:]
    var points: [CoordinateNotation?: Int] = [:]
    /// Values read as geometries (WKT, EWKT, hex WKB, GeoJSON) other than the points above.
    var shapes = 0
    var seen = Set<Int>()
    var duplicates = false

    init(decimal: UInt8) { self.decimal = decimal }

    mutating func add(_ raw: UnsafeRawBufferPointer) {
        values += 1
        var field = raw[...]
        while let first = field.first, first == 0x20 || first == 0x09 { field = field.dropFirst() }
        while let last = field.last, last == 0x20 || last == 0x09 { field = field.dropLast() }
        let bytes = UnsafeRawBufferPointer(rebasing: field)
        if bytes.isEmpty || Self.nullWords.contains(Self.lowercased(bytes)) {
            nulls += 1
            return
        }
        var hasher = Hasher()
        hasher.combine(bytes: bytes)
        if seen.count < 100_000, !seen.insert(hasher.finalize()).inserted { duplicates = true }
        if examples.count < 3 {
            let text = String(decoding: bytes.prefix(40), as: UTF8.self)
            if !examples.contains(text) { examples.append(text) }
        }
        if case .success(let number) = NumberText.parse(bytes, separator: UInt8(ascii: ".")) {
            count(number.value, bytes)
        } else if decimal == UInt8(ascii: ","), case .success(let number) = NumberText.parse(bytes, separator: decimal)
        {
            commaNumbers += 1
            count(number.value, bytes)
        } else if Self.booleanWords.contains(Self.lowercased(bytes)) {
            booleans += 1
        } else if let kind = Self.dateKind(bytes) {
            if kind == .date { dates += 1 } else { datetimes += 1 }
        } else if bytes.starts(with: Array("http://".utf8)) || bytes.starts(with: Array("https://".utf8)) {
            urls += 1
        } else if let coordinate = CoordinateText.sexagesimal(bytes, separator: decimal) {
            sexagesimal[coordinate.notation, default: 0] += 1
            minimum = min(minimum, coordinate.value)
            maximum = max(maximum, coordinate.value)
        } else if let point = CoordinateText.splitPoint(bytes), Self.readsAsNumbers(point) {
            points[point.notation, default: 0] += 1
        } else if Self.mayBeShape(bytes) {
            var shape = Shape()
            do throws(ShapeProblem) {
                try ShapeText.read(bytes, into: &shape)
                shapes += 1
            } catch {
                // Not a geometry this version reads.
            }
        }
    }

    /// Starts as a geometry would: `{`, a WKT type, `SRID=`, or hex digits (WKB).
    static func mayBeShape(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let first = bytes.first else { return false }
        if first == UInt8(ascii: "{") { return true }
        let head = String(decoding: bytes.prefix(16), as: UTF8.self).uppercased()
        return ["POINT", "LINESTRING", "POLYGON", "MULTI", "SRID=", "00", "01"].contains { head.hasPrefix($0) }
    }

    private mutating func count(_ value: Double, _ bytes: UnsafeRawBufferPointer) {
        numeric += 1
        if let point = bytes.lastIndex(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ",") }) {
            fractionDigits = max(fractionDigits, bytes.count - point - 1)
        }
        minimum = min(minimum, value)
        maximum = max(maximum, value)
        let digits =
            bytes.first == UInt8(ascii: "-") || bytes.first == UInt8(ascii: "+") ? bytes.dropFirst() : bytes[...]
        if digits.allSatisfy({ $0 &- 0x30 < 10 }) {
            integers += 1
            shortestInteger = min(shortestInteger, digits.count)
            longestInteger = max(longestInteger, digits.count)
            if digits.count > 1 && digits.first == UInt8(ascii: "0") { leadingZeros += 1 }
        }
    }

    /// Both halves of a split point read as numbers (decimal, DMS or ISO 6709).
    static func readsAsNumbers(
        _ point: (latitude: UnsafeRawBufferPointer, longitude: UnsafeRawBufferPointer, notation: CoordinateNotation?)
    ) -> Bool {
        if point.notation == .iso6709 {
            return CoordinateText.iso6709(point.latitude, degreeDigits: 2) != nil
                && CoordinateText.iso6709(point.longitude, degreeDigits: 3) != nil
        }
        func number(_ bytes: UnsafeRawBufferPointer) -> Bool {
            if case .success = NumberText.parse(bytes) { return true }
            return CoordinateText.sexagesimal(bytes, separator: UInt8(ascii: ".")) != nil
        }
        return number(point.latitude) && number(point.longitude)
    }

    func profile(name: String) -> ColumnProfile {
        let filled = values - nulls
        let kind: ColumnProfile.Kind
        switch filled {
        case 0: kind = .empty
        case integers: kind = .integer
        case numeric: kind = .number
        case booleans: kind = .boolean
        case dates: kind = .date
        case dates + datetimes: kind = .datetime
        case urls: kind = .url
        default: kind = .text
        }
        let zeros = leadingZeros > 0 && kind == .integer
        let lower = name.lowercased()
        let codeName = ["code", "id", "zip", "postal", "plz", "insee", "nr", "no", "number", "num", "ref"].contains {
            lower == $0 || lower.hasPrefix($0 + "_") || lower.hasSuffix("_" + $0) || lower.hasSuffix(" " + $0)
                || lower.hasPrefix($0 + " ")
        }
        let oneLength = integers > 1 && shortestInteger == longestInteger && shortestInteger >= 4
        return ColumnProfile(
            name: name, kind: zeros ? .text : kind, leadingZeros: zeros,
            looksLikeCode: kind == .integer && (codeName || oneLength), values: values, nulls: nulls,
            examples: examples, minimum: minimum <= maximum ? minimum : nil,
            maximum: minimum <= maximum ? maximum : nil,
            fractionDigits: fractionDigits, unique: filled > 0 && !duplicates,
            coordinateNotation: Self.mostly(sexagesimal, of: filled),
            holdsPoints: Self.mostly(points, of: filled) != nil,
            pointNotation: Self.mostly(points, of: filled) ?? nil,
            // Lines or polygons, with WKT points among them.
            holdsShapes: shapes > 0 && (shapes + (points[.wkt] ?? 0)) * 10 >= filled * 9)
    }

    /// The notation of at least 90 % of `filled` values, when there is one.
    static func mostly<Key>(_ counts: [Key: Int], of filled: Int) -> Key? {
        let total = counts.values.reduce(0, +)
        guard filled > 0, total * 10 >= filled * 9, let top = counts.max(by: { $0.value < $1.value }) else {
            return nil
        }
        return top.key
    }

    static let nullWords: Set<[UInt8]> = Set(
        ["null", "na", "n/a", "nan", "none", "-", "#n/a", "\\n"].map { Array($0.utf8) })
    static let booleanWords: Set<[UInt8]> = Set(["true", "false", "yes", "no"].map { Array($0.utf8) })

    static func lowercased(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        bytes.count > 8 ? [] : bytes.map { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 }
    }

    /// ISO 8601: `YYYY-MM-DD`, optionally followed by `T` or a space and a time.
    static func dateKind(_ bytes: UnsafeRawBufferPointer) -> ColumnProfile.Kind? {
        func digits(_ range: Range<Int>) -> Bool { range.allSatisfy { bytes[$0] &- 0x30 < 10 } }
        guard bytes.count >= 10, digits(0..<4), bytes[4] == UInt8(ascii: "-"), digits(5..<7),
            bytes[7] == UInt8(ascii: "-"), digits(8..<10)
        else { return nil }
        if bytes.count == 10 { return .date }
        guard bytes.count >= 16, bytes[10] == UInt8(ascii: "T") || bytes[10] == 0x20, digits(11..<13),
            bytes[13] == UInt8(ascii: ":"), digits(14..<16)
        else { return nil }
        return .datetime
    }
}

extension NumberText {
    /// Parses a whole text as a number, or nil.
    static func parse(_ bytes: [UInt8], _ separator: UInt8) -> NumberText? {
        bytes.withUnsafeBytes { (raw) in
            if case .success(let number) = parse(raw, separator: separator) { return number }
            return nil
        }
    }
}
