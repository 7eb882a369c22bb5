import AsyncAlgorithms
import Foundation
import NIOConcurrencyHelpers
import Synchronization

/// Counters and the first fatal error, shared by the stage tasks.
final class RunState: Sendable {
    let rowsRead = Atomic<Int>(0)
    let bytesRead = Atomic<Int>(0)
    let rejected = Atomic<Int>(0)
    /// Values of `text` fields past 255 characters (the server cuts them).
    let longTexts = Atomic<Int>(0)
    /// Rows an earlier run of this journal imported, not sent again.
    let resumed = Atomic<Int>(0)
    /// Rows the map holds already as they are (sync, update): not sent.
    let unchanged = Atomic<Int>(0)
    /// Rows that passed the validator, per coordinate notation (`CoordinateNotation.ordinal`).
    let notations = NIOLockedValueBox([Int](repeating: 0, count: CoordinateNotation.allCases.count))
    /// Over a geometry column's rows.
    let shapes = NIOLockedValueBox(GeometryCounts())
    private let firstFailure = NIOLockedValueBox<ImportError?>(nil)

    func fail(_ error: ImportError) {
        firstFailure.withLockedValue { if $0 == nil { $0 = error } }
    }

    var failure: ImportError? { firstFailure.withLockedValue { $0 } }
}

/// How the stages ended: interrupted (Ctrl-C), or the first fatal error.
struct StageOutcome {
    var interrupted = false
    var failure: ImportError?

    /// Closes the sink and the rejected rows' report, each whatever the other did; a failure to
    /// close is the run's failure unless it had one already.
    mutating func close(_ sink: any BatchSink, _ rejects: RejectedRowsWriter) {
        for close in [sink.close, rejects.close] {
            do {
                try close()
            } catch {
                failure = failure ?? (error as? ImportError ?? ImportError(.output, "\(error)"))
            }
        }
    }
}

/// The stages of one run and the channels between them. Each stage object is owned by exactly one
/// stage task at a time (the task group's completion hands them back), hence `@unchecked Sendable`.
///
/// The graph is `run()`: a stage is a task reading one channel and writing the next, in order. A
/// stage between the validator and the transformer is one more `group.stage(…)` line there.
final class StageGraph: @unchecked Sendable {
    let reader: any RecordReader
    let validator: Validator
    let transformer: Transformer
    var chunker: Chunker
    let rejects: RejectedRowsWriter
    let sink: any BatchSink
    let maxRejects: PipelineConfig.Threshold?
    let state = RunState()
    let progress: (@Sendable (Progress) -> Void)?
    /// What the runs before this one settled, when resuming.
    var settled: ResumeJournal.Settled?
    /// The map's features, in a sync or an update.
    var reconciler: MapReconciler?
    /// What the HTML report draws.
    let collector: ReportCollector?
    /// Points from addresses, when the pipeline geocodes.
    var geocoding: GeocodeStage?

    init(
        plan: PipelinePlan, config: PipelineConfig, keepRows: Bool, sink: any BatchSink, reports: RunReports,
        progress: (@Sendable (Progress) -> Void)?
    ) {
        let wholeSet = config.mode == .replace
        reader = plan.reader
        validator = plan.validator
        transformer = Transformer(mapping: plan.mapping, keepRows: keepRows)
        chunker = Chunker(
            batchSize: wholeSet ? 1000 : config.upload.batchSize,
            maxBodyBytes: wholeSet ? Int.max : config.upload.maxBodyBytes, remoteField: plan.mapping.remoteID?.slug)
        if !wholeSet { transformer.maxFeatureBytes = chunker.maxFeatureBytes }
        rejects = reports.rejects
        collector = reports.collector
        self.sink = sink
        maxRejects = config.report.maxRejects
        self.progress = progress
    }

    /// A percentage limit on rejects is judged once this many rows have been seen (or at the end).
    static let percentSample = 1000

