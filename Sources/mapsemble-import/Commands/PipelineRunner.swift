import ArgumentParser
import Foundation
import Logging
import MapsembleImport
import MapsembleJSON
import MapsembleSandbox
import Synchronization

/// Runs a pipeline for a command: the embedded sandbox, Ctrl-C, progress, the closing line and
/// the exit code.
struct PipelineRunner {
    let options: PipelineOptions
    /// A dry run: nothing is sent.
    let dryRun: Bool
    /// In a dry run, read the map when credentials and a map id are given (`validate`).
    var checkMap = false
    /// `watch --metrics-listen`: the watcher's series, counted run by run.
    var liveMetrics: RunMetrics?

    func run() async throws {
        let console = Console(format: options.logFormat, quiet: options.quiet)
        let config: PipelineConfig
        do {
            config = try options.config()
        } catch let error as ImportError {
            console.fail(error)
            throw ExitCode(error.exitCode)
        }
        let task = Task { await execute(config, console: console, resumeHint: Self.resumeCommand()) }
        let interrupts = Interrupts { task.cancel() }
        defer { interrupts.stop() }
        throw ExitCode(await task.value.code)
    }

    /// Runs one pipeline in the calling task (cancelling it is Ctrl-C): the embedded sandbox,
    /// progress, log lines, the closing line. Returns the summary, when the run got that far, and
    /// the exit code. `resumeHint` is the command to print when the run can be resumed.
    func execute(
        _ config: PipelineConfig, console: Console, resumeHint: String?, command: String = "run",
        concluding: Bool = true
    ) async -> RunOutcome {
        let runID = RunID.make()
        let operations = dryRun ? nil : Operations(runID: runID, config: config, options: options, command: command)
        operations?.begin(console: console)
        var outcome = await perform(config, console: console, resumeHint: resumeHint, runID: runID)
        outcome.runID = runID
        if let operations {
            outcome.end = operations.finish(outcome, console: console)
            if concluding { await conclude(outcome, config: config, console: console) }
        }
        return outcome
    }

    /// The end of a run seen from outside: the metrics file, the watcher's metrics, the
    /// notification. Never changes the outcome.
    func conclude(_ outcome: RunOutcome, config: PipelineConfig, console: Console) async {
        guard let end = outcome.end else { return }
        if let path = options.metricsFile {
            do {
                try MetricsFile.update(path, with: end)
            } catch {
                console.info(
                    "warning: \((error as? ImportError)?.description ?? "\(error)"); the run's outcome stands",
                    event: "metrics_failed")
            }
        }
        liveMetrics?.record(end)
        // A source found as it was is no event.
        if let notify = config.notify, outcome.summary?.status != .unchanged,
            Notifier.wanted(notify.on, exitCode: end.exitCode)
        {
            if let warning = await Notifier.send(notify, end) {
                console.info("warning: \(warning)", event: "notify_failed")
            } else if options.verbose {
                console.log(
                    RunEvent(.detail, "notification sent (\(notify.format.rawValue))", event: "notified"), file: nil)
            }
        }
    }

