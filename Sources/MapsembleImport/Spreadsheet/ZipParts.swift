import CGzip

#if canImport(Glibc)
    import Glibc
#endif

/// Reads the parts of a ZIP archive (a workbook) by their names: the central directory, then each
/// part's bytes inflated with zlib, bounded by the sizes the directory states.
///
/// ZIPFoundation locates the archive; reading goes through here because its inflate loop never
/// ends when a part's deflate stream is cut short (it keeps asking the file for more bytes past
/// its end): a crafted workbook of a few kB hung the reader for good (found by `scripts/fuzz`).
/// Here a stream that does not end within its stated compressed size, runs past the file, or
/// does not inflate is an error.
struct ZipParts {
    struct Part {
        var method: UInt16
        var compressedSize: Int
        var uncompressedSize: Int
        var localHeaderOffset: Int
    }

    struct Damaged: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    let parts: [String: Part]
    private let path: String
    private let fileSize: Int

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Damaged(reason: "cannot open it") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw Damaged(reason: "cannot read it") }
        fileSize = Int(status.st_size)
        // The end-of-central-directory record: in the last 64 kB + 22 bytes.
        let tailLength = min(fileSize, (1 << 16) + 22)
        let tail = try Self.read(fd, at: fileSize - tailLength, count: tailLength)
        guard
            let end = stride(from: tail.count - 22, through: 0, by: -1).first(where: {
                Self.u32(tail, $0) == 0x0605_4B50
            })
        else { throw Damaged(reason: "no central directory") }
        var entries = Int(Self.u16(tail, end + 10))
        var directorySize = Int(Self.u32(tail, end + 12))
        var directoryOffset = Int(Self.u32(tail, end + 16))
        if entries == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // ZIP64: the locator sits right before the record and points at the ZIP64 record.
            guard end >= 20, Self.u32(tail, end - 20) == 0x0706_4B50 else { throw Damaged(reason: "no ZIP64 locator") }
            let record = try Self.read(fd, at: Int(Self.u64(tail, end - 12)), count: 56)
            guard Self.u32(record, 0) == 0x0606_4B50 else { throw Damaged(reason: "no ZIP64 record") }
            entries = Int(clamping: Self.u64(record, 32))
            directorySize = Int(clamping: Self.u64(record, 40))
            directoryOffset = Int(clamping: Self.u64(record, 48))
        }
        guard directoryOffset >= 0, directorySize >= 0, directoryOffset + directorySize <= fileSize else {
            throw Damaged(reason: "the central directory lies past the end of the file")
        }
        let directory = try Self.read(fd, at: directoryOffset, count: directorySize)
        var parts: [String: Part] = [:]
        var at = 0
        for _ in 0..<entries {
            guard at + 46 <= directory.count, Self.u32(directory, at) == 0x0201_4B50 else {
                throw Damaged(reason: "a central directory entry is damaged")
            }
            let nameLength = Int(Self.u16(directory, at + 28))
            let extraLength = Int(Self.u16(directory, at + 30))
            let commentLength = Int(Self.u16(directory, at + 32))
            guard at + 46 + nameLength + extraLength + commentLength <= directory.count else {
                throw Damaged(reason: "a central directory entry is damaged")
            }
            var part = Part(
                method: Self.u16(directory, at + 10), compressedSize: Int(Self.u32(directory, at + 20)),
                uncompressedSize: Int(Self.u32(directory, at + 24)),
                localHeaderOffset: Int(Self.u32(directory, at + 42)))
            // ZIP64 extra field: the sizes and offset that did not fit, in this order.
            var extra = at + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = Self.u16(directory, extra)
                let size = Int(Self.u16(directory, extra + 2))
                if id == 1 {
                    var field = extra + 4
                    func next() -> Int? {
                        guard field + 8 <= extra + 4 + size, field + 8 <= extraEnd else { return nil }
                        defer { field += 8 }
                        return Int(clamping: Self.u64(directory, field))
                    }
                    if part.uncompressedSize == 0xFFFF_FFFF { part.uncompressedSize = next() ?? part.uncompressedSize }
                    if part.compressedSize == 0xFFFF_FFFF { part.compressedSize = next() ?? part.compressedSize }
                    if part.localHeaderOffset == 0xFFFF_FFFF {
                        part.localHeaderOffset = next() ?? part.localHeaderOffset
                    }
                }
                extra += 4 + size
            }
            let name = String(decoding: directory[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self)
            parts[name] = part
            at += 46 + nameLength + extraLength + commentLength
        }
        self.parts = parts
    }

    /// A part's bytes, inflated, chunk by chunk (at most 64 kB each).
    func read(_ name: String, _ consume: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let part = parts[name] else { throw Damaged(reason: "it has no part \(name)") }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Damaged(reason: "cannot open it") }
        defer { close(fd) }
        let header = try Self.read(fd, at: part.localHeaderOffset, count: 30)
        guard Self.u32(header, 0) == 0x0403_4B50 else { throw Damaged(reason: "the header of \(name) is damaged") }
        let dataOffset = part.localHeaderOffset + 30 + Int(Self.u16(header, 26)) + Int(Self.u16(header, 28))
        guard part.compressedSize >= 0, dataOffset + part.compressedSize <= fileSize else {
            throw Damaged(reason: "\(name) runs past the end of the file")
        }
        switch part.method {
        case 0:
            var offset = 0
            while offset < part.compressedSize {
                let chunk = try Self.read(
                    fd, at: dataOffset + offset, count: min(1 << 16, part.compressedSize - offset))
                try chunk.withUnsafeBytes { try consume($0) }
                offset += chunk.count
            }
        case 8:
            try inflate(fd, from: dataOffset, count: part.compressedSize, name: name, consume)
        default:
            throw Damaged(reason: "\(name) is compressed with method \(part.method), which .xlsx files do not use")
        }
    }

    private func inflate(
        _ fd: Int32, from offset: Int, count: Int, name: String, _ consume: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var stream = z_stream()
        guard inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Damaged(reason: "zlib cannot start")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: 1 << 16)
        var read = 0
        var ended = false
        while !ended {
            guard read < count else { throw Damaged(reason: "\(name) is cut short") }
            var input = try Self.read(fd, at: offset + read, count: min(1 << 16, count - read))
            read += input.count
            try input.withUnsafeMutableBufferPointer { input in
                stream.next_in = input.baseAddress
                stream.avail_in = UInt32(input.count)
                repeat {
                    let result = output.withUnsafeMutableBufferPointer { out -> Int32 in
                        stream.next_out = out.baseAddress
                        stream.avail_out = UInt32(out.count)
                        return CGzip.inflate(&stream, Z_NO_FLUSH)
                    }
                    guard result == Z_OK || result == Z_STREAM_END || result == Z_BUF_ERROR else {
                        throw Damaged(reason: "\(name) does not inflate")
                    }
                    let produced = output.count - Int(stream.avail_out)
                    if produced > 0 {
                        try output.withUnsafeBytes { try consume(UnsafeRawBufferPointer(rebasing: $0[..<produced])) }
                    }
                    if result == Z_STREAM_END {
                        ended = true
                        break
                    }
                    if result == Z_BUF_ERROR && produced == 0 { break }
                } while stream.avail_in > 0 || stream.avail_out == 0
            }
        }
    }

    private static func read(_ fd: Int32, at offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0 else { throw Damaged(reason: "an offset is out of range") }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done))
            }
            guard got > 0 else { throw Damaged(reason: "it ends early") }
            done += got
        }
        return bytes
    }

    private static func u16(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    private static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(u16(bytes, at)) | UInt32(u16(bytes, at + 2)) << 16
    }
    private static func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        UInt64(u32(bytes, at)) | UInt64(u32(bytes, at + 4)) << 32
    }
}
