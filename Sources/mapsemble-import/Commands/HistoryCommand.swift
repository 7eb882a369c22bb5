import ArgumentParser
import Foundation
import MapsembleImport
import MapsembleJSON

/// `mapsemble-import history`: the runs recorded in `history.sqlite` in the state directory.
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "List past runs (run, each file of watch, rollback) from the run history.",
        subcommands: [HistoryList.self, HistoryShow.self], defaultSubcommand: HistoryList.self)
}

/// Where the history is: `--state-dir`, as for a run.
struct StateOptions: ParsableArguments {
    @Option(
        name: .customLong("state-dir"),
        help:
            "The state folder (default $MAPSEMBLE_STATE_DIR, else $XDG_STATE_HOME/mapsemble-import, else ~/.local/state/mapsemble-import)."
    )
    var stateDir: String?

    func history() throws -> RunHistory {
        let dir = StateDirectory.path(override: stateDir)
        guard FileManager.default.fileExists(atPath: RunHistory.path(stateDirectory: dir)) else {
            throw ImportError(.usage, "no run history in \(dir) yet: no run has been recorded there")
        }
        return try RunHistory(stateDirectory: dir)
    }
}

struct HistoryList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "The latest runs first, as a table (or JSON).")

    @OptionGroup var state: StateOptions

    @Option(help: "At most this many runs.")
    var limit = 20

    @Option(help: "Only runs into this map.")
    var map: String?

    @Option(help: "Only runs with this status: \(RunRecord.statuses.joined(separator: ", ")).")
    var status: String?

    @Flag(help: "One JSON array, for scripts.")
    var json = false

    mutating func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be at least 1, got \(limit)") }
        if let status, !RunRecord.statuses.contains(status) {
            throw ValidationError(
                "--status must be one of \(RunRecord.statuses.joined(separator: ", ")); got \"\(status)\"")
        }
    }

    func run() async throws {
        let records = try await Console.exitingOnError {
            try state.history().list(limit: limit, map: map, status: status)
        }
        if json {
            print(JSONValue.array(records.map(\.json)).text)
            return
        }
        guard !records.isEmpty else {
            Console.write(
                "mapsemble-import: no runs recorded\(map.map { " into map \($0)" } ?? "")\(status.map { " with status \($0)" } ?? "")\n"
            )
            return
        }
        let header = [
            "RUN ID", "STARTED", "STATUS", "MODE", "READ", "IMPORTED", "REJECTED", "NOT SENT", "TIME", "MAP", "INPUT",
        ]
        let rows = records.map { record -> [String] in
            [
                record.runID, HistoryFormat.localTime(record.started),
                record.status + (record.rolledBackBy != nil ? " (rolled back)" : ""), record.mode ?? "",
                "\(record.rowsRead)", "\(record.imported)", "\(record.rejected)", "\(record.notSent)",
                record.durationSeconds.map { String(format: "%.1f s", $0) } ?? "",
                String((record.map ?? "").prefix(8)), record.input ?? "",
            ]
        }
        print(HistoryFormat.table(header: header, rows: rows, numeric: [4, 5, 6, 7, 8]), terminator: "")
    }
}

struct HistoryShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Print one run's summary (its summary.json) by run id.")

    @OptionGroup var state: StateOptions

    @Argument(help: "The run id (or the start of it), from `history` or the run's last log line.")
    var runID: String

    func run() async throws {
        let record = try await Console.exitingOnError {
            guard let record = try state.history().find(runID) else {
                throw ImportError(.usage, "no run \"\(runID)\" in the run history")
            }
            return record
        }
        if let summary = record.summary {
            print(summary, terminator: summary.hasSuffix("\n") ? "" : "\n")
        } else {
            print(record.json.text)
        }
    }
}

extension RunRecord {
    /// The record for `history --json`.
    var json: JSONValue {
        func text(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
        func number(_ value: Int) -> JSONValue { .number(Double(value)) }
        return .object([
            ("run_id", .string(runID)), ("command", .string(command)),
            ("started", .string(HistoryFormat.isoTime(started))), ("ended", text(ended.map(HistoryFormat.isoTime))),
            ("input", text(input)), ("pipeline", text(pipeline)), ("map", text(map)), ("mode", text(mode)),
            ("status", .string(status)), ("exit_code", exitCode.map(number) ?? .null),
            ("rows_read", number(rowsRead)), ("imported", number(imported)), ("created", number(created)),
            ("updated", number(updated)), ("deleted", number(deleted)), ("unchanged", number(unchanged)),
            ("rejected", number(rejected)), ("not_sent", number(notSent)),
            ("duration_s", durationSeconds.map { .number(($0 * 1000).rounded() / 1000) } ?? .null),
            ("report_dir", text(reportDir)), ("error", text(error)), ("undo", text(undo)),
            ("rolled_back_by", text(rolledBackBy)), ("host", .string(host)), ("tool_version", .string(toolVersion)),
        ])
    }
}

enum HistoryFormat {
    /// ISO 8601 in UTC: `2026-12-03T03:13:07Z`.
    static func isoTime(_ seconds: Double) -> String { time(seconds, utc: true) }

    /// The machine's local time, for the table: `2026-12-03 04:13:07`.
    static func localTime(_ seconds: Double) -> String { time(seconds, utc: false) }

    private static func time(_ seconds: Double, utc: Bool) -> String {
        var time = time_t(seconds)
        var parts = tm()
        if utc { gmtime_r(&time, &parts) } else { localtime_r(&time, &parts) }
        return String(
            format: utc ? "%04d-%02d-%02dT%02d:%02d:%02dZ" : "%04d-%02d-%02d %02d:%02d:%02d",
            Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday), Int(parts.tm_hour),
            Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// Columns padded to their widest cell; `numeric` columns right-aligned.
    static func table(header: [String], rows: [[String]], numeric: Set<Int>) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.indices.map { column in
                let cell = row[column]
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return numeric.contains(column) ? pad + cell : (column == row.count - 1 ? cell : cell + pad)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
