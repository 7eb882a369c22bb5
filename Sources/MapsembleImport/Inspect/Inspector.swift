import Foundation

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
    /// How the input is named (a URL or an archive read from its temporary copy at `path`).
    public var displayName: String?
    public init() {}
}

/// `mapsemble-import inspect`: sniffs a CSV file and profiles its columns from a sample.
///
/// The fast path parses `sampleRows` rows through the reader (libcsv) and counts the rest of the
/// file's lines with `memchr`, without parsing them; `full` parses every row instead.
public enum Inspector {
    public static func inspect(path: String, options: InspectOptions = InspectOptions()) throws -> InspectReport {
        let name = options.displayName ?? (path == "-" ? "stdin" : path)
        var size: Int?
        if path != "-", let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            attributes[.type] as? FileAttributeType == .typeRegular
        {
            size = (attributes[.size] as? NSNumber)?.intValue
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
        readerOptions.delimiterFromHint = options.delimiter == "auto"
        var hintNote: String?
        var quoteNone = false
        var sheets: [SheetSummary] = []
        var sheetName: String?
        var lastSheetRow: Int?
        let reader: any RecordReader
        let workbookFormat = try WorkbookFormat.of(format: "auto", path: path)
        if let workbookFormat, workbookFormat != .xlsx {
            let opened = try workbookFormat.reader(
                path: path, sheet: options.sheet, hasHeader: false, headerRow: nil,
                blockBytes: readerOptions.blockBytes, name: name)
            sheetName = opened.sheet
            sheets = try workbookFormat.sheetNames(path: path, name: name).map {
                SheetSummary(name: $0, dimension: nil, hidden: false)
            }
            readerOptions.delimiter = UInt8(ascii: ",")
            encoding = "utf-8 (workbook)"
            reader = opened.reader
        } else if workbookFormat == .xlsx {
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
            let csv = try csvReader(path: path, options: &readerOptions, quoteNone: &quoteNone, name: name)
            readerOptions.delimiter = csv.delimiter
            hintNote = csv.hintLine.map { line in
                let kept =
                    csv.delimiterHint == csv.delimiter
                    ? "" : " (--delimiter \(PipelinePlan.delimiterName(csv.delimiter)) is kept)"
                return "the first line \(line) names the delimiter\(kept); it is not a row"
            }
            reader = csv
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
        let (names, duplicates) = header ? HeaderNames.unique(first) : (first.indices.map { String($0 + 1) }, [:])
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
            // Excel's `sep=` first line is not a row.
            let hintLines = hintNote == nil ? 0 : 1
            let lines = try countLines(path, name: name) - hintLines
            rows = lines - (header ? 1 : 0)
            method = "counted lines"
            if spansLines {
                // Quoted fields span lines: scale the line count by the sample's lines per row.
                let perRow = Double(lastLine - hintLines) / Double(sampled + (header ? 1 : 0) + malformed)
                rows = Int((Double(lines) / perRow).rounded()) - (header ? 1 : 0)
                method = "estimated from the sample (quoted fields span lines)"
            }
        }

        var notes: [String] = []
        if let hintNote { notes.append(hintNote) }
        if let renamed = HeaderNames.note(duplicates) { notes.append(renamed) }
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
        var coordinates = guessCoordinates(columns, decimalComma: decimalComma, notes: &notes)
        if let guess = coordinates, guess.looksProjected, let west = columns[guess.longitude].minimum,
            let east = columns[guess.longitude].maximum, let south = columns[guess.latitude].minimum,
            let north = columns[guess.latitude].maximum
        {
            // The corners and the middle of the values' extent: what PROJ's database proposes.
            let xs = [west, east, west, east, (west + east) / 2]
            let ys = [south, south, north, north, (south + north) / 2]
            let systems = CoordinateTransform.likelySystems(x: xs, y: ys)
            coordinates?.systems = systems.map(\.code)
            if !systems.isEmpty {
                notes.append(
                    "they fit \(systems.map { "\($0.code) (\($0.name))" }.joined(separator: ", ")): set coordinates.crs to the right one (--emit-config writes the first)"
                )
            }
        }
        let label = guessLabel(columns, excluding: coordinates)
        let remoteID = guessRemoteID(columns, sampled: sampled)
        var report = InspectReport(
            file: name, sizeBytes: size, encoding: encoding, delimiter: readerOptions.delimiter, hasHeader: header,
            rows: rows, rowsMethod: method, sampledRows: sampled, malformedRows: malformed, columns: columns,
            coordinates: coordinates, label: label, remoteID: remoteID, decimalComma: decimalComma,
            quoteNone: quoteNone, notes: notes, sheets: sheets, sheet: sheetName)
        report.workbookFormat = workbookFormat?.rawValue ?? "xlsx"
        report.address = guessAddress(columns)
        if let address = report.address,
            coordinates.map({ columns[$0.latitude].nulls > 0 || columns[$0.longitude].nulls > 0 }) ?? true
        {
            report.notes.append(
                "\(coordinates == nil ? "no coordinates" : "rows without coordinates"), but an address (\(address.indices.map { "\"\(columns[$0].name)\"" }.joined(separator: ", "))): rows can be placed by geocoding (--emit-config writes a geocode: section\(coordinates == nil ? "" : ", commented out"))"
            )
        }
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
            throw ImportError.system(.unreadableInput, "cannot open the input", file: name)
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
}
