import Foundation
import MapsembleSandbox
import Testing

@Suite("--log-format json (the built binary)")
struct LogFormatTests {
    @Test("every stderr line is one JSON object with stable keys: retries, progress, rejected rows, the summary")
    func jsonLines() async throws {
        _ = ignoreSIGPIPE
        let mapID = "7e57ab1e-0000-4000-8000-0000000000ee"
        var sandbox = SandboxConfig(maps: [
            .init(id: mapID, label: "Logs", plan: .pro, fields: [.init(slug: "ext_id")], remoteField: "ext_id")
        ])
        sandbox.apiKeys = ["log-key": "sandbox"]
        sandbox.faults.rateLimited = 0.3
        sandbox.faults.retryAfterSeconds = nil
        sandbox.faults.seed = 7
        let server = try await SandboxServer(config: sandbox)
        defer { Task { await server.stop() } }
        let dir = TempDir()
        var text = "id,name,lat,lon\n"
        for row in 1...3000 { text += "L\(row),Site \(row),\(Double(row % 80) + 0.5),\(Double(row % 170) + 0.25)\n" }
        text += "L3001,Site 3001,95.5,181.25\n"
        let input = dir.write("logs.csv", text)
        let result = try runCLI(
            [
                "run", "--input", input, "--api-url", server.url, "--map", mapID, "--batch-size", "100",
                "--report-dir", dir.path, "--log-format", "json", "--progress", "always", "-v",
            ],
            environment: ["MAPSEMBLE_API_KEY": "log-key"])
        #expect(result.status == 1, "\(result.stderr)")
        let objects = try result.stderr.split(separator: "\n").map { line in
            try #require(
                try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
        }
        #expect(objects.allSatisfy { $0["level"] is String && $0["event"] is String && $0["message"] is String })
        let retries = objects.filter { $0["event"] as? String == "retry" }
        #expect(!retries.isEmpty)
        for retry in retries {
            #expect(retry["level"] as? String == "warning")
            #expect(retry["status"] as? Int == 429)
            #expect(retry["attempt"] is Int && retry["delay_ms"] is Int && retry["batch"] is Int)
            #expect(retry["file"] as? String == input)
        }
        #expect(objects.contains { $0["event"] as? String == "plan" && $0["level"] as? String == "debug" })
        let progress = try #require(objects.first { $0["event"] as? String == "progress" })
        #expect(progress["rows"] is Int && progress["percent"] is Int && progress["retries"] is Int)
        let summary = try #require(objects.last)
        #expect(summary["event"] as? String == "summary")
        #expect(summary["exit_code"] as? Int == 1)
        let rejected = try #require(objects.first { $0["event"] as? String == "rejected" })
        #expect(rejected["line"] as? Int == 3002)
        #expect(rejected["code"] as? String == "latitude_out_of_range")
        #expect(rejected["column"] as? String == "lat")
        #expect(summary["imported"] as? Int == 3000)
        #expect(summary["retries"] as? Int == retries.count)
        #expect(!result.stderr.contains("log-key"))
    }
}
