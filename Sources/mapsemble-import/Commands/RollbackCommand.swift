import ArgumentParser
import Foundation
import MapsembleImport

/// `mapsemble-import rollback RUN_ID`: the map as it was before a run made with `report.undo: true`.
struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract:
            "Restore a map as it was before a run made with report.undo: true (delete what it created, put back what it changed or deleted).",
        discussion: """
            Run again after an interruption: what is restored already is seen on the map and left as it is.
            Exit 0: every feature is as before the run; 1: some changed on the map since the run and were left \
            alone (--force puts them back too); 3: some could not be restored (see the report).
            """)

    @Argument(help: "The run to undo: its id (or the start of it), from `history` or the run's last log line.")
    var runID: String

    @Flag(name: .customLong("dry-run"), help: "Print what would be done, change nothing.")
    var dryRun = false

    @Flag(help: "Also put back features changed on the map after the run.")
    var force = false

    @Option(help: "A pipeline file to take the API key and URL from (target:), else the environment.")
    var pipeline: String?

    @Option(name: .customLong("api-url"), help: "The Mapsemble API base URL (default: the run's).")
    var apiURL: String?

    @Option(name: .customLong("report-dir"), help: "Where RUN_ID.rollback.csv goes.")
    var reportDir = "reports"

    @Option(name: .customLong("batch-size"), help: "Features per request, 1 to 1000.")
    var batchSize = 500

    @OptionGroup var state: StateOptions

    @Option(name: .customLong("log-format"), help: "text or json.")
    var logFormat: LogFormat = .text

    @Flag(name: .shortAndLong, help: "Print only errors.")
    var quiet = false

    mutating func validate() throws {
        if !(1...1000).contains(batchSize) {
            throw ValidationError("--batch-size must be from 1 to 1000, got \(batchSize)")
        }
    }

    func run() async throws {
        let console = Console(format: logFormat, quiet: quiet)
        let (history, record, config) = try await Console.exitingOnError {
            let history = try state.history()
            guard var record = try history.find(runID) else {
                throw ImportError(.usage, "no run \"\(runID)\" in the run history")
            }
            // A run killed before its end still has its undo file where runs keep them.
            let standard = UndoLog.path(
                stateDirectory: StateDirectory.path(override: state.stateDir), runID: record.runID)
            if record.undo == nil, FileManager.default.fileExists(atPath: standard) { record.undo = standard }
            guard let undo = record.undo, FileManager.default.fileExists(atPath: undo) else {
                throw ImportError(
                    .usage,
                    record.undo == nil
                        ? "run \(record.runID) was not made with report.undo: true, so it cannot be rolled back"
                        : "the undo file of run \(record.runID) is gone (\(record.undo!))")
            }
            if record.status == "running" && !force {
                throw ImportError(
                    .usage, "run \(record.runID) is still running; roll it back once it is over (or --force)")
            }
            if let by = record.rolledBackBy, !force, !dryRun {
                console.info("run \(record.runID) was rolled back already (by \(by)); checking the map again")
            }
            var config = PipelineConfig()
            if let pipeline {
                config = try ConfigLoader.load(path: pipeline, environment: ProcessInfo.processInfo.environment)
            }
            PipelineOptions.applyEnvironment(&config)
            return (history, record, config)
        }
        let rollbackID = RunID.make()
        var options = Rollback.Options()
        options.dryRun = dryRun
        options.force = force
        options.batchSize = batchSize
        var own = RunRecord(
            runID: rollbackID, command: "rollback", input: "undo of \(record.runID)", pipeline: pipeline,
            map: record.map, mode: "rollback")
        own.undo = record.undo
        if !dryRun { try? history.begin(own) }
        let log: @Sendable (RunEvent) -> Void = { console.log($0, file: nil) }
        let task = Task {
            try await Rollback.run(
                undoFile: record.undo!, rollbackID: rollbackID, config: config, apiURL: apiURL, options: options,
                log: log)
        }
        let interrupts = Interrupts { task.cancel() }
        defer { interrupts.stop() }
        var result: Rollback.Result
        var failure: String?
        do {
            result = try await task.value
        } catch let stopped as Rollback.RollbackFailure {
            result = stopped.result
            failure =
                stopped.error is CancellationError
                ? "interrupted" : (stopped.error as? ImportError)?.description ?? "\(stopped.error)"
        } catch {
            // Stopped before anything was sent (the undo file, the map's listing).
            let code: Int32 = error is CancellationError ? 130 : 2
            let message = code == 130 ? "interrupted" : (error as? ImportError)?.description ?? "\(error)"
            if !dryRun {
                try? history.finish(runID: rollbackID, summary: nil, exitCode: code, error: message, reportDir: nil)
            }
            if code == 130 {
                console.info("interrupted before anything was sent")
            } else {
                console.fail(error as? ImportError ?? ImportError(.remote, message))
            }
            throw ExitCode(code)
        }
        if dryRun {
            for step in result.steps where step.action != .none {
                print(
                    "\(step.forced.map { force ? $0.rawValue : "skip_\(step.action.rawValue)" } ?? step.action.rawValue),\(step.remoteID)"
                )
            }
        }
        let code = exitCode(result, failure: failure)
        let line = closing(result, failure: failure, rollbackID: rollbackID)
        if !dryRun {
            let path = reportDir + "/" + record.runID + ".rollback.csv"
            do {
                try writeReport(result, to: path)
            } catch {
                console.info("warning: cannot write \(path): \(error)")
            }
            let summary = result.summary(
                rollbackID: rollbackID, exitCode: code, force: force, interrupted: failure == "interrupted")
            try? history.finish(
                runID: rollbackID, summary: summary, exitCode: code, error: failure, reportDir: reportDir,
                undo: record.undo)
            if code == 0, record.rolledBackBy == nil { try? history.markRolledBack(record.runID, by: rollbackID) }
        }
        if !quiet || code > 1 { console.info(line, event: "rollback_summary") }
        throw ExitCode(code)
    }

    private func exitCode(_ result: Rollback.Result, failure: String?) -> Int32 {
        if failure == "interrupted" { return 130 }
        if failure != nil || (!dryRun && !result.failed.isEmpty) { return 3 }
        if !dryRun && !result.verified { return 3 }
        if result.count(.conflict) > 0 && !force { return 1 }
        return 0
    }

    private func closing(_ result: Rollback.Result, failure: String?, rollbackID: String) -> String {
        let would = dryRun ? "would " : ""
        let verbs = dryRun ? ("delete", "restore", "re-create") : ("deleted", "restored", "re-created")
        var line =
            "\(dryRun ? "dry run: " : "")rollback of run \(result.runID) on map \(result.map): \(would)\(verbs.0) \(result.count(.delete)) it created, \(would)\(verbs.1) \(result.count(.restore)) it updated, \(would)\(verbs.2) \(result.count(.recreate)) it deleted; \(result.count(.none)) already as before; \(result.count(.conflict)) changed since"
            + (result.count(.conflict) > 0 ? (force ? " (\(would)put back: --force)" : " (left alone)") : "")
        if !dryRun {
            line +=
                "; \(result.requests) request\(result.requests == 1 ? "" : "s"), \(result.retries) retr\(result.retries == 1 ? "y" : "ies")"
            if !result.verified {
                line += "; the map could not be read again to check what is back"
            } else if !result.failed.isEmpty {
                line +=
                    "; \(result.failed.count) not restored: \(result.failed.prefix(10).joined(separator: ", "))\(result.failed.count > 10 ? ", …" : "")"
            }
            if let failure { line += "; stopped: \(failure); run the same command again to finish" }
            line += "; run \(rollbackID)"
        }
        return line
    }

    /// `RUN_ID.rollback.csv`: each feature the run touched, what the rollback did, and whether it
    /// is as before the run now.
    private func writeReport(_ result: Rollback.Result, to path: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var text = "remote_id,action,as_before\n"
        for step in result.steps {
            let id =
                step.remoteID.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + step.remoteID.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : step.remoteID
            let action = step.action == .conflict && force ? (step.forced ?? .conflict).rawValue : step.action.rawValue
            text += "\(id),\(action),\(step.restored ? "yes" : "no")\n"
        }
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw ImportError(.output, "cannot write the rollback report", file: path)
        }
    }
}
