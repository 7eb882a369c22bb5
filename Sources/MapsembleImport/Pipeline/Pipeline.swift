import AsyncAlgorithms
import Foundation
import NIOConcurrencyHelpers
import Synchronization

/// What a command asks of a run beyond pipeline.yml.
public struct RunOptions: Sendable {
    /// No network: the batches go to `output` / `outputBatches` instead of the API.
    public var dryRun = true
    /// `--output FILE|-`: every feature as one GeoJSON FeatureCollection.
    public var output: String?
    /// `--output-batches FILE|-`: every request body, one per line.
    public var outputBatches: String?
    /// Field bytes per block handed between stages (smaller blocks: finer back-pressure).
    public var blockBytes = ReaderOptions().blockBytes
    /// First step of the exponential backoff between retries (when the server sets no `Retry-After`).
    public var backoffSeconds = 0.5
    /// With `dryRun`: still read the map and check the mapping against it (`validate` with credentials).
    public var checkMap = false
    /// Keep a resume journal (uploads of a file; not for a throwaway target such as `--sandbox`).
    public var journal = true
    /// `--fresh`: start over, ignoring (and replacing) a resume journal.
    public var fresh = false
    /// `--force-delete`: a sync deletes past `sync.max_delete`.
    public var forceDelete = false
    public init() {}
}

/// Wires the stages and runs them: reader → validator → transformer → chunker → sink, each in a
/// task of its own, handing blocks of rows to the next over `AsyncChannel`s. A channel holds no
/// element (`send` returns when the next stage takes it), so a slow stage holds every stage before
/// it back: memory is a few blocks whatever the input size. The first fatal error, or cancellation
/// (Ctrl-C), stops every stage; the reports are written on every path and account for every row.
public struct Pipeline: Sendable {
    public let config: PipelineConfig
    public let options: RunOptions

    public init(config: PipelineConfig, options: RunOptions) {
        self.config = config
        self.options = options
    }

    /// Where the report files of a run go: `DIR/NAME.rejected.csv` and the rest.
    public struct ReportPaths: Sendable {
        public var rejected: String
        public var summary: String
        public var journal: String
        public var diff: String
        public var html: String
    }

    /// The name an input's report files share: `data/stores.csv.gz` → `stores`, `-` → `stdin`.
    public static func reportName(of input: String) -> String {
        var name = input == "-" ? "stdin" : (input.split(separator: "/").last.map(String.init) ?? input)
        if RawInput.isGzip(name) { name.removeLast(3) }
        if let dot = name.lastIndex(of: "."), dot != name.startIndex { name = String(name[..<dot]) }
        return name
    }

    /// Paths of the report files for the input.
    public var reportPaths: ReportPaths {
        let name = Self.reportName(of: config.source.path ?? "-")
        let dir = config.report.dir
        return ReportPaths(
            rejected: "\(dir)/\(name).rejected.csv", summary: "\(dir)/\(name).summary.json",
            journal: "\(dir)/\(name).journal", diff: "\(dir)/\(name).diff.csv", html: "\(dir)/\(name).report.html")
    }

