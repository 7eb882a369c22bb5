import CLibCSV

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// libcsv in strict mode, delivering fields straight into a `RecordBlock`.
///
/// Confined to the reader's task: not `Sendable`. The reader feeds it one physical line at a time,
/// which is how it knows where every record starts and how it resynchronises after a malformed
/// record (libcsv reports no positions of its own, and its lenient mode swallows the rest of a
/// file after a stray quote).
final class LibCSVParser {
    /// A growable buffer of plain values that the callbacks write to without reference counting,
    /// uniqueness or exclusivity checks.
    struct Buffer<Element: BitwiseCopyable> {
        var base: UnsafeMutablePointer<Element>
        var count = 0
        var capacity: Int

        init(capacity: Int) {
            self.capacity = max(capacity, 16)
            base = .allocate(capacity: self.capacity)
        }

        @inline(__always)
        mutating func append(_ element: Element) {
            if count == capacity { grow(count + 1) }
            base[count] = element
            count += 1
        }

        @inline(__always)
        mutating func append(_ source: UnsafeRawPointer, _ length: Int) where Element == UInt8 {
            if count + length > capacity { grow(count + length) }
            UnsafeMutableRawPointer(base + count).copyMemory(from: source, byteCount: length)
            count += length
        }

        mutating func grow(_ needed: Int) {
            var bigger = capacity * 2
            while bigger < needed { bigger *= 2 }
            let moved = UnsafeMutablePointer<Element>.allocate(capacity: bigger)
            moved.update(from: base, count: count)
            base.deallocate()
            base = moved
            capacity = bigger
        }

        var elements: UnsafeBufferPointer<Element> { UnsafeBufferPointer(start: base, count: count) }

        /// Replaces the contents with `elements`.
        mutating func load(_ elements: [Element]) {
            count = 0
            elements.withUnsafeBufferPointer { source in
                if source.count > capacity { grow(source.count) }
                if let start = source.baseAddress { base.update(from: start, count: source.count) }
            }
            count = elements.count
        }

        func free() { base.deallocate() }
    }

    /// What the callbacks write to: the block being filled, in buffers of its own (a field costs a
    /// copy of its bytes and a store, a record two stores), and the line its next record starts on.
    /// `takeBlock` turns them into a `RecordBlock`: one copy per array per block. The block only
    /// ever holds whole records: the fields of a record in progress follow its last record.
    struct Sink {
        /// Field bytes, back to back.
        var bytes: Buffer<UInt8>
        /// End offset in `bytes` of every field.
        var fieldEnds: Buffer<Int>
        /// Index into `fieldEnds` of the first field of each record, plus one entry for the next.
        var recordFieldStarts: Buffer<Int>
        /// Physical line each record starts on.
        var lines: Buffer<Int>
        var rejections: [Rejection] = []
        var recordLine = 1
        /// Fields kept per record: past it a record's fields are only counted (a line of ten
        /// million delimiters must not become ten million fields in memory).
        var maxFields = Int.max
        var fieldsInRecord = 0
        var droppedFields = 0
        /// The field count every record should have (the header's); 0 until it is known.
        var expectedFields = 0
        /// Records closed since the reader last checked that did not have `expectedFields` fields:
        /// while it is 0 the reader skips looking at field counts.
        var mismatches = 0
        /// Records of the block that had more fields than `maxFields`: index → how many they had.
        var overflowed: [Int: Int] = [:]
        /// The text of the block's records whose cells may differ from their bytes in the input
        /// (quoted, or with spaces around a field), as `OriginalTexts` holds them: their record
        /// indices, the end of each text, the texts back to back. See `RecordBlock.originalCells`.
        var originalRecords: Buffer<Int>
        var originalEnds: Buffer<Int>
        var originalBytes: Buffer<UInt8>
        var delimiter = UInt8(ascii: ",")
        var quote: UInt8 = 0

        init(reservingBytes: Int) {
            bytes = Buffer(capacity: reservingBytes)
            fieldEnds = Buffer(capacity: reservingBytes / 8)
            recordFieldStarts = Buffer(capacity: reservingBytes / 48)
            recordFieldStarts.append(0)
            lines = Buffer(capacity: reservingBytes / 48)
            originalRecords = Buffer(capacity: 64)
            originalEnds = Buffer(capacity: 64)
            originalBytes = Buffer(capacity: 4096)
        }

