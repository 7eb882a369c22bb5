import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import MapsembleImport

/// An application's own handler: keeps every record it is given.
struct RecordingHandler: LogHandler {
    let records: NIOLockedValueBox<[Logging.LogEvent]>
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: Logging.LogEvent) { records.withLockedValue { $0.append(event) } }
}

@Suite("A run's events go through swift-log")
struct LoggerTests {
    /// A dry run of `csv`, its reports in `dir`.
    func pipeline(_ csv: String, in dir: TempDir) -> Pipeline {
        var config = PipelineConfig()
        config.source.path = dir.write("points.csv", csv)
        config.report.dir = dir.path
        return Pipeline(config: config, options: RunOptions())
    }

    @Test("an embedding application's logger gets decisions at info and what happened at notice, with event and fields")
    func applicationLogger() async throws {
        let dir = TempDir()
        let records = NIOLockedValueBox<[Logging.LogEvent]>([])
        let logger = Logger(label: "my-app.import", factory: { _ in RecordingHandler(records: records) })
        let summary = try await pipeline("name,lat,lon\nA,50.9,6.9\nB,x,6.9\n", in: dir).run(logger: logger)
        #expect(summary.rejected == 1)
        let logged = records.withLockedValue { $0 }
        let plan = try #require(logged.first { $0.metadata?["event"] == "plan" })
        #expect(plan.level == .info)
        #expect(plan.message.description.contains("reading"))
        let rejected = try #require(logged.first { $0.metadata?["event"] == "rejected" })
        #expect(rejected.level == .info, "each rejected row is a detail (-v), all of them are in the report")
        #expect(rejected.metadata?["line"]?.description == "3")
        #expect(rejected.metadata?["code"] == "invalid_number")
        // Back to the run's own event type, as the command line's handler reads it.
        let event = RunEvent(rejected)
        #expect(event.event == "rejected")
        #expect(event.fields["line"] == .int(3))
        #expect(event.fields["code"] == .text("invalid_number"))
    }

    @Test("a handler's level filters: notices only, as the command line without --verbose")
    func levels() async throws {
        let dir = TempDir()
        let run = pipeline("name,lat,lon\nA,50.9,6.9\n", in: dir)
        let events = NIOLockedValueBox<[RunEvent]>([])
        let logger = Logger.events(logLevel: .notice) { event in events.withLockedValue { $0.append(event) } }
        _ = try await run.run(logger: logger)
        #expect(events.withLockedValue { $0 }.allSatisfy { $0.level == .notice })
        let all = NIOLockedValueBox<[RunEvent]>([])
        _ = try await run.run(log: { event in
            all.withLockedValue { $0.append(event) }
        })
        #expect(all.withLockedValue { $0 }.contains { $0.level == .detail && $0.event == "plan" })
    }
}