    private func perform(
        _ config: PipelineConfig, console: Console, resumeHint: String?, runID: String
    ) async -> RunOutcome {
        var config = config
        var sandbox: SandboxServer?
        if options.sandbox && !dryRun {
            do {
                sandbox = try await EmbeddedSandbox.start(for: &config)
            } catch {
                let failure = ImportError(.remote, "cannot start the embedded sandbox: \(error)")
                console.fail(failure)
                return RunOutcome(summary: nil, code: 2, failure: failure)
            }
            console.info("sandbox listening at \(sandbox!.url); importing into map \(config.target.mapID!)")
        }
        // The embedded sandbox's geocoding cache goes with it.
        defer {
            if sandbox != nil, let cache = config.geocode?.cache { try? FileManager.default.removeItem(atPath: cache) }
        }
        var runOptions = RunOptions()
        runOptions.dryRun = dryRun
        // validate checks the map's fields when it can reach the map; run --dry-run stays offline,
        // but for a sync or an update, whose dry run tells what would change, it reads the map.
        runOptions.checkMap =
            (checkMap || config.mode == .sync || config.mode == .update || config.geocode?.provider == "mapsemble")
            && config.credentials != nil
            && config.target.mapID != nil
        runOptions.output = options.output
        runOptions.outputBatches = options.outputBatches
        runOptions.fresh = options.fresh
        runOptions.forceDelete = options.forceDelete
        runOptions.refreshGeocodes = options.refreshGeocodes
        runOptions.stateDirectory = options.stateDir
        runOptions.backup = options.backup
        runOptions.createFields = options.createFields
        runOptions.addOptions = options.addOptions
        // The embedded sandbox starts empty every time: nothing there to resume into.
        runOptions.journal = !options.sandbox
        runOptions.runID = runID
        let pipeline = Pipeline(config: config, options: runOptions)
        // A URL is shown without the query or user it may carry a token in.
        let file = config.source.path.map { RemoteSource.isURL($0) ? RemoteSource.displayName($0) : $0 }
        let showProgress =
            !options.quiet && (options.progress == .always || (options.progress == .auto && isatty(2) == 1))
        let meter =
            showProgress
            ? ProgressMeter(totalBytes: inputSize(config.source.path), console: console, file: file)
            : nil
        let report: (@Sendable (MapsembleImport.Progress) -> Void)? =
            if let meter { { meter.update($0) } } else { nil }
        // The run's events through swift-log, written as text or JSON lines: decisions (`info`)
        // with --verbose, what happens to the run (`notice`) unless --quiet.
        let level: Logger.Level = options.quiet ? .warning : options.verbose ? .info : .notice
        let logger = Logger.events(logLevel: level) { event in
            meter?.clear()
            console.log(event, file: file)
        }
        let summary: RunSummary
        do {
            summary = try await pipeline.run(progress: report, logger: logger)
        } catch is CancellationError {
            // Ctrl-C before any row moved (a download, say).
            meter?.clear()
            await sandbox?.stop()
            console.info("interrupted before any row was read; nothing was sent")
            return RunOutcome(summary: nil, code: 130, failure: nil)
        } catch {
            meter?.clear()
            await sandbox?.stop()
            let failure = error as? ImportError ?? ImportError(.output, "\(error)")
            console.fail(failure)
            return RunOutcome(summary: nil, code: failure.exitCode, failure: failure)
        }
        meter?.clear()
        if let reason = summary.abortReason { console.fail(reason) }
        if let journal = summary.journal, let resumeHint {
            console.info(
                "progress is recorded in \(journal); to go on where this run stopped, run the same command again: \(resumeHint)",
                event: "resumable", fields: ["journal": .text(journal), "command": .text(resumeHint)])
        }
        console.closing(summary, dryRun: dryRun, reportDir: config.report.dir, file: file)
        if let sandbox {
            EmbeddedSandbox.show(sandbox, map: config.target.mapID!, console: console)
            await sandbox.stop()
        }
        return RunOutcome(summary: summary, code: summary.exitCode, failure: summary.abortReason)
    }

    /// This command line as the user can paste it again (without `--fresh`).
    static func resumeCommand() -> String {
        // A URL is shown without its query or user, which may hold a token.
        let arguments = CommandLine.arguments.dropFirst().filter { $0 != "--fresh" }.map { argument in
            if RemoteSource.isURL(argument) { return RemoteSource.displayName(argument) }
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "="),
                RemoteSource.isURL(String(argument[argument.index(after: equals)...]))
            {
                return argument[...equals]
                    + RemoteSource.displayName(String(argument[argument.index(after: equals)...]))
            }
            return argument
        }
        let name = CommandLine.arguments.first.map { $0.contains("/") ? $0 : "mapsemble-import" } ?? "mapsemble-import"
        return ([name] + arguments).map(shellQuoted).joined(separator: " ")
    }

    private static func shellQuoted(_ word: String) -> String {
        let safe = word.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) || "-_./=:,@%+".unicodeScalars.contains($0)
        }
        return safe && !word.isEmpty ? word : "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }

    private func inputSize(_ path: String?) -> Int? {
        // A .zip's progress is its member's bytes, whose size the archive states, not the archive's.
        guard let path, path != "-", !RemoteSource.isURL(path), !path.lowercased().hasSuffix(".zip") else {
            return nil
        }
        return (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
    }
}