    /// Runs the import. Throws only for problems found before any row moved (exit code 2);
    /// everything after is in the returned summary, whose `exitCode` the command exits with.
    /// - Parameters:
    ///   - sink: where batches go; by default the `Uploader`, or for a dry run a `DryRunSink`
    ///     writing `options.output` and `options.outputBatches`.
    ///   - progress: called after every block read.
    ///   - log: told what was decided (delimiter, columns, mapping) before rows move, and each retry.
    public func run(
        sink customSink: (any BatchSink)? = nil, progress: (@Sendable (Progress) -> Void)? = nil,
        log: (@Sendable (LogEvent) -> Void)? = nil
    ) async throws -> RunSummary {
        let started = ContinuousClock.now
        var plan = try PipelinePlan(config: config, blockBytes: options.blockBytes)
        var client: MapsembleClient?
        if (!options.dryRun || options.checkMap) && customSink == nil {
            guard let mapID = config.target.mapID else {
                throw ImportError(.usage, "no map to import into: give --map ID or target.map_id in pipeline.yml")
            }
            let api = try MapsembleClient(
                baseURL: config.target.apiURL, credentials: config.credentials,
                timeoutSeconds: config.upload.timeoutSeconds)
            try plan.apply(try await api.map(mapID), config: config)
            client = api
        }
        plan.notes.forEach { log?(LogEvent(.detail, $0)) }
        plan.notices.forEach { log?(LogEvent(.notice, $0)) }
        var reconciler: MapReconciler?
        if config.mode == .sync || config.mode == .update {
            if let client, let mapID = config.target.mapID, let remote = plan.mapping.remoteID {
                let keys = plan.mapping.digestKeys
                let listing = try await client.listing(
                    mapID: mapID, remoteField: remote.slug, keys: keys, maxRetries: config.upload.maxRetries,
                    backoffSeconds: options.backoffSeconds, log: log)
                log?(
                    LogEvent(
                        .detail,
                        "the map holds \(listing.total) features, \(listing.entries.count) with a remote id (\(listing.requests) pages read)"
                    ))
                reconciler = MapReconciler(
                    mode: config.mode, listing: listing, remoteField: remote.slug, remoteColumn: remote.column,
                    keys: keys)
            } else if options.dryRun && customSink == nil {
                log?(
                    LogEvent(
                        .notice,
                        "mode \(config.mode.rawValue) compares the file with the map's features: give credentials and a map id to see what a run would create, update\(config.mode == .sync ? " and delete" : "")"
                    ))
            }
        }
        let paths = reportPaths
        do {
            try FileManager.default.createDirectory(atPath: config.report.dir, withIntermediateDirectories: true)
        } catch {
            throw ImportError(.output, "cannot create the report folder", file: config.report.dir)
        }
        var journal: ResumeJournal?
        if let input = config.source.path, input != "-", options.journal, !options.dryRun, customSink == nil,
            config.mode != .replace
        {
            let fingerprint = try ResumeJournal.Fingerprint.of(input: input, config: config)
            let opened = try ResumeJournal(path: paths.journal, fingerprint: fingerprint, fresh: options.fresh)
            if !opened.settled.isEmpty {
                log?(
                    LogEvent(
                        .notice,
                        "resuming the unfinished run recorded in \(paths.journal) (\(opened.settled.answers) server answers): rows it settled are not sent again; --fresh starts over",
                        event: "resume",
                        fields: ["journal": .text(paths.journal), "answers": .int(opened.settled.answers)]))
            }
            journal = opened
        }
        let collector = config.report.html ? ReportCollector(validator: plan.validator) : nil
        let rejectionLog = log.map { RejectionLog(log: $0, report: paths.rejected) }
        var observer: (@Sendable (Rejection) -> Void)?
        if collector != nil || rejectionLog != nil {
            observer = { rejection in
                rejectionLog?.observe(rejection)
                collector?.observe(rejection)
            }
        }
        let rejects = try RejectedRowsWriter(
            path: paths.rejected, header: plan.reader.header, delimiter: plan.readerOptions.delimiter,
            spreadsheetSafe: config.report.spreadsheetSafe, observer: observer)
        let sink: any BatchSink
        if let customSink {
            sink = customSink
        } else if !options.dryRun, let client, let mapID = config.target.mapID {
            sink = Uploader(
                client: client, mapID: mapID,
                settings: .init(
                    method: config.mode.method, concurrency: config.upload.concurrency,
                    maxRetries: config.upload.maxRetries, timeoutSeconds: config.upload.timeoutSeconds,
                    backoffSeconds: options.backoffSeconds, singleRequest: config.mode == .replace),
                rejects: rejects, journal: journal, log: log)
        } else {
            sink = try DryRunSink(featuresPath: options.output, batchesPath: options.outputBatches)
        }
        let state = RunState()
        let wholeSet = config.mode == .replace
        let stages = Stages(
            reader: plan.reader, validator: plan.validator,
            transformer: Transformer(mapping: plan.mapping, keepRows: !options.dryRun || customSink != nil),
            chunker: Chunker(
                batchSize: wholeSet ? 1000 : config.upload.batchSize,
                maxBodyBytes: wholeSet ? Int.max : config.upload.maxBodyBytes,
                remoteField: plan.mapping.remoteID?.slug),
            rejects: rejects, sink: sink, maxRejects: config.report.maxRejects, state: state, progress: progress)
        stages.settled = journal?.settled.isEmpty == false ? journal?.settled : nil
        stages.reconciler = reconciler
        stages.collector = collector

        var interrupted = false
        do {
            try await stages.run()
        } catch is CancellationError {
            interrupted = true
        } catch {
            state.fail(error as? ImportError ?? ImportError(.output, "\(error)"))
        }
        if Task.isCancelled && state.failure == nil { interrupted = true }
        var failure = state.failure
        do {
            try sink.close()
            try rejects.close()
        } catch {
            failure = failure ?? (error as? ImportError)
        }
        if let reconciler, failure == nil, !interrupted {
            do {
                try await finishSync(reconciler, sink: sink, log: log)
            } catch {
                failure = error as? ImportError ?? ImportError(.uploadAborted, "\(error)")
            }
            try writeDiff(reconciler.diff, to: paths.diff)
        }
        let stats = sink.stats
        if stats.unconfirmed > 0 && failure == nil && !interrupted {
            failure = ImportError(
                .uploadAborted,
                "\(stats.unconfirmed) rows were sent but the server's answers did not say whether they were stored; run again to settle them"
            )
        }
        if plan.reader.paddedRows > 0 {
            log?(
                LogEvent(
                    .notice,
                    "\(plan.reader.paddedRows) rows had fewer fields than the header; their missing trailing fields were read as empty"
                ))
        }
        var summary = RunSummary(
            input: plan.inputName, status: .completed, rowsRead: state.rowsRead.load(ordering: .relaxed),
            imported: sink.featureCount + state.resumed.load(ordering: .relaxed), rejectedByCode: rejects.byCode,
            durationSeconds: (ContinuousClock.now - started).seconds)
        summary.encoding = plan.reader.encoding.rawValue
        summary.longTexts = state.longTexts.load(ordering: .relaxed)
        let notationCounts = state.notations.withLockedValue { $0 }
        for notation in CoordinateNotation.allCases where notationCounts[notation.ordinal] > 0 {
            summary.notations[notation] = notationCounts[notation.ordinal]
        }
        let earlier = stages.settled
        summary.resumedRows = state.resumed.load(ordering: .relaxed)
        summary.unchanged = state.unchanged.load(ordering: .relaxed)
        summary.imported += summary.unchanged
        summary.created = stats.created + (earlier?.created ?? 0)
        summary.updated = stats.updated + (earlier?.updated ?? 0)
        summary.deleted = stats.deleted + (earlier?.deleted ?? 0)
        summary.requests = stats.requests
        summary.retries = stats.retries
        summary.interrupted = interrupted
        summary.abortReason = failure
        if interrupted || failure != nil {
            summary.status = .aborted
        } else if summary.rejected > 0 {
            summary.status = .completedWithRejects
        }
        if let journal {
            // Done: nothing to resume. Stopped early: the same command continues from the journal.
            if summary.status == .aborted {
                journal.sync()
                summary.journal = journal.path
            } else {
                journal.remove()
            }
        }
        let writer = try ByteWriter(path: paths.summary)
        try writer.write(summary.json)
        try writer.close()
        if let collector {
            let report = HTMLReport(
                summary: summary, collected: collector.snapshot, dryRun: options.dryRun && customSink == nil,
                target: "\(config.target.apiURL), map \(config.target.mapID ?? "?")",
                mode: config.mode.rawValue, notes: plan.notes, mapping: plan.mapping, header: plan.reader.header,
                rejectedFile: (paths.rejected as NSString).lastPathComponent, batchSize: config.upload.batchSize,
                concurrency: config.upload.concurrency)
            let page = try ByteWriter(path: paths.html)
            try page.write(report.html)
            try page.close()
        }
        return summary
    }
}

