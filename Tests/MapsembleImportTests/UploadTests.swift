import Foundation
import MapsembleJSON
import MapsembleSandbox
import Testing

@testable import MapsembleImport

/// An in-process sandbox on a free loopback port, and a pipeline pointed at it over real HTTP.
struct UploadHarness: Sendable {
    static let mapID = "7e57ab1e-0000-4000-8000-000000000001"
    let server: SandboxServer
    let dir = TempDir()
    var input: String

    init(
        rows: Int, plan: SandboxConfig.Plan = .pro, faults: FaultPlan = FaultPlan(), maxFeatures: Int = 1000,
        kindFor: (Int) -> String = { _ in "shop" }, configure: (inout SandboxConfig) -> Void = { _ in }
    ) async throws {
        _ = ignoreSIGPIPE
        var config = SandboxConfig(maps: [
            .init(
                id: Self.mapID, label: "Sites", plan: plan,
                fields: [
                    .init(slug: "ext_id"), .init(slug: "kind", type: "single_select", options: ["shop", "depot"]),
                    .init(slug: "score", type: "number"),
                ],
                remoteField: "ext_id")
        ])
        config.apiKeys = ["test-key": "sandbox"]
        config.faults = faults
        config.maxFeaturesPerRequest = maxFeatures
        configure(&config)
        server = try await SandboxServer(config: config)
        var text = "id,name,lat,lon,kind,score\n"
        for row in 1...max(rows, 1) where rows > 0 {
            text +=
                "S\(row),Site \(row),\(Double(row % 160) / 2 - 40),\(Double(row % 300) / 2 - 75),\(kindFor(row)),\(row)\n"
        }
        input = dir.write("sites.csv", text)
    }

    func config(
        mode: PipelineConfig.Mode = .upsert, batchSize: Int = 100, concurrency: Int = 4, key: String = "test-key"
    ) -> PipelineConfig {
        var config = PipelineConfig()
        config.source.path = input
        config.report.dir = dir.path
        config.target.apiURL = server.url
        config.target.apiKey = key
        config.target.mapID = Self.mapID
        config.target.mode = mode
        config.properties.label = "name"
        config.properties.remoteID = "id"
        config.properties.fields = [.init(slug: "kind", column: "kind"), .init(slug: "score", column: "score")]
        config.upload.batchSize = batchSize
        config.upload.concurrency = concurrency
        config.upload.maxRetries = 12
        config.upload.timeoutSeconds = 5
        return config
    }

    func run(_ config: PipelineConfig) async throws -> RunSummary {
        var options = RunOptions()
        options.dryRun = false
        options.backoffSeconds = 0.005
        return try await Pipeline(config: config, options: options).run()
    }

    var stored: [StoredFeature] { server.store.features(map: Self.mapID) }

    /// Remote ids on the map, with how often each is there.
    var storedIDs: [String: Int] {
        stored.reduce(into: [:]) { counts, feature in counts[feature["ext_id"]?.string ?? "?", default: 0] += 1 }
    }

    func rejectedLines() -> [String] {
        dir.read("sites.rejected.csv").split(separator: "\n").dropFirst().map(String.init)
    }
}

/// Every row exactly once on the map, with its values.
func expectExactlyOnce(_ harness: UploadHarness, rows: Int, sourceLocation: SourceLocation = #_sourceLocation) {
    let ids = harness.storedIDs
    #expect(ids.count == rows, "missing rows", sourceLocation: sourceLocation)
    #expect(
        ids.values.allSatisfy { $0 == 1 }, "duplicated rows: \(ids.filter { $0.value > 1 }.keys.sorted())",
        sourceLocation: sourceLocation)
    for feature in harness.stored {
        let id = feature["ext_id"]?.string ?? ""
        let row = Int(id.dropFirst()) ?? -1
        #expect(feature["label"]?.string == "Site \(row)", sourceLocation: sourceLocation)
        #expect(feature["score"]?.number == Double(row), sourceLocation: sourceLocation)
        #expect(feature.latitude == Double(row % 160) / 2 - 40, sourceLocation: sourceLocation)
        #expect(feature.longitude == Double(row % 300) / 2 - 75, sourceLocation: sourceLocation)
    }
}

