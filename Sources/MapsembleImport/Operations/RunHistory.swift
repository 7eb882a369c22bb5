import CSQLite
import Foundation

/// A run's id: when it started (UTC, to the second) and six random hex digits, so that ids sort by
/// time and two runs started in the same second differ: `20261203T031307Z-3f9a1c`.
public enum RunID {
    public static func make(at date: Date = Date()) -> String {
        var time = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&time, &parts)
        let stamp = String(
            format: "%04d%02d%02dT%02d%02d%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
        return stamp + "-" + String(format: "%06x", UInt32.random(in: 0...0xFF_FFFF))
    }
}

/// One run as the history keeps it.
public struct RunRecord: Sendable, Equatable {
    public var runID: String
    /// `run`, `watch` or `rollback`.
    public var command: String
    /// Seconds since 1970.
    public var started: Double
    public var ended: Double?
    public var input: String?
    public var pipeline: String?
    public var map: String?
    public var mode: String?
    /// `running`, a summary status (`completed`, `completed_with_rejects`, `aborted`, `unchanged`),
    /// `interrupted` (Ctrl-C, or a process that ended without saying how: `kill -9`, a crash), or
    /// `failed` (stopped before any row moved).
    public var status: String
    public var exitCode: Int?
    public var rowsRead = 0
    public var imported = 0
    public var created = 0
    public var updated = 0
    public var deleted = 0
    public var unchanged = 0
    public var rejected = 0
    public var notSent = 0
    public var durationSeconds: Double?
    public var reportDir: String?
    /// The summary as written (`NAME.summary.json`), kept here in case the file moves or goes.
    public var summary: String?
    /// Why the run stopped, when it did.
    public var error: String?
    /// The undo file, with `report.undo: true`.
    public var undo: String?
    /// The run of `rollback` that undid this one.
    public var rolledBackBy: String?
    public var host: String
    /// The version of the tool that ran it.
    public var toolVersion = ToolVersion.number
    var pid: Int
    var pidStart: String

    public init(runID: String, command: String, input: String?, pipeline: String?, map: String?, mode: String?) {
        self.runID = runID
        self.command = command
        started = Date().timeIntervalSince1970
        self.input = input
        self.pipeline = pipeline
        self.map = map
        self.mode = mode
        status = "running"
        host = ProcessInfo.processInfo.hostName
        pid = Int(getpid())
        pidStart = ProcessStart.of(pid: getpid()) ?? ""
    }

    /// The statuses `history --status` takes.
    public static let statuses = [
        "running", "completed", "completed_with_rejects", "aborted", "interrupted", "unchanged", "failed",
    ]
}

/// `history.sqlite` in the state directory: every run, from its start (`running`) to its end. WAL
/// and a busy time-out let parallel runs and a watcher write it at once; a run whose process is
/// gone without writing its end (`kill -9`, a crash, a reboot) shows as `interrupted`.
public final class RunHistory {
    private let database: SQLiteDatabase
    /// `STATE_DIR/runs/`: one lock file per running run, held by its process.
    private let runs: String
    public var path: String { database.path }

    public static func path(stateDirectory: String) -> String { stateDirectory + "/history.sqlite" }

    /// Opens (creating when missing) the history of the state directory.
    public init(stateDirectory: String) throws {
        try StateDirectory.create(stateDirectory)
        let path = Self.path(stateDirectory: stateDirectory)
        // Made owner-only before SQLite opens it: its -wal and -shm files take the same mode.
        let made = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        if made >= 0 { close(made) }
        database = try SQLiteDatabase(path: path)
        runs = stateDirectory + "/runs"
        try database.execute(
            """
            CREATE TABLE IF NOT EXISTS runs (
              run_id TEXT PRIMARY KEY, command TEXT NOT NULL, started REAL NOT NULL, ended REAL,
              input TEXT, pipeline TEXT, map TEXT, mode TEXT, status TEXT NOT NULL, exit_code INTEGER,
              rows_read INTEGER NOT NULL DEFAULT 0, imported INTEGER NOT NULL DEFAULT 0,
              created INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL DEFAULT 0,
              deleted INTEGER NOT NULL DEFAULT 0, unchanged INTEGER NOT NULL DEFAULT 0,
              rejected INTEGER NOT NULL DEFAULT 0, not_sent INTEGER NOT NULL DEFAULT 0,
              duration REAL, report_dir TEXT, summary TEXT, error TEXT, undo TEXT, rolled_back_by TEXT,
              host TEXT NOT NULL, pid INTEGER NOT NULL, pid_start TEXT NOT NULL, tool_version TEXT);
            CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started);
            """)
        // A history made before runs recorded the tool's version gets the column, checked and added
        // under the write lock: runs started at once would otherwise both add it.
        try database.transaction {
            let columns = try database.prepare("PRAGMA table_info(runs)").rows([]).compactMap { row -> String? in
                if case .text(let name) = row[1] { return name }
                return nil
            }
            if !columns.contains("tool_version") {
                try database.execute("ALTER TABLE runs ADD COLUMN tool_version TEXT")
            }
        }
    }

