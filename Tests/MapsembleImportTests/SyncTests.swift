import Foundation
import MapsembleJSON
import MapsembleSandbox
import NIOConcurrencyHelpers
import Testing

@testable import MapsembleImport

/// The harness's file: rows `rows`, with `name(row)` as each row's name.
private func sitesCSV(_ rows: [Int], name: (Int) -> String = { "Site \($0)" }) -> String {
    var text = "id,name,lat,lon,kind,score\n"
    for row in rows {
        text += "S\(row),\(name(row)),\(Double(row % 160) / 2 - 40),\(Double(row % 300) / 2 - 75),shop,\(row)\n"
    }
    return text
}

extension UploadHarness {
    /// Runs with these options, collecting the log lines.
    func reconcile(
        _ config: PipelineConfig, dryRun: Bool = false, forceDelete: Bool = false, lines: LogLines? = nil
    ) async throws -> RunSummary {
        var options = RunOptions()
        options.dryRun = dryRun
        options.checkMap = dryRun
        options.forceDelete = forceDelete
        options.backoffSeconds = 0.005
        return try await Pipeline(config: config, options: options).run(log: { lines?.append($0.message) })
    }

    var writes: Int { server.store.requestCounts.writes }

    func labels() -> [String: String] {
        stored.reduce(into: [:]) { $0[$1["ext_id"]?.string ?? "?"] = $1["label"]?.string ?? "" }
    }
}

final class LogLines: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])
    func append(_ line: String) { lines.withLockedValue { $0.append(line) } }
    var all: [String] { lines.withLockedValue { $0 } }
}

@Suite("Sync and update against the sandbox", .serialized)
struct SyncTests {
    @Test("sync: additions, changes and removals land; unchanged rows are not sent; a second sync sends nothing")
    func syncChanges() async throws {
        let harness = try await UploadHarness(rows: 100)
        #expect(try await harness.run(harness.config()).exitCode == 0)
        // 5 rows gone, 3 renamed, 4 new.
        let rows = (1...104).filter { ![10, 20, 30, 40, 50].contains($0) }
        harness.dir.write(
            "sites.csv", sitesCSV(rows, name: { [7, 8, 9].contains($0) ? "Site \($0) (moved)" : "Site \($0)" }))
        var config = harness.config(mode: .sync)
        let writesBefore = harness.writes
        let summary = try await harness.run(config)
        #expect(summary.exitCode == 0)
        #expect(summary.rowsRead == 99)
        #expect(summary.imported == 99)
        #expect(summary.created == 4)
        #expect(summary.updated == 3)
        #expect(summary.unchanged == 92)
        #expect(summary.deleted == 5)
        // One PATCH of the 7 changed rows, one DELETE.
        #expect(harness.writes - writesBefore == 2)
        let labels = harness.labels()
        #expect(labels.count == 99)
        #expect(labels["S8"] == "Site 8 (moved)")
        #expect(labels["S10"] == nil)
        #expect(labels["S104"] == "Site 104")
        let diff = harness.dir.read("sites.diff.csv")
        #expect(diff.hasPrefix("action,remote_id\ncreate,S101\n"))
        #expect(diff.contains("update,S7\nupdate,S8\nupdate,S9\ndelete,S10\n"))

        config.upload.batchSize = 7
        let again = try await harness.run(config)
        #expect(again.exitCode == 0)
        #expect(again.unchanged == 99)
        #expect(again.requests == 0)
        #expect(harness.writes - writesBefore == 2, "an unchanged file must cost no write request")
    }

