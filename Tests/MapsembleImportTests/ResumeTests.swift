import Foundation
import MapsembleJSON
import MapsembleMapView
import MapsembleSandbox
import Testing

@testable import MapsembleImport

/// Remote ids of the rows a journal file says were settled, given each id's input line.
private func settledIDs(journal path: String, lineOf: [String: Int]) -> Set<String> {
    guard let bytes = FileManager.default.contents(atPath: path),
        let (_, settled, _) = ResumeJournal.read([UInt8](bytes))
    else { return [] }
    return Set(lineOf.filter { settled.contains($0.value) }.keys)
}

@Suite("Resume journal", .serialized)
struct ResumeTests {
    @Test(
        "a run stopped by the plan limit resumes after the upgrade: nothing settled is sent again, the report covers the file"
    )
    func resumeAfterPlanLimit() async throws {
        var faults = FaultPlan()
        faults.hiddenFieldOptions = true
        let harness = try await UploadHarness(
            rows: 250, plan: .free, faults: faults, kindFor: { $0 == 17 || $0 == 64 ? "castle" : "shop" },
            configure: { $0.recordWrites = true })
        let config = harness.config(batchSize: 50, concurrency: 1)
        let first = try await harness.run(config)
        // 98 of the first 100 rows stored, 2 refused; then S101 and S102 fill the free plan's 100.
        #expect(first.exitCode == 3)
        #expect(first.imported == 100)
        let journal = harness.dir.path + "/sites.journal"
        #expect(first.journal == journal)
        let lineOf = Dictionary(uniqueKeysWithValues: (1...250).map { ("S\($0)", $0 + 1) })
        let settled = settledIDs(journal: journal, lineOf: lineOf)
        #expect(settled == Set((1...102).map { "S\($0)" }))
        // A crash while writing leaves half a line: it is ignored.
        let handle = try #require(FileHandle(forWritingAtPath: journal))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"spans":[[102,2"#.utf8))
        try handle.close()

        harness.server.store.setPlan(.pro, map: UploadHarness.mapID)
        let mark = harness.server.store.writeLog.count
        let second = try await harness.run(config)
        #expect(second.exitCode == 1)
        #expect(second.rowsRead == 250)
        #expect(second.imported == 248)
        #expect(second.resumedRows == 100)
        #expect(second.created == 248)
        #expect(second.rejectedByCode == [.serverRejected: 2])
        #expect(second.notSent == 0)
        let resent = harness.server.store.writeLog[mark...].flatMap(\.remoteIDs).filter(settled.contains)
        #expect(resent.isEmpty, "sent again: \(resent.prefix(5))")
        #expect(harness.storedIDs.count == 248)
        #expect(harness.storedIDs.values.allSatisfy { $0 == 1 })
        // The server's refusals of the first run are in the report of the whole file, in place.
        let lines = harness.rejectedLines()
        #expect(lines.map { $0.split(separator: ",")[0] } == ["18", "65"])
        #expect(lines[0].contains("properties.kind"))
        #expect(lines[0].hasSuffix("S17,Site 17,-31.5,-66.5,castle,17"))
        // Completed: nothing left to resume.
        #expect(!FileManager.default.fileExists(atPath: journal))
        #expect(second.journal == nil)
    }