        func free() {
            bytes.free()
            fieldEnds.free()
            recordFieldStarts.free()
            lines.free()
            originalRecords.free()
            originalEnds.free()
            originalBytes.free()
        }

        /// Records closed so far.
        var count: Int { lines.count }

        @inline(__always)
        mutating func appendField(_ data: UnsafeMutableRawPointer?, _ length: Int) {
            if fieldsInRecord == maxFields {
                droppedFields += 1
                return
            }
            fieldsInRecord += 1
            if length > 0, let data { bytes.append(data, length) }
            fieldEnds.append(bytes.count)
        }

        @inline(__always)
        mutating func closeRecord() {
            let fields = fieldsInRecord + droppedFields
            if droppedFields > 0 { overflowed[count] = fields }
            if fields != expectedFields { mismatches += 1 }
            recordFieldStarts.append(fieldEnds.count)
            lines.append(recordLine)
            fieldsInRecord = 0
            droppedFields = 0
        }

        /// Fields of the closed records (those after them belong to the record in progress).
        var closedFields: Int { recordFieldStarts.base[recordFieldStarts.count - 1] }
        /// Bytes of the closed records' fields.
        var closedBytes: Int { closedFields == 0 ? 0 : fieldEnds.base[closedFields - 1] }

        /// Keeps the text of the record closed last: `pending` (its earlier lines) then `line`.
        mutating func keepOriginal(pending: [UInt8], line: UnsafeRawBufferPointer) {
            pending.withUnsafeBytes { if let base = $0.baseAddress { originalBytes.append(base, $0.count) } }
            if let base = line.baseAddress { originalBytes.append(base, line.count) }
            originalRecords.append(count - 1)
            originalEnds.append(originalBytes.count)
        }

        /// Trims the spaces and tabs around the values of the record closed last, which libcsv
        /// keeps inside quotes (around unquoted values it drops them itself): values are trimmed
        /// quoted or not. Only records kept by `keepOriginal` can hold a quoted value, so only
        /// those are trimmed here. Does nothing while a record is in progress after it.
        mutating func trimLastRecord() {
            let first = recordFieldStarts.base[recordFieldStarts.count - 2]
            let end = recordFieldStarts.base[recordFieldStarts.count - 1]
            guard fieldEnds.count == end else { return }
            var write = first == 0 ? 0 : fieldEnds.base[first - 1]
            var read = write
            for field in first..<end {
                var start = read
                var stop = fieldEnds.base[field]
                read = stop
                while start < stop && (bytes.base[start] == 0x20 || bytes.base[start] == 0x09) { start += 1 }
                while stop > start && (bytes.base[stop - 1] == 0x20 || bytes.base[stop - 1] == 0x09) { stop -= 1 }
                if start != write && stop > start { memmove(bytes.base + write, bytes.base + start, stop - start) }
                write += stop - start
                fieldEnds.base[field] = write
            }
            bytes.count = write
        }

        /// Field bytes and fields of the record closed last.
        @inline(__always)
        var lastRecord: (bytes: Int, fields: Int) {
            let first = recordFieldStarts.base[recordFieldStarts.count - 2]
            let end = recordFieldStarts.base[recordFieldStarts.count - 1]
            let start = first == 0 ? 0 : fieldEnds.base[first - 1]
            return ((end == 0 ? 0 : fieldEnds.base[end - 1]) - start, end - first)
        }

        /// Drops the fields of the record in progress.
        mutating func discardOpenRecord() {
            bytes.count = closedBytes
            fieldEnds.count = closedFields
            fieldsInRecord = 0
            droppedFields = 0
        }

        /// The records closed so far as a block (a copy; the sink keeps them).
        var block: RecordBlock {
            var block = RecordBlock()
            block.bytes = Array(UnsafeBufferPointer(start: bytes.base, count: closedBytes))
            block.fieldEnds = Array(UnsafeBufferPointer(start: fieldEnds.base, count: closedFields))
            block.recordFieldStarts = Array(recordFieldStarts.elements)
            block.lines = Array(lines.elements)
            block.rejections = rejections
            if originalRecords.count > 0 {
                block.originals.records = Array(originalRecords.elements)
                block.originals.ends = Array(originalEnds.elements)
                block.originals.bytes = Array(originalBytes.elements)
            }
            block.delimiter = delimiter
            block.quote = quote
            return block
        }