    @Test("sync: deleting more than sync.max_delete is refused, nothing deleted, until --force-delete")
    func deleteGuard() async throws {
        let harness = try await UploadHarness(rows: 100)
        _ = try await harness.run(harness.config())
        harness.dir.write("sites.csv", sitesCSV(Array(21...100)))
        var config = harness.config(mode: .sync)
        let refused = try await harness.run(config)
        #expect(refused.exitCode == 3)
        #expect(refused.abortReason?.message.contains("would delete 20 of the map's 100 features (20.0 %)") == true)
        #expect(refused.abortReason?.message.contains("--force-delete") == true)
        #expect(refused.deleted == 0)
        #expect(harness.stored.count == 100)
        // A dry run says what would go, and sends nothing.
        let lines = LogLines()
        let writes = harness.writes
        let dry = try await harness.reconcile(config, dryRun: true, lines: lines)
        #expect(harness.writes == writes)
        #expect(dry.exitCode == 0)
        #expect(lines.all.contains { $0.contains("would sync: 0 to create, 0 to update, 80 unchanged, 20 to delete") })
        #expect(lines.all.contains { $0.contains("to delete: S1, S10, S11") })
        #expect(harness.dir.read("sites.diff.csv").components(separatedBy: "\ndelete,").count == 21)

        config.sync.maxDelete = .count(25)
        let counted = try await harness.run(config)
        #expect(counted.exitCode == 0)
        #expect(counted.deleted == 20)
        #expect(harness.stored.count == 80)

        harness.dir.write("sites.csv", sitesCSV(Array(41...100)))
        config.sync.maxDelete = .percent(10)
        let forced = try await harness.reconcile(config, forceDelete: true)
        #expect(forced.exitCode == 0)
        #expect(forced.deleted == 20)
        #expect(harness.stored.count == 60)
    }

    @Test("sync: stopped part-way through its deletes, the resumed run deletes the rest and counts them all")
    func resumedDeletesAreCounted() async throws {
        let harness = try await UploadHarness(rows: 100)
        _ = try await harness.run(harness.config())
        harness.dir.write("sites.csv", sitesCSV(Array(41...100)))
        var config = harness.config(mode: .sync, batchSize: 4, concurrency: 1)
        config.sync.maxDelete = .count(50)
        config.upload.maxRetries = 0
        // A server that fails 30 % of writes, no retries: the first seed whose failure comes after
        // a DELETE succeeded (a run stopped by the very first DELETE deleted nothing, and the next
        // seed starts from the same map).
        var faults = FaultPlan()
        faults.serverErrors = 0.3
        harness.server.store.setFaults(faults)
        var stopped = try await harness.run(config)
        while stopped.deleted == 0 && faults.seed < 20 {
            faults.seed += 1
            harness.server.store.setFaults(faults)
            stopped = try await harness.run(config)
        }
        #expect(stopped.exitCode == 3)
        let first = stopped.deleted
        #expect(first > 0 && first < 40, "the first run should stop part-way through its 40 deletes: \(first)")
        #expect(harness.stored.count == 100 - first)
        #expect(FileManager.default.fileExists(atPath: harness.dir.path + "/sites.journal"))

        harness.server.store.setFaults(FaultPlan())
        let resumed = try await harness.run(config)
        #expect(resumed.exitCode == 0)
        #expect(resumed.deleted == 40, "the summary covers the whole import, the stopped run's deletes too")
        #expect(harness.stored.count == 60)
        #expect(!FileManager.default.fileExists(atPath: harness.dir.path + "/sites.journal"))
    }

