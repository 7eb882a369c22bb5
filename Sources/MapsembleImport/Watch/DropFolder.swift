import Foundation

#if canImport(CoreFoundation)
    // `stat` and `lstat` (their defining module on Linux, as MemberImportVisibility sees it).
    import CoreFoundation
#endif

/// A folder that receives files to import (`watch`): which files are complete, which pipeline
/// takes each, and where each goes afterwards with its report.
///
/// Layout: `DIR/` receives files; `DIR/processed/` and `DIR/failed/` receive them once imported;
/// `DIR/.mapsemble-import/` is the work area: the lock, the reports of the file being imported
/// and its resume journal, and the outcome noted between an import and its move.
public final class DropFolder: Sendable {
    /// Files matching `pattern` are imported with `config`.
    public struct Route: Sendable {
        public var pattern: String
        /// How the pipeline is named in log lines.
        public var pipelineName: String
        public var config: PipelineConfig

        public init(pattern: String, pipelineName: String, config: PipelineConfig) {
            self.pattern = pattern
            self.pipelineName = pipelineName
            self.config = config
        }
    }

    public let path: String
    public let work: String
    public let routes: [Route]
    let settleSeconds: Double
    let marker: Bool
    private let lock: Int32

    /// Prepares the folder and takes its lock: a second watcher on the same folder is refused.
    public init(path: String, routes: [Route], settleSeconds: Double, marker: Bool) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ImportError(.usage, "no such folder to watch", file: path)
        }
        self.path = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        work = self.path + "/.mapsemble-import"
        self.routes = routes
        self.settleSeconds = settleSeconds
        self.marker = marker
        for folder in [work, self.path + "/processed", self.path + "/failed"] {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw ImportError(.output, "cannot create the folder", file: folder)
            }
        }
        let lockPath = work + "/lock"
        lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw ImportError(.output, "cannot create the lock file", file: lockPath) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: lockPath, encoding: .utf8))?.trimmingSpaces ?? ""
            close(lock)
            throw ImportError(
                .usage,
                "another mapsemble-import watch is working on this folder\(holder.isEmpty ? "" : " (pid \(holder))"); one watcher per folder",
                file: self.path)
        }
        ftruncate(lock, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { pwrite(lock, $0.baseAddress, $0.count, 0) }
    }

    deinit { close(lock) }

    /// The route a file name takes, if any.
    public func route(for name: String) -> Route? {
        routes.first { fnmatch($0.pattern, name, 0) == 0 }
    }

    /// Files ready to import, oldest first, with their routes: regular files (not links, not
    /// hidden, not markers) matching a route, unchanged for `settleSeconds` (or, with `marker`,
    /// with their `NAME.done` beside them).
    public func completeFiles(now: Date = Date()) -> [(name: String, route: Route)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else { return [] }
        var ready: [(name: String, route: Route, changed: Double)] = []
        for name in names where !name.hasPrefix(".") && !name.hasSuffix(".done") {
            guard let route = route(for: name) else { continue }
            var status = stat()
            guard lstat(path + "/" + name, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { continue }
            let changed = max(Self.seconds(status.st_mtim), Self.seconds(status.st_ctim))
            if marker {
                guard FileManager.default.fileExists(atPath: path + "/" + name + ".done") else { continue }
            } else if now.timeIntervalSince1970 - changed < settleSeconds {
                continue
            }
            guard Self.unlocked(path + "/" + name) else { continue }
            ready.append((name, route, changed))
        }
        return ready.sorted { ($0.changed, $0.name) < ($1.changed, $1.name) }.map { ($0.name, $0.route) }
    }

    /// Whether the file can be locked for reading: no other process holds a write lock on it,
    /// neither a `flock` nor a POSIX record lock (a writer that locks while it writes is not
    /// done). Opened without following a link.
    static func unlocked(_ file: String) -> Bool {
        let fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard flock(fd, LOCK_SH | LOCK_NB) == 0 else { return false }
        defer { _ = flock(fd, LOCK_UN) }
        var query = Glibc.flock()
        query.l_type = Int16(F_RDLCK)
        query.l_whence = Int16(SEEK_SET)
        guard fcntl(fd, F_GETLK, &query) == 0 else { return false }
        return query.l_type == Int16(F_UNLCK)
    }

    private static func seconds(_ time: timespec) -> Double {
        Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    // MARK: Between import and move

    private func notePath(_ name: String) -> String { work + "/" + name + ".outcome" }

    /// What identifies the file in an outcome note: its size and modification time.
    private func identity(_ name: String) -> String? {
        var status = stat()
        guard lstat(path + "/" + name, &status) == 0 else { return nil }
        return "\(status.st_size) \(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec)"
    }

    /// Notes, durably, that `name` was imported with exit code `code`, before it is moved.
    public func noteOutcome(_ code: Int32, of name: String) {
        guard let identity = identity(name) else { return }
        let fd = open(notePath(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let text = Array("\(code) \(identity)\n".utf8)
        _ = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
    }

    /// The exit code noted for this very file (same size and modification time), if its move
    /// was cut short.
    public func notedOutcome(of name: String) -> Int32? {
        guard let text = try? String(contentsOfFile: notePath(name), encoding: .utf8),
            let identity = identity(name)
        else { return nil }
        let parts = text.trimmingSpaces.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, String(parts[1]) == identity, let code = Int32(parts[0]) else { return nil }
        return code
    }

    // MARK: Moving

    /// Moves an imported file with its report files to `processed/` (exit 0 or 1) or `failed/`,
    /// and removes its marker. A name taken there already gets the time of the move after its
    /// stem. Returns the folder it went to.
    public func move(
        _ name: String, reports: Pipeline.ReportPaths, code: Int32
    ) throws -> String {
        let folder = code <= 1 ? "processed" : "failed"
        let destination = path + "/" + folder
        // A failed file's journal goes with it: another file of the same name dropped later is
        // another file, and must not meet it (dropped again, the same file is imported again).
        let reportFiles = [
            reports.rejected, reports.summary, reports.diff, reports.html, Self.errorPath(reports.summary),
            reports.journal,
        ].filter {
            FileManager.default.fileExists(atPath: $0)
        }
        let reportNames = reportFiles.map { ($0 as NSString).lastPathComponent }
        var targetName = name
        var targetReports = reportNames
        if ([name] + reportNames).contains(where: { FileManager.default.fileExists(atPath: destination + "/" + $0) }) {
            let stamp = Self.stamp()
            targetName = Self.stamped(name, stamp)
            targetReports = reportNames.map { Self.stamped($0, stamp, reportOf: name) }
        }
        for (source, target) in zip(reportFiles, targetReports) {
            try Self.rename(source, to: destination + "/" + target)
        }
        try Self.rename(path + "/" + name, to: destination + "/" + targetName)
        unlink(path + "/" + name + ".done")
        unlink(notePath(name))
        return folder + "/"
    }

    /// For a file whose run stopped before any row moved (so it has no summary): the error, in
    /// `NAME.error.txt` beside where its summary would be, to travel with it to `failed/`.
    public func writeError(_ error: ImportError, reports: Pipeline.ReportPaths) {
        _ = FileManager.default.createFile(
            atPath: Self.errorPath(reports.summary), contents: Data((error.description + "\n").utf8),
            attributes: [.posixPermissions: 0o600])
    }

    private static func errorPath(_ summary: String) -> String {
        String(summary.dropLast(".summary.json".count)) + ".error.txt"
    }

    private static func rename(_ source: String, to target: String) throws {
        guard Foundation.rename(source, target) == 0 else {
            throw ImportError.system(.output, "cannot move it to \(target)", file: source)
        }
    }

    private static func stamp() -> String {
        var formatter = Date.ISO8601FormatStyle()
        formatter.timeZone = TimeZone(identifier: "UTC")!
        return Date().formatted(formatter).replacingOccurrences(of: "-", with: "").replacingOccurrences(
            of: ":", with: "")
    }

    /// `stores.csv` → `stores.20261129T071400Z.csv`; a report `stores.summary.json` of `stores.csv`
    /// → `stores.20261129T071400Z.summary.json`.
    static func stamped(_ name: String, _ stamp: String, reportOf input: String? = nil) -> String {
        let base = input ?? name
        var stem = base
        if stem.hasSuffix(".gz") { stem.removeLast(3) }
        if let dot = stem.lastIndex(of: "."), dot != stem.startIndex { stem = String(stem[..<dot]) }
        guard name.hasPrefix(stem) else { return stamp + "." + name }
        return stem + "." + stamp + name.dropFirst(stem.count)
    }
}
