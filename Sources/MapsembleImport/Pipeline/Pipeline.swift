import Foundation
import Logging

/// Runs one import: reader → validator → transformer → chunker → sink, each stage in a task of its
/// own, handing blocks of rows to the next (`StageGraph`). A slow stage holds every stage before it
/// back: memory is a few blocks whatever the input size. The first fatal error, or cancellation
/// (Ctrl-C), stops every stage; the reports are written on every path and account for every row.
public struct Pipeline: Sendable {
    public let config: PipelineConfig
    public let options: RunOptions

    /// With `options.createFields`: the pipeline's new columns are mapped already.
    private var newColumnsMapped = false

    public init(config: PipelineConfig, options: RunOptions) {
        self.config = config
        var options = options
        if options.runID == nil { options.runID = RunID.make() }
        self.options = options
    }

    /// Runs the import. Throws only for problems found before any row moved (exit code 2);
    /// everything after is in the returned summary, whose `exitCode` the command exits with.
    /// - Parameters:
    ///   - sink: where batches go instead of the API or the dry run's files (an embedding
    ///     application's own destination).
    ///   - progress: called after every block read.
    ///   - logger: told what was decided (delimiter, columns, mapping; `info`) before rows move, and
    ///     what happened to the run (retries, rejected rows, notices; `notice`), each record with its
    ///     `event` name and fields as metadata (`Logger.log(_:)`, `RunEvent(_:)`).
    public func run(
        sink customSink: (any BatchSink)? = nil, progress: (@Sendable (Progress) -> Void)? = nil,
        logger: Logger = .silent
    ) async throws -> RunSummary {
        if config.source.origin == nil, let path = config.source.path,
            RemoteSource.isURL(path) || ZipMember.isZip(path)
        {
            return try await runCopy(of: path, sink: customSink, progress: progress, logger: logger)
        }
        if options.createFields && !newColumnsMapped {
            try MapSetup.requirePath(config, for: "--create-fields")
            // The columns the pipeline does not map become fields: the same pipeline, mapping them.
            var mapped = Pipeline(config: try MapSetup.mappingNewColumns(config), options: options)
            mapped.newColumnsMapped = true
            return try await mapped.run(sink: customSink, progress: progress, logger: logger)
        }
        let log: (@Sendable (RunEvent) -> Void)? = { logger.log($0) }
        let started = ContinuousClock.now
        let destination = Destination(customSink: customSink, options: options)
        var plan = try PipelinePlan(config: config, blockBytes: options.blockBytes)
        // Refused before the pre-flight, which may add fields: nothing is written.
        if config.report.undo, case .api = destination,
            let refusal = UndoLog.refusal(config, remoteID: plan.mapping.remoteID != nil)
        {
            throw ImportError(.config, refusal)
        }
        let client = try await preflight(destination, &plan, log: log)
        plan.notes.forEach { log?(RunEvent(.detail, $0)) }
        plan.notices.forEach { log?(RunEvent(.notice, $0)) }
        let undo = try openUndo(destination, plan: plan)
        let reconciler = try await readMap(client, destination, plan, undo: undo, log: log)
        if let undo, let client, let mapID = config.target.mapID {
            try await snapshot(undo, client: client, mapID: mapID, listed: reconciler?.listing.total, log: log)
        }
        let geocoding = try config.geocode.map { settings in
            try GeocodeStage(
                config: settings, header: plan.reader.header,
                stateDirectory: StateDirectory.path(override: options.stateDirectory), options: options,
                geocodeField: plan.geocodeField)
        }
        let reports = try RunReports(paths: reportPaths, plan: plan, config: config, log: log)
        let journal = try openJournal(destination, log: log)
        let sink = try makeSink(
            destination, client: client, reports: reports, journal: journal, undo: undo, log: log)

        let graph = StageGraph(
            plan: plan, config: config, keepRows: destination.keepsRows, sink: sink, reports: reports,
            progress: progress)
        graph.settled = journal?.settled.isEmpty == false ? journal?.settled : nil
        graph.reconciler = reconciler
        graph.geocoding = geocoding
        var outcome = await graph.run()
        outcome.close(sink, reports.rejects)
        // The diff says what the run did or would do: only when every row was read and sent.
        var diff: MapReconciler.Diff?
        if let reconciler, outcome.failure == nil, !outcome.interrupted {
            diff = reconciler.diff
            do {
                try await finishSync(reconciler, sink: sink, dryRun: destination.isDryRun, log: log)
            } catch is CancellationError {
                outcome.interrupted = true
            } catch {
                outcome.failure = error as? ImportError ?? ImportError(.uploadAborted, "\(error)")
            }
        }
        var summary = graph.summary(
            outcome, sink: sink, sends: !destination.isDryRun, input: plan.inputName, started: started)
        summary.runID = options.runID
        if plan.reader.paddedRows > 0 {
            log?(
                RunEvent(
                    .notice,
                    "\(plan.reader.paddedRows) rows had fewer fields than the header; their missing trailing fields were read as empty"
                ))
        }
        reports.write(&summary, diff: diff, journal: journal, dryRun: destination.isDryRun)
        return summary
    }
}