@Suite("Upload over libcurl to the sandbox", .serialized, .timeLimit(minutes(2)))
struct UploadTests {
    @Test("upsert: every row lands once with its values; a second run updates instead of duplicating")
    func upsertTwice() async throws {
        let harness = try await UploadHarness(rows: 1_000)
        let first = try await harness.run(harness.config())
        #expect(first.exitCode == 0)
        #expect(first.imported == 1_000)
        #expect(first.created == 1_000)
        #expect(first.requests == 10)
        expectExactlyOnce(harness, rows: 1_000)
        let second = try await harness.run(harness.config())
        #expect(second.updated == 1_000)
        #expect(second.created == 0)
        expectExactlyOnce(harness, rows: 1_000)
    }

    @Test(
        "each fault kind alone, then all together: no row lost, none duplicated",
        arguments: [
            "rate limit", "server errors", "applied then dropped", "stalls", "all at once",
        ])
    func faults(kind: String) async throws {
        var faults = FaultPlan()
        faults.seed = 42
        faults.retryAfterSeconds = 0
        faults.stallSeconds = 1.5
        switch kind {
        case "rate limit": faults.rateLimited = 0.4
        case "server errors": faults.serverErrors = 0.4
        case "applied then dropped": faults.droppedAfterApply = 0.4
        case "stalls": faults.stalls = 0.2
        default:
            faults.rateLimited = 0.15
            faults.serverErrors = 0.15
            faults.droppedAfterApply = 0.15
            faults.stalls = 0.05
        }
        let harness = try await UploadHarness(rows: 2_000, faults: faults)
        var config = harness.config(batchSize: 50, concurrency: 4)
        config.upload.timeoutSeconds = 1
        config.upload.maxRetries = 20
        let summary = try await harness.run(config)
        #expect(summary.exitCode == 0, "\(summary.abortReason?.description ?? "")")
        #expect(summary.imported == 2_000)
        #expect(summary.retries > 0)
        #expect(summary.requests == 40 + summary.retries)
        expectExactlyOnce(harness, rows: 2_000)
    }

    @Test("create (POST) with remote ids under applied-then-dropped: retries do not duplicate")
    func createUnderDrops() async throws {
        var faults = FaultPlan()
        faults.droppedAfterApply = 0.4
        faults.seed = 3
        let harness = try await UploadHarness(rows: 600, faults: faults)
        let summary = try await harness.run(harness.config(mode: .create, batchSize: 50))
        #expect(summary.exitCode == 0)
        #expect(summary.imported == 600)
        #expect(summary.created == 600)
        expectExactlyOnce(harness, rows: 600)
    }

    @Test(
        "a free plan's limit of 100 with 250 rows: 100 stored, the refused rows plan_limit, the rest not_sent, exit 3")
    func planLimit() async throws {
        let harness = try await UploadHarness(rows: 250, plan: .free)
        let summary = try await harness.run(harness.config(batchSize: 40, concurrency: 1))
        #expect(summary.exitCode == 3)
        #expect(summary.status == .aborted)
        #expect(harness.stored.count == 100)
        #expect(summary.imported == 100)
        #expect(summary.rejectedByCode == [.planLimit: 20])
        #expect(summary.notSent == 130)
        #expect(summary.abortReason?.message.contains("plan limit of 100 features") == true)
        let lines = harness.rejectedLines()
        #expect(lines.count == 20)
        #expect(lines.first?.hasPrefix("102,plan_limit,,") == true)  // row 101 is on line 102
        #expect(lines.first?.hasSuffix("S101,Site 101,10.5,-24.5,shop,101") == true)
    }

    @Test("a per-request maximum of 50 with batches of 200: batches are halved and everything lands")
    func perRequestMaximum() async throws {
        let harness = try await UploadHarness(rows: 1_000, maxFeatures: 50)
        let summary = try await harness.run(harness.config(batchSize: 200))
        #expect(summary.exitCode == 0)
        #expect(summary.imported == 1_000)
        #expect(summary.requests == 5 + 10 + 20)  // 200 refused, 2×100 refused, 4×50 stored, per batch
        expectExactlyOnce(harness, rows: 1_000)
    }