    private static let columns =
        "run_id, command, started, ended, input, pipeline, map, mode, status, exit_code, rows_read, imported, created, updated, deleted, unchanged, rejected, not_sent, duration, report_dir, summary, error, undo, rolled_back_by, host, pid, pid_start, tool_version"

    /// Records a run as it starts.
    public func begin(_ record: RunRecord) throws {
        try database.transaction {
            try database.prepare(
                "INSERT OR REPLACE INTO runs (\(Self.columns)) VALUES (\(Array(repeating: "?", count: 28).joined(separator: ",")))"
            ).run(values(of: record))
        }
    }

    /// Records how a run ended: its summary when it got that far, else the error that stopped it.
    public func finish(
        runID: String, summary: RunSummary?, exitCode: Int32, error: String?, reportDir: String?, undo: String? = nil
    ) throws {
        var status = exitCode == 130 ? "interrupted" : "failed"
        if let summary, !summary.interrupted { status = summary.status.rawValue }
        let counts: [SQLiteDatabase.Statement.Value] = [
            summary?.rowsRead, summary?.imported, summary?.created, summary?.updated, summary?.deleted,
            summary?.unchanged, summary?.rejected, summary?.notSent,
        ].map { .integer(Int64($0 ?? 0)) }
        try database.transaction {
            try database.prepare(
                """
                UPDATE runs SET ended = ?, status = ?, exit_code = ?, rows_read = ?, imported = ?, created = ?,
                  updated = ?, deleted = ?, unchanged = ?, rejected = ?, not_sent = ?, duration = ?,
                  report_dir = ?, summary = ?, error = ?, undo = ? WHERE run_id = ?
                """
            ).run(
                [.real(Date().timeIntervalSince1970), .text(status), .integer(Int64(exitCode))] + counts + [
                    summary.map { .real($0.durationSeconds) } ?? .null, text(reportDir),
                    text(summary?.json), text(error), text(undo), .text(runID),
                ])
        }
    }

    /// Where a run's reports went once the run was over (a watcher moves them with the file).
    public func moveReports(runID: String, to dir: String) throws {
        try database.prepare("UPDATE runs SET report_dir = ? WHERE run_id = ?").run([.text(dir), .text(runID)])
    }

    /// Notes that `rollback` run `by` undid the run `runID`.
    public func markRolledBack(_ runID: String, by: String) throws {
        try database.prepare("UPDATE runs SET rolled_back_by = ? WHERE run_id = ?").run([.text(by), .text(runID)])
    }

    /// The latest runs first, at most `limit`, filtered by map and status.
    public func list(limit: Int = 20, map: String? = nil, status: String? = nil) throws -> [RunRecord] {
        try settleOrphans()
        var conditions: [String] = []
        var values: [SQLiteDatabase.Statement.Value] = []
        if let map {
            conditions.append("map = ?")
            values.append(.text(map))
        }
        if let status {
            conditions.append("status = ?")
            values.append(.text(status))
        }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return try database.prepare(
            "SELECT \(Self.columns) FROM runs\(filter) ORDER BY started DESC, run_id DESC LIMIT ?"
        ).rows(values + [.integer(Int64(limit))]).map(record(from:))
    }

    /// The run with this id, or with the one id that starts with it.
    public func find(_ id: String) throws -> RunRecord? {
        try settleOrphans()
        let escaped = id.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
        let rows = try database.prepare(
            "SELECT \(Self.columns) FROM runs WHERE run_id = ? OR run_id LIKE ? ESCAPE '\\' ORDER BY run_id LIMIT 3"
        ).rows([.text(id), .text(escaped + "%")]).map(record(from:))
        if let exact = rows.first(where: { $0.runID == id }) { return exact }
        guard rows.count <= 1 else {
            throw ImportError(
                .usage,
                "run id \"\(id)\" is the start of several runs' ids (\(rows.map(\.runID).joined(separator: ", ")), …): give more of it"
            )
        }
        return rows.first
    }