extension Pipeline {
    /// The end of a sync: the map's features whose remote id no row of the file named are
    /// deleted, unless that is more than `sync.max_delete` (then nothing is, without
    /// `--force-delete`), or a rejected row's remote id could not be read. A dry run says what
    /// would be deleted.
    fileprivate func finishSync(
        _ reconciler: MapReconciler, sink: any BatchSink, log: (@Sendable (LogEvent) -> Void)?
    ) async throws {
        let diff = reconciler.diff
        func ids(_ list: [String]) -> String {
            list.prefix(10).joined(separator: ", ") + (list.count > 10 ? ", … (\(list.count - 10) more)" : "")
        }
        log?(
            LogEvent(
                .notice,
                "\(options.dryRun ? "would " : "")\(config.mode == .sync ? "sync" : "update"): \(diff.create.count) to create, \(diff.update.count) to update, \(diff.unchanged) unchanged"
                    + (config.mode == .sync ? ", \(diff.delete.count) to delete" : ""),
                event: "diff",
                fields: [
                    "create": .int(diff.create.count), "update": .int(diff.update.count),
                    "unchanged": .int(diff.unchanged),
                    "delete": .int(diff.delete.count),
                ]))
        if !diff.create.isEmpty { log?(LogEvent(.detail, "to create: \(ids(diff.create))", event: "diff")) }
        if !diff.update.isEmpty { log?(LogEvent(.detail, "to update: \(ids(diff.update))", event: "diff")) }
        guard config.mode == .sync, !diff.delete.isEmpty else { return }
        log?(LogEvent(.notice, "not in the file, to delete: \(ids(diff.delete))", event: "diff"))
        let listed = reconciler.listing.entries.count
        let unidentified = reconciler.unidentifiedRejections
        if unidentified > 0 && !options.forceDelete {
            throw ImportError(
                .uploadAborted,
                "\(unidentified) rejected rows could not be read far enough to know their remote id, so the sync deletes nothing (such a row may name a feature to keep); fix them (see the rejected rows report) or pass --force-delete"
            )
        }
        if config.sync.maxDelete.isExceeded(by: diff.delete.count, of: listed) && !options.forceDelete {
            let share = listed > 0 ? Double(diff.delete.count) * 100 / Double(listed) : 100
            let message =
                "the sync would delete \(diff.delete.count) of the map's \(listed) features (\(String(format: "%.1f", share)) %), more than sync.max_delete allows (\(config.sync.maxDelete.text))"
            if options.dryRun {
                log?(LogEvent(.notice, message + "; a run would refuse without --force-delete"))
                return
            }
            throw ImportError(
                .uploadAborted,
                message + "; nothing was deleted. If the file is complete, run again with --force-delete")
        }
        guard !options.dryRun, let uploader = sink as? Uploader else { return }
        let deleted = try await uploader.delete(
            remoteIDs: diff.delete, remoteField: reconciler.remoteField, batchSize: config.upload.batchSize)
        log?(
            LogEvent(
                .detail, "deleted \(deleted) features no longer in the file", event: "delete",
                fields: ["deleted": .int(deleted)]))
    }

