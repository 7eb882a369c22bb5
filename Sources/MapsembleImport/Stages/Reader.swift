#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How the reader splits the input.
public struct ReaderOptions: Sendable {
    public var delimiter: UInt8 = UInt8(ascii: ",")
    /// The quote character, or nil when quotes are plain data.
    public var quote: UInt8? = UInt8(ascii: "\"")
    public var hasHeader = true
    /// A record (with every line of a quoted field) larger than this is rejected as malformed,
    /// and read past without being held in memory (`source.max_record_bytes`).
    public var maxRecordBytes = 16 << 20
    /// A record with more fields than this is rejected as malformed, a header with more is an
    /// error (`source.max_columns`; 16,384 is a spreadsheet's limit).
    public var maxColumns = 16_384
    /// A block is handed on once it holds this many field bytes.
    public var blockBytes = 128 << 10
    /// The input's encoding; nil finds it from the first block.
    public var encoding: SourceEncoding?
    /// A first line `sep=X` (Excel's delimiter hint) sets the delimiter (`source.delimiter: auto`);
    /// when false the line is skipped all the same.
    public var delimiterFromHint = false
    public init() {}
}

/// Stage 1: CSV bytes → `RecordBlock`s, through libcsv in strict mode.
///
/// Streams: memory is one read buffer plus one block, whatever the file size. Every record carries
/// the physical line it starts on. A record libcsv cannot parse (stray or unterminated quote) or
/// with the wrong number of fields becomes a `malformed_row` rejection made of its first physical
/// line, and parsing resumes on the line after it: a broken quote costs one row, never the rest of
/// the file. (Heuristic: when a quote opened on an earlier line is the broken one, the lines after
/// it are parsed again as records of their own.)
/// Stage 1, whatever the input format: header, then blocks of records until nil.
public protocol RecordReader: AnyObject {
    var header: [String] { get }
    /// Data rows read so far (records and rejected rows).
    var rowsRead: Int { get }
    /// Rows that had fewer fields than the header (padded with empty ones).
    var paddedRows: Int { get }
    /// A read may wait on something else than the disk (a pipe, a thread): read it off the pool.
    var mayBlock: Bool { get }
    /// Bytes of the input consumed so far, for progress.
    var bytesRead: Int { get }
    var encoding: SourceEncoding { get }
    /// Header names given more than once, each with the names its columns are read under.
    var duplicateNames: [String: [String]] { get }
    /// The line (a workbook's row) the header is on, for messages about it.
    var headerLine: Int { get }
    func nextBlock() throws -> RecordBlock?
}

extension RecordReader {
    public var duplicateNames: [String: [String]] { [:] }
    public var headerLine: Int { 1 }
}

/// Used by one task at a time. The state touched per line (`advance`, `checkRecords`) is not
/// checked for exclusive access at run time (`@exclusivity(unchecked)`): only the reader's own
/// methods touch it, and the checks were 2 % of the reader's time, the pipeline's critical path.
public final class CSVReader: RecordReader {
    /// Column names: the header row, or `1`, `2`, … when the file has none.
    @exclusivity(unchecked) public private(set) var header: [String] = []
    /// Rows produced so far: records plus malformed rows (the header is not a row).
    @exclusivity(unchecked) public private(set) var rowsRead = 0
    /// Records that had fewer fields than the header, read with the missing ones empty.
    public private(set) var paddedRows = 0
    /// Whether a read can wait on someone else (a pipe, a terminal): the input is not a regular file.
    public let mayBlock: Bool
    /// Bytes of input consumed so far.
    public var bytesRead: Int { source.bytesRead }
    /// The input's encoding (known once the header has been read).
    public var encoding: SourceEncoding { source.encoding ?? .utf8 }
    /// The delimiter the input is read with.
    public let delimiter: UInt8
    /// The delimiter a first line `sep=X` named; that line is not a record.
    public private(set) var delimiterHint: UInt8?
    /// That line as messages quote it (`sep=;`).
    public var hintLine: String? { delimiterHint.map { "sep=\(Character(Unicode.Scalar($0)))" } }
    /// Header names given more than once, each with the names its columns are read under
    /// (`Notes` → `Notes`, `Notes_2`).
    public private(set) var duplicateNames: [String: [String]] = [:]
    /// The header's line: 1, or 2 below a `sep=` line.
    public private(set) var headerLine = 1

