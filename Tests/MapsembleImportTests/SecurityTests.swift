import Foundation
import MapsembleSandbox
import Testing

@testable import MapsembleImport

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Security")
struct SecurityTests {
    static let mapID = "5ec0de00-0000-4000-8000-000000000001"

    static func sandbox(key: String, configure: (inout SandboxConfig) -> Void = { _ in }) async throws
        -> SandboxServer
    {
        var config = SandboxConfig(maps: [
            .init(id: mapID, label: "Sites", plan: .pro, fields: [.init(slug: "site_id")], remoteField: "site_id")
        ])
        config.apiKeys = [key: "sandbox"]
        configure(&config)
        return try await SandboxServer(config: config)
    }

    static func permissions(_ path: String) -> Int {
        var status = stat()
        return stat(path, &status) == 0 ? Int(status.st_mode) & 0o777 : -1
    }

    @Test(
        "The key reaches no artefact: stdout, stderr, JSON logs, reports, the journal of an aborted run, dry-run outputs"
    )
    func keyInNoArtefact() async throws {
        let key = "msk_live_never_print_me_7734"
        let server = try await Self.sandbox(key: key) { $0.faults.rateLimited = 0.3 }
        defer { Task { await server.stop() } }
        let dir = TempDir()
        var text = "site_id,name,lat,lon\n"
        for row in 1...400 { text += "S\(row),Site \(row),\(row % 9 == 0 ? "x" : "50.\(row)"),7.\(row)\n" }
        let input = dir.write("sites.csv", text)
        var outputs: [String] = []
        // An upload that stops part-way (max_rejects): it keeps its journal.
        let aborted = try runCLI(
            [
                "run", "--input", input, "--api-url", server.url, "--map", Self.mapID, "--report-dir", dir.path,
                "--max-rejects", "20", "--batch-size", "10", "--log-format", "json", "-v", "--progress", "always",
            ], environment: ["MAPSEMBLE_API_KEY": key])
        #expect(aborted.status == 3, "\(aborted.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.path + "/sites.journal"))
        outputs += [aborted.stdout, aborted.stderr]
        // The same with text logs, to the end.
        let finished = try runCLI(
            ["run", "--input", input, "--api-url", server.url, "--map", Self.mapID, "--report-dir", dir.path, "-v"],
            environment: ["MAPSEMBLE_API_KEY": key])
        #expect(finished.status == 1, "\(finished.stderr)")
        outputs += [finished.stdout, finished.stderr]
        // A dry run given the key, writing both outputs, and a refused pre-flight.
        let dry = try runCLI(
            [
                "run", "--dry-run", "--input", input, "--report-dir", dir.path + "/dry", "--output",
                dir.path + "/out.geojson", "--output-batches", dir.path + "/bodies.ndjson",
            ], environment: ["MAPSEMBLE_API_KEY": key])
        outputs += [dry.stdout, dry.stderr]
        let refused = try runCLI(
            ["run", "--input", input, "--api-url", server.url, "--map", "no-such-map", "--report-dir", dir.path],
            environment: ["MAPSEMBLE_API_KEY": key])
        #expect(refused.status == 2)
        outputs += [refused.stdout, refused.stderr]
        for output in outputs { #expect(!output.contains(key)) }
        let files = FileManager.default.enumerator(atPath: dir.path)?.compactMap { $0 as? String } ?? []
        #expect(files.count >= 8, "\(files)")
        for file in files where !file.hasPrefix("chromium") {
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: dir.path + "/" + file))) ?? Data()
            #expect(bytes.range(of: Data(key.utf8)) == nil, "\(file) holds the key")
        }
    }

    @Test("Reports and the journal are readable by their owner only; outputs asked for follow the umask")
    func ownerOnly() async throws {
        let server = try await Self.sandbox(key: "perm-key")
        defer { Task { await server.stop() } }
        let dir = TempDir()
        var text = "site_id,name,lat,lon\n"
        for row in 1...50 { text += "S\(row),Site \(row),\(row == 7 ? "x" : "50.\(row)"),7.\(row)\n" }
        let input = dir.write("sites.csv", text)
        let result = try runCLI(
            [
                "run", "--input", input, "--api-url", server.url, "--map", Self.mapID, "--report-dir", dir.path,
                "--max-rejects", "0",
            ], environment: ["MAPSEMBLE_API_KEY": "perm-key"])
        #expect(result.status == 3, "\(result.stderr)")
        for name in ["sites.rejected.csv", "sites.summary.json", "sites.report.html", "sites.journal"] {
            #expect(Self.permissions(dir.path + "/" + name) == 0o600, "\(name)")
        }
        let old = umask(0o022)
        defer { umask(old) }
        _ = try runCLI([
            "run", "--dry-run", "--input", input, "--report-dir", dir.path, "--output", dir.path + "/o.json",
        ])
        #expect(Self.permissions(dir.path + "/o.json") == 0o644)
    }

    @Test("A redirect is not followed: the key never reaches the other address, and the error says why")
    func redirect() async throws {
        let elsewhere = try await Self.sandbox(key: "redirect-key")
        defer { Task { await elsewhere.stop() } }
        let server = try await Self.sandbox(key: "redirect-key") { $0.faults.redirectTo = elsewhere.url }
        defer { Task { await server.stop() } }
        let dir = TempDir()
        let input = dir.write("sites.csv", "site_id,name,lat,lon\nS1,One,50.1,7.1\n")
        let result = try runCLI(
            ["run", "--input", input, "--api-url", server.url, "--map", Self.mapID, "--report-dir", dir.path],
            environment: ["MAPSEMBLE_API_KEY": "redirect-key"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("redirects (HTTP 307 to \(elsewhere.url)/api/v1/maps/\(Self.mapID))"))
        #expect(result.stderr.contains("redirects are not followed"))
        #expect(server.store.requestCounts.all == 1)
        #expect(elsewhere.store.requestCounts.all == 0)
    }

    static let openssl = ["/usr/bin/openssl", "/bin/openssl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// `openssl s_server` on loopback with a certificate made for 127.0.0.1 and signed by nobody
    /// (`DIR/cert.pem`): with `www`, it serves that folder's files (`-WWW`); else a status page.
    static func tlsServer(in dir: TempDir, www: String? = nil) throws -> (Process, Int) {
        func openssl(_ arguments: [String]) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.openssl!)
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            if let www { process.currentDirectoryURL = URL(fileURLWithPath: www) }
            try process.run()
            return process
        }
        let make = try openssl([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-addext",
            "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", dir.path + "/key.pem", "-out",
            dir.path + "/cert.pem",
        ])
        make.waitUntilExit()
        #expect(make.terminationStatus == 0)
        // A port nothing else holds, and an s_server that kept it: one that could not bind exits,
        // and whatever else answers there would not be it.
        for _ in 0..<5 {
            let port = Int.random(in: 20_000..<32_000)
            let server = try openssl([
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", dir.path + "/cert.pem", "-key",
                dir.path + "/key.pem", www == nil ? "-www" : "-WWW", "-quiet",
            ])
            var listening = false
            for _ in 0..<50 where !listening && server.isRunning {
                let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                listening =
                    withUnsafePointer(to: &address) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                        }
                    } == 0
                close(socket)
                if !listening { usleep(100_000) }
            }
            if listening && server.isRunning { return (server, port) }
            server.terminate()
        }
        Issue.record("openssl s_server did not listen")
        throw ImportError(.remote, "no TLS server")
    }

    @Test(
        "TLS is verified: a server with a certificate nobody signed is refused, naming the certificate",
        .enabled(if: openssl != nil), .timeLimit(minutes(1)))
    func tlsVerified() throws {
        let dir = TempDir()
        let (server, port) = try Self.tlsServer(in: dir)
        defer { server.terminate() }
        let result = try runCLI(
            ["maps", "--api-url", "https://127.0.0.1:\(port)"], environment: ["MAPSEMBLE_API_KEY": "tls-key"])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.lowercased().contains("certificate"), "\(result.stderr)")
        #expect(!result.stderr.contains("tls-key"))
    }

    @Test("watch takes no file another process holds a lock on, and no link")
    func watchLocks() throws {
        let dir = TempDir()
        let file = dir.write("drop.csv", "name,lat,lon\nA,50.1,7.1\n")
        #expect(DropFolder.unlocked(file))
        let holder = open(file, O_RDWR)
        defer { close(holder) }
        #expect(flock(holder, LOCK_EX) == 0)
        #expect(!DropFolder.unlocked(file))
        #expect(flock(holder, LOCK_UN) == 0)
        #expect(DropFolder.unlocked(file))
        #expect(symlink(file, dir.path + "/link.csv") == 0)
        #expect(!DropFolder.unlocked(dir.path + "/link.csv"))
    }

    @Test("report.spreadsheet_safe neutralises cells a spreadsheet would run, and leaves numbers alone")
    func spreadsheetSafe() throws {
        let dir = TempDir()
        dir.write(
            "in.csv",
            "name,lat,lon,note\n\"=HYPERLINK(\"\"http://x\"\")\",x,7.1,+1+1\n@SUM(A1),-7.5,y,-2+3\n-12,,7.1,\"\tcmd\"\n"
        )
        dir.write("safe.yml", "source: { path: in.csv }\nreport: { dir: safe, spreadsheet_safe: true }\n")
        dir.write("plain.yml", "source: { path: in.csv }\nreport: { dir: plain }\n")
        #expect(try runCLI(["run", "--dry-run", dir.path + "/safe.yml"]).status == 1)
        #expect(try runCLI(["run", "--dry-run", dir.path + "/plain.yml"]).status == 1)
        let safe = dir.read("safe/in.rejected.csv")
        #expect(safe.contains("\"'=HYPERLINK(\"\"http://x\"\")\""))
        #expect(safe.contains(",'+1+1\n"))
        #expect(safe.contains("'@SUM(A1),-7.5,y,'-2+3\n"))
        #expect(safe.contains(",-12,,7.1,'\tcmd\n"))
        let plain = dir.read("plain/in.rejected.csv")
        #expect(plain.contains("\"=HYPERLINK(\"\"http://x\"\")\",x,7.1,+1+1\n"))
        #expect(plain.contains("@SUM(A1),-7.5,y,-2+3\n"))
        #expect(RejectedRowsWriter.neutralised("-7.5") == "-7.5")
        #expect(RejectedRowsWriter.neutralised("-cmd") == "'-cmd")
        #expect(RejectedRowsWriter.neutralised("plain") == "plain")
    }
}