    /// `NAME.diff.csv`: what a sync or an update created, updated and deleted (or would, in a dry
    /// run), one remote id a line; unchanged rows are left out.
    fileprivate func writeDiff(_ diff: MapReconciler.Diff, to path: String) throws {
        let writer = try ByteWriter(path: path)
        var text = "action,remote_id\n"
        func quoted(_ id: String) -> String {
            id.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + id.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : id
        }
        for (action, ids) in [("create", diff.create), ("update", diff.update), ("delete", diff.delete)] {
            for id in ids { text += "\(action),\(quoted(id))\n" }
        }
        try writer.write(Array(text.utf8))
        try writer.close()
    }
}

/// How much a log line matters: `detail` says what was decided (shown with `--verbose`);
/// `notice` reports something that happened to the run, such as a retry (shown unless `--quiet`).
public enum LogLevel: String, Sendable {
    case detail
    case notice
}

/// One log line: a sentence for people, and for `--log-format json` a stable event name with
/// fields (`file`, `line`, `code`, `batch`, `status`, `attempt`, `delay_ms`, …) for machines.
public struct LogEvent: Sendable {
    public enum Value: Sendable, Equatable {
        case int(Int)
        case text(String)
    }

    public var level: LogLevel
    public var message: String
    /// `plan`, `notice`, `retry`, `resume`, `journal`, `diff`, `delete`, …
    public var event: String
    public var fields: [String: Value]

