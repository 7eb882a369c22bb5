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
            throw ImportError.system(.output, "cannot write", file: path)
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

    /// Writes the `ranges` of `bytes`, each after `separator` (the first too when `separateFirst`):
    /// features out of a batch. One access to the buffer for the whole loop instead of two per
    /// range: each access to a class's stored property is checked for exclusivity at run time, and
    /// those checks were 3 % of a million-row dry run's CPU time.
    func write(
        _ ranges: [Range<Int>], of bytes: UnsafeRawBufferPointer, separatedBy separator: StaticString,
        separateFirst: Bool
    ) throws {
        let separatorBytes = UnsafeRawBufferPointer(start: separator.utf8Start, count: separator.utf8CodeUnitCount)
        var local: [UInt8] = []
        swap(&local, &buffer)
        defer { swap(&local, &buffer) }
        var taken = 0
        for (index, range) in ranges.enumerated() {
            if index > 0 || separateFirst {
                local.appendBytes(separatorBytes)
                taken += separatorBytes.count
            }
            local.appendBytes(UnsafeRawBufferPointer(rebasing: bytes[range]))
            taken += range.count
            if local.count >= flushAt {
                try local.withUnsafeBytes { (raw) in try writeAll(raw) }
                local.removeAll(keepingCapacity: true)
            }
        }
        bytesWritten += taken
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
                throw ImportError.system(.output, "cannot write", file: path)
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
        if let temporaryPath, !Self.replace(path, with: temporaryPath) {
            let error = ImportError.system(.output, "cannot write", file: path)
            unlink(temporaryPath)
            throw error
        }
    }

    /// Moves `temporary` to `path` in one step: whoever reads `path` sees the old file or the new
    /// one, whole. An existing regular file is swapped with the new one (`renameat2` with
    /// `RENAME_EXCHANGE`), then removed: a plain `rename` over it makes ext4 allocate and start
    /// writing every block of the new file within the call (its `auto_da_alloc`), about 80 ms for a
    /// 120 MB output, a tenth of a million-row run. Elsewhere (no such file, a directory, a file
    /// system without the swap), a plain `rename`.
    private static func replace(_ path: String, with temporary: String) -> Bool {
        #if os(Linux)
            var info = stat()
            if let exchange = renameExchange, lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
                exchange(AT_FDCWD, temporary, AT_FDCWD, path, 1 << 1) == 0
            {
                unlink(temporary)
                return true
            }
        #endif
        return rename(temporary, path) == 0
    }
}

#if os(Linux)
    /// glibc's `renameat2` (since 2.28; not in the `Glibc` module), looked up once.
    private let renameExchange:
        (@convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32)? = {
            guard let symbol = dlsym(nil, "renameat2") else { return nil }
            return unsafeBitCast(
                symbol,
                to: (@convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32).self)
        }()
#endif