extension Pipeline {
    /// A URL source, or a `.zip`: downloaded (or found unchanged) and unpacked, then run from its
    /// temporary copy. A URL's validators are kept once an upload has read and settled every row
    /// (not after a dry run, an abort or an interruption, which must fetch the source again).
    private func runCopy(
        of source: String, sink customSink: (any BatchSink)?, progress: (@Sendable (Progress) -> Void)?,
        logger: Logger
    ) async throws -> RunSummary {
        var local = config
        local.source.origin = source
        guard RemoteSource.isURL(source) else {
            let member = try ZipMember.extract(source, member: config.source.member, name: source)
            local.source.path = member.path
            // The temporary copy is removed once the run is over.
            defer { withExtendedLifetime(member) {} }
            return try await Pipeline(config: local, options: options).run(
                sink: customSink, progress: progress, logger: logger)
        }
        let url = source
        let log: @Sendable (RunEvent) -> Void = { logger.log($0) }
        let started = ContinuousClock.now
        let destination = Destination(customSink: customSink, options: options)
        let store = SourceValidatorStore(stateDirectory: StateDirectory.path(override: options.stateDirectory))
        let key = SourceValidatorStore.key(url: url, config: config)
        let api: Bool
        if case .api = destination { api = true } else { api = false }
        let conditional = !options.fresh && api
        var fetcher = try SourceFetcher(
            url: url, headers: config.source.headers, caFile: config.source.caFile,
            policy: RetryPolicy(
                maxRetries: config.upload.maxRetries, backoffSeconds: options.backoffSeconds,
                maxBackoffSeconds: options.maxBackoffSeconds),
            timeoutSeconds: config.upload.timeoutSeconds, log: log)
        fetcher.progress = progress
        switch try await fetcher.fetch(previous: conditional ? store.load(key) : nil) {
        case .unchanged(let reason):
            log(
                RunEvent(
                    .notice, "unchanged since the last import: \(reason); nothing sent (--fresh imports it anyway)",
                    event: "source_unchanged"))
            var summary = RunSummary(
                input: RemoteSource.displayName(url), status: .unchanged, rowsRead: 0, imported: 0, rejectedByCode: [:],
                durationSeconds: (ContinuousClock.now - started) / .seconds(1))
            summary.runID = options.runID
            let path = reportPaths.summary
            try? FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: path, contents: Data(summary.json.utf8)) else {
                throw ImportError.system(.output, "cannot write the summary", file: path)
            }
            return summary
        case .downloaded(let download):
            local.source.path = download.path
            // The map is about to change: until this import settles, the source is not as the
            // map holds it, whatever it looked like before (an interrupted import of a newer body
            // followed by the old one coming back must import again).
            if api { store.remove(key) }
            // An unfinished run of an earlier body cannot be resumed on this one: the source moved
            // on by itself, so the run starts over (what that run sent stays on the map).
            var options = options
            if api, !options.fresh, let bytes = FileManager.default.contents(atPath: reportPaths.journal),
                let (recorded, _, _) = ResumeJournal.read([UInt8](bytes)),
                let now = try? ResumeJournal.Fingerprint.of(input: download.path, config: local),
                now.pipeline == recorded.pipeline, let change = now.difference(from: recorded)
            {
                options.fresh = true
                log(
                    RunEvent(
                        .notice,
                        "the source changed since the unfinished run recorded in \(reportPaths.journal) (\(change)): starting over; what that run sent stays on the map",
                        event: "resume_restart"))
            }
            let member =
                ZipMember.isZip(download.path)
                ? try ZipMember.extract(
                    download.path, member: config.source.member, name: RemoteSource.displayName(url)) : nil
            if let member { local.source.path = member.path }
            defer { withExtendedLifetime((download, member)) {} }
            let summary = try await Pipeline(config: local, options: options).run(
                sink: customSink, progress: progress, logger: logger)
            let settled = summary.status == .completed || summary.status == .completedWithRejects
            if !summary.interrupted, settled, api {
                do {
                    try store.save(download.validators, for: key)
                } catch {
                    log(
                        RunEvent(
                            .notice,
                            "\((error as? ImportError)?.message ?? "\(error)"); the next run downloads the source again"
                        ))
                }
            }
            return summary
        }
    }

    /// `run(sink:progress:logger:)` with each event handed to `log` (an `EventLogHandler`).
    public func run(
        sink: (any BatchSink)? = nil, progress: (@Sendable (Progress) -> Void)? = nil,
        log: @escaping @Sendable (RunEvent) -> Void
    ) async throws -> RunSummary {
        try await run(sink: sink, progress: progress, logger: .events(log))
    }
}