    public init(_ level: LogLevel, _ message: String, event: String? = nil, fields: [String: Value] = [:]) {
        self.level = level
        self.message = message
        self.event = event ?? (level == .detail ? "plan" : "notice")
        self.fields = fields
    }
}

/// Progress of a run, for a progress line.
public struct Progress: Sendable {
    public var rowsRead: Int
    public var bytesRead: Int
    /// Rows rejected so far (a few blocks behind `rowsRead`).
    public var rejected: Int
    /// Requests sent again so far.
    public var retries = 0
}

/// The first rejected rows, one log line each (shown with `-v`; `rejected` events in JSON).
final class RejectionLog: Sendable {
    /// Rows logged one by one, at most; all of them are in the report.
    static let limit = 100
    let log: @Sendable (LogEvent) -> Void
    let report: String
    private let count = Atomic<Int>(0)

    init(log: @escaping @Sendable (LogEvent) -> Void, report: String) {
        self.log = log
        self.report = report
    }

    func observe(_ rejection: Rejection) {
        let number = count.add(1, ordering: .relaxed).newValue
        guard number <= Self.limit else { return }
        let column = rejection.column.isEmpty ? "" : " in \"\(rejection.column)\""
        let more = number == Self.limit ? " (further rejected rows are in \(report) only)" : ""
        log(
            LogEvent(
                .detail, "line \(rejection.line): \(rejection.code.rawValue)\(column): \(rejection.message)\(more)",
                event: "rejected",
                fields: [
                    "line": .int(rejection.line), "code": .text(rejection.code.rawValue),
                    "column": .text(rejection.column),
                ]))
    }
}

/// Counters and the first fatal error, shared by the stage tasks.
final class RunState: Sendable {
    let rowsRead = Atomic<Int>(0)
    let rejected = Atomic<Int>(0)
    /// Values of `text` fields past 255 characters (the server cuts them).
    let longTexts = Atomic<Int>(0)
    /// Rows an earlier run of this journal imported, not sent again.
    let resumed = Atomic<Int>(0)
    /// Rows the map holds already as they are (sync, update): not sent.
    let unchanged = Atomic<Int>(0)
    /// Rows that passed the validator, per coordinate notation (`CoordinateNotation.ordinal`).
    let notations = NIOLockedValueBox([Int](repeating: 0, count: CoordinateNotation.allCases.count))
    private let firstFailure = NIOLockedValueBox<ImportError?>(nil)

    func fail(_ error: ImportError) {
        firstFailure.withLockedValue { if $0 == nil { $0 = error } }
    }

    var failure: ImportError? { firstFailure.withLockedValue { $0 } }
}

