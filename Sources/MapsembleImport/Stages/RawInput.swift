import CGzip
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An input's bytes as stored or, for a `.gz` file, as decompressed on the fly (zlib), so a
/// compressed drop is read in one pass without being unpacked to disk first.
///
/// With `readAhead`, a thread of its own reads and decompresses the next megabytes while the
/// caller parses the ones before: the reader's thread, the pipeline's busiest, then only copies.
final class RawInput {
    private let source: Source
    private let closeOnDeinit: Bool
    private var ahead: ReadAhead?
    /// Bytes of the file itself consumed so far (compressed bytes for `.gz`): for progress.
    private(set) var offset = 0

    /// Whether `path` names a gzip file (by its extension).
    static func isGzip(_ path: String) -> Bool { path.lowercased().hasSuffix(".gz") }

    /// - Parameter readAhead: read on a thread of its own, up to two chunks ahead (for a regular
    ///   file: a pipe's reads can wait on its writer, and the reader reads those off the pool).
    init(fd: Int32, gzip: Bool, closeOnDeinit: Bool, readAhead: Bool = false) {
        self.closeOnDeinit = closeOnDeinit
        // gzdopen takes the descriptor over: `gzclose` closes it. A duplicate keeps the caller's.
        let gz = gzip ? gzdopen(closeOnDeinit ? fd : dup(fd), "rb") : nil
        if let gz { gzbuffer(gz, 1 << 20) }
        source = Source(fd: fd, gz: gz)
        if readAhead { ahead = ReadAhead(source: source) }
    }