    private let source: LineSource
    private let parser: LibCSVParser
    private let options: ReaderOptions
    private let name: String
    @exclusivity(unchecked) private var nextLineNumber = 1
    /// Raw bytes of the record in progress when it spans lines; `pendingFirstLine` is its first line.
    private var pending: [UInt8] = []
    private var pendingFirstLine = 0
    @exclusivity(unchecked) private var finished = false
    @exclusivity(unchecked) private var checkedRecords = 0

    /// Opens `path` (`-` reads standard input) and reads the header row.
    /// - Parameter name: how errors name the input.
    public init(path: String, options: ReaderOptions, name: String? = nil) throws {
        self.name = name ?? path
        self.options = options
        if path == "-" {
            source = LineSource(
                input: RawInput(fd: 0, gzip: false, closeOnDeinit: false), encoding: options.encoding)
            var info = stat()
            mayBlock = fstat(0, &info) != 0 || (info.st_mode & S_IFMT) != S_IFREG
        } else {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw ImportError.system(.unreadableInput, "cannot open the input", file: path)
            }
            var info = stat()
            if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
                close(fd)
                throw ImportError(.unreadableInput, "the input is a directory, expected a CSV file", file: path)
            }
            mayBlock = (info.st_mode & S_IFMT) != S_IFREG
            // A compressed file is decompressed ahead on a thread of its own (a third of the
            // reader's time otherwise); a plain one is not: its read is a copy, cheaper than a
            // third thread competing for the cores (measured: 4 % slower on two cores).
            let gzip = RawInput.isGzip(path)
            source = LineSource(
                input: RawInput(fd: fd, gzip: gzip, closeOnDeinit: true, readAhead: gzip && !mayBlock),
                encoding: options.encoding)
        }
        source.maxLineBytes = options.maxRecordBytes
        if let line = try source.peekLine(limit: 7), let hint = Self.delimiterHint(line.text) {
            source.consume(line.length)
            delimiterHint = hint
            nextLineNumber = 2
        }
        delimiter = options.delimiterFromHint ? delimiterHint ?? options.delimiter : options.delimiter
        parser = LibCSVParser(
            delimiter: delimiter, quote: options.quote, maxFields: options.maxColumns,
            blockBytes: options.blockBytes)
        try readHeader()
    }

    private func readHeader() throws {
        // The header is the first record; a malformed first line is fatal (no columns to map).
        while parser.collector.count == 0 {
            guard try advance() else { break }
            if let rejection = parser.collector.rejections.first {
                throw ImportError(
                    .unreadableInput, "the header row cannot be parsed: \(rejection.message)",
                    file: name, line: rejection.line)
            }
        }
        let block = parser.collector.block
        guard block.count > 0 else {
            throw ImportError(.unreadableInput, "the input is empty, expected a header row", file: name)
        }
        if let columns = parser.collector.overflowed[0] {
            throw ImportError(
                .unreadableInput,
                "the first row has \(columns) fields, more than the \(options.maxColumns) source.max_columns allows",
                file: name, line: block.lines[0])
        }
        if options.hasHeader {
            (header, duplicateNames) = HeaderNames.unique(block.strings(0))
            headerLine = block.lines[0]
            _ = parser.collector.takeBlock()
            checkedRecords = 0
            rowsRead = 0
        } else {
            header = (1...block.fieldCount(0)).map(String.init)
            rowsRead = 1
            checkedRecords = 1
        }
        parser.collector.expectedFields = header.count
        parser.collector.mismatches = 0
    }

    /// The delimiter a first line names (`sep=;`, as Excel writes it, also in quotes), else nil.
    static func delimiterHint(_ line: [UInt8]) -> UInt8? {
        var text = line[...]
        if text.count == 7, text.first == UInt8(ascii: "\""), text.last == UInt8(ascii: "\"") {
            text = text.dropFirst().dropLast()
        }
        guard text.count == 5, String(decoding: text.prefix(4), as: UTF8.self).lowercased() == "sep=",
            let hint = text.last, hint < 0x80, hint != 0x0A, hint != 0x0D, hint != UInt8(ascii: "\"")
        else { return nil }
        return hint
    }

    /// The next block of records, or nil at the end of the input. A read that fails names the file
    /// and the line it was reading.
    public func nextBlock() throws -> RecordBlock? {
        do {
            return try readBlock()
        } catch var error as ImportError where error.file == nil {
            error.file = name
            error.line = nextLineNumber
            throw error
        }
    }

    private func readBlock() throws -> RecordBlock? {
        // A block is handed on only between records: the fields of a record in progress (a quoted
        // field spanning lines) are already in it.
        while parser.inRecord
            || (parser.collector.byteCount < options.blockBytes && parser.collector.count < 65_536)
        {
            guard try advance() else { break }
        }
        // A line can end records and then break (a record ended by a lone `\r`, then a stray quote):
        // those records are checked before the block is handed on.
        checkRecords()
        guard parser.collector.count > 0 || !parser.collector.rejections.isEmpty else { return nil }
        checkedRecords = 0
        return parser.collector.takeBlock()
    }

    /// Feeds one physical line to libcsv. Returns false at the end of the input.
    private func advance() throws -> Bool {
        if finished { return false }
        guard let line = try source.nextLine() else {
            let recordsBefore = parser.collector.count
            guard parser.finish() else {
                malformed(current: nil, message: "a quoted field is never closed before the end of the file")
                return true
            }
            // A last record without a line end: its text is all in `pending`.
            if parser.collector.count == recordsBefore + 1 {
                pending.withUnsafeBytes { keepOriginal($0, continuing: false, always: true) }
            }
            pending.removeAll(keepingCapacity: true)
            checkRecords()
            finished = true
            return false
        }
        let lineNumber = nextLineNumber
        nextLineNumber += 1
        if let skipped = source.skippedLength {
            overlong(lineNumber, length: skipped)
            return true
        }
        let continuing = parser.inRecord
        if !continuing { parser.collector.recordLine = lineNumber }
        let recordsBefore = parser.collector.count
        if let offset = parser.parse(line) {
            malformed(current: line, message: syntaxMessage(line, offset, lineNumber))
            return true
        }
        if parser.inRecord {
            if !continuing {
                pending.removeAll(keepingCapacity: true)
                pendingFirstLine = line.count
            }
            pending.appendBytes(line)
            if pending.count > options.maxRecordBytes {
                malformed(
                    current: nil,
                    message: "a quoted field runs past \(options.maxRecordBytes) bytes without its closing quote")
            }
        } else {
            if parser.collector.count == recordsBefore + 1 { keepOriginal(line, continuing: continuing) }
            // The record's earlier lines belong to it alone: a later broken line must not take them.
            if continuing { pending.removeAll(keepingCapacity: true) }
            checkRecords()
        }
        return true
    }

    /// Keeps the text of the record just closed when its cells may differ from the values read:
    /// when its field bytes and delimiters do not add up to the line (quotes, or spaces libcsv
    /// trimmed), or it spans lines. Plain records, most of a file, cost a comparison.
    @inline(__always)
    private func keepOriginal(_ line: UnsafeRawBufferPointer, continuing: Bool, always: Bool = false) {
        var end = line.count
        while end > 0 && (line[end - 1] == 0x0A || line[end - 1] == 0x0D) { end -= 1 }
        let collector = parser.collector
        if !continuing && !always {
            let record = collector.lastRecord
            if record.bytes + record.fields - 1 == end { return }
        }
        collector.keepOriginal(pending: continuing ? pending : [], line: UnsafeRawBufferPointer(rebasing: line[..<end]))
    }

    /// A line longer than `maxRecordBytes`, read past: a `malformed_row` of its own, or, when a
    /// quoted field of the record in progress runs into it, of that record (its lines included).
    private func overlong(_ lineNumber: Int, length: Int) {
        let collector = parser.collector
        let limit = "more than the \(options.maxRecordBytes) bytes source.max_record_bytes allows"
        if parser.inRecord {
            let first = collector.recordLine
            let text = pending[..<pendingFirstLine].prefix { $0 != 0x0A && $0 != 0x0D }
            parser.reset()
            pending.removeAll(keepingCapacity: true)
            collector.rejections.append(
                Rejection(
                    line: first, code: .malformedRow, column: "",
                    message:
                        "a quoted field runs from line \(first) into line \(lineNumber), which is \(length) bytes long, \(limit); lines \(first) to \(lineNumber) are skipped",
                    fields: [String(decoding: text, as: UTF8.self)]))
        } else {
            collector.rejections.append(
                Rejection(
                    line: lineNumber, code: .malformedRow, column: "",
                    message: "line \(lineNumber) is \(length) bytes long, \(limit); it is skipped", fields: [""]))
        }
        rowsRead += 1
    }

    private func syntaxMessage(_ line: UnsafeRawBufferPointer, _ offset: Int, _ lineNumber: Int) -> String {
        let byte = offset < line.count ? line[offset] : 0
        let at = "on line \(lineNumber)"
        switch byte {
        case options.quote ?? 0:
            return "unexpected quote \(at), expected quotes only around a whole field"
        case 0x0A, 0x0D:
            return "line end \(at) right after a closing quote was not expected"
        default:
            return "unexpected character after a closing quote \(at), expected a delimiter or the end of the line"
        }
    }

    /// Turns the record in progress into a `malformed_row` made of its first line, and queues the
    /// lines after that one to be parsed again.
    private func malformed(current: UnsafeRawBufferPointer?, message: String) {
        let collector = parser.collector
        let firstLine: [UInt8]
        var rest: [UInt8] = []
        if pending.isEmpty {
            firstLine = current.map(Array.init) ?? []
        } else {
            firstLine = Array(pending[..<pendingFirstLine])
            rest = Array(pending[pendingFirstLine...])
            if let current { rest.appendBytes(current) }
        }
        parser.reset()
        pending.removeAll(keepingCapacity: true)
        source.unread(rest)
        nextLineNumber = collector.recordLine + 1
        var text = firstLine[...]
        while let last = text.last, last == 0x0A || last == 0x0D { text = text.dropLast() }
        collector.rejections.append(
            Rejection(
                line: collector.recordLine, code: .malformedRow, column: "", message: message,
                fields: [String(decoding: text, as: UTF8.self)]))
        rowsRead += 1
    }

    /// Checks the field count of the records completed since the last check. A record short of
    /// fields is read with the missing trailing fields empty (exports often drop empty trailing
    /// columns); extra fields are dropped when they are all empty (a trailing delimiter). Any
    /// other count is a `malformed_row`.
    private func checkRecords() {
        guard checkedRecords < parser.collector.count else { return }
        let fresh = checkedRecords..<parser.collector.count
        // The callbacks counted the records whose field count is off: most blocks have none.
        if !header.isEmpty, parser.collector.mismatches > 0 || parser.collector.hasOverflowed {
            let expected = header.count
            let overflowed = parser.collector.overflowed
            let block = parser.collector.block
            var kept = block
            kept.truncate(toRecords: checkedRecords)
            for record in fresh {
                if let count = overflowed[record] {
                    kept.rejections.append(
                        Rejection(
                            line: block.lines[record], code: .malformedRow, column: "",
                            message:
                                "expected \(expected) fields as in the header, found \(count), more than the \(options.maxColumns) source.max_columns allows",
                            fields: []))
                    continue
                }
                var fields = block.strings(record)
                if fields.count < expected {
                    paddedRows += 1
                    fields += Array(repeating: "", count: expected - fields.count)
                } else if fields.count > expected && fields[expected...].allSatisfy({ $0.trimmingSpaces.isEmpty }) {
                    fields.removeSubrange(expected...)
                }
                if fields.count == expected {
                    kept.append(fields: fields, line: block.lines[record])
                    if let text = block.originals.text(of: record) { kept.originals.append(text, for: kept.count - 1) }
                } else {
                    kept.rejections.append(
                        Rejection(
                            line: block.lines[record], code: .malformedRow, column: "",
                            message: "expected \(expected) fields as in the header, found \(fields.count)",
                            fields: block.originalCells(record)))
                }
            }
            parser.collector.block = kept
            if !overflowed.isEmpty { parser.collector.overflowed = [:] }
        }
        parser.collector.mismatches = 0
        rowsRead += fresh.count
        checkedRecords = parser.collector.count
    }
}

extension RecordBlock {
    /// Keeps only the first `records` records (rejections are left alone).
    mutating func truncate(toRecords records: Int) {
        let fieldCount = recordFieldStarts[records]
        fieldEnds.removeSubrange(fieldCount...)
        bytes.removeSubrange((fieldCount == 0 ? 0 : fieldEnds[fieldCount - 1])...)
        recordFieldStarts.removeSubrange((records + 1)...)
        lines.removeSubrange(records...)
        originals.removeRecords(from: records)
    }

    /// Appends a record given as strings.
    mutating func append(fields: [String], line: Int) {
        for field in fields {
            var field = field
            field.withUTF8 { appendField(UnsafeRawBufferPointer($0)) }
        }
        closeRecord(line: line)
    }
}
