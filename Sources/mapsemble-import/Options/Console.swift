import ArgumentParser
import Foundation
import MapsembleImport
import NIOConcurrencyHelpers

/// Everything the command prints goes to stderr through here; stdout carries only data asked for.
struct Console: Sendable {
    var format: LogFormat
    var quiet: Bool

    static func error(_ message: String) {
        write("mapsemble-import: error: \(message)\n")
    }

    /// Runs `body`, turning an `ImportError` into one sentence and exit code 2.
    static func exitingOnError<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ImportError {
            Console.error(error.description)
            throw ExitCode(2)
        }
    }

    static func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    func fail(_ error: ImportError) {
        switch format {
        case .text: Self.error(error.description)
        case .json:
            var fields: [String: Any] = [
                "level": "error", "event": "error", "message": error.description, "exit_code": error.exitCode,
            ]
            if let file = error.file { fields["file"] = file }
            if let line = error.line { fields["line"] = line }
            if let column = error.column { fields["column"] = column }
            Self.write(json(fields))
        }
    }

    /// A line about what the command does (`event` names it for `--log-format json`).
    func info(_ message: String, event: String = "info", fields: [String: RunEvent.Value] = [:]) {
        log(RunEvent(.notice, message, event: event, fields: fields), file: nil)
    }

    /// A log line of a run. JSON keys: `level` (`debug` for detail, `warning` for retries, else
    /// `info`), `event`, `message`, `file` when known, then the event's own fields.
    func log(_ event: RunEvent, file: String?) {
        switch format {
        case .text: Self.write("mapsemble-import: \(event.message)\n")
        case .json:
            var object: [String: Any] = [
                "level": event.level == .detail ? "debug" : event.event == "retry" ? "warning" : "info",
                "event": event.event, "message": event.message,
            ]
            if let file { object["file"] = file }
            for (key, value) in event.fields {
                switch value {
                case .int(let number): object[key] = number
                case .text(let text): object[key] = text
                }
            }
            Self.write(json(object))
        }
    }

    /// The one closing line.
    func closing(_ summary: RunSummary, dryRun: Bool, reportDir: String, file: String? = nil) {
        guard !quiet || summary.exitCode > 1 else { return }
        let codes = summary.rejectedByCode.sorted { $0.key < $1.key }.map { "\($0.key.rawValue) \($0.value)" }
        var line =
            dryRun
            ? "dry run: \(summary.imported) of \(summary.rowsRead) rows would be imported"
            : "imported \(summary.imported) of \(summary.rowsRead) rows (\(summary.created) created, \(summary.updated) updated"
                + (summary.unchanged > 0 ? ", \(summary.unchanged) unchanged" : "")
                + (summary.resumedRows > 0 ? ", \(summary.resumedRows) by the run resumed" : "")
                + (summary.deleted > 0 ? ", \(summary.deleted) deleted" : "")
                + "; \(summary.requests) request\(summary.requests == 1 ? "" : "s"), \(summary.retries) retr\(summary.retries == 1 ? "y" : "ies"))"
        if let geocoding = summary.geocoding {
            line +=
                ", \(geocoding.geocoded) geocoded (\(geocoding.cacheHits) addresses from the cache, \(geocoding.requests) geocoder request\(geocoding.requests == 1 ? "" : "s"))"
        }
        line += ", \(summary.rejected) rejected"
        if !codes.isEmpty { line += " (\(codes.joined(separator: ", ")))" }
        line +=
            ", \(summary.notSent) not sent; \(summary.status.rawValue) in \(String(format: "%.2f", summary.durationSeconds)) s; reports in \(reportDir)/"
        if summary.status == .unchanged {
            line =
                "the source is as at its last import: nothing read or sent; unchanged in \(String(format: "%.2f", summary.durationSeconds)) s; reports in \(reportDir)/"
        }
        if !dryRun, let runID = summary.runID { line += "; run \(runID)" }
        switch format {
        case .text:
            Self.write(line + "\n")
        case .json:
            var fields: [String: Any] = [
                "level": "info", "event": "summary", "message": line, "status": summary.status.rawValue,
                "dry_run": dryRun, "created": summary.created, "updated": summary.updated, "deleted": summary.deleted,
                "requests": summary.requests, "retries": summary.retries,
                "rows_read": summary.rowsRead, "imported": summary.imported, "rejected": summary.rejected,
                "not_sent": summary.notSent, "duration_s": summary.durationSeconds, "report_dir": reportDir,
                "unchanged": summary.unchanged, "resumed_rows": summary.resumedRows, "exit_code": summary.exitCode,
                "file": file ?? summary.input,
            ]
            if !dryRun, let runID = summary.runID { fields["run_id"] = runID }
            if let geocoding = summary.geocoding {
                fields["geocoded"] = geocoding.geocoded
                fields["geocode_cache_hits"] = geocoding.cacheHits
                fields["geocode_requests"] = geocoding.requests
            }
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

/// A progress line on stderr, redrawn at most four times a second; with `--log-format json`, a
/// `progress` event every five seconds instead.
final class ProgressMeter: Sendable {
    private let totalBytes: Int?
    private let console: Console
    private let file: String?
    private let started = ContinuousClock.now
    private let last = NIOLockedValueBox<ContinuousClock.Instant?>(nil)

    init(totalBytes: Int?, console: Console, file: String?) {
        self.totalBytes = totalBytes
        self.console = console
        self.file = file
    }

    func update(_ progress: MapsembleImport.Progress) {
        let now = ContinuousClock.now
        let period: Duration = console.format == .json ? .seconds(5) : .milliseconds(250)
        let due = last.withLockedValue { last -> Bool in
            if let previous = last, now - previous < period { return false }
            last = now
            return true
        }
        guard due else { return }
        let elapsed = max((now - started).seconds, 0.001)
        if let downloaded = progress.downloaded {
            let megabytes = Double(downloaded) / 1e6
            if console.format == .json {
                console.log(
                    RunEvent(
                        .notice, "downloaded \(downloaded) bytes", event: "progress",
                        fields: ["downloaded_bytes": .int(downloaded)]), file: file)
            } else {
                Console.write(
                    "\r\u{1B}[Kdownloading: " + String(format: "%.1f MB, %.1f MB/s", megabytes, megabytes / elapsed))
            }
            return
        }
        let rate = Int(Double(progress.rowsRead) / elapsed)
        var share: Double?
        if let totalBytes, totalBytes > 0 { share = Double(progress.bytesRead) / Double(totalBytes) }
        let eta = share.flatMap { $0 > 0.01 ? elapsed / $0 - elapsed : nil }
        if console.format == .json {
            var fields: [String: RunEvent.Value] = [
                "rows": .int(progress.rowsRead), "rows_per_s": .int(rate), "rejected": .int(progress.rejected),
                "retries": .int(progress.retries), "bytes": .int(progress.bytesRead),
            ]
            if let geocoding = progress.geocoding {
                fields["geocoded"] = .int(geocoding.geocoded)
                fields["geocode_cache_hits"] = .int(geocoding.cacheHits)
                fields["geocode_requests"] = .int(geocoding.requests)
            }
            if let share { fields["percent"] = .int(Int(share * 100)) }
            if let eta { fields["eta_s"] = .int(Int(eta)) }
            console.log(RunEvent(.notice, "\(progress.rowsRead) rows", event: "progress", fields: fields), file: file)
            return
        }
        var line = "\r\u{1B}[K\(progress.rowsRead) rows, \(rate) rows/s, \(progress.rejected) rejected"
        if progress.retries > 0 { line += ", \(progress.retries) retries" }
        if let geocoding = progress.geocoding {
            line += ", \(geocoding.geocoded) geocoded (\(geocoding.cacheHits) cached, \(geocoding.requests) asked)"
        }
        if let share { line += String(format: ", %.0f%%", share * 100) }
        if let eta { line += String(format: ", ETA %.0f s", eta) }
        Console.write(line)
    }

    func clear() {
        if console.format == .text { Console.write("\r\u{1B}[K") }
    }
}