    /// Copies standard input to a new temporary file in `$TMPDIR` (mode 0600, removed from its
    /// folder at once: nothing is left behind however the process ends) and returns its
    /// descriptor, for `rewound(_:)` to read it from the start as often as needed.
    static func spoolStandardInput() throws -> Int32 {
        let directory = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((directory + "/mapsemble-import-stdin-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        func failure(_ reason: String) -> ImportError {
            ImportError(
                .unreadableInput, "cannot keep standard input in \(directory) to read it twice: \(reason)",
                file: "stdin")
        }
        guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let input = Self(fd: 0, gzip: false, closeOnDeinit: false)
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        do {
            while true {
                let count = try input.read(into: buffer, chunk)
                guard count > 0 else { break }
                var written = 0
                while written < count {
                    let result = write(fd, buffer + written, count - written)
                    guard result > 0 else {
                        throw failure(result < 0 ? String(cString: strerror(errno)) : "the disk is full")
                    }
                    written += result
                }
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// The spooled file read again from its first byte (a descriptor of its own).
    static func rewound(_ fd: Int32) -> RawInput {
        lseek(fd, 0, SEEK_SET)
        return RawInput(fd: dup(fd), gzip: false, closeOnDeinit: true)
    }

    /// Closes a descriptor `spoolStandardInput` returned.
    static func closeSpooled(_ fd: Int32) { close(fd) }

    /// Opens `path` for reading; nil with `errno` set when it cannot be opened.
    convenience init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        self.init(fd: fd, gzip: Self.isGzip(path), closeOnDeinit: true)
    }

    deinit {
        // The thread reading ahead stops before the descriptor it reads closes.
        ahead?.stop()
        if let gz = source.gz {
            gzclose(gz)
        } else if closeOnDeinit {
            close(source.fd)
        }
    }

    /// Reads up to `limit` bytes; 0 at the end. Throws with the reason on a read error.
    func read(into destination: UnsafeMutableRawPointer, _ limit: Int) throws -> Int {
        if let ahead {
            let (count, offset) = try ahead.take(into: destination, limit)
            self.offset = offset
            return count
        }
        let (count, offset) = try source.read(into: destination, limit, offset: offset)
        self.offset = offset
        return count
    }
    /// The first `count` bytes of `path` (decompressed for `.gz`), for sniffing.
    static func head(_ path: String, _ count: Int) -> [UInt8] {
        guard let input = RawInput(path: path) else { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let read = bytes.withUnsafeMutableBytes {
                (try? input.read(into: $0.baseAddress! + filled, count - filled)) ?? 0
            }
            if read <= 0 { break }
            filled += read
        }
        return Array(bytes.prefix(filled))
    }
}

/// `read(2)`, under a name the method above does not hide.
private func systemRead(_ fd: Int32, _ destination: UnsafeMutableRawPointer, _ limit: Int) -> Int {
    read(fd, destination, limit)
}

/// The descriptor or the zlib stream an input reads from.
private struct Source: @unchecked Sendable {  // used by one thread at a time
    let fd: Int32
    let gz: gzFile?

    /// One read of up to `limit` bytes, and the file offset after it (`offset` before it).
    func read(into destination: UnsafeMutableRawPointer, _ limit: Int, offset: Int) throws -> (Int, Int) {
        if let gz {
            let count = Int(gzread(gz, destination, UInt32(min(limit, Int(Int32.max)))))
            var code: Int32 = 0
            if count < 0 {
                let message = gzerror(gz, &code).map { String(cString: $0) } ?? "unknown"
                throw ImportError(.unreadableInput, "cannot decompress the input: \(message)")
            }
            // A stream cut short is no read error to zlib: the data before the cut, then 0, and
            // `Z_BUF_ERROR` for whoever asks. Taking that 0 for the end would import part of the
            // file as if it were all of it.
            if count == 0, gzerror(gz, &code) != nil, code == Z_BUF_ERROR {
                throw ImportError(
                    .unreadableInput,
                    "cannot decompress the input: it ends in the middle of its gzip stream (the file is cut short), expected the rest of it"
                )
            }
            return (count, Int(gzoffset(gz)))
        }
        while true {
            let count = systemRead(fd, destination, limit)
            if count < 0 {
                if errno == EINTR { continue }
                throw ImportError.system(.unreadableInput, "cannot read the input")
            }
            return (count, offset + count)
        }
    }
}

/// Reads a source on a thread of its own, a megabyte at a time, one chunk ahead of `take`: at most
/// two chunks exist, the one being taken from and the next (being filled, or full and waiting).
private final class ReadAhead {
    static let chunkSize = 1 << 20

    /// A megabyte of the input, and where the input stood after it was read.
    final class Chunk: @unchecked Sendable {  // one thread at a time: the reading thread, then (handed over) `take`'s
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: ReadAhead.chunkSize, alignment: 16)
        var count = 0
        var offset = 0

        deinit { bytes.deallocate() }
    }

    /// Filled chunks in order, at most one waiting: the thread waits for room before it allocates
    /// and fills the next. The last one is partial or empty (its offset is where the input ends).
    private let handoff = BoundedHandoff<Chunk>(capacity: 1)
    // `take`'s side: the chunk being taken from `position` on, and the input's offset after it.
    private var current: Chunk?
    private var position = 0
    private var offset = 0

    init(source: Source) {
        let handoff = handoff
        let size = Self.chunkSize
        handoff.startProducer(named: "mapsemble-import.read-ahead") {
            var offset = 0
            while true {
                try handoff.waitForRoom()
                let chunk = Chunk()
                var failure: (any Error)?
                // Fill the chunk (a pipe or a decompressor may hand out less than asked).
                while chunk.count < size {
                    do {
                        let (count, after) = try source.read(
                            into: chunk.bytes + chunk.count, size - chunk.count, offset: offset)
                        offset = after
                        if count == 0 { break }
                        chunk.count += count
                    } catch {
                        failure = error
                        break
                    }
                }
                chunk.offset = offset
                // The bytes read before a failure are taken before it is thrown.
                try handoff.put(chunk)
                if let failure { throw failure }
                if chunk.count < size { return }
            }
        }
    }

    /// Copies up to `limit` bytes of the next chunk; 0 at the end. Returns the input's offset.
    func take(into destination: UnsafeMutableRawPointer, _ limit: Int) throws -> (Int, Int) {
        while true {
            if let chunk = current {
                let count = min(limit, chunk.count - position)
                destination.copyMemory(from: chunk.bytes + position, byteCount: count)
                position += count
                if position == chunk.count {
                    // Let go of it: the thread fills the next one once the one waiting is taken.
                    current = nil
                    position = 0
                }
                return (count, chunk.offset)
            }
            guard let next = try handoff.take() else { return (0, offset) }
            offset = next.offset
            if next.count > 0 { current = next }
        }
    }

    /// Stops the thread and waits for it to end.
    func stop() {
        handoff.stop(waitingForProducer: true)
    }
}
