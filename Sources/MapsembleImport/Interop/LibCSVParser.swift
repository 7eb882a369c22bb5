import CLibCSV

/// libcsv in strict mode, delivering fields straight into a `RecordBlock`.
///
/// Confined to the reader's task: not `Sendable`. The reader feeds it one physical line at a time,
/// which is how it knows where every record starts and how it resynchronises after a malformed
/// record (libcsv reports no positions of its own, and its lenient mode swallows the rest of a
/// file after a stray quote).
final class LibCSVParser {
    /// What the callbacks write to: the block being filled and the line its next record starts on.
    ///
    /// A record's field bytes gather in `scratch` (a plain buffer, one `memcpy` per field) and join
    /// the block in one append when the record ends: the block only ever holds whole records.
    struct Sink {
        var block = RecordBlock()
        var recordLine = 1
        var scratch = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 16)
        var scratchCount = 0
        var scratchCapacity = 4096
        /// Fields kept per record: past it a record's fields are only counted (a line of ten
        /// million delimiters must not become ten million fields in memory).
        var maxFields = Int.max
        var fieldsInRecord = 0
        var droppedFields = 0
        /// Records of `block` that had more fields than `maxFields`: index → how many they had.
        var overflowed: [Int: Int] = [:]

        @inline(__always)
        mutating func appendField(_ data: UnsafeMutableRawPointer?, _ length: Int) {
            if fieldsInRecord == maxFields {
                droppedFields += 1
                return
            }
            fieldsInRecord += 1
            if length > 0, let data {
                if scratchCount + length > scratchCapacity { grow(scratchCount + length) }
                (scratch + scratchCount).copyMemory(from: data, byteCount: length)
                scratchCount += length
            }
            block.fieldEnds.append(block.bytes.count + scratchCount)
        }

        @inline(__always)
        mutating func closeRecord() {
            if droppedFields > 0 { overflowed[block.count] = fieldsInRecord + droppedFields }
            block.bytes.appendBytes(UnsafeRawBufferPointer(start: scratch, count: scratchCount))
            scratchCount = 0
            fieldsInRecord = 0
            droppedFields = 0
            block.closeRecord(line: recordLine)
        }

        mutating func grow(_ needed: Int) {
            var capacity = scratchCapacity * 2
            while capacity < needed { capacity *= 2 }
            let bigger = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            bigger.copyMemory(from: scratch, byteCount: scratchCount)
            scratch.deallocate()
            scratch = bigger
            scratchCapacity = capacity
        }
    }

    /// Where completed records go; the reader swaps the block out when it is full. The callbacks
    /// reach it through a plain pointer (no reference counting, no exclusivity checks per field).
    final class Collector {
        let storage: UnsafeMutablePointer<Sink>

        init() {
            storage = .allocate(capacity: 1)
            storage.initialize(to: Sink())
        }

        deinit {
            storage.pointee.scratch.deallocate()
            storage.deinitialize(count: 1)
            storage.deallocate()
        }

        var block: RecordBlock {
            _read { yield storage.pointee.block }
            _modify { yield &storage.pointee.block }
        }

        /// Records of `block` past the field cap: index → how many fields they had.
        var overflowed: [Int: Int] {
            get { storage.pointee.overflowed }
            set { storage.pointee.overflowed = newValue }
        }

        /// Line where the record being parsed started.
        var recordLine: Int {
            get { storage.pointee.recordLine }
            set { storage.pointee.recordLine = newValue }
        }
    }

    private let parser: UnsafeMutablePointer<csv_parser>
    private let delimiter: UInt8
    private let quote: UInt8
    let collector = Collector()

    /// - Parameters:
    ///   - delimiter: the field separator.
    ///   - quote: the quote character, or `nil` when `"` is plain data.
    init(delimiter: UInt8, quote: UInt8?, maxFields: Int = Int.max) {
        self.delimiter = delimiter
        self.quote = quote ?? 0
        parser = .allocate(capacity: 1)
        initialise()
        collector.storage.pointee.maxFields = maxFields
    }

    deinit {
        csv_free(parser)
        parser.deallocate()
    }

    private func initialise() {
        _ = csv_init(parser, UInt8(CSV_STRICT | CSV_STRICT_FINI))
        csv_set_delim(parser, delimiter)
        csv_set_quote(parser, quote)
        // libcsv's own test for spaces around fields (space or tab, never the delimiter) is inline;
        // a space function of ours would cost a call per byte.
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
        collector.storage.pointee.scratchCount = 0
        collector.storage.pointee.fieldsInRecord = 0
        collector.storage.pointee.droppedFields = 0
        collector.block.discardOpenRecord()
        csv_free(parser)
        initialise()
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