/// Where a run's batches go, decided once.
enum Destination {
    /// An embedding application's own sink.
    case custom(any BatchSink)
    /// The Mapsemble API (`Uploader`).
    case api
    /// A dry run: files, or nowhere (`validate`); `checkMap` still reads the map.
    case files(checkMap: Bool)

    init(customSink: (any BatchSink)?, options: RunOptions) {
        if let customSink {
            self = .custom(customSink)
        } else {
            self = options.dryRun ? .files(checkMap: options.checkMap) : .api
        }
    }

    /// The map is read before anything moves (the upload's pre-flight, or `validate` with
    /// credentials). A custom sink reads it in a sync or an update, which compare the file with
    /// the map's features (and a sync deletes through the sink).
    func readsMap(mode: PipelineConfig.Mode) -> Bool {
        switch self {
        case .api, .files(checkMap: true): true
        case .custom: mode == .sync || mode == .update
        case .files(checkMap: false): false
        }
    }

    var isDryRun: Bool {
        if case .files = self { return true }
        return false
    }

    /// Rows are kept beside their features, for a sink that may reject them later.
    var keepsRows: Bool { !isDryRun }
}

extension Pipeline {
    /// Where the report files of a run go: `DIR/NAME.rejected.csv` and the rest.
    public struct ReportPaths: Sendable {
        public var rejected: String
        public var summary: String
        public var journal: String
        public var diff: String
        public var html: String
    }

    /// The name an input's report files share: `data/stores.csv.gz` → `stores`, `stores.csv.zip` →
    /// `stores`, `-` → `stdin`.
    public static func reportName(of input: String) -> String {
        var name =
            input == "-"
            ? "stdin"
            : RemoteSource.isURL(input)
                ? RemoteSource.fileName(input) : (input.split(separator: "/").last.map(String.init) ?? input)
        if ZipMember.isZip(name) { name.removeLast(4) }
        if RawInput.isGzip(name) { name.removeLast(3) }
        if let dot = name.lastIndex(of: "."), dot != name.startIndex { name = String(name[..<dot]) }
        return name
    }

    /// `geojsonl` for a GeoJSON input (its rejected features as GeoJSONSeq), else `csv`.
    var rejectedExtension: String {
        GeoJSONReader.kind(format: config.source.format, path: config.source.path ?? "-") == nil ? "csv" : "geojsonl"
    }

    /// Paths of the report files for the input.
    public var reportPaths: ReportPaths {
        let name = Self.reportName(of: config.source.origin ?? config.source.path ?? "-")
        let dir = config.report.dir
        return ReportPaths(
            rejected: "\(dir)/\(name).rejected.\(rejectedExtension)", summary: "\(dir)/\(name).summary.json",
            journal: "\(dir)/\(name).journal", diff: "\(dir)/\(name).diff.csv", html: "\(dir)/\(name).report.html")
    }

