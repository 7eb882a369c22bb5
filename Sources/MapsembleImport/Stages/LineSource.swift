#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads a file descriptor in large blocks and hands out physical lines (each with its `\n`),
/// without copying them. Memory is one buffer of `blockSize` plus the longest line seen.
final class LineSource {
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    private var start = 0
    private var end = 0
    private var atEOF = false
    private let fd: Int32
    private let closeOnDeinit: Bool
    private let blockSize: Int
    /// Bytes read from the descriptor so far.
    private(set) var bytesRead = 0
    /// Whether the byte-order mark at the very start has been looked at.
    private var bomChecked = false

    init(fd: Int32, closeOnDeinit: Bool, blockSize: Int = 1 << 20) {
        self.fd = fd
        self.closeOnDeinit = closeOnDeinit
        self.blockSize = blockSize
        capacity = blockSize * 2
        buffer = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        buffer.deallocate()
        if closeOnDeinit { close(fd) }
    }

    /// The next physical line including its terminating `\n` (the last line may lack it), or nil
    /// at the end of the input. Valid until the next call.
    func nextLine() throws -> UnsafeRawBufferPointer? {
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
            try fill()
            // `fill` moved the unread bytes to the front.
            scanFrom = start + scanned
        }
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
        if capacity - end < blockSize {
            let newCapacity = max(capacity * 2, end + blockSize)
            let newBuffer = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
            newBuffer.copyMemory(from: buffer, byteCount: end)
            buffer.deallocate()
            buffer = newBuffer
            capacity = newCapacity
        }
        while true {
            let count = read(fd, buffer + end, capacity - end)
            if count < 0 {
                if errno == EINTR { continue }
                throw ImportError(.unreadableInput, "cannot read the input: \(String(cString: strerror(errno)))")
            }
            if count == 0 { atEOF = true }
            end += count
            bytesRead += count
            break
        }
        if !bomChecked && (end >= 3 || atEOF) {
            bomChecked = true
            guard start == 0 && end == bytesRead else { return }
            let bytes = buffer.assumingMemoryBound(to: UInt8.self)
            if end >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { start = 3 }
        }
    }
}
