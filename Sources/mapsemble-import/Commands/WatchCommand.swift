import ArgumentParser
import Foundation
import MapsembleImport
import NIOConcurrencyHelpers

/// `mapsemble-import watch DIR [PIPELINE.yml]`: scheduled file drops. Each file that lands in DIR
/// is imported once it is complete, then moved with its report to `DIR/processed/` (exit 0 or 1)
/// or `DIR/failed/` (the file or its pipeline is wrong, or the run aborted).
///
/// Complete means: no write for `--settle-seconds` (SFTP and copy tools write as they go; an
/// atomic rename in is stable at once), or, with `--marker`, a `NAME.done` file beside it. Hidden
/// files (`.name.csv.part`, rsync's `.name.XXXX`) and symbolic links are never taken. The work
/// area `DIR/.mapsemble-import/` holds the lock (one watcher per folder), the reports while a file
/// runs, and its resume journal, so a watcher restarted after a crash resumes the file it was on;
/// an outcome noted there before the move finishes a move cut short without importing again.
struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract:
            "Import each complete file dropped in a folder, then move it with its report to processed/ or failed/."
    )

    @Argument(help: "The folder files are dropped in, or the URL of a source to import each time it changes.")
    var directory: String

    @OptionGroup var options: PipelineOptions

    @Flag(help: "Process the files there now, then exit (for cron and Kubernetes CronJobs).")
    var once = false

    @Option(help: "Which files to take: shell patterns, comma-separated.")
    var pattern = "*.csv,*.csv.gz,*.tsv,*.xlsx,*.ods,*.xls,*.zip"

    @Option(
        name: .customLong("route"),
        help: "PATTERN=PIPELINE.yml: files matching PATTERN use that pipeline (repeatable; the first match wins).")
    var routes: [String] = []

    @Option(name: .customLong("settle-seconds"), help: "A file is complete once unchanged this long.")
    var settleSeconds = 5.0

    @Flag(help: "Take a file only once a NAME.done marker is beside it.")
    var marker = false

    @Option(help: "Seconds between two looks at the folder (default 2), or at a URL (default 300).")
    var interval: Double?

    @Option(
        name: .customLong("metrics-listen"),
        help: "HOST:PORT: serve /metrics (Prometheus) and /healthz while watching, e.g. 127.0.0.1:9108.")
    var metricsListen: String?

    mutating func validate() throws {
        if options.input != nil {
            throw ValidationError("watch takes its input files from DIR; --input does not apply")
        }
        if options.reportDir != nil && !RemoteSource.isURL(directory) {
            throw ValidationError(
                "watch keeps each file's report beside it in processed/ or failed/; --report-dir does not apply")
        }
        if options.dryRun { throw ValidationError("watch moves the files it imports; use run --dry-run to try a file") }
        if let metricsListen, MetricsServer.address(metricsListen) == nil {
            throw ValidationError(
                "--metrics-listen must be HOST:PORT, such as 127.0.0.1:9108; got \"\(metricsListen)\"")
        }
        for route in routes where !route.contains("=") {
            throw ValidationError("--route must be PATTERN=PIPELINE.yml, got \"\(route)\"")
        }
    }

    func run() async throws {
        let console = Console(format: options.logFormat, quiet: options.quiet)
        var runner = PipelineRunner(options: options, dryRun: false)
        let heartbeat = Heartbeat(interval: interval ?? (RemoteSource.isURL(directory) ? 300 : 2))
        var server: MetricsServer?
        if let metricsListen, let (host, port) = MetricsServer.address(metricsListen) {
            let metrics = RunMetrics()
            runner.liveMetrics = metrics
            let folder = RemoteSource.isURL(directory) ? nil : directory
            do {
                server = try await MetricsServer(host: host, port: port, metrics: metrics) {
                    heartbeat.problem(folder: folder)
                }
            } catch let error as ImportError {
                console.fail(error)
                throw ExitCode(error.exitCode)
            }
            console.info(
                "serving /metrics and /healthz on \(host):\(server!.port)", event: "metrics_listen",
                fields: ["port": .int(server!.port)])
        }
        defer { if let server { Task { await server.stop() } } }
        if RemoteSource.isURL(directory) {
            let task = Task { [runner] in await poll(directory, runner: runner, console: console, heartbeat: heartbeat)
            }
            let interrupts = Interrupts { task.cancel() }
            defer { interrupts.stop() }
            throw ExitCode(await task.value)
        }
        let watcher: DropFolder
        do {
            watcher = try DropFolder(
                path: directory, routes: try parsedRoutes(), settleSeconds: settleSeconds, marker: marker)
        } catch let error as ImportError {
            console.fail(error)
            throw ExitCode(error.exitCode)
        }
        let task = Task { [runner] in await watch(watcher, runner: runner, console: console, heartbeat: heartbeat) }
        let interrupts = Interrupts { task.cancel() }
        defer { interrupts.stop() }
        throw ExitCode(await task.value)
    }

    /// Routes in order: each `--route`, then `--pattern` with the pipeline argument.
    private func parsedRoutes() throws -> [DropFolder.Route] {
        var result: [DropFolder.Route] = []
        for route in routes {
            let split = route.firstIndex(of: "=")!
            let path = String(route[route.index(after: split)...])
            let config = try options.config(pipeline: path)
            result.append(.init(pattern: String(route[..<split]), pipelineName: path, config: config))
        }
        let config = try options.config()
        for item in pattern.split(separator: ",") {
            let glob = item.trimmingCharacters(in: .whitespaces)
            guard !glob.isEmpty else { continue }
            result.append(.init(pattern: glob, pipelineName: options.pipeline ?? "pipeline.yml", config: config))
        }
        return result
    }

    /// Looks at the folder until cancelled (or once); returns the exit code: the worst of the
    /// files' (0 when there was nothing to do), 130 when interrupted.
    private func watch(
        _ folder: DropFolder, runner: PipelineRunner, console: Console, heartbeat: Heartbeat
    ) async -> Int32 {
        var worst: Int32 = 0
        if !once {
            console.info(
                "watching \(folder.path) for \(folder.routes.map(\.pattern).joined(separator: ", ")); Ctrl-C stops")
        }
        while !Task.isCancelled {
            heartbeat.beat()
            for (file, route) in folder.completeFiles() {
                if Task.isCancelled { break }
                heartbeat.busy(true)
                let code = await take(file, route: route, folder: folder, runner: runner, console: console)
                heartbeat.busy(false)
                if code == 130 { return 130 }
                worst = max(worst, code)
            }
            if once { break }
            try? await Task.sleep(for: .milliseconds(Int((interval ?? 2) * 1000)))
        }
        return Task.isCancelled ? 130 : worst
    }

    /// A source at a URL: imported now, then each time it changes (its validators, kept in the
    /// state directory, make an unchanged source a `304` and no run). Returns the exit code: the
    /// last run's, 130 when interrupted.
    private func poll(_ url: String, runner: PipelineRunner, console: Console, heartbeat: Heartbeat) async -> Int32 {
        let config: PipelineConfig
        do {
            guard routes.isEmpty else {
                throw ImportError(.usage, "--route applies to a folder; a URL has one pipeline")
            }
            var loaded = try options.config()
            loaded.source.path = url
            config = loaded
        } catch {
            let failure = error as? ImportError ?? ImportError(.config, "\(error)")
            console.fail(failure)
            return failure.exitCode
        }
        let shown = RemoteSource.displayName(url)
        let seconds = interval ?? 300
        if !once { console.info("watching \(shown) every \(seconds.formatted()) s; Ctrl-C stops") }
        var code: Int32 = 0
        while !Task.isCancelled {
            heartbeat.busy(true)
            code = await runner.execute(config, console: console, resumeHint: nil, command: "watch").code
            heartbeat.busy(false)
            if code == 130 || once { break }
            try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
        }
        return Task.isCancelled ? 130 : code
    }

    /// Imports one file and moves it; returns the run's exit code.
    private func take(
        _ file: String, route: DropFolder.Route, folder: DropFolder, runner: PipelineRunner, console: Console
    ) async -> Int32 {
        var config = route.config
        config.source.path = folder.path + "/" + file
        config.report.dir = folder.work
        let reports = Pipeline(config: config, options: RunOptions()).reportPaths
        let size = (try? FileManager.default.attributesOfItem(atPath: config.source.path!)[.size] as? Int) ?? 0
        let code: Int32
        var outcome = RunOutcome(summary: nil, code: 0, failure: nil)
        if let noted = folder.notedOutcome(of: file) {
            // The import finished before a crash cut the move short.
            console.info(
                "\(file): imported before the watcher stopped (exit \(noted)); moving it", event: "watch_recovered",
                fields: ["file": .text(file), "exit_code": .int(Int(noted))])
            code = noted
        } else {
            console.info(
                "\(file): taking it (\(size) bytes) with \(route.pipelineName)", event: "watch_take",
                fields: ["file": .text(file), "bytes": .int(size), "pipeline": .text(route.pipelineName)])
            outcome = await runner.execute(
                config, console: console, resumeHint: nil, command: "watch", concluding: false)
            if outcome.code == 130 || Task.isCancelled {
                await runner.conclude(outcome, config: config, console: console)
                console.info(
                    "\(file): interrupted; it stays in \(folder.path) and resumes when the watcher starts again")
                return 130
            }
            if outcome.summary == nil, outcome.failure?.kind == .remote {
                // The service could not be reached or refused the credentials: not the file's fault.
                console.info(
                    "\(file): left in place, to be taken again", event: "watch_retry_later",
                    fields: ["file": .text(file)])
                await runner.conclude(outcome, config: config, console: console)
                return outcome.code
            }
            code = outcome.code
            if outcome.summary == nil, let failure = outcome.failure { folder.writeError(failure, reports: reports) }
            folder.noteOutcome(code, of: file)
        }
        do {
            let place = try folder.move(file, reports: reports, code: code)
            console.info(
                "\(file): moved with its report to \(place)", event: "watch_moved",
                fields: ["file": .text(file), "to": .text(place), "exit_code": .int(Int(code))])
            Operations.moved(
                &outcome, config: config, to: folder.path + "/" + place.trimmingCharacters(in: ["/"]),
                stateDir: options.stateDir)
            await runner.conclude(outcome, config: config, console: console)
        } catch {
            await runner.conclude(outcome, config: config, console: console)
            console.fail(error as? ImportError ?? ImportError(.output, "\(error)"))
            return max(code, 2)
        }
        return code
    }
}

/// Whether the watch loop goes round: `/healthz` is well while a file runs, or while the loop came
/// by within three intervals (at least 30 s), and the folder can be read.
final class Heartbeat: Sendable {
    private let state = NIOLockedValueBox<(last: ContinuousClock.Instant, busy: Bool)>((.now, false))
    private let patience: Duration

    init(interval: Double) { patience = .milliseconds(Int64(max(30, interval * 3) * 1000)) }

    func beat() { state.withLockedValue { $0.last = .now } }

    func busy(_ running: Bool) {
        state.withLockedValue {
            $0.busy = running
            $0.last = .now
        }
    }

    /// nil when well, else why not.
    func problem(folder: String?) -> String? {
        let (last, busy) = state.withLockedValue { ($0.last, $0.busy) }
        if !busy, ContinuousClock.now - last > patience {
            return "the watch loop has not come round for \(Int((ContinuousClock.now - last).seconds)) s"
        }
        if let folder, access(folder, R_OK | X_OK) != 0 {
            return "the folder \(folder) cannot be read: \(String(cString: strerror(errno)))"
        }
        return nil
    }
}