        /// Hands the closed records and the rejections on and starts an empty block (the record in
        /// progress, if any, moves to its front).
        mutating func takeBlock() -> RecordBlock {
            let block = block
            let openFields = fieldEnds.count - closedFields
            let openStart = closedBytes
            let openBytes = bytes.count - openStart
            if openFields > 0 {
                memmove(bytes.base, bytes.base + openStart, openBytes)
                for field in 0..<openFields {
                    fieldEnds.base[field] = fieldEnds.base[fieldEnds.count - openFields + field] - openStart
                }
            }
            bytes.count = openBytes
            fieldEnds.count = openFields
            recordFieldStarts.count = 1
            lines.count = 0
            rejections = []
            overflowed = [:]
            originalRecords.count = 0
            originalEnds.count = 0
            originalBytes.count = 0
            return block
        }

        /// Replaces the closed records with `block`'s (the reader's corrections); nothing may be in progress.
        mutating func load(_ block: RecordBlock) {
            bytes.load(block.bytes)
            fieldEnds.load(block.fieldEnds)
            recordFieldStarts.load(block.recordFieldStarts)
            lines.load(block.lines)
            rejections = block.rejections
            originalRecords.load(block.originals.records)
            originalEnds.load(block.originals.ends)
            originalBytes.load(block.originals.bytes)
        }
    }

    /// Where completed records go. The callbacks reach it through a plain pointer (no reference
    /// counting, no exclusivity checks per field).
    final class Collector {
        let storage: UnsafeMutablePointer<Sink>

        init(reservingBytes: Int) {
            storage = .allocate(capacity: 1)
            storage.initialize(to: Sink(reservingBytes: reservingBytes))
        }

        deinit {
            storage.pointee.free()
            storage.deinitialize(count: 1)
            storage.deallocate()
        }

        /// Records closed so far in the block being filled.
        var count: Int { storage.pointee.count }
        /// Field bytes of the block being filled.
        var byteCount: Int { storage.pointee.bytes.count }

        /// The block being filled, as a copy; setting it replaces its records and rejections.
        var block: RecordBlock {
            get { storage.pointee.block }
            set { storage.pointee.load(newValue) }
        }

        /// Hands the block on and starts an empty one.
        func takeBlock() -> RecordBlock { storage.pointee.takeBlock() }

        /// Rows rejected so far for the block being filled.
        var rejections: [Rejection] {
            _read { yield storage.pointee.rejections }
            _modify { yield &storage.pointee.rejections }
        }

        /// Records of the block past the field cap: index → how many fields they had.
        var overflowed: [Int: Int] {
            get { storage.pointee.overflowed }
            set { storage.pointee.overflowed = newValue }
        }

        /// Keeps the text of the record closed last and trims its values (`Sink.keepOriginal`,
        /// `Sink.trimLastRecord`).
        func keepOriginal(pending: [UInt8], line: UnsafeRawBufferPointer) {
            storage.pointee.keepOriginal(pending: pending, line: line)
            storage.pointee.trimLastRecord()
        }

        /// See `Sink.lastRecord`.
        @inline(__always)
        var lastRecord: (bytes: Int, fields: Int) { storage.pointee.lastRecord }

        /// Whether any record of the block went past the field cap (no copy of `overflowed`).
        var hasOverflowed: Bool { !storage.pointee.overflowed.isEmpty }

        /// See `Sink.expectedFields`.
        var expectedFields: Int {
            get { storage.pointee.expectedFields }
            set { storage.pointee.expectedFields = newValue }
        }

        /// See `Sink.mismatches`.
        var mismatches: Int {
            get { storage.pointee.mismatches }
            set { storage.pointee.mismatches = newValue }
        }

        /// Line where the record being parsed started.
        var recordLine: Int {
            get { storage.pointee.recordLine }
            set { storage.pointee.recordLine = newValue }
        }
    }

    private let parser: UnsafeMutablePointer<csv_parser>
    let collector: Collector