    @Test("sync: a rejected row keeps its feature; a row whose remote id cannot be read stops all deletes")
    func rejectedRowsProtectTheirFeatures() async throws {
        let harness = try await UploadHarness(rows: 100)
        _ = try await harness.run(harness.config())
        var text = sitesCSV(Array(1...99))
        text = text.replacingOccurrences(of: "S5,Site 5,-37.5", with: "S5,Site 5,123.5")
        harness.dir.write("sites.csv", text)
        let config = harness.config(mode: .sync)
        let summary = try await harness.run(config)
        #expect(summary.exitCode == 1)
        #expect(summary.deleted == 1)
        #expect(harness.labels()["S5"] == "Site 5")
        #expect(harness.labels()["S100"] == nil)

        // The report keeps a rejected row's id as the file has it (" S6 "); the feature stored
        // under the value sent ("S6") is still that row's.
        text = sitesCSV(Array(1...99)).replacingOccurrences(of: "S6,Site 6,-37", with: "\" S6 \",Site 6,x-37")
        harness.dir.write("sites.csv", text)
        let padded = try await harness.run(config)
        #expect(padded.rejectedByCode == [.invalidNumber: 1])
        #expect(padded.deleted == 0)
        #expect(harness.labels()["S6"] == "Site 6")
        #expect(harness.dir.read("sites.rejected.csv").contains(",\" S6 \",Site 6,x-37"))

        harness.dir.write("sites.csv", sitesCSV(Array(1...90)) + "S91,\"Site 91,1,2,shop,91\n")
        let blocked = try await harness.run(config)
        #expect(blocked.exitCode == 3)
        #expect(blocked.abortReason?.message.contains("could not be read far enough to know their remote id") == true)
        #expect(harness.stored.count == 99)
    }

    @Test("update: only the mapped properties of existing features change; unknown remote ids are rejected")
    func update() async throws {
        let harness = try await UploadHarness(rows: 20)
        _ = try await harness.run(harness.config())
        let before = harness.stored.first { $0["ext_id"]?.string == "S3" }!
        harness.dir.write("sites.csv", "id,kind\nS3,depot\nS4,depot\nS999,depot\nS5,shop\n")
        var config = harness.config(mode: .update)
        config.properties.label = nil
        config.properties.fields = [.init(slug: "kind", column: "kind")]
        let summary = try await harness.run(config)
        #expect(summary.exitCode == 1)
        #expect(summary.imported == 3)
        #expect(summary.updated == 2)
        #expect(summary.unchanged == 1)
        #expect(summary.rejectedByCode == [.unknownRemoteId: 1])
        #expect(
            harness.rejectedLines() == [
                #"4,unknown_remote_id,,"the map has no feature with remote id ""S999""; an update changes existing features only",S999,depot"#
            ])
        #expect(harness.stored.count == 20)
        let after = harness.stored.first { $0["ext_id"]?.string == "S3" }!
        #expect(after["kind"]?.string == "depot")
        #expect(after["label"] == before["label"])
        #expect(after["score"] == before["score"])
        #expect(after.longitude == before.longitude && after.latitude == before.latitude)

        // With coordinate columns, an update moves the feature; an empty pair leaves it in place.
        harness.dir.write("sites.csv", "id,lat,lon,kind\nS3,10.5,20.5,depot\nS4,,,shop\n")
        let moved = try await harness.run(config)
        #expect(moved.exitCode == 0)
        let s3 = harness.stored.first { $0["ext_id"]?.string == "S3" }!
        #expect(s3.longitude == 20.5 && s3.latitude == 10.5)
        let s4 = harness.stored.first { $0["ext_id"]?.string == "S4" }!
        #expect(s4["kind"]?.string == "shop")
        #expect(s4.latitude == Double(4 % 160) / 2 - 40)
    }

    @Test("a nightly sync of an unchanged 100,000-row file sends no write request", .timeLimit(minutes(3)))
    func nightlySyncOfAnUnchangedFile() async throws {
        let harness = try await UploadHarness(rows: 100_000)
        let first = try await harness.run(harness.config(mode: .sync, batchSize: 1000))
        // A batch whose answer came too late is sent again and counts as updated (under a
        // sanitizer, say): every row is on the map either way.
        #expect(first.imported == 100_000 && first.created + first.updated == 100_000)
        let writes = harness.writes
        let started = ContinuousClock.now
        let nightly = try await harness.run(harness.config(mode: .sync, batchSize: 1000))
        print("unchanged 100,000-row sync (debug build): \((ContinuousClock.now - started).seconds) s")
        #expect(nightly.exitCode == 0)
        #expect(nightly.unchanged == 100_000)
        #expect(nightly.requests == 0)
        #expect(harness.writes == writes)
    }
}
