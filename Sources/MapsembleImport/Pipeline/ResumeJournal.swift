import Foundation
import MapsembleJSON
import NIOConcurrencyHelpers
import Synchronization

/// The resume journal: which rows the server settled, written durably as the run goes, so that a
/// run stopped by a crash, `kill -9`, an abort or Ctrl-C continues where it stopped when it is
/// started again with the same input and pipeline.
///
/// One JSON object per line. The first line is the fingerprint of the input (size, modification
/// time, a hash of its first and last 64 KiB) and of the pipeline settings that decide what each
/// row becomes and where it goes. Each further line is one answer of the server: the input lines
/// of the rows it settled, as spans (`[first, last]` line of a run of rows sent together: no other
/// row of the file lies between them but rejected ones, which a rerun rejects again), the rows
/// among them it refused, with code and message, and its counts. Each line is written (so in the
/// kernel's hands: a crash or `kill -9` of the process loses nothing) before the next request of
/// that worker goes out; it is synced to disk (`fdatasync`) with the first answer written
/// `syncInterval` or more after the last sync, and when the run ends. A power cut then costs the
/// answers written since the last sync (their rows are sent again, which an upsert absorbs), and
/// a wait for the disk is not paid per answer.
///
/// Rows are named by input line, not by batch, so a resumed run may use another batch size or
/// concurrency. A run that completes removes its journal. The file never holds a credential.
public final class ResumeJournal: Sendable {
    /// What must not change between a run and its resumption.
    public struct Fingerprint: Sendable, Equatable {
        public var size: Int
        /// Modification time, nanoseconds since 1970.
        public var modified: Int
        /// FNV-1a of the first and of the last 64 KiB.
        public var head: String
        public var tail: String
        /// The pipeline settings that shape rows or choose where they go, by dotted key.
        public var pipeline: [String: String]

        /// Bytes hashed at each end of the input.
        static let sample = 1 << 16

        /// The fingerprint of `path` under `config`.
        public static func of(input path: String, config: PipelineConfig) throws -> Fingerprint {
            var status = stat()
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0, fstat(fd, &status) == 0 else {
                if fd >= 0 { close(fd) }
                throw ImportError(.unreadableInput, "cannot read the input to fingerprint it", file: path)
            }
            defer { close(fd) }
            let size = Int(status.st_size)
            func hash(at offset: Int) -> String {
                var buffer = [UInt8](repeating: 0, count: min(sample, size))
                let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
                return fnv1a(buffer.prefix(max(0, got)))
            }
            return Fingerprint(
                // A downloaded source is a new file each time: its content is what is compared.
                size: size,
                modified: config.source.origin != nil
                    ? 0 : Int(status.st_mtim.tv_sec) * 1_000_000_000 + Int(status.st_mtim.tv_nsec),
                head: hash(at: 0), tail: hash(at: max(0, size - sample)), pipeline: settings(of: config))
        }

        /// The settings a resumed run must share with the first: everything that decides which rows
        /// are rejected, what the others become, and where they are sent. Batch size, concurrency,
        /// retries, reports and credentials may change.
        static func settings(of config: PipelineConfig) -> [String: String] {
            let source = config.source
            let coordinates = config.coordinates
            let properties = config.properties
            let fields = properties.fields.map { field in
                "\(field.slug)=\(field.column):\(field.type):\(field.formats.joined(separator: "|")):\(field.separator)"
            }
            return [
                "source.format": source.format, "source.delimiter": source.delimiter,
                "source.encoding": source.encoding, "source.header": source.header, "source.quote": source.quote,
                "source.decimal": source.decimal, "source.sheet": source.sheet ?? "",
                "target.api_url": config.target.apiURL, "target.map_id": config.target.mapID ?? "",
                "target.mode": config.mode.rawValue,
                "coordinates.longitude": coordinates.longitude ?? "",
                "coordinates.latitude": coordinates.latitude ?? "",
                "coordinates.point": coordinates.point ?? "", "coordinates.swapped": coordinates.swapped.rawValue,
                "coordinates.bounds": coordinates.bounds.map { $0.map { "\($0)" }.joined(separator: ",") } ?? "",
                "coordinates.allow_null_island": "\(coordinates.allowNullIsland)",
                "properties.label": properties.label ?? "", "properties.remote_id": properties.remoteID ?? "",
                "properties.remote_field": properties.remoteField ?? "",
                "properties.fields": fields.joined(separator: "; "),
            ].merging(source.member.map { ["source.member": $0] } ?? [:]) { $1 }
        }

        /// How `self` (now) differs from `recorded`, in words; nil when it does not.
        func difference(from recorded: Fingerprint) -> String? {
            if size != recorded.size {
                return "the input is \(size) bytes now and was \(recorded.size) when the journal was started"
            }
            if head != recorded.head || tail != recorded.tail {
                return
                    "the input's \(head != recorded.head ? "first" : "last") 64 KiB changed since the journal was started"
            }
            if modified != recorded.modified {
                return
                    "the input was modified since the journal was started (same size, modified \(Self.time(modified)), was \(Self.time(recorded.modified)))"
            }
            for key in Set(pipeline.keys).union(recorded.pipeline.keys).sorted()
            where pipeline[key] != recorded.pipeline[key] {
                return
                    "the pipeline's \(key) is \"\(pipeline[key] ?? "")\" now and was \"\(recorded.pipeline[key] ?? "")\""
            }
            return nil
        }