    @Test("a changed input or pipeline is named and refused; --fresh starts over")
    func changedInputOrPipeline() async throws {
        let harness = try await UploadHarness(rows: 150, plan: .free)
        var config = harness.config(batchSize: 50, concurrency: 1)
        #expect(try await harness.run(config).exitCode == 3)

        var relabelled = config
        relabelled.properties.label = "id"
        await #expect {
            try await harness.run(relabelled)
        } throws: { error in
            guard let error = error as? ImportError else { return false }
            return error.exitCode == 2 && error.message.contains(#"properties.label is "id" now and was "name""#)
                && error.message.contains("--fresh")
        }
        // Another batch size and concurrency are fine (rows are named by line, not by batch).
        config.upload.batchSize = 30
        config.upload.concurrency = 2

        let original = try String(contentsOfFile: harness.input, encoding: .utf8)
        try (original + "S151,Site 151,1,2,shop,151\n").write(toFile: harness.input, atomically: false, encoding: .utf8)
        await #expect {
            try await harness.run(config)
        } throws: { error in
            (error as? ImportError)?.message.contains("bytes now and was") == true
        }
        // Same size, other content.
        try original.replacingOccurrences(of: "Site 149", with: "Site 148").write(
            toFile: harness.input, atomically: false, encoding: .utf8)
        await #expect {
            try await harness.run(config)
        } throws: { error in
            (error as? ImportError)?.message.contains("64 KiB changed since") == true
        }

        harness.server.store.setPlan(.pro, map: UploadHarness.mapID)
        var options = RunOptions()
        options.dryRun = false
        options.fresh = true
        let fresh = try await Pipeline(config: config, options: options).run()
        #expect(fresh.exitCode == 0)
        #expect(fresh.resumedRows == 0)
        #expect(fresh.imported == 150)
        #expect(fresh.updated == 100)
        #expect(fresh.created == 50)
    }

    @Test("Settled: lines inside a span are settled, lines between spans are not")
    func settledSpans() throws {
        let text = """
            {"mapsemble_import_journal":1,"size":1,"modified_ns":"1","head":"a","tail":"b","pipeline":{}}
            {"spans":[[40,60],[2,10]],"refused":[[5,"server_rejected","no"]],"created":1,"updated":2,"deleted":0}
            {"spans":[[61,61]],"refused":[],"created":0,"updated":1,"deleted":0}

            """
        let (_, settled, whole) = try #require(ResumeJournal.read(Array(text.utf8)))
        #expect(whole == text.utf8.count)
        #expect([1, 11, 39, 62].allSatisfy { !settled.contains($0) })
        #expect([2, 5, 10, 40, 50, 60, 61].allSatisfy(settled.contains))
        #expect(settled.refused[5]?.code == .serverRejected)
        #expect(settled.updated == 3)
        #expect(settled.answers == 2)
    }
}

@Suite("Resume journal: kill -9 and resume")
struct KillResumeTests {
    static let mapID = "7e57ab1e-0000-4000-8000-0000000000cc"
    static let rows = 50_000

    /// 50,000 rows, some with a line break inside a quoted name (lines and rows differ), every
    /// 997th with a latitude out of range.
    static func input() -> (text: String, lineOf: [String: Int], expected: [String: (String, Double, Double)]) {
        var text = "id,name,category,lat,lon\n"
        var line = 2
        var lineOf: [String: Int] = [:]
        var expected: [String: (String, Double, Double)] = [:]
        for row in 1...rows {
            let id = "R\(row)"
            let name = row % 250 == 0 ? "Site \(row)\nannex" : "Site \(row)"
            let lat = row % 997 == 0 ? 95.5 : Double(row % 170) - 85 + 0.25
            let lon = Double(row % 359) - 179 + 0.5
            text += "\(id),\"\(name)\",c\(row % 7),\(lat),\(lon)\n"
            lineOf[id] = line
            line += row % 250 == 0 ? 2 : 1
            if row % 997 != 0 { expected[id] = (name, lon, lat) }
        }
        return (text, lineOf, expected)
    }

