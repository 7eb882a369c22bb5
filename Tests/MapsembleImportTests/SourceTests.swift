import Foundation
import MapsembleSandbox
import Testing
import ZIPFoundation

@testable import MapsembleImport

#if canImport(Glibc)
    import Glibc
#endif

/// An HTTP server on loopback whose every answer the test writes: for redirects to another port,
/// bodies cut short and 5xx. Each connection is one request, answered by `answer` with the raw
/// bytes to send before closing. The request heads it got are kept.
final class ScriptedServer: LoopbackServer, @unchecked Sendable {
    private let lock = NSLock()
    private var heads: [String] = []
    private let answer: @Sendable (String, Int) -> [UInt8]

    var requests: [String] { lock.withLock { heads } }

    private let stall: UInt32

    /// - Parameter stall: seconds to wait after the answer before closing the connection.
    init(answer: @escaping @Sendable (_ head: String, _ index: Int) -> [UInt8], stall: UInt32 = 0) throws {
        self.answer = answer
        self.stall = stall
        try super.init()
        start()
    }

    override func handle(_ client: Int32) {
        var head: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !head.ends(with: Array("\r\n\r\n".utf8)) {
            let count = read(client, &buffer, buffer.count)
            guard count > 0 else { break }
            head += buffer[..<count]
        }
        let text = String(decoding: head, as: UTF8.self)
        let index = lock.withLock {
            heads.append(text)
            return heads.count - 1
        }
        let reply = answer(text, index)
        reply.withUnsafeBytes { _ = write(client, $0.baseAddress, $0.count) }
        if stall > 0 {
            let seconds = stall
            Thread { [client] in
                sleep(seconds)
                close(client)
            }.start()
        } else {
            close(client)
        }
    }

    /// A complete answer.
    static func reply(_ status: String, headers: [String] = [], body: String = "") -> [UInt8] {
        let lines = ["HTTP/1.1 \(status)", "Content-Length: \(body.utf8.count)", "Connection: close"] + headers
        return Array((lines.joined(separator: "\r\n") + "\r\n\r\n" + body).utf8)
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}

/// Sources where the data lives: a URL (with change detection, retries, redirects that keep the
/// headers home, bodies cut short), a `.zip`, `.ods` and `.xls`, over real HTTP on loopback.
@Suite("Sources: URLs with change detection, ZIP, ODS and XLS")
struct SourceTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/sheets").standardized.path

    /// A sandbox serving `files` at /files/NAME, with one map whose remote field is `id`.
    static func sandbox(files: String) async throws -> SandboxServer {
        _ = ignoreSIGPIPE
        var config = SandboxConfig(maps: [
            .init(
                id: "50c0ce00-0000-4000-8000-000000000001", label: "Stores",
                fields: [.init(slug: "id"), .init(slug: "name")], remoteField: "id")
        ])
        config.apiKeys = ["source-key": "sandbox"]
        config.serveDirectory = files
        config.recordWrites = true
        return try await SandboxServer(config: config)
    }

    static func pipeline(_ source: String, dir: TempDir, extra: String = "") -> String {
        dir.write(
            "pipeline.yml",
            """
            source:
              path: "\(source)"
              headers: { X-Source-Token: "${SOURCE_TOKEN}" }
            \(extra)
            target: { map_id: 50c0ce00-0000-4000-8000-000000000001, mode: upsert }
            coordinates: { longitude: lon, latitude: lat }
            properties: { label: "{name}", remote_id: id, remote_field: id, fields: { name: name } }
            report: { dir: reports }

            """)
    }

    static func environment(_ server: SandboxServer, state: String) -> [String: String] {
        [
            "MAPSEMBLE_API_KEY": "source-key", "MAPSEMBLE_API_URL": server.url, "MAPSEMBLE_STATE_DIR": state,
            "SOURCE_TOKEN": "token-4f1c9e",
        ]
    }

    /// `DIR/files/` holding `stores.csv` of `rows` rows; returns the folder.
    static func folder(storing rows: Int, in dir: TempDir) throws -> String {
        let files = dir.path + "/files"
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        try Data(Self.stores(rows).utf8).write(to: URL(fileURLWithPath: files + "/stores.csv"))
        return files
    }

    static func stores(_ rows: Int, name: String = "Store") -> String {
        "id,name,lon,lat\n" + (1...rows).map { "S\($0),\(name) \($0),\(2 + Double($0) / 100),48.5\n" }.joined()
    }

