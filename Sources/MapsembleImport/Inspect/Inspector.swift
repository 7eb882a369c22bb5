#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What `inspect` does: how much of the file it reads.
public struct InspectOptions: Sendable {
    /// Rows parsed to profile the columns (the fast path).
    public var sampleRows = 1000
    /// Parse every row: exact row count, malformed rows counted, columns profiled over all rows.
    public var full = false
    /// `auto`, or the delimiter to use.
    public var delimiter = "auto"
    /// For a workbook: the sheet to profile (name or 1-based position); the first when nil.
    public var sheet: String?
    /// Keep the first this many records profiled (for `inspect --html`, which draws them).
    public var keepRecords = 0
    public init() {}
}

/// A sheet of a workbook, as `inspect` lists it.
public struct SheetSummary: Sendable {
    public var name: String
    /// The used range the sheet declares (`A1:K500001`), when it does.
    public var dimension: String?
    public var hidden: Bool
}

/// What `inspect` found in a file: everything a first pipeline.yml needs.
public struct InspectReport: Sendable {
    public var file: String
    public var sizeBytes: Int?
    /// `utf-8`, `utf-16le`, `utf-16be` or `windows-1252`, with ` (BOM)` when the file starts with one.
    public var encoding: String
    public var delimiter: UInt8
    public var hasHeader: Bool
    /// Data rows (the header is not one).
    public var rows: Int
    /// How `rows` was found: `counted lines`, `estimated from the sample`, or `parsed every row`.
    public var rowsMethod: String
    public var sampledRows: Int
    /// Rows of the sample (or of the whole file with `full`) libcsv could not parse.
    public var malformedRows: Int
    public var columns: [ColumnProfile]
    public var coordinates: CoordinateGuess?
    /// Column suggested as the feature label.
    public var label: Int?
    /// Column suggested as the remote id: named like an id and unique in what was read.
    public var remoteID: Int?
    /// Decimal separator of the number columns: `.` or `,`.
    public var decimalComma: Bool
    /// `"` is data, not a quote (TSV dumps such as GeoNames): reading with quotes breaks rows
    /// that reading without them does not.
    public var quoteNone: Bool
    /// Findings worth a line of their own (problems first).
    public var notes: [String]
    /// For a workbook: its sheets, and the one profiled.
    public var sheets: [SheetSummary] = []
    public var sheet: String?
    /// The first records profiled, with the line each starts on (`InspectOptions.keepRecords`).
    public var records: [(line: Int, fields: [String])] = []
}

/// One column as the sample shows it.
public struct ColumnProfile: Sendable {
    public enum Kind: String, Sendable {
        case empty, integer, number, boolean, date, datetime, url, text
    }
    public var name: String
    public var kind: Kind
    /// Integers written with leading zeros (postcodes, ids): kept as text, never as numbers.
    public var leadingZeros: Bool
    /// Integers that read as codes rather than quantities: all of one length (postcodes, INSEE or
    /// station numbers), or a column named like a code or id. Sent as text.
    public var looksLikeCode: Bool
    public var values: Int
    public var nulls: Int
    public var examples: [String]
    public var minimum: Double?
    public var maximum: Double?
    /// The most digits after the decimal separator in a number (coordinates have several).
    public var fractionDigits: Int
    /// Every non-null value seen was different.
    public var unique: Bool
    /// Most values are coordinates in a notation other than a plain number (DMS, DDM, hemisphere).
    public var coordinateNotation: CoordinateNotation?
    /// Most values hold both coordinates: `lat, lon` and the like, or WKT, or ISO 6709
    /// (`pointNotation`: nil for the first).
    public var holdsPoints: Bool
    public var pointNotation: CoordinateNotation?
    public var nullShare: Double { values == 0 ? 0 : Double(nulls) / Double(values) }
}

/// Which columns hold the coordinates, and what their values say.
public struct CoordinateGuess: Sendable {
    public var longitude: Int
    public var latitude: Int
    /// One column holding both (then `longitude` and `latitude` name it too).
    public var point: Int?
    /// `name` (a conventional column name) or `values` (the ranges of numeric columns).
    public var foundBy: String
    /// `decimal degrees`, `decimal degrees with a decimal comma`, `degrees-minutes-seconds`, …
    public var notation: String
    public var looksSwapped: Bool
    /// Values in the thousands: a projected system (e.g. Lambert-93, UTM), not degrees.
    public var looksProjected: Bool
    public var evidence: String?
}

