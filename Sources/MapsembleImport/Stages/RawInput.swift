import CGzip

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An input's bytes as stored or, for a `.gz` file, as decompressed on the fly (zlib), so a
/// compressed drop is read in one pass without being unpacked to disk first.
final class RawInput {
    private let fd: Int32
    private let gz: gzFile?
    private let closeOnDeinit: Bool
    /// Bytes of the file itself consumed so far (compressed bytes for `.gz`): for progress.
    private(set) var offset = 0

    /// Whether `path` names a gzip file (by its extension).
    static func isGzip(_ path: String) -> Bool { path.lowercased().hasSuffix(".gz") }

    init(fd: Int32, gzip: Bool, closeOnDeinit: Bool) {
        self.fd = fd
        self.closeOnDeinit = closeOnDeinit
        // gzdopen takes the descriptor over: `gzclose` closes it. A duplicate keeps the caller's.
        gz = gzip ? gzdopen(closeOnDeinit ? fd : dup(fd), "rb") : nil
        if let gz { gzbuffer(gz, 1 << 20) }
    }

    /// Opens `path` for reading; nil with `errno` set when it cannot be opened.
    convenience init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        self.init(fd: fd, gzip: Self.isGzip(path), closeOnDeinit: true)
    }

    deinit {
        if let gz {
            gzclose(gz)
        } else if closeOnDeinit {
            close(fd)
        }
    }

    /// Reads up to `limit` bytes; 0 at the end. Throws with the reason on a read error.
    func read(into destination: UnsafeMutableRawPointer, _ limit: Int) throws -> Int {
        if let gz {
            let count = Int(gzread(gz, destination, UInt32(min(limit, Int(Int32.max)))))
            if count < 0 {
                var code: Int32 = 0
                let message = gzerror(gz, &code).map { String(cString: $0) } ?? "unknown"
                throw ImportError(.unreadableInput, "cannot decompress the input: \(message)")
            }
            offset = Int(gzoffset(gz))
            return count
        }
        while true {
            let count = systemRead(fd, destination, limit)
            if count < 0 {
                if errno == EINTR { continue }
                throw ImportError(.unreadableInput, "cannot read the input: \(String(cString: strerror(errno)))")
            }
            offset += count
            return count
        }
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
