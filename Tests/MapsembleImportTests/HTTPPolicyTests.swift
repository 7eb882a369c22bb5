import Foundation
import MapsembleSandbox
import NIOConcurrencyHelpers
import Testing

@testable import MapsembleImport

@Suite("One HTTP policy: uploads, the map listing and deletes retry alike", .serialized)
struct HTTPPolicyTests {
    @Test("the backoff doubles up to its cap, each wait a uniform draw below it; Retry-After wins")
    func policy() {
        let policy = RetryPolicy(maxRetries: 8, backoffSeconds: 0.5, maxBackoffSeconds: 30)
        #expect((1...8).map { policy.backoffCeiling(attempt: $0) } == [0.5, 1, 2, 4, 8, 16, 30, 30])
        #expect(policy.backoffCeiling(attempt: 500) == 30)
        var generator = SplitMix(seed: 429)
        for attempt in 1...12 {
            let draws = (0..<200).map { _ in policy.delay(attempt: attempt, retryAfter: nil, using: &generator) }
            let ceiling = policy.backoffCeiling(attempt: attempt)
            #expect(draws.allSatisfy { $0 >= 0 && $0 <= ceiling }, "attempt \(attempt)")
            // Full jitter: spread over the whole range, not bunched at the ceiling.
            #expect(draws.min()! < ceiling * 0.1 && draws.max()! > ceiling * 0.9, "attempt \(attempt)")
        }
        #expect(policy.delay(attempt: 3, retryAfter: "7", using: &generator) == 7)
        #expect(policy.delay(attempt: 1, retryAfter: "86400", using: &generator) == 3600)
        #expect(policy.delay(attempt: 1, retryAfter: "soon", using: &generator) <= 0.5)
        #expect(RetryPolicy.isRetryable(status: 429) && RetryPolicy.isRetryable(status: 503))
        #expect(!RetryPolicy.isRetryable(status: 422) && !RetryPolicy.isRetryable(status: 401))
    }

    @Test("a sync's listing pages meet 429s without Retry-After and 5xx: retried with capped, jittered waits")
    func listingRetries() async throws {
        let harness = try await UploadHarness(rows: 1200)
        #expect(try await harness.run(harness.config()).exitCode == 0)
        var faults = FaultPlan()
        faults.seed = 11
        faults.faultListings = true
        faults.rateLimited = 0.3
        faults.retryAfterSeconds = nil
        faults.serverErrors = 0.3
        harness.server.store.setFaults(faults)

        let events = NIOLockedValueBox<[RunEvent]>([])
        var options = RunOptions()
        options.dryRun = false
        options.backoffSeconds = 0.01
        options.maxBackoffSeconds = 0.04
        let summary = try await Pipeline(config: harness.config(mode: .sync), options: options).run(log: { event in
            events.withLockedValue { $0.append(event) }
        })
        #expect(summary.exitCode == 0)
        #expect(summary.unchanged == 1200)
        #expect(summary.requests == 0, "an unchanged file sends no write")
        let retries = events.withLockedValue { $0 }.filter { $0.event == "retry" && $0.fields["page"] != nil }
        #expect(retries.count >= 2, "the seed gives failed pages")
        let statuses = Set(
            retries.compactMap { if case .int(let status) = $0.fields["status"] { status } else { nil } })
        #expect(statuses.contains(429) && !statuses.isDisjoint(with: [500, 502, 503]), "\(statuses)")
        let delays = retries.compactMap { if case .int(let delay) = $0.fields["delay_ms"] { delay } else { nil } }
        #expect(delays.count == retries.count)
        #expect(delays.allSatisfy { $0 <= 40 }, "capped at maxBackoffSeconds: \(delays)")
        #expect(Set(delays).count > 1, "jittered: \(delays)")
        #expect(retries.allSatisfy { $0.message.contains("(listing page") })
    }

    @Test("a listing page that keeps failing stops the run before anything is sent, naming the last answer")
    func listingGivesUp() async throws {
        let harness = try await UploadHarness(rows: 10)
        #expect(try await harness.run(harness.config()).exitCode == 0)
        var faults = FaultPlan()
        faults.faultListings = true
        faults.serverErrors = 1
        harness.server.store.setFaults(faults)
        var config = harness.config(mode: .sync)
        config.upload.maxRetries = 3
        var options = RunOptions()
        options.dryRun = false
        options.backoffSeconds = 0.001
        await #expect {
            try await Pipeline(config: config, options: options).run()
        } throws: { error in
            let text = (error as? ImportError)?.description ?? ""
            return text.contains("listing the map's features failed 4 times (last: HTTP 50")
        }
    }
}

@Suite("Reports after rows moved", .serialized)
struct ReportFailureTests {
    @Test("a report that cannot be written after the upload: said, the summary still written, exit 3")
    func failingReportAfterUpload() async throws {
        let harness = try await UploadHarness(rows: 30)
        // A folder where the HTML report goes: the report writer fails after every row was sent.
        try FileManager.default.createDirectory(
            atPath: harness.dir.path + "/sites.report.html", withIntermediateDirectories: false)
        let lines = LogLines()
        var options = RunOptions()
        options.dryRun = false
        options.backoffSeconds = 0.005
        let summary = try await Pipeline(config: harness.config(), options: options).run(log: {
            lines.append($0.message)
        })
        #expect(harness.stored.count == 30)
        #expect(summary.imported == 30)
        #expect(summary.status == .aborted)
        #expect(summary.exitCode == 3)
        #expect(lines.all.contains { $0.contains("the HTML report could not be written") })
        let written = harness.dir.read("sites.summary.json")
        #expect(written.contains("\"status\": \"aborted\""), "\(written)")
        #expect(written.contains("\"imported\": 30"))
        #expect(summary.rowsRead == summary.imported + summary.rejected + summary.notSent)
    }

    @Test("a failure before any row moved keeps exit 2: nothing sent")
    func failureBeforeRowsMoved() {
        var summary = RunSummary(
            input: "x", status: .aborted, rowsRead: 5, imported: 0, rejectedByCode: [:], durationSeconds: 0)
        summary.abortReason = ImportError(.config, "too many rows for replace")
        #expect(summary.exitCode == 2)
        summary.rowsMoved = true
        #expect(summary.exitCode == 3)
    }
}
