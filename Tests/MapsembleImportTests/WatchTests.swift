import Foundation
import MapsembleJSON
import MapsembleSandbox
import Testing

@testable import MapsembleImport

/// A drop folder, a sandbox with one map, and a pipeline for it.
private struct DropHarness {
    static let mapID = "7e57ab1e-0000-4000-8000-0000000000dd"
    let server: SandboxServer
    let dir = TempDir()
    let drop: String
    let pipeline: String
    let environment = ["MAPSEMBLE_API_KEY": "drop-key"]

    init() async throws {
        _ = ignoreSIGPIPE
        var config = SandboxConfig(maps: [
            .init(id: Self.mapID, label: "Drops", plan: .pro, fields: [.init(slug: "ext_id")], remoteField: "ext_id")
        ])
        config.apiKeys = ["drop-key": "sandbox"]
        config.recordWrites = true
        server = try await SandboxServer(config: config)
        drop = dir.path + "/drop"
        try FileManager.default.createDirectory(atPath: drop, withIntermediateDirectories: true)
        pipeline = dir.write(
            "pipeline.yml",
            """
            target: { api_url: "\(server.url)", map_id: \(Self.mapID) }
            properties: { label: name, remote_id: id }
            upload: { batch_size: 100, concurrency: 2 }
            """)
    }

    static func rows(_ range: ClosedRange<Int>, prefix: String = "D") -> String {
        "id,name,lat,lon\n"
            + range.map { "\(prefix)\($0),Site \($0),\(Double($0 % 80) + 0.5),\(Double($0 % 170) + 0.25)\n" }.joined()
    }

    func write(_ name: String, _ text: String) {
        FileManager.default.createFile(atPath: drop + "/" + name, contents: Data(text.utf8))
    }

    func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: drop + "/" + relative) }

    func summary(_ relative: String) -> JSONValue? {
        FileManager.default.contents(atPath: drop + "/" + relative).flatMap { JSONParser.parse([UInt8]($0)) }
    }

    var storedCount: Int { server.store.features(map: Self.mapID).count }
}

@Suite("watch: drop folders (the built binary)", .serialized)
struct WatchTests {
    @Test("--once: complete files go to processed/ or failed/ with their reports; hidden and fresh files stay")
    func once() async throws {
        let harness = try await DropHarness()
        harness.write("a.csv", DropHarness.rows(1...150))
        harness.write("b.csv", DropHarness.rows(151...160))
        harness.write("bad.csv", "x,y\n1,2\n")
        harness.write(".c.csv.part", DropHarness.rows(1...5))
        harness.write("notes.txt", "not a data file")
        // A sanitizer slows the binary's start: fresh.csv must still be fresh when it looks.
        let settle = underSanitizer ? 8 : 1
        try await Task.sleep(for: .milliseconds(settle * 1000 + 200))
        harness.write("fresh.csv", DropHarness.rows(200...210))
        let result = try runCLI(
            ["watch", harness.drop, harness.pipeline, "--once", "--settle-seconds", String(settle)],
            environment: harness.environment)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(harness.exists("processed/a.csv") && harness.exists("processed/a.summary.json"))
        #expect(harness.exists("processed/a.rejected.csv"))
        #expect(harness.summary("processed/a.summary.json")?["imported"]?.integer == 150)
        #expect(harness.exists("processed/b.csv"))
        #expect(harness.exists("failed/bad.csv"))
        let error = try String(contentsOfFile: harness.drop + "/failed/bad.error.txt", encoding: .utf8)
        #expect(
            error.contains("the header does not have 2 of the columns the pipeline maps: \"name\" (properties.label)"))
        #expect(harness.exists(".c.csv.part") && harness.exists("notes.txt") && harness.exists("fresh.csv"))
        #expect(harness.storedCount == 160)
        #expect(result.stderr.contains("a.csv: moved with its report to processed/"))