    /// Runs every stage to the end, or until the first error or cancellation stops them all.
    func run() async -> StageOutcome {
        var outcome = StageOutcome()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                let records = group.source { try await self.read(into: $0) }
                var validated = group.stage(records) { self.validate($0) }
                if let geocoding {
                    geocoding.onAnswer.withLockedValue { $0 = { [weak self] in self?.reportProgress() } }
                    // In two tasks: the keys of one block are made while the one before is answered.
                    let keyed = group.stage(validated) { try geocoding.keys($0) }
                    validated = group.stage(keyed) { keyed in
                        let placed = try await geocoding.geocode(keyed)
                        self.collector?.observeGeocoded(placed)
                        return placed
                    }
                }
                let features = group.stage(validated) { self.transform($0) }
                let batches = sink.makeQueue()
                group.addTask { try await self.chunk(features, into: batches) }
                group.addTask { try await self.sink.drain(batches) }
                // Not `waitForAll()`: it waits for every task before throwing, and the stages before
                // a failed one would wait forever to hand it their next block. Cancel them at once.
                do {
                    while try await group.next() != nil {}
                } catch {
                    if let error = error as? ImportError { state.fail(error) }
                    group.cancelAll()
                    throw error
                }
            }
        } catch is CancellationError {
            outcome.interrupted = true
        } catch {
            state.fail(error as? ImportError ?? ImportError(.output, "\(error)"))
        }
        if Task.isCancelled && state.failure == nil { outcome.interrupted = true }
        outcome.failure = state.failure
        return outcome
    }

    private func validate(_ block: RecordBlock) -> ValidatedBlock {
        let result = validator.validate(block)
        collector?.observe(result)
        state.notations.withLockedValue { counts in
            for index in counts.indices { counts[index] += result.notations[index] }
        }
        if result.geometries { state.shapes.withLockedValue { $0.add(result.shapes) } }
        return result
    }

    private func transform(_ block: ValidatedBlock) -> FeatureBlock {
        let result = transformer.transform(block)
        if result.longTexts > 0 { state.longTexts.add(result.longTexts, ordering: .relaxed) }
        return result
    }

    /// Reads block by block. A pipe or terminal can block a read for as long as its writer
    /// likes, so those are read on a thread of their own (`ThreadExecutor`); a regular file is
    /// read in this task, which measured faster on two cores (no extra thread competing for them).
    private func read(into records: AsyncChannel<RecordBlock>) async throws {
        let executor = reader.mayBlock ? ThreadExecutor(name: "mapsemble-import.reader") : nil
        func next() async throws -> RecordBlock? {
            guard let executor else { return try reader.nextBlock() }
            return try await executor.run { try self.reader.nextBlock() }
        }
        while let block = try await next() {
            state.rowsRead.store(reader.rowsRead, ordering: .relaxed)
            state.bytesRead.store(reader.bytesRead, ordering: .relaxed)
            reportProgress()
            await records.send(block)
            try Task.checkCancellation()
        }
        state.rowsRead.store(reader.rowsRead, ordering: .relaxed)
    }

    /// Tells `progress` how far the run is (from any stage: the reader after each block, the
    /// geocoder after each answer, as it may hold the reader back for long).
    func reportProgress() {
        guard let progress else { return }
        var report = Progress(
            rowsRead: state.rowsRead.load(ordering: .relaxed), bytesRead: state.bytesRead.load(ordering: .relaxed),
            rejected: state.rejected.load(ordering: .relaxed), retries: sink.stats.retries)
        if let geocoding {
            report.geocoding = .init(
                geocoded: geocoding.geocoded.load(ordering: .relaxed),
                cacheHits: geocoding.cacheHits.load(ordering: .relaxed), requests: geocoding.requests)
        }
        progress(report)
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

extension StageGraph {
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

extension StageGraph {
    /// The books of the run once the stages (and a sync's deletes) are over.
    /// - Parameter sends: the sink is a real destination (not a dry run's files): rows it took
    ///   have moved.
    func summary(
        _ outcome: StageOutcome, sink: any BatchSink, sends: Bool, input: String, started: ContinuousClock.Instant
    ) -> RunSummary {
        let stats = sink.stats
        var failure = outcome.failure
        if stats.unconfirmed > 0 && failure == nil && !outcome.interrupted {
            failure = ImportError(
                .uploadAborted,
                "\(stats.unconfirmed) rows were sent but the server's answers did not say whether they were stored; run again to settle them"
            )
        }
        let resumed = state.resumed.load(ordering: .relaxed)
        var summary = RunSummary(
            input: input, status: .completed, rowsRead: state.rowsRead.load(ordering: .relaxed),
            imported: sink.featureCount + resumed, rejectedByCode: rejects.byCode,
            durationSeconds: (ContinuousClock.now - started).seconds)
        summary.encoding = reader.encoding.rawValue
        summary.longTexts = state.longTexts.load(ordering: .relaxed)
        let notationCounts = state.notations.withLockedValue { $0 }
        for notation in CoordinateNotation.allCases where notationCounts[notation.ordinal] > 0 {
            summary.notations[notation] = notationCounts[notation.ordinal]
        }
        if validator.geometryColumn != nil { summary.shapes = state.shapes.withLockedValue { $0 } }
        summary.resumedRows = resumed
        summary.unchanged = state.unchanged.load(ordering: .relaxed)
        summary.imported += summary.unchanged
        summary.created = stats.created + (settled?.created ?? 0)
        summary.updated = stats.updated + (settled?.updated ?? 0)
        summary.deleted = stats.deleted + (settled?.deleted ?? 0)
        summary.requests = stats.requests
        summary.retries = stats.retries
        summary.rowsMoved = stats.requests > 0 || resumed > 0 || (sends && sink.featureCount > 0)
        if let geocoding {
            summary.geocoding = .init(
                geocoded: geocoding.geocoded.load(ordering: .relaxed),
                cacheHits: geocoding.cacheHits.load(ordering: .relaxed), requests: geocoding.requests)
        }
        summary.interrupted = outcome.interrupted
        summary.abortReason = failure
        if outcome.interrupted || failure != nil {
            summary.status = .aborted
        } else if summary.rejected > 0 {
            summary.status = .completedWithRejects
        }
        return summary
    }
}

extension ThrowingTaskGroup where ChildTaskResult == Void, Failure == any Error {
    /// A stage that produces blocks: `produce` writes them to the channel returned, which is
    /// finished when it returns.
    mutating func source<Output: Sendable>(
        _ produce: @escaping @Sendable (AsyncChannel<Output>) async throws -> Void
    ) -> AsyncChannel<Output> {
        let output = AsyncChannel<Output>()
        addTask {
            defer { output.finish() }
            try await produce(output)
        }
        return output
    }

    /// A stage in a task of its own: `transform` on every block of `input`, in order, into the
    /// channel returned. A channel holds no block, so a slow stage holds the ones before it.
    mutating func stage<Input: Sendable, Output: Sendable>(
        _ input: AsyncChannel<Input>, _ transform: @escaping @Sendable (Input) async throws -> Output
    ) -> AsyncChannel<Output> {
        let output = AsyncChannel<Output>()
        addTask {
            defer { output.finish() }
            for await block in input {
                await output.send(try await transform(block))
                try Task.checkCancellation()
            }
        }
        return output
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