    /// The pre-flight: reads the map and checks the mapping against it, when the destination
    /// needs the map. Returns the client every request of the run goes through.
    private func preflight(
        _ destination: Destination, _ plan: inout PipelinePlan, log: (@Sendable (RunEvent) -> Void)?
    ) async throws -> MapsembleClient? {
        guard destination.readsMap(mode: config.mode) else { return nil }
        guard let mapID = config.target.mapID else {
            throw ImportError(.usage, "no map to import into: give --map ID or target.map_id in pipeline.yml")
        }
        let client = try MapsembleClient(
            baseURL: config.target.apiURL, credentials: config.credentials,
            timeoutSeconds: config.upload.timeoutSeconds,
            policy: RetryPolicy(
                maxRetries: config.upload.maxRetries, backoffSeconds: options.backoffSeconds,
                maxBackoffSeconds: options.maxBackoffSeconds))
        var map = try await client.map(mapID)
        if case .api = destination, let backup = options.backup { try await backUp(mapID, to: backup, log: log) }
        if options.createFields {
            let change = try await MapSetup.ensureFields(
                client: client, mapID: mapID, config: config, addOptions: options.addOptions,
                dryRun: destination.isDryRun)
            map = change.map
            if destination.isDryRun {
                // Checked as the map would be once the fields are added.
                map.fields += change.added.map {
                    MapInfo.Field(slug: $0.slug, type: $0.type, label: $0.label, options: $0.options)
                }
            }
            if !change.added.isEmpty {
                plan.notices.append(
                    "\(destination.isDryRun ? "would add" : "added") \(change.added.count) field\(change.added.count == 1 ? "" : "s") to map \(mapID): "
                        + change.added.map { "\($0.slug) (\($0.type): \($0.reason))" }.joined(separator: ", "))
            }
            for (slug, values) in change.options.sorted(by: { $0.key < $1.key }) {
                plan.notices.append(
                    "\(destination.isDryRun ? "would add" : "added") \(values.count) option\(values.count == 1 ? "" : "s") to field \(slug): \(values.joined(separator: ", "))"
                )
            }
        }
        try plan.apply(map, config: config)
        if let geocode = config.geocode { try await checkGeocoding(geocode, map: map, client: client, &plan) }
        return client
    }

    /// `--backup FILE`: the map exported before the run writes anything (fields included). A run
    /// that resumes an interrupted one keeps the backup that run took, of the map before it.
    private func backUp(_ mapID: String, to backup: String, log: (@Sendable (RunEvent) -> Void)?) async throws {
        let resuming =
            !options.fresh && options.journal && FileManager.default.fileExists(atPath: reportPaths.journal)
        if resuming && FileManager.default.fileExists(atPath: backup) {
            log?(
                RunEvent(
                    .notice,
                    "kept the backup \(backup) of the interrupted run this one resumes: it holds the map before that run",
                    event: "backup", fields: ["file": .text(backup)]))
            return
        }
        let saved = try await MapExport.export(
            mapID: mapID, config: config, format: MapExport.format(for: backup), output: backup,
            log: log)
        log?(
            RunEvent(
                .notice, "map \(mapID) backed up to \(backup) before any write: \(saved.features) features",
                event: "backup", fields: ["features": .int(saved.features), "file": .text(backup)]))
    }

    /// The map's side of geocoding: the quality field is one of its fields; with `provider:
    /// mapsemble`, the map has a geocode field and the account's plan geocodes.
    private func checkGeocoding(
        _ geocode: PipelineConfig.Geocode, map: MapInfo, client: MapsembleClient, _ plan: inout PipelinePlan
    ) async throws {
        if let quality = geocode.qualityField {
            guard map.fields.contains(where: { $0.slug == quality }) else {
                throw ImportError(
                    .config,
                    "geocode.quality_field: map \(map.id) has no field \"\(quality)\"; its fields are: \(map.fields.map(\.slug).joined(separator: ", "))"
                )
            }
            if plan.mapping.fields.contains(where: { $0.slug == quality }) {
                throw ImportError(
                    .config,
                    "properties.fields.\(quality) is geocode.quality_field too: the confidence is written there, so map no column to it"
                )
            }
            plan.mapping.addedSlugs.append(quality)
        }
        guard geocode.provider == "mapsemble" else { return }
        guard let field = map.geocodeField else {
            throw ImportError(
                .config,
                "geocode.provider mapsemble: map \(map.id) has no geocode field (config.geocodeField); choose the field that holds the address in the map's settings on Mapsemble, or use another geocode.provider"
            )
        }
        if plan.mapping.fields.contains(where: { $0.slug == field }) {
            throw ImportError(
                .config,
                "properties.fields.\(field) is map \(map.id)'s geocode field: the rows the map geocodes carry geocode.address there, so map no column to it"
            )
        }
        let flags = try await client.featureFlags()
        guard flags["geocoding"] as? Bool == true else {
            throw ImportError(
                .config,
                "geocode.provider mapsemble: the account's plan does not geocode (featureFlags.geocoding is not on in /api/v1/me); upgrade the plan on Mapsemble, or use another geocode.provider such as nominatim or gazetteer"
            )
        }
        plan.geocodeField = field
        plan.mapping.addedSlugs.append(field)
        plan.notes.append("map \(map.id) geocodes the rows without coordinates from its field \"\(field)\"")
    }