    /// - Parameters:
    ///   - delimiter: the field separator.
    ///   - quote: the quote character, or `nil` when `"` is plain data.
    ///   - blockBytes: the field bytes a block usually reaches before it is handed on.
    init(delimiter: UInt8, quote: UInt8?, maxFields: Int = Int.max, blockBytes: Int = 128 << 10) {
        collector = Collector(reservingBytes: blockBytes + blockBytes / 8)
        collector.storage.pointee.maxFields = maxFields
        collector.storage.pointee.delimiter = delimiter
        collector.storage.pointee.quote = quote ?? 0
        parser = .allocate(capacity: 1)
        initialise()
    }

    deinit {
        csv_free(parser)
        parser.deallocate()
    }

    private func initialise() {
        let sink = collector.storage.pointee
        _ = Self.start(parser, delimiter: sink.delimiter, quote: sink.quote, keepingSpaces: false)
    }

    /// Starts a strict libcsv parser. With `keepingSpaces`, spaces and tabs around unquoted values
    /// stay part of them (a space function saying no byte is one); otherwise libcsv's own inline
    /// test drops them, which a space function of ours would make a call per byte.
    private static func start(
        _ parser: UnsafeMutablePointer<csv_parser>, delimiter: UInt8, quote: UInt8, keepingSpaces: Bool
    ) -> Bool {
        guard csv_init(parser, UInt8(CSV_STRICT | CSV_STRICT_FINI)) == 0 else { return false }
        csv_set_delim(parser, delimiter)
        csv_set_quote(parser, quote)
        if keepingSpaces { csv_set_space_func(parser) { _ in 0 } }
        return true
    }

    /// True while a record has begun and not ended (e.g. inside a quoted field spanning lines).
    var inRecord: Bool { parser.pointee.pstate != 0 }

    /// Parses `bytes`; returns `nil` when all were consumed, or the offset of a syntax error.
    @inline(__always)
    func parse(_ bytes: UnsafeRawBufferPointer) -> Int? {
        let consumed = csv_parse(parser, bytes.baseAddress, bytes.count, onField, onRecord, collector.storage)
        return consumed == bytes.count ? nil : consumed
    }

    /// Ends the input: delivers a last record without a line end. Returns false when the input
    /// ends inside a quoted field.
    func finish() -> Bool {
        csv_fini(parser, onField, onRecord, collector.storage) == 0
    }

    /// Forgets a broken record: drops its fields and restarts the tokenizer.
    func reset() {
        collector.storage.pointee.discardOpenRecord()
        csv_free(parser)
        initialise()
    }
}

extension LibCSVParser {
    /// The cells of one record's text exactly as written: spaces and tabs around unquoted values
    /// kept, quoted values unquoted. Nil when the text is not exactly one record in strict CSV
    /// read that way (spaces between a closing quote and the delimiter, say).
    static func cells(of text: [UInt8], delimiter: UInt8, quote: UInt8) -> [String]? {
        final class Cells {
            var values: [String] = []
            var records = 0
        }
        let parser = UnsafeMutablePointer<csv_parser>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard start(parser, delimiter: delimiter, quote: quote, keepingSpaces: true) else { return nil }
        defer { csv_free(parser) }
        let cells = Cells()
        let context = Unmanaged.passUnretained(cells).toOpaque()
        let onCell: @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeMutableRawPointer?) -> Void = {
            data, length, context in
            let cells = Unmanaged<Cells>.fromOpaque(context!).takeUnretainedValue()
            let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : length)
            cells.values.append(String(decoding: bytes, as: UTF8.self))
        }
        let onRow: @convention(c) (Int32, UnsafeMutableRawPointer?) -> Void = { _, context in
            Unmanaged<Cells>.fromOpaque(context!).takeUnretainedValue().records += 1
        }
        let consumed = text.withUnsafeBytes { csv_parse(parser, $0.baseAddress, $0.count, onCell, onRow, context) }
        guard consumed == text.count, csv_fini(parser, onCell, onRow, context) == 0, cells.records == 1 else {
            return nil
        }
        return withExtendedLifetime(cells) { cells.values }
    }
}

private let onField: @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeMutableRawPointer?) -> Void = {
    data, length, context in
    let sink = context!.assumingMemoryBound(to: LibCSVParser.Sink.self)
    sink.pointee.appendField(data, length)
}

private let onRecord: @convention(c) (Int32, UnsafeMutableRawPointer?) -> Void = { _, context in
    let sink = context!.assumingMemoryBound(to: LibCSVParser.Sink.self)
    sink.pointee.closeRecord()
}
