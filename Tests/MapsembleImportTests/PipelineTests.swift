import AsyncAlgorithms
import Foundation
import Synchronization
import Testing

@testable import MapsembleImport

/// A sink that takes its time, counts what it took and can signal or fail after some batches.
final class SlowSink: BatchSink, @unchecked Sendable {
    func drain(_ batches: BatchQueue) async throws {
        for await batch in batches {
            try await consume(batch)
            try Task.checkCancellation()
        }
    }

    let delay: Duration
    let failAfter: Int?
    private(set) var featureCount = 0
    private(set) var batches = 0
    var onBatch: (@Sendable (Int, Int) -> Void)?

    init(delay: Duration, failAfter: Int? = nil) {
        self.delay = delay
        self.failAfter = failAfter
    }

    struct Failure: Error {}

    func consume(_ batch: Batch) async throws {
        try await Task.sleep(for: delay)
        batches += 1
        featureCount += batch.count
        onBatch?(batches, featureCount)
        if let failAfter, batches >= failAfter { throw ImportError(.output, "the sink failed on purpose") }
    }

    func close() throws {}
}

/// Writes a file of `rows` valid rows (plus a bad one every `badEvery` rows).
func writeRows(_ dir: TempDir, rows: Int, badEvery: Int? = nil) -> String {
    var text = "id,name,lat,lon\n"
    text.reserveCapacity(rows * 32)
    for row in 1...rows {
        if let badEvery, row % badEvery == 0 {
            text += "\(row),bad \(row),north,\(row % 180)\n"
        } else {
            text += "\(row),place \(row),\(Double(row % 170) / 2 - 42),\(row % 180)\n"
        }
    }
    return dir.write("rows.csv", text)
}

func config(input: String, reports: String) -> PipelineConfig {
    var config = PipelineConfig()
    config.source.path = input
    config.report.dir = reports
    config.properties.remoteID = "id"
    config.upload.batchSize = 100
    return config
}

@Suite("Pipeline: stages, back-pressure, cancellation, accounting")
struct PipelineTests {
    @Test("a slow sink holds the reader back: it runs at most a few blocks ahead", .timeLimit(minutes(3)))
    func backPressure() async throws {
        let dir = TempDir()
        let rows = 60_000
        let input = writeRows(dir, rows: rows)
        var options = RunOptions()
        options.blockBytes = 8 << 10  // about 500 rows a block
        let pipeline = Pipeline(config: config(input: input, reports: dir.path), options: options)
        let read = Atomic<Int>(0)
        let maxLead = Atomic<Int>(0)
        let sink = SlowSink(delay: .microseconds(300))
        sink.onBatch = { _, consumed in
            let lead = read.load(ordering: .relaxed) - consumed
            var current = maxLead.load(ordering: .relaxed)
            while lead > current {
                let (exchanged, original) = maxLead.compareExchange(
                    expected: current, desired: lead, ordering: .relaxed)
                if exchanged { break }
                current = original
            }
        }
        let summary = try await pipeline.run(sink: sink) { read.store($0.rowsRead, ordering: .relaxed) }
        #expect(summary.imported == rows)
        let rowsPerBlock = 8 << 10 / 14  // field bytes per row are at least 14
        // Reader, 4 channels, 4 stages and a batch in flight: far below the 60,000 rows of the file.
        #expect(maxLead.load(ordering: .relaxed) <= 10 * rowsPerBlock)
        #expect(maxLead.load(ordering: .relaxed) > 0)
    }

    @Test("cancelling the run (Ctrl-C) stops every stage; the reports still add up", .timeLimit(minutes(1)))
    func cancellation() async throws {
        let dir = TempDir()
        let rows = 60_000
        let input = writeRows(dir, rows: rows, badEvery: 97)
        var options = RunOptions()
        options.blockBytes = 8 << 10
        let pipeline = Pipeline(config: config(input: input, reports: dir.path), options: options)
        let sink = SlowSink(delay: .milliseconds(2))
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        sink.onBatch = { batches, _ in if batches == 5 { startedContinuation.yield() } }
        let task = Task { try await pipeline.run(sink: sink) }
        for await _ in started { break }
        task.cancel()
        let summary = try await task.value
        #expect(summary.interrupted)
        #expect(summary.exitCode == 130)
        #expect(summary.status == .aborted)
        #expect(summary.rowsRead < rows / 2)
        #expect(summary.rowsRead == summary.imported + summary.rejected + summary.notSent)
        let written = dir.read("rows.summary.json")
        #expect(written.contains("\"status\": \"aborted\""))
        #expect(written.contains("\"rows_read\": \(summary.rowsRead)"))
    }