/// The stage objects of one run. Each is owned by exactly one stage task at a time (the task
/// group's completion hands them back), hence `@unchecked Sendable`.
private final class Stages: @unchecked Sendable {
    let reader: any RecordReader
    let validator: Validator
    let transformer: Transformer
    var chunker: Chunker
    let rejects: RejectedRowsWriter
    let sink: any BatchSink
    let maxRejects: PipelineConfig.Threshold?
    let state: RunState
    let progress: (@Sendable (Progress) -> Void)?
    /// What the runs before this one settled, when resuming.
    var settled: ResumeJournal.Settled?
    /// The map's features, in a sync or an update.
    var reconciler: MapReconciler?
    /// What the HTML report draws.
    var collector: ReportCollector?

    init(
        reader: any RecordReader, validator: Validator, transformer: Transformer, chunker: Chunker,
        rejects: RejectedRowsWriter, sink: any BatchSink, maxRejects: PipelineConfig.Threshold?, state: RunState,
        progress: (@Sendable (Progress) -> Void)?
    ) {
        self.reader = reader
        self.validator = validator
        self.transformer = transformer
        self.chunker = chunker
        self.rejects = rejects
        self.sink = sink
        self.maxRejects = maxRejects
        self.state = state
        self.progress = progress
    }

    /// A percentage limit on rejects is judged once this many rows have been seen (or at the end).
    static let percentSample = 1000

    func run() async throws {
        let records = AsyncChannel<RecordBlock>()
        let validated = AsyncChannel<ValidatedBlock>()
        let features = AsyncChannel<FeatureBlock>()
        let batches = sink.makeQueue()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.read(into: records) }
            group.addTask {
                defer { validated.finish() }
                for await block in records {
                    let result = self.validator.validate(block)
                    self.collector?.observe(result)
                    self.state.notations.withLockedValue { counts in
                        for index in counts.indices { counts[index] += result.notations[index] }
                    }
                    await validated.send(result)
                    try Task.checkCancellation()
                }
            }
            group.addTask {
                defer { features.finish() }
                for await block in validated {
                    let result = self.transformer.transform(block)
                    if result.longTexts > 0 { self.state.longTexts.add(result.longTexts, ordering: .relaxed) }
                    await features.send(result)
                    try Task.checkCancellation()
                }
            }
            group.addTask { try await self.chunk(features, into: batches) }
            group.addTask { try await self.sink.drain(batches) }
            // Not `waitForAll()`: it waits for every task before throwing, and the stages before a
            // failed one would wait forever to hand it their next block. Cancel them at once.
            do {
                while try await group.next() != nil {}
            } catch {
                if let error = error as? ImportError { state.fail(error) }
                group.cancelAll()
                throw error
            }
        }
    }

    /// Reads block by block. A pipe or terminal can block a read for as long as its writer
    /// likes, so those are read on a thread of their own (`BlockingExecutor`); a regular file is
    /// read in this task, which measured faster on two cores (no extra thread competing for them).
    private func read(into records: AsyncChannel<RecordBlock>) async throws {
        defer { records.finish() }
        let executor = reader.mayBlock ? BlockingExecutor(label: "mapsemble-import.reader") : nil
        func next() async throws -> RecordBlock? {
            guard let executor else { return try reader.nextBlock() }
            return try await executor.run { try self.reader.nextBlock() }
        }
        while let block = try await next() {
            state.rowsRead.store(reader.rowsRead, ordering: .relaxed)
            progress?(
                Progress(
                    rowsRead: reader.rowsRead, bytesRead: reader.bytesRead,
                    rejected: state.rejected.load(ordering: .relaxed), retries: sink.stats.retries))
            await records.send(block)
            try Task.checkCancellation()
        }
        state.rowsRead.store(reader.rowsRead, ordering: .relaxed)
    }

    /// Writes each block's rejections, checks `max_rejects`, cuts batches. With a percentage
    /// limit, batches are held back until enough rows have been seen to judge it.
    private func chunk(_ features: AsyncChannel<FeatureBlock>, into batches: BatchQueue) async throws {
        defer { batches.finish() }
        var seen = 0
        var passedBlocks = 0
        var held: [Batch] = []
        var holding: Bool = {
            if case .percent = maxRejects { return true }
            return false
        }()
        func check(final: Bool) throws {
            guard let maxRejects, maxRejects.isExceeded(by: rejects.count, of: seen) else { return }
            if case .percent = maxRejects, !final && seen < Self.percentSample { return }
            let limit: String
            switch maxRejects {
            case .count(let count): limit = "\(count) rows"
            case .percent(let share): limit = "\(share.formatted())% of the rows"
            }
            throw ImportError(
                .tooManyRejects,
                "\(rejects.count) of \(seen) rows were rejected, more than report.max_rejects allows (\(limit)); stopped"
            )
        }
        for await block in features {
            for rejection in block.rejections { try rejects.write(rejection) }
            seen += block.count + block.rejections.count
            let block = sift(block)
            state.rejected.store(rejects.count, ordering: .relaxed)
            try check(final: false)
            // A sink that writes features only (`--dry-run --output`) takes the block's bytes as
            // they are: cutting them into request bodies would copy every byte for nothing.
            let full: [Batch]
            if sink.needsRequestBodies {
                full = chunker.append(block)
            } else {
                full = [Batch(featuresOf: block, sequence: passedBlocks)]
                passedBlocks += 1
            }
            if holding {
                held += full
                if seen >= Self.percentSample {
                    holding = false
                    for batch in held { await batches.send(batch) }
                    held = []
                }
            } else {
                for batch in full { await batches.send(batch) }
            }
            try Task.checkCancellation()
        }
        try Task.checkCancellation()
        try check(final: true)
        for batch in held { await batches.send(batch) }
        if let last = chunker.finish() { await batches.send(last) }
    }
}