    /// `report.undo: true` on an upload: the undo file, made before anything is written. Refused
    /// (exit 2, nothing sent) where the run could not be undone exactly.
    private func openUndo(_ destination: Destination, plan: PipelinePlan) throws -> UndoLog? {
        guard config.report.undo, case .api = destination, let mapID = config.target.mapID,
            let runID = options.runID
        else { return nil }
        guard let remote = plan.mapping.remoteID?.slug else { return nil }
        let path = UndoLog.path(
            stateDirectory: StateDirectory.path(override: options.stateDirectory), runID: runID)
        return try UndoLog(
            path: path,
            header: [
                ("run_id", .string(runID)), ("map", .string(mapID)), ("api_url", .string(config.target.apiURL)),
                ("remote_field", .string(remote)), ("mode", .string(config.mode.rawValue)), ("version", 1),
            ], remoteField: remote)
    }

    /// The map's features before the run, into the undo file: read now, unless a sync's or an
    /// update's listing read them already (`listed`, their count).
    private func snapshot(
        _ undo: UndoLog, client: MapsembleClient, mapID: String, listed: Int?, log: (@Sendable (RunEvent) -> Void)?
    ) async throws {
        var count = listed ?? 0
        if listed == nil {
            try await client.forEachPage(mapID: mapID, log: log, raw: { try undo.page($0) }) { features, _ in
                count += features.count
            }
        }
        try undo.listed(count)
        log?(
            RunEvent(
                .detail, "the map's \(count) features as they were are kept in \(undo.path) (report.undo)",
                event: "undo", fields: ["file": .text(undo.path)]))
    }

    /// A sync or an update reads the map's features first, to compare the file with them.
    private func readMap(
        _ client: MapsembleClient?, _ destination: Destination, _ plan: PipelinePlan, undo: UndoLog?,
        log: (@Sendable (RunEvent) -> Void)?
    ) async throws -> MapReconciler? {
        guard config.mode == .sync || config.mode == .update else { return nil }
        guard let client, let mapID = config.target.mapID, let remote = plan.mapping.remoteID else {
            if destination.isDryRun {
                log?(
                    RunEvent(
                        .notice,
                        "mode \(config.mode.rawValue) compares the file with the map's features: give credentials and a map id to see what a run would create, update\(config.mode == .sync ? " and delete" : "")"
                    ))
            }
            return nil
        }
        let keys = plan.mapping.digestKeys
        let listing = try await client.listing(
            mapID: mapID, remoteField: remote.slug, keys: keys, log: log,
            onPage: undo.map { undo in { try undo.page($0) } })
        log?(
            RunEvent(
                .detail,
                "the map holds \(listing.total) features, \(listing.entries.count) with a remote id (\(listing.requests) pages read)"
            ))
        return MapReconciler(
            mode: config.mode, listing: listing, remoteField: remote.slug, remoteColumn: remote.column, keys: keys)
    }

    /// An upload of a file keeps a resume journal (not `replace`, which is one request).
    private func openJournal(_ destination: Destination, log: (@Sendable (RunEvent) -> Void)?) throws -> ResumeJournal?
    {
        guard case .api = destination, let input = config.source.path, input != "-", options.journal,
            config.mode != .replace
        else { return nil }
        let path = reportPaths.journal
        let fingerprint = try ResumeJournal.Fingerprint.of(input: input, config: config)
        let journal = try ResumeJournal(path: path, fingerprint: fingerprint, fresh: options.fresh)
        if !journal.settled.isEmpty {
            log?(
                RunEvent(
                    .notice,
                    "resuming the unfinished run recorded in \(path) (\(journal.settled.answers) server answers): rows it settled are not sent again; --fresh starts over",
                    event: "resume", fields: ["journal": .text(path), "answers": .int(journal.settled.answers)]))
        }
        return journal
    }

    private func makeSink(
        _ destination: Destination, client: MapsembleClient?, reports: RunReports, journal: ResumeJournal?,
        undo: UndoLog?, log: (@Sendable (RunEvent) -> Void)?
    ) throws -> any BatchSink {
        switch destination {
        case .custom(let sink):
            return sink
        case .api:
            guard let client, let mapID = config.target.mapID else {
                preconditionFailure("the pre-flight made the client")
            }
            return Uploader(
                client: client, mapID: mapID,
                settings: .init(
                    method: config.mode.method, concurrency: config.upload.concurrency,
                    timeoutSeconds: config.upload.timeoutSeconds, singleRequest: config.mode == .replace),
                rejects: reports.rejects, journal: journal, undo: undo, log: log)
        case .files:
            return try DryRunSink(featuresPath: options.output, batchesPath: options.outputBatches)
        }
    }
}