        private static func time(_ nanoseconds: Int) -> String {
            let date = Date(timeIntervalSince1970: Double(nanoseconds) / 1e9)
            return date.formatted(.iso8601)
        }
    }

    /// What earlier runs settled.
    public struct Settled: Sendable {
        /// `[first, last]` input lines, sorted by first line.
        public private(set) var spans: [ClosedRange<Int>] = []
        /// Rows the server refused, by input line.
        public private(set) var refused: [Int: (code: RejectCode, message: String)] = [:]
        public var created = 0
        public var updated = 0
        public var deleted = 0
        /// Journal entries read (server answers).
        public var answers = 0

        public var isEmpty: Bool { spans.isEmpty && deleted == 0 }

        /// Whether the row starting at input line `line` was settled.
        public func contains(_ line: Int) -> Bool {
            var low = 0
            var high = spans.count
            while low < high {
                let middle = (low + high) / 2
                if spans[middle].lowerBound <= line { low = middle + 1 } else { high = middle }
            }
            return low > 0 && spans[low - 1].contains(line)
        }

        mutating func add(spans new: [ClosedRange<Int>]) { spans += new }
        mutating func refuse(_ line: Int, _ code: RejectCode, _ message: String) { refused[line] = (code, message) }
        mutating func sort() { spans.sort { $0.lowerBound < $1.lowerBound } }
    }

    public let path: String
    /// What the runs before this one settled (empty for a new journal).
    public let settled: Settled
    private let file: NIOLockedValueBox<(fd: Int32, synced: ContinuousClock.Instant, dirty: Bool)>
    /// Longest time a written answer waits to be synced to disk.
    static let syncInterval = Duration.milliseconds(100)
    private let failed = Atomic<Bool>(false)