    @Test(
        "20 kill -9 at random points and resumes: the map ends equal to the input; no acknowledged batch is sent again",
        .timeLimit(minutes(5)))
    func killAndResume() async throws {
        _ = ignoreSIGPIPE
        var sandbox = SandboxConfig(maps: [
            .init(
                id: Self.mapID, label: "Sites", plan: .pro,
                fields: [.init(slug: "ext_id"), .init(slug: "category")], remoteField: "ext_id")
        ])
        sandbox.apiKeys = ["kill-key": "sandbox"]
        sandbox.recordWrites = true
        // Each answer takes 20 ms, so the 2 ms polling below can lag (a loaded machine, a
        // sanitizer) without many more requests getting through before the kill.
        sandbox.faults.latencyMilliseconds = 20
        let server = try await SandboxServer(config: sandbox)
        defer { Task { await server.stop() } }
        let dir = TempDir()
        let (text, lineOf, expected) = Self.input()
        let input = dir.write("sites.csv", text)
        let pipeline = dir.write(
            "pipeline.yml",
            """
            source: { path: \(input) }
            target: { api_url: "\(server.url)", map_id: \(Self.mapID) }
            properties:
              label: name
              remote_id: id
              fields: { category: category }
            upload: { batch_size: 50, concurrency: 4, timeout_s: 10 }
            report: { dir: \(dir.path)/reports }
            """)
        let journal = dir.path + "/reports/sites.journal"
        let environment = ["MAPSEMBLE_API_KEY": "kill-key"]

        // Seeded, so a failing sequence of kill times can be replayed (KILL_SEED).
        // The kill loop polls on a thread of its own (`onThread`), so that tests running beside it
        // on the cooperative pool cannot delay its kills.
        let (kills, inFlightResent, acknowledgedResent) = try await onThread {
            var generator = SeededGenerator(
                state: UInt64(ProcessInfo.processInfo.environment["KILL_SEED"] ?? "") ?? 20_261_129)
            var kills = 0
            var inFlightResent = 0
            var acknowledgedResent: [String] = []
            var sentOnce: Set<String> = []
            for _ in 0..<20 {
                let settled = settledIDs(journal: journal, lineOf: lineOf)
                let mark = server.store.writeLog.count
                let process = try startCLI(["run", pipeline, "-q"], environment: environment)
                // Killed after 1 to 10 more write requests reached the server, plus 0-25 ms: a point
                // anywhere in a run (before, during or after a request; each answer takes 20 ms), and
                // never after the end. (With 3 ms answers and 0-40 ms, four workers sent some 50 more
                // requests per cycle on a fast machine, and the import finished after 9 kills.)
                let target = mark + 1 + Int(generator.next() % 10)
                while process.isRunning && server.store.writeLog.count < target { usleep(2_000) }
                usleep(UInt32(generator.next() % 26) * 1_000)
                if process.isRunning {
                    kill(process.processIdentifier, SIGKILL)
                    kills += 1
                }
                process.waitUntilExit()
                for record in server.store.writeLog[mark...] {
                    for id in record.remoteIDs {
                        if settled.contains(id) { acknowledgedResent.append(id) }
                        if !sentOnce.insert(id).inserted && !settled.contains(id) { inFlightResent += 1 }
                    }
                }
                if process.terminationReason == .exit { break }
            }
            return (kills, inFlightResent, acknowledgedResent)
        }
        var acknowledged = acknowledgedResent
        let settled = settledIDs(journal: journal, lineOf: lineOf)
        let mark = server.store.writeLog.count
        let last = try runCLI(["run", pipeline], environment: environment)
        for record in server.store.writeLog[mark...] {
            acknowledged += record.remoteIDs.filter(settled.contains)
        }
        print(
            "kill and resume: \(kills) kills, \(server.store.writeLog.count) write requests, \(inFlightResent) rows of batches in flight at a kill sent again, \(acknowledged.count) acknowledged rows sent again"
        )
        #expect(kills >= 15, "the runs should be killed part-way, not finish: \(kills) kills")
        #expect(last.status == 1, "\(last.stderr)")
        #expect(acknowledged.isEmpty, "sent again after being acknowledged: \(acknowledged.prefix(5))")

        let summary = try #require(
            JSONParser.parse(Array(dir.read("reports/sites.summary.json").utf8)), "no summary")
        let bad = Self.rows / 997
        #expect(summary["rows_read"]?.integer == Self.rows)
        #expect(summary["imported"]?.integer == Self.rows - bad)
        #expect(summary["rejected"]?.integer == bad)
        #expect(summary["not_sent"]?.integer == 0)
        let rejected = dir.read("reports/sites.rejected.csv").split(separator: "\n").dropFirst()
        #expect(rejected.count == bad)
        // Each bad row once, in input order (its latitude is out of range, or it reads as swapped).
        #expect(rejected.map { Int($0.split(separator: ",")[0]) } == (1...bad).map { lineOf["R\($0 * 997)"] })
        #expect(!FileManager.default.fileExists(atPath: journal))

        // The map holds exactly the input's valid rows, each once, with its values.
        let stored = server.store.features(map: Self.mapID)
        #expect(stored.count == expected.count)
        var seen: Set<String> = []
        var wrong: [String] = []
        for feature in stored {
            let id = feature["ext_id"]?.string ?? "?"
            guard seen.insert(id).inserted, let (name, lon, lat) = expected[id], feature["label"]?.string == name,
                feature.longitude == lon, feature.latitude == lat
            else {
                wrong.append(id)
                continue
            }
        }
        #expect(wrong.isEmpty, "features that are not the input's: \(wrong.prefix(5))")
        #expect(seen.count == expected.count)
    }
}

/// Starts the built binary without waiting for it; its output is discarded.
func startCLI(_ arguments: [String], environment: [String: String]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    process.environment = env
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}