    @Test("options known from the map: an unknown option is rejected before sending, naming the allowed ones")
    func unknownOptionBeforeSending() async throws {
        let harness = try await UploadHarness(rows: 100, kindFor: { $0 == 17 || $0 == 64 ? "castle" : "shop" })
        let summary = try await harness.run(harness.config(batchSize: 100))
        #expect(summary.exitCode == 1)
        #expect(summary.imported == 98)
        #expect(summary.rejectedByCode == [.invalidFieldValue: 2])
        #expect(summary.requests == 1)
        let lines = harness.rejectedLines()
        #expect(lines.map { $0.split(separator: ",")[0] } == ["18", "65"])
        #expect(lines[0].contains("its options are: shop, depot"))
    }

    @Test("a 422 on two features of a batch: those two are server_rejected, the rest of the batch lands")
    func unprocessableFeatures() async throws {
        var faults = FaultPlan()
        faults.hiddenFieldOptions = true
        let harness = try await UploadHarness(
            rows: 100, faults: faults, kindFor: { $0 == 17 || $0 == 64 ? "castle" : "shop" })
        let summary = try await harness.run(harness.config(batchSize: 100))
        #expect(summary.exitCode == 1)
        #expect(summary.imported == 98)
        #expect(summary.rejectedByCode == [.serverRejected: 2])
        #expect(summary.requests == 2)
        #expect(harness.stored.count == 98)
        let lines = harness.rejectedLines()
        #expect(lines.map { $0.split(separator: ",")[0] } == ["18", "65"])
        #expect(lines[0].contains("properties.kind"))
        #expect(lines[0].hasSuffix("S17,Site 17,-31.5,-66.5,castle,17"))
    }

    @Test("a wrong key stops at the pre-flight with one sentence: nothing sent, no report")
    func wrongKey() async throws {
        let harness = try await UploadHarness(rows: 10)
        await #expect(throws: ImportError.self) { try await harness.run(harness.config(key: "wrong")) }
        do {
            _ = try await harness.run(harness.config(key: "wrong"))
        } catch let error as ImportError {
            #expect(error.exitCode == 2)
            #expect(error.message.contains("API key was refused"))
            #expect(!error.message.contains("wrong"))
        }
        #expect(harness.server.store.requestCounts.writes == 0)
    }

