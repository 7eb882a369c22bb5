#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A buffered writer to a file or standard output. `-` means stdout.
///
/// Files are written under a temporary name and renamed into place by `close()`, so a reader of
/// the report folder never sees half a file. A new file is readable by its owner only unless
/// `mode` says otherwise: reports name rows of data nobody else should read. Confined to one task.
public final class ByteWriter {
    private let fd: Int32
    private let path: String
    private let temporaryPath: String?
    private var buffer: [UInt8] = []
    private let flushAt = 1 << 20
    private var closed = false
    /// Bytes taken so far (written or buffered).
    public private(set) var bytesWritten = 0

    public init(path: String, mode: mode_t = 0o600) throws {
        self.path = path
        if path == "-" {
            fd = 1
            temporaryPath = nil
        } else if path == "/dev/null" || path.hasPrefix("/dev/") || path.hasPrefix("/proc/") {
            fd = open(path, O_WRONLY | O_CLOEXEC)
            temporaryPath = nil
        } else {
            let temporary = path + ".partial"
            fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
            temporaryPath = temporary
        }
        guard fd >= 0 else {
            throw ImportError(.output, "cannot write: \(String(cString: strerror(errno)))", file: path)
        }
        buffer.reserveCapacity(flushAt + (64 << 10))
    }

    deinit {
        if !closed, fd > 2 {
            Glibc.close(fd)
            if let temporaryPath { unlink(temporaryPath) }
        }
    }

    @inline(__always)
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        bytesWritten += bytes.count
        if bytes.count >= flushAt {
            try flush()
            try writeAll(bytes)
            return
        }
        buffer.appendBytes(bytes)
        if buffer.count >= flushAt { try flush() }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { (raw) in try write(raw) }
    }

    public func write(_ text: String) throws {
        var text = text
        try text.withUTF8 { (raw) in try write(UnsafeRawBufferPointer(raw)) }
    }

    public func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { (raw) in try writeAll(raw) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw ImportError(.output, "cannot write: \(String(cString: strerror(errno)))", file: path)
            }
            offset += written
        }
    }

    /// Flushes, closes and moves the file into place.
    public func close() throws {
        guard !closed else { return }
        try flush()
        closed = true
        if fd > 2 { Glibc.close(fd) }
        if let temporaryPath, rename(temporaryPath, path) != 0 {
            throw ImportError(.output, "cannot write: \(String(cString: strerror(errno)))", file: path)
        }
    }
}