/// `mapsemble-import inspect`: sniffs a CSV file and profiles its columns from a sample.
///
/// The fast path parses `sampleRows` rows through the reader (libcsv) and counts the rest of the
/// file's lines with `memchr`, without parsing them; `full` parses every row instead.
public enum Inspector {
    public static func inspect(path: String, options: InspectOptions = InspectOptions()) throws -> InspectReport {
        let name = path == "-" ? "stdin" : path
        var size: Int?
        if path != "-" {
            var info = stat()
            if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG { size = Int(info.st_size) }
        }
        let head = path == "-" ? [] : RawInput.head(path, 64 << 10)
        var encoding = head.withUnsafeBytes { (bytes) -> String in
            let found = SourceEncoding.detect(bytes)
            return found.rawValue + (found.byteOrderMarkLength(bytes) > 0 ? " (BOM)" : "")
        }
        var readerOptions = ReaderOptions()
        readerOptions.hasHeader = false
        readerOptions.blockBytes = 64 << 10
        readerOptions.delimiter = try PipelinePlan.delimiter(options.delimiter, path: path, quote: readerOptions.quote)
        var quoteNone = false
        var sheets: [SheetSummary] = []
        var sheetName: String?
        var lastSheetRow: Int?
        let reader: any RecordReader
        if path != "-", try PipelinePlan.isWorkbook("auto", path: path) {
            let workbook = try XLSXWorkbook(path: path, name: name)
            sheets = try workbook.sheets.map {
                SheetSummary(name: $0.name, dimension: try workbook.dimension(of: $0.part), hidden: $0.hidden)
            }
            let chosen = try workbook.sheet(options.sheet)
            sheetName = chosen.name
            lastSheetRow = sheets.first { $0.name == chosen.name }?.dimension.flatMap(Self.lastRow)
            readerOptions.delimiter = UInt8(ascii: ",")
            encoding = "utf-8 (workbook)"
            reader = try XLSXReader(
                path: path, sheet: chosen.name, hasHeader: false, blockBytes: readerOptions.blockBytes, name: name)
        } else {
            reader = try csvReader(path: path, options: &readerOptions, quoteNone: &quoteNone, name: name)
        }

        // The first record decides the header; the profiles take the records after it.
        var first: [String]?
        var profiles: [Accumulator] = []
        var sampled = 0
        var malformed = 0
        var lastLine = 0
        var spansLines = false
        var complete = true
        var kept: [(line: Int, fields: [String])] = []
        var firstLine = 1
        let decimal = readerOptions.delimiter == UInt8(ascii: ",") ? UInt8(ascii: ".") : UInt8(ascii: ",")
        let limit = options.full ? Int.max : options.sampleRows
        reading: while let block = try reader.nextBlock() {
            malformed += block.rejections.count
            for record in 0..<block.count {
                if block.lines[record] != lastLine + 1 && lastLine > 0 { spansLines = true }
                lastLine = block.lines[record]
                if first == nil {
                    firstLine = block.lines[record]
                    first = block.strings(record)
                    profiles = first!.indices.map { _ in Accumulator(decimal: decimal) }
                    continue
                }
                if sampled == limit {
                    complete = false
                    break reading
                }
                if kept.count < options.keepRecords { kept.append((block.lines[record], block.strings(record))) }
                block.bytes.withUnsafeBytes { bytes in
                    for column in 0..<min(block.fieldCount(record), profiles.count) {
                        profiles[column].add(UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, column)]))
                    }
                }
                sampled += 1
            }
        }
        guard let first else {
            throw ImportError(.unreadableInput, "the input is empty, expected a header row", file: name)
        }

        // A header row names columns: none of its fields reads as a number where the column's
        // values do, and it is not the same kind of value as the rows below it.
        let header = !first.indices.contains { (column) in
            profiles[column].numeric > 0 && NumberText.parse(Array(first[column].utf8), decimal) != nil
        }
        if !header {
            // The first row is data: profile it too.
            for (column, value) in first.enumerated() where column < profiles.count {
                var value = value
                value.withUTF8 { profiles[column].add(UnsafeRawBufferPointer($0)) }
            }
            sampled += 1
            if options.keepRecords > 0 { kept.insert((firstLine, first), at: 0) }
        }
        let names = header ? first : first.indices.map { String($0 + 1) }
        let columns = zip(names, profiles).map { $0.1.profile(name: $0.0) }

        var rows: Int
        var method: String
        if complete || path == "-" {
            rows = sampled + malformed
            method = "parsed every row"
        } else if let lastSheetRow {
            rows = lastSheetRow - (header ? 1 : 0)
            method = "from the sheet's used range"
        } else if !sheets.isEmpty {
            rows = sampled + malformed
            method = "at least; the sheet declares no used range, --full counts every row"
        } else {
            let lines = try countLines(path, name: name)
            rows = lines - (header ? 1 : 0)
            method = "counted lines"
            if spansLines {
                // Quoted fields span lines: scale the line count by the sample's lines per row.
                let perRow = Double(lastLine) / Double(sampled + (header ? 1 : 0) + malformed)
                rows = Int((Double(lines) / perRow).rounded()) - (header ? 1 : 0)
                method = "estimated from the sample (quoted fields span lines)"
            }
        }

        var notes: [String] = []
        if malformed > 0 && !sheets.isEmpty {
            notes.append(
                "\(malformed) of the \(options.full ? "" : "sampled ")rows would be rejected (a cell holding an error such as #N/A, or a value right of the header)"
            )
        } else if malformed > 0 {
            notes.append(
                "\(malformed) of the \(options.full ? "" : "sampled ")rows cannot be parsed (stray quote or wrong number of fields)"
            )
        }
        let decimalComma = columns.indices.contains { profiles[$0].commaNumbers > 0 }
        let coordinates = guessCoordinates(columns, decimalComma: decimalComma, notes: &notes)
        let label = guessLabel(columns, excluding: coordinates)
        let remoteID = guessRemoteID(columns, sampled: sampled)
        var report = InspectReport(
            file: name, sizeBytes: size, encoding: encoding, delimiter: readerOptions.delimiter, hasHeader: header,
            rows: rows, rowsMethod: method, sampledRows: sampled, malformedRows: malformed, columns: columns,
            coordinates: coordinates, label: label, remoteID: remoteID, decimalComma: decimalComma,
            quoteNone: quoteNone, notes: notes, sheets: sheets, sheet: sheetName)
        report.records = kept
        return report
    }

    /// A CSV reader for inspecting: no header assumed; `quote: none` when `"` is data (reading
    /// with quotes breaks rows that reading without does not).
    private static func csvReader(
        path: String, options readerOptions: inout ReaderOptions, quoteNone: inout Bool, name: String
    ) throws -> CSVReader {
        if path != "-" {
            let quoted = try malformedRows(path, readerOptions, name: name)
            if quoted > 0 {
                var unquoted = readerOptions
                unquoted.quote = nil
                if try malformedRows(path, unquoted, name: name) == 0 {
                    quoteNone = true
                    readerOptions.quote = nil
                }
            }
        }
        return try CSVReader(path: path, options: readerOptions, name: name)
    }

    /// `A1:K500001` → 500001.
    static func lastRow(_ dimension: String) -> Int? {
        guard let last = dimension.split(separator: ":").last else { return nil }
        return Int(last.drop { $0.isLetter })
    }

    // MARK: - Sniffing

    /// Rows of the first 2,000 that the reader cannot parse with `options`.
    static func malformedRows(_ path: String, _ options: ReaderOptions, name: String) throws -> Int {
        let reader = try CSVReader(path: path, options: options, name: name)
        var rows = 0
        var malformed = 0
        while rows < 2000, let block = try reader.nextBlock() {
            rows += block.count + block.rejections.count
            malformed += block.rejections.count
        }
        return malformed
    }

    /// Non-empty lines of the file, counted with `memchr` in 1 MiB reads: no parsing.
    static func countLines(_ path: String, name: String) throws -> Int {
        guard let input = RawInput(path: path) else {
            throw ImportError(
                .unreadableInput, "cannot open the input: \(String(cString: strerror(errno)))", file: name)
        }
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        var lines = 0
        // Bytes of the current line that are not a line end: an empty line is not a row.
        var lineHasContent = false
        while true {
            let count = try input.read(into: buffer, size)
            if count == 0 { break }
            var position = 0
            while position < count {
                guard let newline = memchr(buffer + position, 0x0A, count - position) else {
                    if !lineHasContent {
                        lineHasContent = (position..<count).contains {
                            buffer.load(fromByteOffset: $0, as: UInt8.self) != 0x0D
                        }
                    }
                    break
                }
                let end = buffer.distance(to: newline)
                if !lineHasContent {
                    lineHasContent = (position..<end).contains {
                        buffer.load(fromByteOffset: $0, as: UInt8.self) != 0x0D
                    }
                }
                if lineHasContent { lines += 1 }
                lineHasContent = false
                position = end + 1
            }
        }
        if lineHasContent { lines += 1 }
        return lines
    }

    // MARK: - Guesses

    static let longitudeNames = [
        "lon", "lng", "long", "longitude", "x", "lon_dd", "longitud", "längengrad", "laengengrad",
    ]
    static let latitudeNames = ["lat", "latitude", "y", "lat_dd", "latitud", "breitengrad"]

    static func guessCoordinates(_ columns: [ColumnProfile], decimalComma: Bool, notes: inout [String])
        -> CoordinateGuess?
    {
        func named(_ names: [String]) -> Int? {
            for candidate in names {
                if let index = columns.firstIndex(where: { $0.name.trimmingSpaces.lowercased() == candidate }) {
                    return index
                }
            }
            return nil
        }
        // Conventional names first, then names that contain one (ARPLongitude, x_wgs84, Laenge).
        func containing(_ words: [String], prefix: String, axis: String) -> Int? {
            columns.firstIndex { (column) in
                let name = column.name.lowercased()
                return words.contains { name.contains($0) } || name.hasPrefix(prefix)
                    || (name.contains("wgs84") && name.hasPrefix(axis))
            }
        }
        var longitude =
            named(longitudeNames)
            ?? containing(["longitude", "longitud", "laenge", "länge", "lng"], prefix: "lon", axis: "x")
        var latitude =
            named(latitudeNames) ?? containing(["latitude", "latitud", "breite"], prefix: "lat", axis: "y")
        var foundBy = "name"
        if longitude == nil || latitude == nil,
            let point = columns.firstIndex(where: \.holdsPoints)
        {
            let notation = columns[point].pointNotation
            return CoordinateGuess(
                longitude: point, latitude: point, point: point, foundBy: "values",
                notation: notation == .wkt
                    ? "WKT POINT(lon lat)" : notation == .iso6709 ? "ISO 6709" : "\"lat, lon\" in one column",
                looksSwapped: false, looksProjected: false, evidence: nil)
        }
        if longitude == nil || latitude == nil {
            // By values: two number columns within ±180, one of them within ±90; first among those
            // with several fractional digits (time zones, altitudes and counts have few or none).
            func pair(minimumDigits: Int) -> (longitude: Int, latitude: Int)? {
                let numeric = columns.indices.filter { (index) in
                    let column = columns[index]
                    guard column.kind == .number, column.fractionDigits >= minimumDigits, let low = column.minimum,
                        let high = column.maximum
                    else { return false }
                    return low >= -180 && high <= 180
                }
                let latitudes = numeric.filter { columns[$0].minimum! >= -90 && columns[$0].maximum! <= 90 }
                guard numeric.count == 2 && latitudes.count == 1 else { return nil }
                return (numeric.first { $0 != latitudes[0] }!, latitudes[0])
            }
            if let found = pair(minimumDigits: 3) ?? pair(minimumDigits: 0) {
                longitude = found.longitude
                latitude = found.latitude
                foundBy = "values"
            } else {
                // Two candidates both within ±90 (e.g. all of Europe): the values cannot tell which is which.
                let both = columns.indices.filter { (index) in
                    let column = columns[index]
                    guard column.kind == .number, column.fractionDigits >= 3, let low = column.minimum,
                        let high = column.maximum
                    else { return false }
                    return low >= -90 && high <= 90
                }
                if both.count == 2 {
                    notes.append(
                        "no coordinate columns found by name; \"\(columns[both[0]].name)\" and \"\(columns[both[1]].name)\" hold degrees, but their values (all within ±90) do not tell which is the latitude: name them in coordinates.longitude and coordinates.latitude"
                    )
                } else {
                    notes.append(
                        "no coordinate columns found: name them in coordinates.longitude and coordinates.latitude")
                }
                return nil
            }
        }
        guard let longitude, let latitude, longitude != latitude else {
            notes.append("no coordinate columns found: name them in coordinates.longitude and coordinates.latitude")
            return nil
        }
        let lon = columns[longitude]
        let lat = columns[latitude]
        func extent(_ column: ColumnProfile) -> Double {
            max(abs(column.minimum ?? 0), abs(column.maximum ?? 0))
        }
        let sexagesimal = lat.coordinateNotation ?? lon.coordinateNotation
        var guess = CoordinateGuess(
            longitude: longitude, latitude: latitude, point: nil, foundBy: foundBy,
            notation: sexagesimal.map(Self.describe)
                ?? (decimalComma ? "decimal degrees with a decimal comma" : "decimal degrees"),
            looksSwapped: false, looksProjected: false, evidence: nil)
        func readable(_ column: ColumnProfile) -> Bool {
            column.kind == .number || column.kind == .integer || column.coordinateNotation != nil
        }
        if !readable(lon) || !readable(lat) {
            notes.append(
                "the coordinate columns \"\(lon.name)\" and \"\(lat.name)\" do not hold coordinates this version reads (e.g. \(lat.examples.first ?? ""))"
            )
            return guess
        }
        if extent(lon) > 1000 && extent(lat) > 1000 {
            guess.looksProjected = true
            guess.evidence =
                "values run to \(Self.number(extent(lon))) and \(Self.number(extent(lat))): projected coordinates (metres, e.g. Lambert-93 or UTM), not degrees"
            notes.append("\"\(lon.name)\"/\"\(lat.name)\": \(guess.evidence!); reproject them to WGS 84 first")
        } else if extent(lat) > 90 && extent(lon) <= 90 {
            guess.looksSwapped = true
            guess.evidence =
                "\"\(lat.name)\" runs to \(Self.number(extent(lat))), past ±90, while \"\(lon.name)\" stays within ±90 (\(Self.number(extent(lon))))"
            notes.append("the coordinate columns look swapped: \(guess.evidence!)")
        }
        return guess
    }

    static func describe(_ notation: CoordinateNotation) -> String {
        switch notation {
        case .dms: "degrees-minutes-seconds"
        case .ddm: "degrees and decimal minutes"
        case .decimalHemisphere: "decimal degrees with hemisphere letters"
        case .decimalComma: "decimal degrees with a decimal comma"
        case .iso6709: "ISO 6709"
        case .wkt: "WKT POINT(lon lat)"
        case .decimal: "decimal degrees"
        }
    }

    static func guessLabel(_ columns: [ColumnProfile], excluding coordinates: CoordinateGuess?) -> Int? {
        if let named = columns.firstIndex(where: { ["label", "name", "title"].contains($0.name.lowercased()) }) {
            return named
        }
        if let named = columns.firstIndex(where: { $0.name.lowercased().contains("name") && $0.kind == .text }) {
            return named
        }
        // Else the first text column whose values are all different (and not an id).
        return columns.indices.first { (index) in
            let column = columns[index]
            return column.kind == .text && column.unique && !column.leadingZeros
                && index != coordinates?.longitude && index != coordinates?.latitude
                && column.examples.contains { $0.contains(" ") || $0.count > 12 }
        }
    }

    static func guessRemoteID(_ columns: [ColumnProfile], sampled: Int) -> Int? {
        guard sampled > 0 else { return nil }
        return columns.firstIndex { (column) in
            let name = column.name.lowercased()
            let idLike =
                name == "id" || name.hasSuffix("_id") || name.hasSuffix(" id") || name.hasSuffix("-id")
                || column.name.hasSuffix("Id") || column.name.hasSuffix("ID")
                || ["ref", "code", "key", "uuid", "guid"].contains(name)
            return idLike && column.unique && column.nulls == 0 && column.kind != .number
        }
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

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
        }
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
            pointNotation: Self.mostly(points, of: filled) ?? nil)
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