    @Test("pre-flight: a mapped slug the map does not have is an error naming it and the map's fields")
    func unknownSlug() async throws {
        let harness = try await UploadHarness(rows: 10)
        var config = harness.config()
        config.properties.fields.append(.init(slug: "colour", column: "name"))
        do {
            _ = try await harness.run(config)
            Issue.record("expected an error")
        } catch let error as ImportError {
            #expect(
                error.message
                    == "properties.fields.colour: map \(UploadHarness.mapID) has no field \"colour\"; its fields are: ext_id, kind, score"
            )
        }
        #expect(harness.server.store.requestCounts.writes == 0)
    }

    @Test("a slow server past timeout_s and max_retries: aborted with exit 3, the books still balance")
    func slowServer() async throws {
        var faults = FaultPlan()
        faults.stalls = 1
        faults.stallSeconds = 1.5
        let harness = try await UploadHarness(rows: 50, faults: faults)
        var config = harness.config(batchSize: 50, concurrency: 1)
        config.upload.timeoutSeconds = 0.5
        config.upload.maxRetries = 2
        let summary = try await harness.run(config)
        #expect(summary.exitCode == 3)
        #expect(summary.abortReason?.message.contains("no answer within 0.5 s") == true)
        #expect(summary.retries == 2)
        #expect(summary.rowsRead == summary.imported + summary.rejected + summary.notSent)
    }

    @Test("Ctrl-C mid-run: in-flight requests settle, what the server stored is what the summary says")
    func interrupt() async throws {
        var faults = FaultPlan()
        faults.latencyMilliseconds = 30
        let harness = try await UploadHarness(rows: 3_000, faults: faults)
        let config = harness.config(batchSize: 50, concurrency: 2)
        let task = Task { try await harness.run(config) }
        while harness.stored.count < 300 { try await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        let summary = try await task.value
        #expect(summary.exitCode == 130)
        #expect(summary.imported == harness.stored.count)
        #expect(summary.imported < 3_000)
        #expect(summary.rowsRead == summary.imported + summary.rejected + summary.notSent)
    }

    @Test("delete by remote id removes exactly the rows of the file")
    func deleteMode() async throws {
        let harness = try await UploadHarness(rows: 300)
        _ = try await harness.run(harness.config())
        let deleting = harness.dir.write("gone.csv", "id\n" + (1...100).map { "S\($0)" }.joined(separator: "\n") + "\n")
        var config = harness.config(mode: .delete)
        config.source.path = deleting
        config.properties.fields = []
        config.properties.label = nil
        let summary = try await harness.run(config)
        #expect(summary.exitCode == 0)
        #expect(summary.deleted == 100)
        #expect(harness.stored.count == 200)
        #expect(harness.storedIDs["S1"] == nil)
        #expect(harness.storedIDs["S101"] == 1)
    }

    @Test("replace: one PUT reconciles the map; more than 1000 rows is refused before sending")
    func replaceMode() async throws {
        let harness = try await UploadHarness(rows: 1_001)
        let refused = try await harness.run(harness.config(mode: .replace))
        #expect(refused.exitCode == 2)
        #expect(refused.abortReason?.message.contains("at most 1000 rows") == true)
        #expect(harness.server.store.requestCounts.writes == 0)
        let smaller = try await UploadHarness(rows: 500)
        _ = try await smaller.run(smaller.config())
        let subset = smaller.dir.write(
            "subset.csv", "id,name,lat,lon,kind,score\nS1,Site 1,1,2,shop,1\nS2,Site 2,1,2,depot,2\n")
        var config = smaller.config(mode: .replace)
        config.source.path = subset
        let summary = try await smaller.run(config)
        #expect(summary.exitCode == 0)
        #expect(summary.deleted == 498)
        #expect(Set(smaller.storedIDs.keys) == ["S1", "S2"])
    }

    @Test("a body over the server's size limit (413) is halved until it passes")
    func bodyTooLarge() async throws {
        let harness = try await UploadHarness(rows: 400, configure: { $0.maxBodyBytes = 6_000 })
        let summary = try await harness.run(harness.config(batchSize: 100))
        #expect(summary.exitCode == 0)
        #expect(summary.requests > 4)
        expectExactlyOnce(harness, rows: 400)
    }

    @Test("a 422 that names no feature is bisected down to the bad rows")
    func anonymousUnprocessable() async throws {
        var faults = FaultPlan()
        faults.anonymousValidationErrors = true
        faults.hiddenFieldOptions = true
        let harness = try await UploadHarness(
            rows: 100, faults: faults, kindFor: { $0 == 17 || $0 == 64 ? "castle" : "shop" })
        let summary = try await harness.run(harness.config(batchSize: 100))
        #expect(summary.exitCode == 1)
        #expect(summary.imported == 98)
        #expect(harness.stored.count == 98)
        #expect(harness.rejectedLines().map { $0.split(separator: ",")[0] } == ["18", "65"])
        #expect(summary.requests > 2)
    }

    @Test("failed[] entries without an index leave their request unconfirmed: not_sent, exit 3")
    func unindexedFailures() async throws {
        var faults = FaultPlan()
        faults.unindexedFailures = true
        let harness = try await UploadHarness(rows: 150, plan: .free, faults: faults)
        let summary = try await harness.run(harness.config(batchSize: 50, concurrency: 1))
        #expect(summary.exitCode == 3)
        #expect(summary.imported == 100)
        #expect(summary.rejected == 0)
        #expect(summary.notSent == 50)
        #expect(summary.abortReason?.message.contains("did not say whether they were stored") == true)
    }

    @Test("OAuth client credentials: a token is fetched from /token and used")
    func clientCredentials() async throws {
        let harness = try await UploadHarness(
            rows: 120, configure: { $0.clients = [.init(id: "crm-sync", secret: "s3cret")] })
        var config = harness.config()
        config.target.apiKey = nil
        config.target.clientID = "crm-sync"
        config.target.clientSecret = "s3cret"
        let summary = try await harness.run(config)
        #expect(summary.exitCode == 0)
        expectExactlyOnce(harness, rows: 120)
        config.target.clientSecret = "wrong"
        await #expect(throws: ImportError.self) { try await harness.run(config) }
    }

    @Test("pre-flight: upsert into a map without a remote field is an error naming the setting")
    func noRemoteField() async throws {
        let harness = try await UploadHarness(rows: 10, configure: { $0.maps[0].remoteField = nil })
        do {
            _ = try await harness.run(harness.config())
            Issue.record("expected an error")
        } catch let error as ImportError {
            #expect(error.message.contains("has no remote field (config.remoteField)"))
            #expect(error.exitCode == 2)
        }
        #expect(harness.server.store.requestCounts.writes == 0)
    }
}
