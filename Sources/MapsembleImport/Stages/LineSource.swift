#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads a file descriptor in large blocks and hands out physical lines (each with its `\n`),
/// without copying them. Memory is one buffer of `blockSize` plus the longest line seen.
///
/// Lines are always UTF-8: a file in another encoding is transcoded as it is read, and the
/// encoding is found from the first block when not given. A byte-order mark is dropped.
///
/// Used by one reader on one task at a time. The state `nextLine` touches per line is not checked
/// for exclusive access at run time (`@exclusivity(unchecked)`): nothing accesses it but the
/// reader's own calls, and the checks were a few percent of the reader's time.
final class LineSource {
    @exclusivity(unchecked) private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    @exclusivity(unchecked) private var start = 0
    @exclusivity(unchecked) private var end = 0
    @exclusivity(unchecked) private var atEOF = false
    private let input: RawInput
    private let blockSize: Int
    /// Bytes of the input file consumed so far (compressed bytes for `.gz`).
    var bytesRead: Int { input.offset }
    /// The input's encoding: as given, or found from the first block once it is read.
    private(set) var encoding: SourceEncoding?
    /// Whether the first block (where a byte-order mark would be) has been read.
    private var started = false
    /// For encodings other than UTF-8: the raw bytes of a read, and what turns them into UTF-8.
    private var raw: UnsafeMutableRawPointer?
    private var transcoder: Transcoder?
    /// A line longer than this is not handed out whole: it is read past to its end (memory stays
    /// bounded) and `nextLine` returns an empty line with `skippedLength` set.
    var maxLineBytes = Int.max
    /// The length of the line just skipped for being longer than `maxLineBytes`, else nil.
    @exclusivity(unchecked) private(set) var skippedLength: Int?

    /// - Parameter encoding: nil finds it from the first block (`SourceEncoding.detect`).
    init(input: RawInput, blockSize: Int = 1 << 20, encoding: SourceEncoding? = nil) {
        self.input = input
        self.blockSize = blockSize
        self.encoding = encoding
        capacity = blockSize * 2
        buffer = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        buffer.deallocate()
        raw?.deallocate()
    }

    /// The next physical line including its terminating `\n` (the last line may lack it), or nil
    /// at the end of the input. Valid until the next call.
    func nextLine() throws -> UnsafeRawBufferPointer? {
        skippedLength = nil
        var scanFrom = start
        while true {
            if end > scanFrom, let newline = memchr(buffer + scanFrom, 0x0A, end - scanFrom) {
                let lineEnd = buffer.distance(to: newline) + 1
                let line = UnsafeRawBufferPointer(start: buffer + start, count: lineEnd - start)
                start = lineEnd
                return line
            }
            if atEOF {
                guard end > start else { return nil }
                let line = UnsafeRawBufferPointer(start: buffer + start, count: end - start)
                start = end
                return line
            }
            let scanned = end - start
            if scanned > maxLineBytes { return try skipLine() }
            try fill()
            // `fill` moved the unread bytes to the front.
            scanFrom = start + scanned
        }
    }

    /// The first unread line without its line end when it is at most `limit` bytes long, left
    /// unread (`consume` takes it); nil when it is longer or the input is empty.
    func peekLine(limit: Int) throws -> (text: [UInt8], length: Int)? {
        while true {
            let available = end - start
            if let newline = memchr(buffer + start, 0x0A, min(available, limit + 2)) {
                let length = buffer.distance(to: newline) + 1 - start
                var text = Array(UnsafeRawBufferPointer(start: buffer + start, count: length - 1))
                if text.last == 0x0D { text.removeLast() }
                return text.count <= limit ? (text, length) : nil
            }
            if available > limit + 1 { return nil }
            if atEOF {
                return available > 0 && available <= limit
                    ? (Array(UnsafeRawBufferPointer(start: buffer + start, count: available)), available) : nil
            }
            try fill()
        }
    }

    /// Drops `count` unread bytes (a line `peekLine` returned).
    func consume(_ count: Int) { start += count }

    /// Reads past the rest of an overlong line, keeping none of it.
    private func skipLine() throws -> UnsafeRawBufferPointer {
        var length = end - start
        start = end
        while !atEOF {
            try fill()
            if let newline = memchr(buffer + start, 0x0A, end - start) {
                let lineEnd = buffer.distance(to: newline) + 1
                length += lineEnd - start
                start = lineEnd
                break
            }
            length += end - start
            start = end
        }
        skippedLength = length
        return UnsafeRawBufferPointer(start: buffer, count: 0)
    }

    /// Puts bytes back in front of the unread input (used to re-parse after a malformed record).
    func unread(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        let pending = end - start
        let needed = bytes.count + pending
        let newCapacity = max(capacity, needed + blockSize)
        let newBuffer = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        bytes.withUnsafeBytes { newBuffer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        (newBuffer + bytes.count).copyMemory(from: buffer + start, byteCount: pending)
        buffer.deallocate()
        buffer = newBuffer
        capacity = newCapacity
        start = 0
        end = needed
    }

    /// Moves unread bytes to the front, grows the buffer if a line is longer than it, and reads.
    private func fill() throws {
        let pending = end - start
        if start > 0 {
            if pending > 0 { buffer.copyMemory(from: buffer + start, byteCount: pending) }
            start = 0
            end = pending
        }
        let room = started && transcoder == nil ? blockSize : Transcoder.maxOutput(blockSize)
        if capacity - end < room {
            let newCapacity = max(capacity * 2, end + room)
            let newBuffer = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
            newBuffer.copyMemory(from: buffer, byteCount: end)
            buffer.deallocate()
            buffer = newBuffer
            capacity = newCapacity
        }
        if started && transcoder == nil {
            // UTF-8: straight into the line buffer.
            let count = try readSome(into: buffer + end, blockSize)
            end += count
            return
        }
        // The first block, and every block of another encoding: read aside, then decode.
        let scratch = raw ?? .allocate(byteCount: blockSize, alignment: 16)
        raw = scratch
        var count = try readSome(into: scratch, blockSize)
        if !started {
            // A pipe hands out what it has: fill the first block, so the encoding is found from a
            // real sample rather than a few bytes.
            while count > 0 && count < blockSize {
                let more = try readSome(into: scratch + count, blockSize - count)
                if more == 0 { break }
                count += more
            }
        }
        var input = UnsafeRawBufferPointer(start: scratch, count: count)
        if !started {
            started = true
            let found = encoding ?? SourceEncoding.detect(input)
            encoding = found
            input = UnsafeRawBufferPointer(rebasing: input[found.byteOrderMarkLength(input)...])
            if found != .utf8 { transcoder = Transcoder(found) }
        }
        if transcoder == nil {
            if let base = input.baseAddress { (buffer + end).copyMemory(from: base, byteCount: input.count) }
            end += input.count
        } else {
            end += transcoder!.transcode(
                input, into: (buffer + end).assumingMemoryBound(to: UInt8.self), final: atEOF)
        }
    }

    /// One read of up to `limit` bytes; 0 at the end of the input.
    private func readSome(into destination: UnsafeMutableRawPointer, _ limit: Int) throws -> Int {
        let count = try input.read(into: destination, limit)
        if count == 0 { atEOF = true }
        return count
    }
}