        // The same name dropped again the next night: both reports are kept.
        harness.write("b.csv", DropHarness.rows(151...165))
        try await Task.sleep(for: .milliseconds(1100))
        let next = try runCLI(
            ["watch", harness.drop, harness.pipeline, "--once", "--settle-seconds", "1", "--pattern", "b.csv"],
            environment: harness.environment)
        #expect(next.status == 0, "\(next.stderr)")
        let processed = try FileManager.default.contentsOfDirectory(atPath: harness.drop + "/processed")
        let stamped = processed.filter { $0.hasPrefix("b.") && $0.hasSuffix("Z.csv") }
        #expect(stamped.count == 1, "\(processed)")
        #expect(processed.contains { $0.hasPrefix("b.") && $0.hasSuffix("Z.summary.json") })
        #expect(harness.storedCount == 165)
    }

    @Test(
        "a file written slowly in pieces is taken only once complete; a second watcher is refused",
        .timeLimit(minutes(1)))
    func slowWriterAndLock() async throws {
        let harness = try await DropHarness()
        let watcher = try startCLI(
            ["watch", harness.drop, harness.pipeline, "--settle-seconds", "2.5", "--interval", "0.2"],
            environment: harness.environment)
        defer { if watcher.isRunning { kill(watcher.processIdentifier, SIGKILL) } }
        try await Task.sleep(for: .milliseconds(500))

        let second = try runCLI(["watch", harness.drop, harness.pipeline, "--once"], environment: harness.environment)
        #expect(second.status == 2)
        #expect(
            second.stderr.contains(
                "another mapsemble-import watch is working on this folder (pid \(watcher.processIdentifier))"))

        let text = DropHarness.rows(1...400)
        let bytes = Array(text.utf8)
        let path = harness.drop + "/slow.csv"
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        let piece = bytes.count / 8 + 1
        // The watcher waits 2.5 s of quiet; the pieces come 0.25 s apart. A machine too busy to keep
        // that pace (a gap past 2.5 s) makes the run say nothing either way.
        var lastWrite = ContinuousClock.now
        var longestGap = Duration.zero
        for start in stride(from: 0, to: bytes.count, by: piece) {
            handle.write(Data(bytes[start..<min(start + piece, bytes.count)]))
            longestGap = max(longestGap, ContinuousClock.now - lastWrite)
            lastWrite = ContinuousClock.now
            try await Task.sleep(for: .milliseconds(250))
            // The sleep itself may overrun on a busy machine: count it as a gap too.
            if longestGap < .milliseconds(2500) && ContinuousClock.now - lastWrite < .milliseconds(2500) {
                #expect(!harness.exists("processed/slow.csv"), "taken before it was complete")
            }
        }
        try handle.close()
        for _ in 0..<100 where !harness.exists("processed/slow.csv") { try await Task.sleep(for: .milliseconds(200)) }
        if longestGap < .milliseconds(2500) {
            #expect(harness.summary("processed/slow.summary.json")?["rows_read"]?.integer == 400)
            #expect(harness.storedCount == 400)
            #expect(harness.server.store.writeLog.count == 4)
        } else {
            print("watch slow writer: a gap of \(longestGap) between pieces; nothing to conclude")
        }

        kill(watcher.processIdentifier, SIGINT)
        watcher.waitUntilExit()
        #expect(watcher.terminationStatus == 130)
    }

    @Test("a run that aborts (exit 3) moves to failed/ with its report and its journal")
    func abortedRunMovesWithItsJournal() async throws {
        let harness = try await DropHarness()
        harness.write("x.csv", DropHarness.rows(1...50) + "D51,Site 51,95.5,1.25\n")
        try await Task.sleep(for: .milliseconds(1100))
        let result = try runCLI(
            ["watch", harness.drop, harness.pipeline, "--once", "--settle-seconds", "1", "--max-rejects", "0"],
            environment: harness.environment)
        #expect(result.status == 3, "\(result.stderr)")
        #expect(harness.exists("failed/x.csv") && harness.exists("failed/x.summary.json"))
        #expect(harness.exists("failed/x.journal") && harness.exists("failed/x.rejected.csv"))
        #expect(!harness.exists(".mapsemble-import/x.journal"))
        #expect(harness.summary("failed/x.summary.json")?["status"]?.string == "aborted")
    }

    @Test("--marker: a file is taken once its NAME.done is there; the marker goes")
    func marker() async throws {
        let harness = try await DropHarness()
        harness.write("m.csv", DropHarness.rows(1...20))
        let arguments = ["watch", harness.drop, harness.pipeline, "--once", "--marker"]
        #expect(try runCLI(arguments, environment: harness.environment).status == 0)
        #expect(harness.exists("m.csv"))
        harness.write("m.csv.done", "")
        #expect(try runCLI(arguments, environment: harness.environment).status == 0)
        #expect(harness.exists("processed/m.csv"))
        #expect(!harness.exists("m.csv.done"))
        #expect(harness.storedCount == 20)
    }

    @Test("a crash between the import and the move: the restart moves the file without importing it again")
    func crashBeforeMove() async throws {
        let harness = try await DropHarness()
        harness.write("late.csv", DropHarness.rows(1...30))
        try await Task.sleep(for: .milliseconds(1100))
        do {
            let folder = try DropFolder(path: harness.drop, routes: [], settleSeconds: 1, marker: false)
            folder.noteOutcome(0, of: "late.csv")
        }
        let result = try runCLI(
            ["watch", harness.drop, harness.pipeline, "--once", "--settle-seconds", "1"],
            environment: harness.environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("late.csv: imported before the watcher stopped (exit 0); moving it"))
        #expect(harness.exists("processed/late.csv"))
        #expect(harness.server.store.writeLog.isEmpty)
        // A note for another version of the file (other size) is not trusted: that one is imported.
        harness.write("late.csv", DropHarness.rows(1...30))
        do {
            let folder = try DropFolder(path: harness.drop, routes: [], settleSeconds: 1, marker: false)
            folder.noteOutcome(0, of: "late.csv")
        }
        harness.write("late.csv", DropHarness.rows(1...31))
        try await Task.sleep(for: .milliseconds(1100))
        let again = try runCLI(
            ["watch", harness.drop, harness.pipeline, "--once", "--settle-seconds", "1"],
            environment: harness.environment)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(harness.storedCount == 31)
    }

    @Test("kill -9 of the watcher mid-file: the restart resumes the file from its journal", .timeLimit(minutes(2)))
    func killedWatcherResumes() async throws {
        let harness = try await DropHarness()
        harness.write("big.csv", DropHarness.rows(1...20_000))
        try await Task.sleep(for: .milliseconds(1100))
        let watcher = try startCLI(
            ["watch", harness.drop, harness.pipeline, "--settle-seconds", "1", "--interval", "0.2"],
            environment: harness.environment)
        let journal = harness.drop + "/.mapsemble-import/big.journal"
        for _ in 0..<200 where harness.server.store.writeLog.count < 40 { try await Task.sleep(for: .milliseconds(25)) }
        kill(watcher.processIdentifier, SIGKILL)
        watcher.waitUntilExit()
        let settled = try #require(
            FileManager.default.contents(atPath: journal).flatMap { ResumeJournal.read([UInt8]($0)) }?.1)
        #expect(!settled.isEmpty)
        let mark = harness.server.store.writeLog.count
        let result = try runCLI(
            ["watch", harness.drop, harness.pipeline, "--once", "--settle-seconds", "1"],
            environment: harness.environment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("resuming the unfinished run"))
        let resent = harness.server.store.writeLog[mark...].flatMap(\.remoteIDs).filter {
            settled.contains(Int($0.dropFirst())! + 1)
        }
        #expect(resent.isEmpty)
        #expect(harness.summary("processed/big.summary.json")?["rows_read"]?.integer == 20_000)
        #expect(harness.storedCount == 20_000)
    }
}