    @Test(
        "a cron run imports a URL; the next one is unchanged (304, no body, no write, exit 0); a changed source imports again; the same through watch --once"
    )
    func changeDetection() async throws {
        let dir = TempDir()
        let files = try Self.folder(storing: 30, in: dir)
        let server = try await Self.sandbox(files: files)
        let pipeline = Self.pipeline(server.url + "/files/stores.csv", dir: dir)
        let environment = Self.environment(server, state: dir.path + "/state")
        let mapID = "50c0ce00-0000-4000-8000-000000000001"

        let first = try await runCLIAsync(["run", pipeline], environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(server.store.features(map: mapID).count == 30)
        let writes = server.store.requestCounts.writes
        #expect(server.store.fileCounts.bodies == 1)

        let second = try await runCLIAsync(["run", pipeline], environment: environment)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("304 Not Modified"), "\(second.stderr)")
        #expect(server.store.requestCounts.writes == writes)
        #expect(server.store.fileCounts.bodies == 1 && server.store.fileCounts.notModified == 1)
        let summary = dir.read("reports/stores.summary.json")
        #expect(summary.contains("\"status\": \"unchanged\""), "\(summary)")
        #expect(summary.contains("\"input\": \"\(server.url)/files/stores.csv\""))

        // Changed at the source: imported again (an update of one name, a new row).
        try Data((Self.stores(31)).replacingOccurrences(of: "Store 7,", with: "Shop 7,").utf8).write(
            to: URL(fileURLWithPath: files + "/stores.csv"))
        let third = try await runCLIAsync(["run", pipeline], environment: environment)
        #expect(third.status == 0, "\(third.stderr)")
        #expect(server.store.features(map: mapID).count == 31)
        #expect(server.store.fileCounts.bodies == 2)

        // watch --once: unchanged now, then a change is imported.
        let watchArguments = ["watch", server.url + "/files/stores.csv", pipeline, "--once"]
        let unchanged = try await runCLIAsync(watchArguments, environment: environment)
        #expect(unchanged.status == 0, "\(unchanged.stderr)")
        #expect(server.store.fileCounts.bodies == 2 && server.store.fileCounts.notModified == 2)
        try Data(Self.stores(32).utf8).write(to: URL(fileURLWithPath: files + "/stores.csv"))
        let changed = try await runCLIAsync(watchArguments, environment: environment)
        #expect(changed.status == 0, "\(changed.stderr)")
        #expect(server.store.features(map: mapID).count == 32)
        #expect(server.store.fileCounts.bodies == 3)

        // --fresh fetches whatever the validators say.
        let fresh = try await runCLIAsync(["run", pipeline, "--fresh"], environment: environment)
        #expect(fresh.status == 0, "\(fresh.stderr)")
        #expect(server.store.fileCounts.bodies == 4)
        // ... and keeps what it saw: the next run is unchanged.
        let afterFresh = try await runCLIAsync(["run", pipeline], environment: environment)
        #expect(afterFresh.status == 0 && afterFresh.stderr.contains("304 Not Modified"), "\(afterFresh.stderr)")
        #expect(server.store.fileCounts.bodies == 4)

        // The token the source needs and the API key went out, and are written nowhere.
        for artefact in try Self.files(under: dir.path) where !artefact.hasPrefix(files) {
            let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: artefact)), as: UTF8.self)
            #expect(!text.contains("token-4f1c9e") && !text.contains("source-key"), "\(artefact)")
        }
        for result in [first, second, third, unchanged, changed, fresh, afterFresh] {
            #expect(!(result.stdout + result.stderr).contains("token-4f1c9e"))
            #expect(!(result.stdout + result.stderr).contains("source-key"))
        }
        await server.stop()
    }

    @Test(
        "a URL import killed with -9 resumes from its journal: every row once on the map, only batches in flight at a kill sent twice; its temporary copy is cleaned up; then unchanged",
        .timeLimit(minutes(3)))
    func killedURLImportResumes() async throws {
        let dir = TempDir()
        let files = try Self.folder(storing: 3000, in: dir)
        let temporary = dir.path + "/tmp"
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        _ = ignoreSIGPIPE
        var config = SandboxConfig(maps: [
            .init(
                id: "50c0ce00-0000-4000-8000-000000000001", label: "Stores", plan: .pro,
                fields: [.init(slug: "id"), .init(slug: "name")], remoteField: "id")
        ])
        config.apiKeys = ["source-key": "sandbox"]
        config.serveDirectory = files
        config.recordWrites = true
        config.faults.latencyMilliseconds = 20
        let server = try await SandboxServer(config: config)
        let pipeline = Self.pipeline(
            server.url + "/files/stores.csv", dir: dir, extra: "upload: { batch_size: 50, concurrency: 2 }")
        let environment = Self.environment(server, state: dir.path + "/state").merging(["TMPDIR": temporary]) { $1 }
        let kills = try await onThread {
            var kills = 0
            for _ in 0..<3 {
                let mark = server.store.writeLog.count
                let process = try startCLI(["run", pipeline, "-q"], environment: environment)
                while process.isRunning && server.store.writeLog.count < mark + 5 { usleep(2_000) }
                if process.isRunning {
                    kill(process.processIdentifier, SIGKILL)
                    kills += 1
                }
                process.waitUntilExit()
            }
            return kills
        }
        #expect(kills == 3)
        // A killed run leaves its download behind; the next run removes it (each of the killed
        // runs removed the one before's).
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary).count == 1)
        let last = try await runCLIAsync(["run", pipeline], environment: environment)
        #expect(last.status == 0, "\(last.stderr)")
        #expect(last.stderr.contains("resuming the unfinished run"), "\(last.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary).isEmpty)
        let stored = server.store.features(map: "50c0ce00-0000-4000-8000-000000000001")
        #expect(stored.count == 3000)
        #expect(Set(stored.compactMap { $0["id"]?.string }).count == 3000)
        // Each row was written once or, when its batch was in flight at a kill, twice at most.
        let sent: Int = server.store.writeLog.reduce(0) { $0 + $1.remoteIDs.count }
        let most = 3000 + 3 * 2 * 50
        #expect(sent <= most, "\(sent) rows sent")
        let again = try await runCLIAsync(["run", pipeline], environment: environment)
        #expect(again.status == 0 && again.stderr.contains("304 Not Modified"), "\(again.stderr)")

        // A changed source, an import of it killed, then the source changed again: the unfinished
        // run cannot be resumed on the new body, so the next run starts over by itself.
        try Data(Self.stores(3000).replacingOccurrences(of: "Store ", with: "Shop ").utf8).write(
            to: URL(fileURLWithPath: files + "/stores.csv"))
        let killed = try await onThread {
            let mark = server.store.writeLog.count
            let process = try startCLI(["run", pipeline, "-q"], environment: environment)
            while process.isRunning && server.store.writeLog.count < mark + 5 { usleep(2_000) }
            let wasRunning = process.isRunning
            if wasRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            return wasRunning
        }
        #expect(killed)
        try Data(Self.stores(3000).replacingOccurrences(of: "Store ", with: "Depot ").utf8).write(
            to: URL(fileURLWithPath: files + "/stores.csv"))
        let restarted = try await runCLIAsync(["run", pipeline], environment: environment)
        #expect(restarted.status == 0, "\(restarted.stderr)")
        #expect(restarted.stderr.contains("the source changed since the unfinished run"), "\(restarted.stderr)")
        let labels = Set(
            server.store.features(map: "50c0ce00-0000-4000-8000-000000000001").compactMap { $0["label"]?.string })
        #expect(labels.count == 3000 && labels.allSatisfy { $0.hasPrefix("Depot ") })
        await server.stop()
    }

    static func files(under path: String) throws -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: path)
        var found: [String] = []
        while let name = enumerator?.nextObject() as? String {
            var directory: ObjCBool = false
            let full = path + "/" + name
            if FileManager.default.fileExists(atPath: full, isDirectory: &directory), !directory.boolValue {
                found.append(full)
            }
        }
        return found
    }

    @Test("Ctrl-C during a download stops it: exit 130, nothing sent", .timeLimit(minutes(1)))
    func interruptedDownload() async throws {
        let dir = TempDir()
        // Headers and a first part of the body, then nothing for 20 s.
        let slow = try ScriptedServer(
            answer: { _, _ in
                Array("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\nid,name,lon,lat\n".utf8)
            }, stall: 20)
        defer { slow.stop() }
        let pipeline = Self.pipeline(slow.url + "/stores.csv", dir: dir)
        let (status, seconds, stderr) = try await onThread {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["run", pipeline, "--dry-run"]
            process.environment = ProcessInfo.processInfo.environment.merging(["SOURCE_TOKEN": "t"]) { $1 }
            let err = Pipe()
            process.standardError = err
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            usleep(1_500_000)
            let start = Date()
            kill(process.processIdentifier, SIGINT)
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, Date().timeIntervalSince(start), text)
        }
        #expect(status == 130, "\(stderr)")
        #expect(seconds < 5, "took \(seconds) s to stop")
        #expect(stderr.contains("interrupted"), "\(stderr)")
    }

    @Test(
        "leftover temporary folders: a killed run's is removed; a live run's, a user's own folder and anything not a file are not"
    )
    func leftovers() throws {
        let dir = TempDir()
        let fm = FileManager.default
        // A killed run's folder: named as the tool names them, nobody holds its lock.
        let dead = dir.path + "/" + SourceFetcher.folderPrefix + "AbC123"
        try fm.createDirectory(atPath: dead, withIntermediateDirectories: true)
        fm.createFile(atPath: dead + "/stores.csv", contents: Data("x".utf8))
        // A live run's folder (locked), a user's folder of a similar name, and one holding a folder.
        let live = try SourceFetcher.temporaryFile(named: "live.csv")
        defer { SourceFetcher.discard(live) }
        let own = dir.path + "/mapsemble-import-master"
        try fm.createDirectory(atPath: own, withIntermediateDirectories: true)
        fm.createFile(atPath: own + "/README.md", contents: Data("x".utf8))
        let nested = dir.path + "/" + SourceFetcher.folderPrefix + "Zz9999"
        try fm.createDirectory(atPath: nested + "/inner", withIntermediateDirectories: true)
        SourceFetcher.removeLeftovers(in: dir.path)
        #expect(!fm.fileExists(atPath: dead))
        #expect(fm.fileExists(atPath: own + "/README.md"))
        #expect(fm.fileExists(atPath: nested + "/inner"))
        SourceFetcher.removeLeftovers(in: (live.folder as NSString).deletingLastPathComponent)
        #expect(fm.fileExists(atPath: live.path))
        // A share link's reports are named after the service and the link.
        let first = Pipeline.reportName(of: "https://docs.google.com/spreadsheets/d/abc/edit#gid=0")
        let second = Pipeline.reportName(of: "https://docs.google.com/spreadsheets/d/xyz/edit#gid=0")
        #expect(first.hasPrefix("google-sheets-") && second.hasPrefix("google-sheets-") && first != second)
        #expect(!first.contains("abc"))
    }

    @Test("a source without validators is compared by its content: the same bytes are unchanged")
    func contentHash() async throws {
        let dir = TempDir()
        let body = Self.stores(5)
        let source = try ScriptedServer { _, _ in ScriptedServer.reply("200 OK", body: body) }
        defer { source.stop() }
        let server = try await Self.sandbox(files: dir.path)
        let pipeline = Self.pipeline(source.url + "/export?token=abc", dir: dir)
        let environment = Self.environment(server, state: dir.path + "/state")
        let first = try await runCLIAsync(["run", pipeline], environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        let writes = server.store.requestCounts.writes
        let second = try await runCLIAsync(["run", pipeline], environment: environment)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("same 1"), "\(second.stderr)")
        #expect(server.store.requestCounts.writes == writes)
        // The query, which may hold a token, is not shown nor written.
        #expect(!(first.stderr + second.stderr).contains("token=abc"))
        for artefact in try Self.files(under: dir.path) where !artefact.hasSuffix("/pipeline.yml") {
            let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: artefact)), as: UTF8.self)
            #expect(!text.contains("token=abc"), "\(artefact)")
        }
        #expect(dir.read("reports/export.summary.json").contains("\"input\": \"\(source.url)/export?…\""))
        await server.stop()
    }

    @Test("a redirect to another port is followed without the source's headers; within the origin they go along")
    func redirects() async throws {
        let dir = TempDir()
        let body = Self.stores(3)
        let target = try ScriptedServer { _, _ in ScriptedServer.reply("200 OK", body: body) }
        defer { target.stop() }
        let origin = try ScriptedServer { head, _ in
            if head.hasPrefix("GET /start") { return ScriptedServer.reply("302 Found", headers: ["Location: /moved"]) }
            if head.hasPrefix("GET /plain") {
                return ScriptedServer.reply("302 Found", headers: ["Location: http://example.org/data.csv"])
            }
            return ScriptedServer.reply("301 Moved", headers: ["Location: \(target.url)/data.csv"])
        }
        defer { origin.stop() }
        let pipeline = Self.pipeline(origin.url + "/start", dir: dir)
        let result = try await runCLIAsync(
            ["run", pipeline, "--dry-run", "--output", dir.path + "/out.geojson"],
            environment: ["SOURCE_TOKEN": "token-4f1c9e", "MAPSEMBLE_STATE_DIR": dir.path + "/state"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(dir.read("out.geojson").contains("Store 3"))
        #expect(origin.requests.count == 2)
        #expect(origin.requests.allSatisfy { $0.contains("X-Source-Token: token-4f1c9e") })
        #expect(target.requests.count == 1)
        #expect(!target.requests[0].lowercased().contains("x-source-token"), "\(target.requests[0])")
        #expect(!target.requests[0].lowercased().contains("authorization"))
        // A hop to plain http:// elsewhere than this machine is refused.
        let plain = try await runCLIAsync(
            ["run", Self.pipeline(origin.url + "/plain", dir: dir), "--dry-run"], environment: ["SOURCE_TOKEN": "t"])
        #expect(plain.status == 2 && plain.stderr.contains("which is not https://"), "\(plain.stderr)")
        #expect(origin.requests.count == 3 && target.requests.count == 1)
    }

    @Test("a source that redirects (as a share link's export does) is still found unchanged: the validators follow")
    func conditionalAcrossRedirects() async throws {
        let dir = TempDir()
        let files = try Self.folder(storing: 6, in: dir)
        let server = try await Self.sandbox(files: files)
        let link = try ScriptedServer { _, _ in
            ScriptedServer.reply("302 Found", headers: ["Location: \(server.url)/files/stores.csv"])
        }
        defer { link.stop() }
        let pipeline = Self.pipeline(link.url + "/share/stores.csv", dir: dir)
        let environment = Self.environment(server, state: dir.path + "/state")
        let first = try await runCLIAsync(["run", pipeline], environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        let second = try await runCLIAsync(["run", pipeline], environment: environment)
        #expect(second.status == 0 && second.stderr.contains("304 Not Modified"), "\(second.stderr)")
        #expect(server.store.fileCounts.bodies == 1 && server.store.fileCounts.notModified == 1)
        #expect(link.requests.allSatisfy { $0.contains("X-Source-Token: token-4f1c9e") })
        await server.stop()
    }

    @Test("a body cut short is an error naming the URL and the byte offset, after the retries; nothing is imported")
    func cutShort() async throws {
        let dir = TempDir()
        let body = Self.stores(50)
        let cut = try ScriptedServer { _, _ in
            let whole = ScriptedServer.reply("200 OK", body: body)
            return Array(whole.prefix(whole.count - body.utf8.count + 700))
        }
        defer { cut.stop() }
        let server = try await Self.sandbox(files: dir.path)
        let pipeline = Self.pipeline(cut.url + "/stores.csv", dir: dir, extra: "upload: { max_retries: 2 }")
        let environment = Self.environment(server, state: dir.path + "/state")
        let result = try await runCLIAsync(["run", pipeline], environment: environment)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("\(cut.url)/stores.csv was cut short at byte 700"), "\(result.stderr)")
        #expect(cut.requests.count == 3)
        #expect(server.store.requestCounts.writes == 0)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/state/sources"))
        await server.stop()
    }

    @Test("5xx answers are retried under the policy; a source that stays down is exit 2 with its status")
    func serverErrors() async throws {
        let dir = TempDir()
        let body = Self.stores(4)
        let flaky = try ScriptedServer { _, index in
            index < 2
                ? ScriptedServer.reply("503 Service Unavailable", headers: ["Retry-After: 0"])
                : ScriptedServer.reply("200 OK", body: body)
        }
        defer { flaky.stop() }
        let pipeline = Self.pipeline(flaky.url + "/stores.csv", dir: dir)
        let output = dir.path + "/out.geojson"
        let recovered = try await runCLIAsync(
            ["run", pipeline, "--dry-run", "--output", output], environment: ["SOURCE_TOKEN": "t"])
        #expect(recovered.status == 0, "\(recovered.stderr)")
        #expect(flaky.requests.count == 3)
        #expect(recovered.stderr.contains("HTTP 503"))

        let down = try ScriptedServer { _, _ in
            ScriptedServer.reply("500 Internal Server Error", headers: ["Retry-After: 0"])
        }
        defer { down.stop() }
        let failing = Self.pipeline(down.url + "/stores.csv", dir: dir, extra: "upload: { max_retries: 1 }")
        let failed = try await runCLIAsync(["run", failing, "--dry-run"], environment: ["SOURCE_TOKEN": "t"])
        #expect(failed.status == 2)
        #expect(
            failed.stderr.contains("cannot download \(down.url)/stores.csv: HTTP 500 after 2 attempts"),
            "\(failed.stderr)")
        // Not found is not retried.
        let missing = try ScriptedServer { _, _ in ScriptedServer.reply("404 Not Found") }
        defer { missing.stop() }
        let gone = try await runCLIAsync(
            ["run", Self.pipeline(missing.url + "/x.csv", dir: dir), "--dry-run"], environment: ["SOURCE_TOKEN": "t"])
        #expect(gone.status == 2 && gone.stderr.contains("answered HTTP 404"), "\(gone.stderr)")
        #expect(missing.requests.count == 1)
        // Plain http:// elsewhere than this machine is refused before anything is sent.
        let plain = try runCLI(["run", Self.pipeline("http://example.org/x.csv", dir: dir), "--dry-run"])
        #expect(plain.status == 2 && plain.stderr.contains("must use https://"), "\(plain.stderr)")
        // Loopback is an address, not a name that starts like one.
        for host in ["localhost", "127.0.0.1", "127.8.9.10", "::1", "[::1]"] { #expect(BaseURL.isLoopback(host)) }
        for host in ["127.evil.example", "127.0.0.1.nip.io", "128.0.0.1", "example.org", "1270.0.0.1"] {
            #expect(!BaseURL.isLoopback(host), "\(host)")
        }
    }

    @Test(
        "TLS is verified for a source: a private CA's server is refused, and read with source.ca_file",
        .enabled(if: SecurityTests.openssl != nil), .timeLimit(minutes(1)))
    func privateCA() throws {
        let dir = TempDir()
        let files = try Self.folder(storing: 5, in: dir)
        let (server, port) = try SecurityTests.tlsServer(in: dir, www: files)
        defer { server.terminate() }
        let url = "https://127.0.0.1:\(port)/stores.csv"
        let refused = try runCLI(
            ["run", Self.pipeline(url, dir: dir), "--dry-run"], environment: ["SOURCE_TOKEN": "t"])
        #expect(refused.status == 2 && refused.stderr.lowercased().contains("certificate"), "\(refused.stderr)")
        let trusted = Self.pipeline(url, dir: dir, extra: "  ca_file: \(dir.path)/cert.pem")
        let output = dir.path + "/out.geojson"
        let read = try runCLI(["run", trusted, "--dry-run", "--output", output], environment: ["SOURCE_TOKEN": "t"])
        #expect(read.status == 0, "\(read.stderr)")
        #expect(dir.read("out.geojson").contains("Store 5"))
    }

    /// The dry run's features of `input` (a path), with `sheet` for a workbook.
    static func features(_ input: String, dir: TempDir, extra: [String] = []) throws -> (CLIResult, String) {
        let output = dir.path + "/\(UUID().uuidString).geojson"
        let result = try runCLI(
            [
                "run", "--dry-run", "--input", input, "--output", output, "--report-dir", dir.path + "/reports",
            ] + extra)
        return (result, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    @Test(".ods, .xls and zipped twins of a 20,000-row CSV give byte-identical dry-run features")
    func twins() throws {
        let dir = TempDir()
        let (csv, expected) = try Self.features(Self.fixtures + "/twin.csv", dir: dir)
        #expect(csv.status == 0, "\(csv.stderr)")
        #expect(expected.components(separatedBy: "\"type\":\"Feature\"").count - 1 == 20_000)
        for twin in ["twin.ods", "twin.xls", "twin.csv.zip"] {
            let (result, features) = try Self.features(Self.fixtures + "/" + twin, dir: dir)
            #expect(result.status == 0, "\(twin): \(result.stderr)")
            #expect(features == expected, "\(twin) differs")
        }
    }

    /// `kind,value` rows of a CSV, by kind.
    static func values(_ text: String) throws -> [String: String] {
        let read = try readAll(text)
        return Dictionary(uniqueKeysWithValues: read.records.map { ($0[0], $0[1]) })
    }

    @Test(".ods and .xls cells read as the sheet shows them: text, numbers, dates, times, booleans, repeats")
    func cellValues() throws {
        let expected = try Self.values(String(contentsOfFile: Self.fixtures + "/cells.expected.csv", encoding: .utf8))
        for file in ["cells.ods", "cells.xls"] {
            let format = try #require(try WorkbookFormat.of(format: "auto", path: Self.fixtures + "/" + file))
            let reader = try format.reader(
                path: Self.fixtures + "/" + file, sheet: nil, hasHeader: true, headerRow: nil, blockBytes: 4096,
                name: file
            ).reader
            let read = try readAll(reader)
            #expect(reader.header == ["kind", "value"])
            let got = Dictionary(uniqueKeysWithValues: read.records.map { ($0[0], $0[1]) })
            for (kind, value) in expected {
                // libfreexl reads a boolean cell as the number it stores.
                let wanted = file.hasSuffix(".xls") && kind == "boolean" ? "1" : value
                #expect(got[kind] == wanted, "\(file) \(kind): \(got[kind] ?? "nil") != \(wanted)")
            }
        }
        // Repeated rows and columns, and the million empty rows at the end of the sheet.
        let repeated = try ODSSheet.reader(
            path: Self.fixtures + "/cells.ods", sheet: "repeat", hasHeader: true, headerRow: nil, blockBytes: 4096,
            name: "cells.ods")
        let rows = try readAll(repeated)
        let wanted = try readAll(String(contentsOfFile: Self.fixtures + "/repeat.expected.csv", encoding: .utf8))
        #expect(repeated.header == wanted.header)
        #expect(rows.records == wanted.records)
        // The 1904 date system of an old Mac workbook.
        let old = try XLSSheet.reader(
            path: Self.fixtures + "/dates1904.xls", sheet: nil, hasHeader: true, headerRow: nil, blockBytes: 4096,
            name: "dates1904.xls")
        #expect(try readAll(old).records == [["date", "2024-02-29"]])
    }

    @Test("a sheet by name or position, a missing sheet, a damaged or mislabelled workbook: one sentence, exit 2")
    func badWorkbooks() throws {
        let dir = TempDir()
        for setting in ["2", "repeat"] {
            let second = try ODSSheet.reader(
                path: Self.fixtures + "/cells.ods", sheet: setting, hasHeader: true, headerRow: nil, blockBytes: 4096,
                name: "cells.ods")
            #expect(second.sheet == "repeat" && second.header == ["a", "b", "c"])
        }
        let (missing, _) = try Self.features(Self.fixtures + "/cells.xls", dir: dir, extra: ["--sheet", "Nope"])
        #expect(missing.status == 2 && missing.stderr.contains("has no sheet \"Nope\"; its sheets are: 1 \"cells\""))
        let (odsMissing, _) = try Self.features(Self.fixtures + "/cells.ods", dir: dir, extra: ["--sheet", "Nope"])
        #expect(
            odsMissing.status == 2
                && odsMissing.stderr.contains("has no sheet \"Nope\"; its sheets are: 1 \"cells\", 2 \"repeat\""),
            "\(odsMissing.stderr)")
        let cut = dir.write(
            "cut.xls", Array(try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/cells.xls")).prefix(1500)))
        let (damaged, _) = try Self.features(cut, dir: dir)
        #expect(damaged.status == 2 && damaged.stderr.contains("is not a readable .xls workbook"), "\(damaged.stderr)")
        #expect(damaged.stderr.split(separator: "\n").count == 1)
        // A text export named .xls is read as the CSV it is; a web page named .xls is said to be one.
        let text = dir.write("export.xls", "id\tname\tlon\tlat\n1\ta\t2.5\t48.5\n")
        let (csv, features) = try Self.features(text, dir: dir)
        #expect(csv.status == 0 && features.contains("[2.5,48.5]"), "\(csv.stderr)")
        let page = dir.write("page.xls", "<html><table><tr><td>1</td></tr></table></html>\n")
        let (html, _) = try Self.features(page, dir: dir)
        #expect(html.status == 2 && html.stderr.contains("is an HTML or XML page named .xls"), "\(html.stderr)")
        let truncated = dir.write(
            "cut.ods", Array(try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/twin.ods")).prefix(40_000)))
        let (brokenODS, _) = try Self.features(truncated, dir: dir)
        #expect(brokenODS.status == 2 && brokenODS.stderr.contains("is not a readable .ods"), "\(brokenODS.stderr)")
    }

    @Test("inspect reads a URL, a .zip's member, .ods and .xls (their sheets listed); --emit-config keeps the URL")
    func inspectSources() async throws {
        let dir = TempDir()
        let files = try Self.folder(storing: 12, in: dir)
        let server = try await Self.sandbox(files: files)
        let url = server.url + "/files/stores.csv"
        let remote = try await runCLIAsync(["inspect", url])
        #expect(remote.status == 0, "\(remote.stderr)")
        #expect(
            remote.stdout.contains("file       \(url)") && remote.stdout.contains("rows       12"), "\(remote.stdout)")
        let emitted = try await runCLIAsync(["inspect", url, "--emit-config"])
        #expect(emitted.stdout.contains("  path: \"\(url)\""), "\(emitted.stdout)")
        let member = try runCLI(["inspect", Self.fixtures + "/two-members.zip", "--member", "b.csv", "--emit-config"])
        #expect(member.status == 0 && member.stdout.contains("  member: \"b.csv\""), "\(member.stdout)")
        let ods = try runCLI(["inspect", Self.fixtures + "/cells.ods", "--sheet", "repeat"])
        #expect(ods.stdout.contains("sheet 1    \"cells\""), "\(ods.stdout)")
        #expect(ods.stdout.contains("sheet 2    \"repeat\" (no used range declared)  ← profiled"), "\(ods.stdout)")
        let xls = try runCLI(["inspect", Self.fixtures + "/cells.xls", "--emit-config"])
        #expect(xls.status == 0 && xls.stdout.contains("  format: xls"), "\(xls.stdout)")
        // A source that needs a header: inspect its pipeline, which has it.
        let body = Self.stores(4)
        let guarded = try ScriptedServer { head, _ in
            head.contains("X-Source-Token: token-4f1c9e")
                ? ScriptedServer.reply("200 OK", body: body) : ScriptedServer.reply("401 Unauthorized")
        }
        defer { guarded.stop() }
        let bare = try await runCLIAsync(["inspect", guarded.url + "/stores.csv"])
        #expect(bare.status == 2 && bare.stderr.contains("HTTP 401 (the source needs credentials"), "\(bare.stderr)")
        let viaPipeline = try await runCLIAsync(
            ["inspect", Self.pipeline(guarded.url + "/stores.csv", dir: dir)],
            environment: ["SOURCE_TOKEN": "token-4f1c9e"])
        #expect(viaPipeline.status == 0 && viaPipeline.stdout.contains("rows       4"), "\(viaPipeline.stderr)")
        #expect(!(viaPipeline.stdout + viaPipeline.stderr).contains("token-4f1c9e"))
        await server.stop()
    }

    /// An `.ods` holding `tables` (each `<table:table …>…</table:table>`), written with ZIPFoundation.
    static func ods(_ tables: String, at path: String) throws {
        let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .create)
        let namespaces =
            "xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\""
        let parts = [
            ("mimetype", "application/vnd.oasis.opendocument.spreadsheet"),
            (
                "content.xml",
                "<office:document-content \(namespaces)><office:body><office:spreadsheet>\(tables)</office:spreadsheet></office:body></office:document-content>"
            ),
        ]
        for (name, text) in parts {
            let data = Data(text.utf8)
            try archive.addEntry(
                with: name, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate,
                provider: { position, size in data.subdata(in: Int(position)..<Int(position) + size) })
        }
    }

    @Test(
        ".ods: a number names a position unless a sheet has that name; a value repeated down a million rows streams; a row repeated past max_record_bytes is rejected; _xHHHH_ is text"
    )
    func odsEdges() throws {
        let dir = TempDir()
        let cell = { (text: String) in
            "<table:table-cell office:value-type=\"string\"><text:p>\(text)</text:p></table:table-cell>"
        }
        let path = dir.path + "/edges.ods"
        try Self.ods(
            "<table:table table:name=\"2\"><table:table-row>\(cell("x"))</table:table-row><table:table-row>\(cell("from 2"))</table:table-row></table:table>"
                + "<table:table table:name=\"second\"><table:table-row>\(cell("y"))</table:table-row></table:table>"
                + "<table:table table:name=\"fill\"><table:table-row>\(cell("id"))\(cell("code"))</table:table-row>"
                + "<table:table-row table:number-rows-repeated=\"1048575\"><table:table-cell office:value-type=\"float\" office:value=\"7\"/>\(cell("ID_x0031_"))</table:table-row></table:table>"
                + "<table:table table:name=\"wide\"><table:table-row>\(cell("a"))</table:table-row>"
                + "<table:table-row><table:table-cell table:number-columns-repeated=\"16384\" office:value-type=\"string\"><text:p>\(String(repeating: "z", count: 200))</text:p></table:table-cell></table:table-row>"
                + "<table:table-row>\(cell("ok"))</table:table-row></table:table>"
                + "<table:table table:name=\"merged\"><table:table-row>\(cell("id"))<table:table-cell table:number-columns-spanned=\"2\" office:value-type=\"string\"><text:p>Address</text:p></table:table-cell><table:covered-table-cell/></table:table-row>"
                + "<table:table-row>\(cell("1"))\(cell("Main St"))\(cell("Springfield"))</table:table-row></table:table>"
                + "<table:table table:name=\"clash\"><table:table-row><table:table-cell table:number-columns-spanned=\"2\" office:value-type=\"string\"><text:p>Address</text:p></table:table-cell><table:covered-table-cell/>\(cell("Address 2"))</table:table-row></table:table>"
                + "<table:table table:name=\"huge\"><table:table-row><table:table-cell table:number-columns-spanned=\"999999999999\" office:value-type=\"string\"><text:p>A</text:p></table:table-cell></table:table-row></table:table>",
            at: path)
        func open(_ sheet: String) throws -> SheetReader {
            try ODSSheet.reader(
                path: path, sheet: sheet, hasHeader: true, headerRow: nil, blockBytes: 64 << 10, name: "edges.ods",
                maxRecordBytes: 1 << 20)
        }
        // A sheet named "2" is sheet "2", not the second one.
        let named = try open("2")
        let namedRows = try readAll(named).records
        #expect(named.sheet == "2" && namedRows == [["from 2"]])
        #expect(try open("3").sheet == "fill")
        // A million rows from one repeated row, read in bounded memory (the hand-off holds the
        // scanning thread while the reader is behind), each with its own row number.
        let fill = try open("fill")
        var count = 0
        var last: [String] = []
        var lastLine = 0
        while let block = try fill.nextBlock() {
            count += block.count
            if block.count > 0 {
                last = block.strings(block.count - 1)
                lastLine = block.lines[block.count - 1]
            }
        }
        #expect(count == 1_048_575 && last == ["7", "ID_x0031_"] && lastLine == 1_048_576)
        // A header cell merged across two columns names both, as in an .xlsx.
        let merged = try open("merged")
        #expect(merged.header == ["id", "Address", "Address 2"])
        // A merged name that clashes with a cell's own is made unique, as any repeated name.
        let clash = try open("clash")
        #expect(clash.header == ["Address", "Address 2", "Address 2_2"])
        #expect(clash.duplicateNames == ["Address 2": ["Address 2", "Address 2_2"]])
        #expect(try open("huge").header.count == 16_384)
        #expect(try readAll(merged).records == [["1", "Main St", "Springfield"]])
        // 16,384 copies of 200 bytes: past max_record_bytes, the row is rejected, the next is read.
        let wide = try readAll(try open("wide"))
        #expect(wide.records == [["ok"]])
        #expect(wide.rejections.count == 1 && wide.rejections.first?.code == .invalidCell)
        #expect(wide.rejections.first?.message.contains("source.max_record_bytes") == true)
    }

    @Test("a .zip of several files needs source.member; the member named is read; a missing one is listed")
    func zipMembers() throws {
        let dir = TempDir()
        let archive = Self.fixtures + "/two-members.zip"
        let (several, _) = try Self.features(archive, dir: dir)
        #expect(several.status == 2)
        #expect(several.stderr.contains("holds 2 files (a.csv, b.csv): set source.member"), "\(several.stderr)")
        let pipeline = dir.write(
            "zip.yml", "source: { path: \(archive), member: b.csv }\nreport: { dir: \(dir.path)/reports }\n")
        let output = dir.path + "/b.geojson"
        let chosen = try runCLI(["run", pipeline, "--dry-run", "--output", output])
        #expect(chosen.status == 0, "\(chosen.stderr)")
        #expect(dir.read("b.geojson").components(separatedBy: "\"type\":\"Feature\"").count - 1 == 10)
        #expect(FileManager.default.fileExists(atPath: dir.path + "/reports/two-members.summary.json"))
        #expect(Pipeline.reportName(of: "drops/stores.csv.zip") == "stores")
        #expect(Pipeline.reportName(of: "https://h/exports/stores.xlsx?token=1") == "stores")
        // A README beside the data is not a candidate.
        let readme = dir.path + "/with-readme.zip"
        let withReadme = try Archive(url: URL(fileURLWithPath: readme), accessMode: .create)
        for (name, text) in [("README.txt", "about the data\n"), ("data/stores.csv", Self.stores(3))] {
            let data = Data(text.utf8)
            try withReadme.addEntry(
                with: name, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate,
                provider: { position, size in data.subdata(in: Int(position)..<Int(position) + size) })
        }
        let (single, features) = try Self.features(readme, dir: dir)
        #expect(single.status == 0 && features.contains("Store 3"), "\(single.stderr)")
        let wrong = dir.write("wrong.yml", "source: { path: \(archive), member: c.csv }\n")
        let missing = try runCLI(["run", wrong, "--dry-run"])
        #expect(
            missing.status == 2
                && missing.stderr.contains("source.member \"c.csv\" is not in the archive; it holds: a.csv, b.csv"))
    }
}