/// How one run ended.
struct RunOutcome {
    /// nil when the run stopped before any row moved.
    var summary: RunSummary?
    var code: Int32
    var failure: ImportError?
    var runID: String?
    /// The run as the history, the metrics and the notification tell it (not for a dry run).
    var end: RunEnd?
}

/// A run's place in the history (`history.sqlite` in the state directory), begun before the run
/// and finished after it. The history is a record, not a gate: when it cannot be written, the run
/// goes on with a warning.
struct Operations {
    let runID: String
    let config: PipelineConfig
    let options: PipelineOptions
    let command: String
    private let history: RunHistory?
    private let problem: String?
    /// Held while the run goes on: a run whose lock is free is over (`interrupted` if it said nothing).
    private let lock: RunLock?

    init(runID: String, config: PipelineConfig, options: PipelineOptions, command: String) {
        self.runID = runID
        self.config = config
        self.options = options
        self.command = command
        do {
            history = try RunHistory(stateDirectory: StateDirectory.path(override: options.stateDir))
            problem = nil
        } catch {
            history = nil
            problem = (error as? ImportError)?.description ?? "\(error)"
        }
        lock = history?.lock(runID)
    }

    /// What the run reads, as it may be shown: a URL without its query or user.
    var input: String {
        let path = config.source.path ?? "-"
        return RemoteSource.isURL(path) ? RemoteSource.displayName(path) : path
    }

    func begin(console: Console) {
        if let problem { console.info("warning: the run history is not kept: \(problem)", event: "history_failed") }
        var record = RunRecord(
            runID: runID, command: command, input: input, pipeline: options.pipeline, map: config.target.mapID,
            mode: config.mode.rawValue)
        // Known from the start: a run killed part-way can be rolled back.
        if config.report.undo { record.undo = undoPath }
        do {
            try history?.begin(record)
        } catch {
            console.info("warning: the run history is not kept: \(error)", event: "history_failed")
        }
    }

    /// Records the end; returns it for the metrics and the notification.
    func finish(_ outcome: RunOutcome, console: Console) -> RunEnd {
        var end = RunEnd(
            runID: runID, summary: outcome.summary, exitCode: outcome.code, failure: outcome.failure?.description,
            input: outcome.summary?.input ?? input, pipeline: options.pipeline, map: config.target.mapID,
            mode: config.mode.rawValue)
        end.reports = Self.reports(config)
        do {
            try history?.finish(
                runID: runID, summary: outcome.summary, exitCode: outcome.code, error: end.failure,
                reportDir: config.report.dir,
                undo: config.report.undo && FileManager.default.fileExists(atPath: undoPath) ? undoPath : nil)
        } catch {
            console.info("warning: the run history is not kept: \(error)", event: "history_failed")
        }
        lock?.release()
        if outcome.summary == nil, outcome.code != 130 {
            // The closing line of a run that stopped before any row moved names it too.
            console.info(
                "run \(runID): nothing sent (exit \(outcome.code))", event: "run_failed",
                fields: ["run_id": .text(runID), "exit_code": .int(Int(outcome.code))])
        }
        return end
    }

    private var undoPath: String {
        UndoLog.path(stateDirectory: StateDirectory.path(override: options.stateDir), runID: runID)
    }

    /// The report files of a run that exist, by kind.
    static func reports(_ config: PipelineConfig) -> [String: String] {
        let paths = Pipeline(config: config, options: RunOptions()).reportPaths
        let all = [
            "summary": paths.summary, "rejected": paths.rejected, "html": paths.html, "diff": paths.diff,
            "journal": paths.journal,
        ]
        return all.filter { FileManager.default.fileExists(atPath: $0.value) }
    }

    /// A watcher moved the reports of `outcome`'s run to `dir`.
    static func moved(_ outcome: inout RunOutcome, config: PipelineConfig, to dir: String, stateDir: String?) {
        guard let runID = outcome.runID, outcome.end != nil else { return }
        try? RunHistory(stateDirectory: StateDirectory.path(override: stateDir)).moveReports(runID: runID, to: dir)
        var config = config
        config.report.dir = dir
        outcome.end?.reports = reports(config)
    }
}

