import CGzip
import Foundation
import MapsembleJSON
import NIOConcurrencyHelpers

/// `report.undo: true`: what a run changes on the map, kept so that `rollback` can restore it.
///
/// The file (`STATE_DIR/undo/RUN_ID.undo.gz`, owner-only) is a series of gzip members, each of
/// JSON lines, appended and `fsync`ed before the request it describes is sent:
/// - `{"t":"header", "run_id", "map", "api_url", "remote_field", "mode"}`;
/// - `{"t":"page","body":…}`: each page of the map's features (the server's answer as it came,
///   line breaks made spaces), as the run found them before its first write, then
///   `{"t":"listed","count":N}`;
/// - `{"t":"after","id":…,"f":feature}`: a feature about to be sent, as sent;
/// - `{"t":"deleted","id":…}`: a feature about to be deleted.
///
/// A member cut short by a crash is ignored when read: its request was never sent.
public final class UndoLog: Sendable {
    public let path: String
    let remoteField: String
    /// `"SLUG":`, as it stands before the remote id in a feature the transformer wrote.
    private let remoteKey: [UInt8]
    /// The file, its length, and whether a write failed (then nothing more is appended: a member
    /// after a torn one would not be read).
    private let file: NIOLockedValueBox<(descriptor: Int32, length: Int, broken: Bool)>

    /// `STATE_DIR/undo/RUN_ID.undo.gz`.
    public static func path(stateDirectory: String, runID: String) -> String {
        stateDirectory + "/undo/" + runID + ".undo.gz"
    }

    /// Why a run with `config` cannot be undone exactly, or nil.
    static func refusal(_ config: PipelineConfig, remoteID: Bool) -> String? {
        if config.mode == .create {
            return
                "report.undo: mode create is not undone exactly (a POST retried after a lost answer may store a feature twice); use mode upsert, which creates the same features by remote id and can be undone"
        }
        if config.mode == .replace {
            return
                "report.undo: mode replace deletes every feature the file does not name, those without a remote id included, which cannot be put back as they were; use mode sync, which makes the same change and can be undone"
        }
        if !remoteID {
            return
                "report.undo: without properties.remote_id the features a run creates cannot be told from the map's others, so it cannot be undone; give a remote_id (mode upsert or sync) or set report.undo to false"
        }
        return nil
    }