    /// Holds `STATE_DIR/runs/RUN_ID.lock` for as long as the run goes on (released by the system
    /// when the process ends, however it ends): another process taking it knows the run is over.
    public func lock(_ runID: String) -> RunLock? {
        try? StateDirectory.create(runs)
        let path = runs + "/" + runID + ".lock"
        let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return nil }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            return nil
        }
        return RunLock(path: path, descriptor: descriptor)
    }

    /// Whether the run's process is gone: its lock can be taken (on any host that shares the
    /// state folder); without a lock file, its process on this host is gone.
    private func isOver(_ id: String, pid: Int64, start: String, host: String) -> Bool {
        let path = runs + "/" + id + ".lock"
        let descriptor = open(path, O_RDWR | O_CLOEXEC)
        if descriptor >= 0 {
            defer { close(descriptor) }
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else { return false }
            unlink(path)
            return true
        }
        guard host == ProcessInfo.processInfo.hostName else { return false }
        return !ProcessStart.isRunning(pid: pid_t(pid), start: start)
    }

    /// Runs still `running` whose process is gone are `interrupted`.
    private func settleOrphans() throws {
        let running = try database.prepare("SELECT run_id, pid, pid_start, host FROM runs WHERE status = 'running'")
            .rows([])
        for row in running {
            guard case .text(let id) = row[0], case .integer(let pid) = row[1], case .text(let start) = row[2],
                case .text(let host) = row[3]
            else { continue }
            if !isOver(id, pid: pid, start: start, host: host) { continue }
            try database.prepare(
                "UPDATE runs SET status = 'interrupted', error = ? WHERE run_id = ? AND status = 'running'"
            ).run([.text("the process ended without finishing the run (killed, or the machine stopped)"), .text(id)])
        }
    }

    private func text(_ value: String?) -> SQLiteDatabase.Statement.Value { value.map { .text($0) } ?? .null }

    private func values(of record: RunRecord) -> [SQLiteDatabase.Statement.Value] {
        [
            .text(record.runID), .text(record.command), .real(record.started), record.ended.map { .real($0) } ?? .null,
            text(record.input), text(record.pipeline), text(record.map), text(record.mode), .text(record.status),
            record.exitCode.map { .integer(Int64($0)) } ?? .null,
        ]
            + [
                record.rowsRead, record.imported, record.created, record.updated, record.deleted, record.unchanged,
                record.rejected, record.notSent,
            ].map { .integer(Int64($0)) }
            + [
                record.durationSeconds.map { .real($0) } ?? .null, text(record.reportDir), text(record.summary),
                text(record.error), text(record.undo), text(record.rolledBackBy), .text(record.host),
                .integer(Int64(record.pid)), .text(record.pidStart), .text(record.toolVersion),
            ]
    }

    private func record(from row: [SQLiteDatabase.Statement.Value]) -> RunRecord {
        func string(_ index: Int) -> String? {
            if case .text(let text) = row[index] { return text }
            return nil
        }
        func int(_ index: Int) -> Int? {
            if case .integer(let number) = row[index] { return Int(number) }
            return nil
        }
        func real(_ index: Int) -> Double? {
            switch row[index] {
            case .real(let number): number
            case .integer(let number): Double(number)
            default: nil
            }
        }
        var record = RunRecord(
            runID: string(0) ?? "", command: string(1) ?? "run", input: string(4), pipeline: string(5), map: string(6),
            mode: string(7))
        record.started = real(2) ?? 0
        record.ended = real(3)
        record.status = string(8) ?? "running"
        record.exitCode = int(9)
        record.rowsRead = int(10) ?? 0
        record.imported = int(11) ?? 0
        record.created = int(12) ?? 0
        record.updated = int(13) ?? 0
        record.deleted = int(14) ?? 0
        record.unchanged = int(15) ?? 0
        record.rejected = int(16) ?? 0
        record.notSent = int(17) ?? 0
        record.durationSeconds = real(18)
        record.reportDir = string(19)
        record.summary = string(20)
        record.error = string(21)
        record.undo = string(22)
        record.rolledBackBy = string(23)
        record.host = string(24) ?? ""
        record.pid = int(25) ?? 0
        record.pidStart = string(26) ?? ""
        record.toolVersion = string(27) ?? ""
        return record
    }
}

/// A running run's lock: released by `release()`, or by the system when the process ends.
public final class RunLock: Sendable {
    let path: String
    private let descriptor: Int32

    init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// The run is over: the lock file goes.
    public func release() {
        unlink(path)
        close(descriptor)
    }
}

/// A process told apart from a later one that got the same pid: its start time, in clock ticks
/// after boot (`/proc/PID/stat`, field 22).
enum ProcessStart {
    static func of(pid: pid_t) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After the command's name (which may hold spaces), fields 3…: field 22 is the 20th. A
        // zombie (state Z, field 3) has ended.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return nil }
        return String(fields[19])
    }

    static func isRunning(pid: pid_t, start: String) -> Bool {
        guard pid > 0 else { return false }
        if let now = of(pid: pid) { return start.isEmpty || now == start }
        // No /proc (not Linux): whether a process has the pid at all.
        if FileManager.default.fileExists(atPath: "/proc/self/stat") { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}
