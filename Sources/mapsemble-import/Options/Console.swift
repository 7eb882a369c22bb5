import Foundation
import MapsembleImport
import Synchronization

/// Everything the command prints goes to stderr through here; stdout carries only data asked for.
struct Console: Sendable {
    var format: LogFormat
    var quiet: Bool

    static func error(_ message: String) {
        write("mapsemble-import: error: \(message)\n")
    }

    static func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    func fail(_ error: ImportError) {
        switch format {
        case .text: Self.error(error.description)
        case .json:
            Self.write(json(["level": "error", "message": error.description]))
        }
    }

    /// A line of detail (`--verbose`).
    func info(_ message: String) {
        switch format {
        case .text: Self.write("mapsemble-import: \(message)\n")
        case .json: Self.write(json(["level": "info", "message": message]))
        }
    }

    /// The one closing line.
    func closing(_ summary: RunSummary, dryRun: Bool, reportDir: String) {
        guard !quiet || summary.exitCode > 1 else { return }
        switch format {
        case .text:
            let codes = summary.rejectedByCode.sorted { $0.key < $1.key }.map { "\($0.key.rawValue) \($0.value)" }
            var line =
                dryRun
                ? "dry run: \(summary.imported) of \(summary.rowsRead) rows would be imported"
                : "imported \(summary.imported) of \(summary.rowsRead) rows (\(summary.created) created, \(summary.updated) updated"
                    + (summary.unchanged > 0 ? ", \(summary.unchanged) unchanged" : "")
                    + (summary.resumedRows > 0 ? ", \(summary.resumedRows) by the run resumed" : "")
                    + (summary.deleted > 0 ? ", \(summary.deleted) deleted" : "")
                    + "; \(summary.requests) request\(summary.requests == 1 ? "" : "s"), \(summary.retries) retr\(summary.retries == 1 ? "y" : "ies"))"
            line += ", \(summary.rejected) rejected"
            if !codes.isEmpty { line += " (\(codes.joined(separator: ", ")))" }
            line +=
                ", \(summary.notSent) not sent; \(summary.status.rawValue) in \(String(format: "%.2f", summary.durationSeconds)) s; reports in \(reportDir)/"
            Self.write(line + "\n")
        case .json:
            var fields: [String: Any] = [
                "level": "info", "event": "summary", "status": summary.status.rawValue, "dry_run": dryRun,
                "created": summary.created, "updated": summary.updated, "deleted": summary.deleted,
                "requests": summary.requests, "retries": summary.retries,
                "rows_read": summary.rowsRead, "imported": summary.imported, "rejected": summary.rejected,
                "not_sent": summary.notSent, "duration_s": summary.durationSeconds, "report_dir": reportDir,
                "unchanged": summary.unchanged, "resumed_rows": summary.resumedRows,
            ]
            fields["rejected_by_code"] = Dictionary(
                uniqueKeysWithValues: summary.rejectedByCode.map { ($0.key.rawValue, $0.value) })
            Self.write(json(fields))
        }
    }

    private func json(_ object: [String: Any]) -> String {
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// A progress line on stderr, redrawn at most four times a second.
final class ProgressMeter: Sendable {
    private let totalBytes: Int?
    private let started = ContinuousClock.now
    private let last = Mutex<ContinuousClock.Instant?>(nil)

    init(totalBytes: Int?) { self.totalBytes = totalBytes }

    func update(_ progress: MapsembleImport.Progress) {
        let now = ContinuousClock.now
        let due = last.withLock { last -> Bool in
            if let previous = last, now - previous < .milliseconds(250) { return false }
            last = now
            return true
        }
        guard due else { return }
        let elapsed = max((now - started).seconds, 0.001)
        var line =
            "\r\u{1B}[K\(progress.rowsRead) rows, \(Int(Double(progress.rowsRead) / elapsed)) rows/s, \(progress.rejected) rejected"
        if let totalBytes, totalBytes > 0 {
            let share = Double(progress.bytesRead) / Double(totalBytes)
            line += String(format: ", %.0f%%", share * 100)
            if share > 0.01 { line += String(format: ", ETA %.0f s", elapsed / share - elapsed) }
        }
        Console.write(line)
    }

    func clear() { Console.write("\r\u{1B}[K") }
}