extension Stages {
    /// The block without the rows that need no request: those an earlier run settled (journal;
    /// imported ones are counted, those the server refused are reported again as it refused them),
    /// and, in a sync or an update, those the map holds already as they are (`unchanged`) or, in an
    /// update, does not hold at all (`unknown_remote_id`).
    fileprivate func sift(_ block: FeatureBlock) -> FeatureBlock {
        guard settled != nil || reconciler != nil else { return block }
        reconciler?.see(block.rejections)
        var kept = FeatureBlock()
        kept.source = block.source
        kept.longTexts = block.longTexts
        var resumed = 0
        var unchanged = 0
        block.bytes.withUnsafeBytes { bytes in
            for index in 0..<block.count {
                let line = block.lines[index]
                let feature = UnsafeRawBufferPointer(rebasing: bytes[block.range(index)])
                let decision = reconciler?.decide(feature) ?? .send
                func reject(_ code: RejectCode, _ message: String) {
                    let fields = index < block.records.count ? block.source?.originalCells(block.records[index]) : nil
                    rejects.writeLate(
                        Rejection(line: line, code: code, column: "", message: message, fields: fields ?? []))
                }
                if let settled, settled.contains(line) {
                    if let refusal = settled.refused[line] {
                        reject(refusal.code, refusal.message)
                    } else {
                        resumed += 1
                    }
                    continue
                }
                switch decision {
                case .send:
                    kept.bytes.appendBytes(feature)
                    kept.ends.append(kept.bytes.count)
                    kept.lines.append(line)
                    if index < block.records.count { kept.records.append(block.records[index]) }
                case .unchanged:
                    unchanged += 1
                case .unknown(let remoteID):
                    reject(
                        .unknownRemoteId,
                        "the map has no feature with remote id \"\(remoteID)\"; an update changes existing features only"
                    )
                }
            }
        }
        if resumed > 0 { state.resumed.add(resumed, ordering: .relaxed) }
        if unchanged > 0 { state.unchanged.add(unchanged, ordering: .relaxed) }
        return kept
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