    @Test("a failing sink stops the reader and the run is aborted", .timeLimit(minutes(1)))
    func sinkFailure() async throws {
        let dir = TempDir()
        let input = writeRows(dir, rows: 60_000)
        var options = RunOptions()
        options.blockBytes = 8 << 10
        let pipeline = Pipeline(config: config(input: input, reports: dir.path), options: options)
        let summary = try await pipeline.run(sink: SlowSink(delay: .zero, failAfter: 3))
        #expect(summary.status == .aborted)
        #expect(summary.abortReason?.message == "the sink failed on purpose")
        #expect(summary.rowsRead < 30_000)
        #expect(summary.rowsRead == summary.imported + summary.rejected + summary.notSent)
    }

    @Test("every row is imported or in rejected.csv, in input order", .timeLimit(minutes(1)))
    func accounting() async throws {
        let dir = TempDir()
        let input = writeRows(dir, rows: 5_000, badEvery: 7)
        var options = RunOptions()
        options.output = dir.path + "/out.geojson"
        options.blockBytes = 4 << 10
        let summary = try await Pipeline(config: config(input: input, reports: dir.path), options: options).run()
        #expect(summary.rowsRead == 5_000)
        #expect(summary.rejectedByCode == [.invalidNumber: 714])
        #expect(summary.imported == 5_000 - 714)
        #expect(summary.notSent == 0)
        #expect(summary.exitCode == 1)
        let rejected = dir.read("rows.rejected.csv").split(separator: "\n").dropFirst()
        #expect(rejected.count == 714)
        let lines = rejected.map { Int($0.split(separator: ",")[0])! }
        #expect(lines == lines.sorted())
        #expect(lines.first == 8)  // row 7 is on line 8
        let output =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: options.output!)))
            as! [String: Any]
        #expect((output["features"] as! [Any]).count == summary.imported)
    }

    @Test("max_rejects as a count stops the run with exit code 3", .timeLimit(minutes(1)))
    func maxRejectsCount() async throws {
        let dir = TempDir()
        let input = writeRows(dir, rows: 20_000, badEvery: 10)
        var cfg = config(input: input, reports: dir.path)
        cfg.report.maxRejects = .count(50)
        var options = RunOptions()
        options.blockBytes = 4 << 10
        let summary = try await Pipeline(config: cfg, options: options).run()
        #expect(summary.status == .aborted)
        #expect(summary.exitCode == 3)
        #expect(summary.abortReason?.kind == .tooManyRejects)
        #expect(summary.rejected > 50)
        #expect(summary.rowsRead < 20_000)
        #expect(summary.rowsRead == summary.imported + summary.rejected + summary.notSent)
    }

    @Test("max_rejects as a share: judged on the whole of a small file, nothing passes when it is exceeded")
    func maxRejectsPercent() async throws {
        let dir = TempDir()
        let input = writeRows(dir, rows: 200, badEvery: 10)
        var cfg = config(input: input, reports: dir.path)
        cfg.report.maxRejects = .percent(5)
        let sink = SlowSink(delay: .zero)
        let summary = try await Pipeline(config: cfg, options: RunOptions()).run(sink: sink)
        #expect(summary.exitCode == 3)
        #expect(sink.featureCount == 0)
        #expect(summary.notSent == 180)
        cfg.report.maxRejects = .percent(10)
        let passing = try await Pipeline(config: cfg, options: RunOptions()).run(sink: SlowSink(delay: .zero))
        #expect(passing.exitCode == 1)
        #expect(passing.imported == 180)
    }

    @Test("columns named in the config must exist: the error names the file, line 1 and the columns")
    func missingColumn() async throws {
        let dir = TempDir()
        let input = writeRows(dir, rows: 3)
        var cfg = config(input: input, reports: dir.path)
        cfg.coordinates.latitude = "Latitude"
        await #expect(throws: ImportError.self) { try await Pipeline(config: cfg, options: RunOptions()).run() }
        do {
            _ = try await Pipeline(config: cfg, options: RunOptions()).run()
        } catch let error as ImportError {
            #expect(
                error.description
                    == "\(input):1: coordinates.latitude names the column \"Latitude\", which the header does not have; its columns are: id, name, lat, lon"
            )
        }
    }
}