    /// Creates the file and writes its header.
    init(path: String, header: [(String, JSONValue)], remoteField: String) throws {
        self.path = path
        self.remoteField = remoteField
        var key: [UInt8] = []
        JSONBytes.appendString(remoteField, to: &key)
        remoteKey = key + [UInt8(ascii: ":")]
        let folder = (path as NSString).deletingLastPathComponent
        try StateDirectory.create(folder)
        let descriptor = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw ImportError.system(.output, "cannot create the undo file", file: path) }
        file = NIOLockedValueBox((descriptor, 0, false))
        try append([JSONValue.object([("t", "header")] + header).bytes])
        // The file's name is on disk too before anything is sent.
        let folderDescriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folderDescriptor >= 0 {
            fsync(folderDescriptor)
            close(folderDescriptor)
        }
    }

    deinit { file.withLockedValue { _ = close($0.descriptor) } }

    /// Appends `lines` as one gzip member and waits until it is on disk.
    func append(_ lines: [[UInt8]]) throws {
        guard !lines.isEmpty else { return }
        var text: [UInt8] = []
        for line in lines {
            text += line
            text.append(0x0A)
        }
        let member = try Gzip.member(text)
        try file.withLockedValue { file in
            guard !file.broken else {
                throw ImportError(.output, "the undo file could not be written earlier in this run", file: path)
            }
            var offset = 0
            var problem: ImportError?
            while offset < member.count {
                let written = member[offset...].withUnsafeBytes { write(file.descriptor, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else {
                    problem = ImportError.system(.output, "cannot write the undo file", file: path)
                    break
                }
                offset += written
            }
            if problem == nil, fsync(file.descriptor) != 0 {
                problem = ImportError.system(.output, "cannot write the undo file to disk", file: path)
            }
            if let problem {
                // Cut the torn member off, so the records before it stay readable; append no more.
                _ = ftruncate(file.descriptor, off_t(file.length))
                file.broken = true
                throw problem
            }
            file.length += member.count
        }
    }

    /// A page of the map's features as the server answered it, before the run: kept as it came
    /// (a line break in JSON is only ever space between values).
    func page(_ body: [UInt8]) throws {
        var line = Array(#"{"t":"page","body":"#.utf8)
        line.reserveCapacity(body.count + 24)
        for byte in body { line.append(byte == 0x0A || byte == 0x0D ? 0x20 : byte) }
        line.append(UInt8(ascii: "}"))
        try append([line])
    }

    /// The map's features are all listed.
    func listed(_ count: Int) throws {
        try append([JSONValue.object([("t", "listed"), ("count", .number(Double(count)))]).bytes])
    }

    /// A batch about to be sent with `method`: each feature as sent (a DELETE: each one deleted).
    func sending(_ batch: Batch, method: String) throws {
        var lines: [[UInt8]] = []
        for range in batch.featureRanges {
            let bytes = batch.body[range]
            guard let id = Self.remoteID(in: bytes, key: remoteKey) else { continue }
            var line = Array(#"{"t":"#.utf8)
            line += Array((method == "DELETE" ? #""deleted","id":"# : #""after","id":"#).utf8)
            JSONBytes.appendString(id, to: &line)
            if method != "DELETE" {
                line += Array(#","f":"#.utf8)
                line += bytes
            }
            line.append(UInt8(ascii: "}"))
            lines.append(line)
        }
        try append(lines)
    }

    /// The remote id in a feature's JSON: the value after the member name `key` (`"SLUG":`). A
    /// quote inside a string is escaped, so the name found outside a string is the member's;
    /// properties come before anything else that could hold it only as a value.
    static func remoteID(in bytes: ArraySlice<UInt8>, key: [UInt8]) -> String? {
        bytes.withUnsafeBytes { raw -> String? in
            guard let base = raw.baseAddress, raw.count > key.count else { return nil }
            var at = 0
            // The first `"`, then the whole name compared (memchr and memcmp, not a generic search).
            while at + key.count <= raw.count {
                guard let quote = memchr(base + at, Int32(key[0]), raw.count - key.count + 1 - at) else { return nil }
                at = base.distance(to: UnsafeRawPointer(quote))
                // `\"SLUG":` would be inside a string: not the member.
                if memcmp(base + at, key, key.count) == 0, at == 0 || raw[at - 1] != 0x5C { break }
                at += 1
            }
            guard at + key.count <= raw.count else { return nil }
            let value = UnsafeRawBufferPointer(rebasing: raw[(at + key.count)...])
            var end = 0
            guard JSONSkip.value(value, &end, end: value.count) else { return nil }
            return JSONParser.parse(Array(value[..<end]))?.remoteKey
        }
    }

    /// Features about to be deleted (a sync's last step).
    func deleting(_ ids: [String]) throws {
        try append(ids.map { JSONValue.object([("t", "deleted"), ("id", .string($0))]).bytes })
    }

    /// Every complete record of an undo file, in order.
    public static func records(at path: String) throws -> [JSONValue] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImportError.system(.usage, "cannot read the undo file", file: path)
        }
        var records: [JSONValue] = []
        for member in Gzip.members([UInt8](data)) {
            for line in member.split(separator: 0x0A) where !line.isEmpty {
                if let record = JSONParser.parse(Array(line)) { records.append(record) }
            }
        }
        return records
    }
}

/// gzip members made and read in memory (zlib).
enum Gzip {
    /// `bytes` as one complete gzip member.
    static func member(_ bytes: [UInt8]) throws -> [UInt8] {
        var stream = z_stream()
        guard
            deflateInit2_(
                &stream, Z_BEST_SPEED, Z_DEFLATED, MAX_WBITS + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                Int32(MemoryLayout<z_stream>.size)) == Z_OK
        else { throw ImportError(.output, "zlib could not start compressing") }
        defer { deflateEnd(&stream) }
        var input = bytes
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(bytes.count))) + 64)
        let status = input.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                stream.next_in = source.baseAddress
                stream.avail_in = UInt32(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = UInt32(target.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw ImportError(.output, "zlib could not compress (\(status))") }
        return Array(output[..<Int(stream.total_out)])
    }

    /// The content of each complete member of concatenated gzip `bytes`; a member cut short (a
    /// write a crash interrupted) ends the list.
    static func members(_ bytes: [UInt8]) -> [[UInt8]] {
        var members: [[UInt8]] = []
        var offset = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while offset < bytes.count {
            var stream = z_stream()
            guard inflateInit2_(&stream, MAX_WBITS + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK
            else { break }
            var content: [UInt8] = []
            var status = Z_OK
            bytes.withUnsafeBufferPointer { source in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress! + offset)
                stream.avail_in = UInt32(source.count - offset)
                while status == Z_OK {
                    let before = stream.total_out
                    status = chunk.withUnsafeMutableBufferPointer { target in
                        stream.next_out = target.baseAddress
                        stream.avail_out = UInt32(target.count)
                        return inflate(&stream, Z_NO_FLUSH)
                    }
                    // Z_BUF_ERROR: no progress, the input ended inside the member.
                    content += chunk[..<Int(stream.total_out - before)]
                }
            }
            let consumed = Int(stream.total_in)
            inflateEnd(&stream)
            guard status == Z_STREAM_END else { break }
            members.append(content)
            offset += consumed
        }
        return members
    }
}