/// `--sandbox`: a sandbox in this process, on a free loopback port, with a map made for the pipeline.
enum EmbeddedSandbox {
    static let defaultMapID = "5a9db0c0-0000-4000-8000-000000000001"

    /// A pipeline that geocodes asks the sandbox's geocoder instead of its own (`geocode.url`
    /// and the provider's protocol kept), so that it runs offline too.
    static func start(for config: inout PipelineConfig) async throws -> SandboxServer {
        var sandboxConfig = SandboxConfig(maps: [map(for: &config)])
        let key = "sandbox-\(UInt64.random(in: 1...UInt64.max))"
        sandboxConfig.apiKeys = [key: "sandbox"]
        if config.geocode != nil { sandboxConfig.geocoder = SandboxGeocoder() }
        let server = try await SandboxServer(config: sandboxConfig)
        config.target.apiURL = server.url
        config.target.apiKey = key
        // A geocoder over HTTP is the sandbox's (the gazetteer is offline already, and with
        // provider mapsemble the sandbox's map geocodes).
        if let provider = config.geocode?.provider, !["gazetteer", "mapsemble"].contains(provider) {
            config.geocode?.url = server.url
            config.geocode?.rateLimit = 50
            // The sandbox's answers are no one's to keep: a cache of this run only.
            config.geocode?.cache = NSTemporaryDirectory() + "mapsemble-import-sandbox-geocodes-\(key).sqlite"
        }
        return server
    }

    /// A map with the pipeline's fields and remote field; sets the pipeline's map id to it.
    static func map(for config: inout PipelineConfig) -> SandboxConfig.Map {
        let mapID = config.target.mapID ?? defaultMapID
        config.target.mapID = mapID
        var fields = config.properties.fields.map { SandboxConfig.Field(slug: $0.slug, type: $0.type) }
        var remoteField: String?
        if config.properties.remoteID != nil {
            remoteField = config.properties.remoteFieldSlug
            fields.insert(SandboxConfig.Field(slug: config.properties.remoteFieldSlug), at: 0)
        }
        // provider: mapsemble — the map geocodes, from a field of its own.
        var geocodeField: String?
        if config.geocode?.provider == "mapsemble" {
            let slug = fields.contains { $0.slug == "address" } ? "geocode_address" : "address"
            geocodeField = slug
            fields.append(SandboxConfig.Field(slug: slug))
        }
        if let quality = config.geocode?.qualityField, !fields.contains(where: { $0.slug == quality }) {
            fields.append(SandboxConfig.Field(slug: quality, type: "number"))
        }
        return SandboxConfig.Map(
            id: mapID, label: "Sandbox map", plan: .pro, fields: fields, remoteField: remoteField,
            geocodeField: geocodeField)
    }

    /// What landed: the count and the first few features.
    static func show(_ server: SandboxServer, map: String, console: Console) {
        guard !console.quiet else { return }
        let features = server.store.features(map: map)
        console.info("sandbox map \(map) now holds \(features.count) features\(features.isEmpty ? "" : ", the first:")")
        for feature in features.prefix(3) {
            let label = feature["label"]?.string ?? "(no label)"
            console.info("  \(label)  [\(feature.longitude), \(feature.latitude)]")
        }
    }
}

/// Turns the first SIGINT/SIGTERM into cancellation of the run (in-flight requests settle, the
/// reports get written, exit 130); a second one ends the process at once.
final class Interrupts: @unchecked Sendable {  // sources are only touched in init and stop()
    private let sources: [any DispatchSourceSignal]
    private final class Counter: Sendable { let value = Atomic<Int>(0) }

    init(onInterrupt: @escaping @Sendable () -> Void) {
        var sources: [any DispatchSourceSignal] = []
        let count = Counter()
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if count.value.add(1, ordering: .relaxed).newValue > 1 { Foundation.exit(130) }
                onInterrupt()
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    func stop() {
        for source in sources { source.cancel() }
    }
}