    /// Opens the journal at `path` for `fingerprint`: resumes from it when it exists (unless
    /// `fresh`), starts it otherwise. A journal of another input or pipeline is refused, naming
    /// what changed.
    public init(path: String, fingerprint: Fingerprint, fresh: Bool) throws {
        self.path = path
        var settled = Settled()
        if !fresh, let existing = FileManager.default.contents(atPath: path) {
            guard let (recorded, earlier, keep) = Self.read([UInt8](existing)) else {
                throw ImportError(
                    .config,
                    "this is not a resume journal of this version; move it away or run with --fresh to start over",
                    file: path)
            }
            if let change = fingerprint.difference(from: recorded) {
                throw ImportError(
                    .config,
                    "the resume journal belongs to an unfinished run that cannot be resumed: \(change); to resume it, use the input and pipeline it was started with; to start over, run with --fresh (features already sent stay on the map)",
                    file: path)
            }
            settled = earlier
            // Keep the complete lines only, then append.
            let fd = Foundation.open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard fd >= 0, ftruncate(fd, off_t(keep)) == 0 else {
                if fd >= 0 { close(fd) }
                throw ImportError(.output, "cannot write the resume journal", file: path)
            }
            file = NIOLockedValueBox((fd, .now, false))
        } else {
            let fd = Foundation.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw ImportError(.output, "cannot create the resume journal", file: path) }
            var header: [UInt8] = []
            Self.write(fingerprint, to: &header)
            do {
                try Self.append(header, to: fd, path: path)
                guard fdatasync(fd) == 0 else {
                    throw ImportError(.output, "cannot write the resume journal", file: path)
                }
            } catch {
                close(fd)
                throw error
            }
            file = NIOLockedValueBox((fd, .now, false))
        }
        self.settled = settled
    }

    /// Reads a journal file: its fingerprint, what it settled, and how many of its bytes are whole
    /// lines (a line cut short by a crash has no newline and was never acknowledged as written).
    public static func read(_ bytes: [UInt8]) -> (Fingerprint, Settled, wholeBytes: Int)? {
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        // After the last newline: nothing, or a line cut short.
        lines.removeLast()
        guard let header = lines.first.flatMap({ JSONParser.parse(Array($0)) }), let recorded = fingerprint(header)
        else { return nil }
        var settled = Settled()
        for line in lines.dropFirst() where !line.isEmpty {
            guard let entry = JSONParser.parse(Array(line)) else { continue }
            settled.answers += 1
            settled.add(
                spans: (entry["spans"]?.array ?? []).compactMap { span in
                    guard let pair = span.array, pair.count == 2, let first = pair[0].integer,
                        let last = pair[1].integer, first <= last
                    else { return nil }
                    return first...last
                })
            for refusal in entry["refused"]?.array ?? [] {
                guard let item = refusal.array, item.count == 3, let line = item[0].integer,
                    let code = item[1].string.flatMap(RejectCode.init(rawValue:)), let message = item[2].string
                else { continue }
                settled.refuse(line, code, message)
            }
            settled.created += entry["created"]?.integer ?? 0
            settled.updated += entry["updated"]?.integer ?? 0
            settled.deleted += entry["deleted"]?.integer ?? 0
        }
        settled.sort()
        return (recorded, settled, lines.reduce(0) { $0 + $1.count + 1 })
    }

    deinit {
        file.withLockedValue {
            guard $0.fd >= 0 else { return }
            if $0.dirty { fdatasync($0.fd) }
            close($0.fd)
        }
    }

    /// Records one answer of the server: the rows it settled (by input line, as spans) and those
    /// among them it refused, or (for a sync's DELETE) how many features it deleted. On disk when this returns. A journal that cannot be written stops
    /// being written (the run goes on: a resumption then sends those rows again, which an upsert
    /// absorbs); the returned message says so once.
    @discardableResult
    public func record(
        spans: [ClosedRange<Int>], refused: [(line: Int, code: RejectCode, message: String)], created: Int,
        updated: Int, deleted: Int
    ) -> String? {
        // A sync's DELETE settles no rows, only its count: a resumed run's summary then still
        // says how many features the whole import deleted.
        guard !failed.load(ordering: .relaxed), !spans.isEmpty || deleted > 0 else { return nil }
        var line = Array(#"{"spans":["#.utf8)
        for (index, span) in spans.enumerated() {
            if index > 0 { line.append(UInt8(ascii: ",")) }
            line += Array("[\(span.lowerBound),\(span.upperBound)]".utf8)
        }
        line += Array(#"],"refused":["#.utf8)
        for (index, refusal) in refused.enumerated() {
            if index > 0 { line.append(UInt8(ascii: ",")) }
            line += Array("[\(refusal.line),\"\(refusal.code.rawValue)\",".utf8)
            JSONBytes.appendString(refusal.message, to: &line)
            line.append(UInt8(ascii: "]"))
        }
        line += Array(#"],"created":\#(created),"updated":\#(updated),"deleted":\#(deleted)}"#.utf8)
        line.append(0x0A)
        do {
            try append(line)
            return nil
        } catch {
            guard !failed.exchange(true, ordering: .relaxed) else { return nil }
            return "\(error); from here on a resumed run would send this run's rows again"
        }
    }

    /// The run completed: nothing is left to resume.
    public func remove() {
        file.withLockedValue {
            if $0.fd >= 0 { close($0.fd) }
            $0.fd = -1
        }
        unlink(path)
    }

    /// Syncs what was written to disk (the run stopped and the journal stays).
    public func sync() {
        file.withLockedValue {
            guard $0.fd >= 0, $0.dirty else { return }
            fdatasync($0.fd)
            $0.dirty = false
            $0.synced = .now
        }
    }

    private func append(_ bytes: [UInt8]) throws {
        try file.withLockedValue { file in
            try Self.append(bytes, to: file.fd, path: path)
            file.dirty = true
            let now = ContinuousClock.now
            if now - file.synced >= Self.syncInterval {
                guard fdatasync(file.fd) == 0 else {
                    throw ImportError.system(.output, "cannot sync the resume journal", file: path)
                }
                file.synced = now
                file.dirty = false
            }
        }
    }

    private static func append(_ bytes: [UInt8], to fd: Int32, path: String) throws {
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            throw ImportError.system(.output, "cannot write the resume journal", file: path)
        }
    }

    private static func write(_ fingerprint: Fingerprint, to out: inout [UInt8]) {
        out += Array(
            #"{"mapsemble_import_journal":1,"size":\#(fingerprint.size),"modified_ns":"\#(fingerprint.modified)","head":"\#(fingerprint.head)","tail":"\#(fingerprint.tail)","pipeline":{"#
                .utf8)
        for (index, key) in fingerprint.pipeline.keys.sorted().enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONBytes.appendString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONBytes.appendString(fingerprint.pipeline[key]!, to: &out)
        }
        out += Array("}}\n".utf8)
    }

    private static func fingerprint(_ header: JSONValue) -> Fingerprint? {
        guard header["mapsemble_import_journal"]?.integer == 1, let size = header["size"]?.integer,
            let modified = header["modified_ns"]?.string.flatMap({ Int($0) }), let head = header["head"]?.string,
            let tail = header["tail"]?.string, let members = header["pipeline"]?.members
        else { return nil }
        var pipeline: [String: String] = [:]
        for (key, value) in members { pipeline[key] = value.string ?? "" }
        return Fingerprint(size: size, modified: modified, head: head, tail: tail, pipeline: pipeline)
    }
}

/// FNV-1a, 64 bits, as hex: a cheap fingerprint of bytes (not a defence against tampering).
func fnv1a<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
    var hash = FNV1a()
    for byte in bytes { hash.mix(byte) }
    let hex = String(hash.value, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// FNV-1a, 64 bits: what the journal's fingerprint and a sync's digests are made with.
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    @inline(__always)
    mutating func mix(_ byte: UInt8) {
        value ^= UInt64(byte)
        value = value &* 0x100_0000_01b3
    }
}
