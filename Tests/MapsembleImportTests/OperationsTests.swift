import Foundation
import MapsembleJSON
import MapsembleSandbox
import NIOConcurrencyHelpers
import Synchronization
import Testing

@testable import MapsembleImport

/// A webhook receiver on loopback: reads each POST whole (head and body), then answers `status`
/// after `delay` seconds.
final class WebhookReceiver: LoopbackServer, @unchecked Sendable {
    private let received = NIOLockedValueBox<[(head: String, body: [UInt8])]>([])
    private let status: Int
    private let delay: UInt32

    var requests: [(head: String, body: [UInt8])] { received.withLockedValue { $0 } }
    var bodies: [JSONValue] { requests.compactMap { JSONParser.parse($0.body) } }

    init(status: Int = 200, delay: UInt32 = 0) throws {
        self.status = status
        self.delay = delay
        try super.init()
        start()
    }

    /// A port nothing listens on.
    static func closedPort() throws -> Int {
        let receiver = try WebhookReceiver()
        receiver.stop()
        return receiver.port
    }

    override func handle(_ client: Int32) {
        Thread { [self] in respond(client) }.start()
    }

    private func respond(_ client: Int32) {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var headEnd: Int?
        var length = 0
        while true {
            if let end = headEnd, bytes.count >= end + length { break }
            let count = read(client, &buffer, buffer.count)
            guard count > 0 else { break }
            bytes += buffer[..<count]
            if headEnd == nil, let range = findHeadEnd(bytes) {
                headEnd = range
                let head = String(decoding: bytes[..<range], as: UTF8.self).lowercased()
                if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }) {
                    length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
        }
        if let end = headEnd {
            received.withLockedValue {
                $0.append((String(decoding: bytes[..<end], as: UTF8.self), Array(bytes[end...])))
            }
        }
        if delay > 0 { sleep(delay) }
        let reply = "HTTP/1.1 \(status) X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        _ = reply.withCString { write(client, $0, strlen($0)) }
        close(client)
    }

    private func findHeadEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4)
        where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index + 4
        }
        return nil
    }
}

/// A Prometheus text file checked line by line against the exposition format: `# HELP` and
/// `# TYPE` at most once per family and before its samples, sample lines
/// `name{label="value",…} number`, no series twice, histogram lines of their family.
func checkPrometheusText(_ text: String) -> [String] {
    var problems: [String] = []
    var types: [String: String] = [:]
    var seen = Set<String>()
    var sampled = Set<String>()
    let sample =
        #/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? (-?[0-9.eE+-]+|\+Inf|-Inf|NaN)( -?[0-9]+)?$/#
    guard text.hasSuffix("\n") else { return ["the text does not end with a line feed"] }
    for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
        if line.hasPrefix("# TYPE ") || line.hasPrefix("# HELP ") {
            let words = line.split(separator: " ", maxSplits: 3)
            guard words.count >= 3 else {
                problems.append("short comment: \(line)")
                continue
            }
            let name = String(words[2])
            if sampled.contains(name) { problems.append("\(words[1]) of \(name) after its samples") }
            if words[1] == "TYPE" {
                if types[name] != nil { problems.append("TYPE of \(name) twice") }
                guard words.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(words[3])
                else {
                    problems.append("bad TYPE line: \(line)")
                    continue
                }
                types[name] = String(words[3])
            }
            continue
        }
        guard let match = line.wholeMatch(of: sample) else {
            problems.append("not a sample line: \(line)")
            continue
        }
        let name = String(match.1)
        var family = name
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if types[base] == "histogram" { family = base }
        }
        if types[family] == nil { problems.append("sample of \(name) without a TYPE") }
        if types[family] == "counter", Double(String(match.5)).map({ $0 < 0 }) == true {
            problems.append("negative counter: \(line)")
        }
        sampled.insert(family)
        let series = String(line[..<line.lastIndex(of: " ")!])
        if !seen.insert(series).inserted { problems.append("series twice: \(series)") }
    }
    return problems
}

/// The value of the one sample of `name` whose labels include `labels`.
func metricValue(_ text: String, _ name: String, _ labels: [String: String]) -> Double? {
    let samples = MetricsFile.parse(text).flatMap(\.samples).filter { sample in
        sample.name == name && labels.allSatisfy { label in sample.labels.contains { $0 == (label.key, label.value) } }
    }
    return samples.count == 1 ? samples[0].value : nil
}

/// Scheduled imports you can watch and undo: notifications, metrics, the run history and rollback,
/// through the built binary against the sandbox and loopback receivers.
@Suite("Operations: notifications, metrics, history, rollback", .serialized)
struct OperationsTests {
    /// A folder with a pipeline (`pipeline.yml`) into the harness's map, plus `extra` YAML.
    static func pipeline(_ harness: UploadHarness, mode: String = "upsert", extra: String = "") -> String {
        harness.dir.write(
            "pipeline.yml",
            """
            version: 1
            source:
              path: \(harness.input)
            target:
              api_url: \(harness.server.url)
              api_key: test-key
              map_id: \(UploadHarness.mapID)
              mode: \(mode)
            coordinates:
              latitude: lat
              longitude: lon
            properties:
              label: name
              remote_id: id
              fields:
                kind: kind
                score: { column: score, type: number }
            upload:
              max_retries: 3
            report:
              dir: \(harness.dir.path)/reports
            \(extra)
            """)
    }

    static func notify(_ url: String, on: String, format: String = "json", timeout: Double = 2) -> String {
        "notify:\n  webhook: \"\(url)\"\n  on: \(on)\n  format: \(format)\n  timeout_s: \(timeout)\n  max_retries: 1\n"
    }

    @Test("notify: on failure, rejects and always; json and slack; no secret in any of it", .timeLimit(minutes(3)))
    func notificationChoices() async throws {
        let harness = try await UploadHarness(rows: 20)
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        // A token in the webhook's path, as Slack's have.
        let hook = receiver.url + "/services/T000/B000/sekr1t-hook-token"
        let state = harness.dir.path + "/state"

        // on: failure — a completed run sends nothing.
        let quiet = Self.pipeline(harness, extra: Self.notify(hook, on: "failure"))
        let ok = try await runCLIAsync([
            "run", quiet, "--state-dir", state, "--progress", "never",
        ])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(receiver.requests.isEmpty)

        // on: always — the summary with the event, the run id, the host and the reports.
        let always = Self.pipeline(harness, extra: Self.notify(hook, on: "always"))
        let second = try await runCLIAsync(["run", always, "--state-dir", state])
        #expect(second.status == 0, "\(second.stderr)")
        let body = try #require(receiver.bodies.last)
        #expect(body["event"]?.string == "import_finished")
        #expect(body["status"]?.string == "completed")
        #expect(body["rows_read"]?.integer == 20)
        #expect(body["imported"]?.integer == 20)
        #expect(body["exit_code"]?.integer == 0)
        #expect(body["host"]?.string == ProcessInfo.processInfo.hostName)
        let runID = try #require(body["run_id"]?.string)
        #expect(second.stderr.contains("run \(runID)"), "the last log line names the run")
        #expect(body["reports"]?["summary"]?.string == harness.dir.path + "/reports/sites.summary.json")
        #expect(receiver.requests.last!.head.hasPrefix("POST /services/T000/B000/sekr1t-hook-token HTTP/1.1"))
        #expect(receiver.requests.last!.head.lowercased().contains("content-type: application/json"))

        // on: rejects, slack — a run with rejected rows (exit 1) sends one paragraph with the codes.
        harness.dir.write("sites.csv", "id,name,lat,lon,kind,score\nS1,Site 1,10,10,shop,1\nS2,Site 2,abc,10,shop,2\n")
        let rejects = Self.pipeline(harness, extra: Self.notify(hook, on: "rejects", format: "slack"))
        let third = try await runCLIAsync(["run", rejects, "--state-dir", state])
        #expect(third.status == 1, "\(third.stderr)")
        let slack = try #require(receiver.bodies.last)
        let text = try #require(slack["text"]?.string)
        #expect(slack.members?.count == 1)
        #expect(text.contains("completed_with_rejects (exit 1)"), "\(text)")
        #expect(text.contains("1 of 2 rows imported"), "\(text)")
        #expect(text.contains("top reject codes: invalid_number 1"), "\(text)")

        // on: failure — a run that stops before any row moves (the mapped column is missing: exit 2).
        harness.dir.write("sites.csv", "id,name,lat,lon,kind\nS1,Site 1,10,10,shop\n")
        let failing = Self.pipeline(harness, extra: Self.notify(hook, on: "failure"))
        let fourth = try await runCLIAsync(["run", failing, "--state-dir", state])
        #expect(fourth.status == 2, "\(fourth.stderr)")
        let failure = try #require(receiver.bodies.last)
        #expect(failure["status"]?.string == "failed")
        #expect(failure["exit_code"]?.integer == 2)
        #expect(failure["error"]?.string?.contains("score") == true, "\(failure.text)")
        #expect(receiver.requests.count == 3)

        // No secret anywhere: not the API key in a notification, not the webhook in the output,
        // the reports or the history.
        for request in receiver.requests {
            #expect(!String(decoding: request.body, as: UTF8.self).contains("test-key"))
        }
        let history = try RunHistory(stateDirectory: state).list(limit: 10)
        #expect(history.count == 4)
        for text in [ok.stderr, second.stderr, third.stderr, fourth.stderr]
            + history.compactMap(\.summary) + history.compactMap(\.error)
        {
            #expect(!text.contains("sekr1t"))
            #expect(!text.contains("test-key"))
        }
        let reports = try FileManager.default.contentsOfDirectory(atPath: harness.dir.path + "/reports")
        for report in reports {
            #expect(!harness.dir.read("reports/\(report)").contains("sekr1t"), "\(report)")
        }
    }

    @Test(
        "a webhook that is down, slow or failing changes neither the exit code nor the reports", .timeLimit(minutes(3)))
    func undeliveredNotifications() async throws {
        let harness = try await UploadHarness(rows: 10)
        let state = harness.dir.path + "/state"
        let slow = try WebhookReceiver(delay: 5)
        let failing = try WebhookReceiver(status: 500)
        defer {
            slow.stop()
            failing.stop()
        }
        let down = "http://127.0.0.1:\(try WebhookReceiver.closedPort())/hook"
        for (url, what) in [(down, "down"), (slow.url + "/hook", "slow"), (failing.url + "/hook", "failing")] {
            let path = Self.pipeline(harness, extra: Self.notify(url, on: "always", timeout: 1))
            let started = ContinuousClock.now
            let result = try await runCLIAsync(["run", path, "--state-dir", state])
            let elapsed = (ContinuousClock.now - started).seconds
            #expect(result.status == 0, "\(what): \(result.stderr)")
            #expect(result.stderr.contains("warning: the notification"), "\(what): \(result.stderr)")
            #expect(result.stderr.contains("the run's outcome stands"))
            #expect(!result.stderr.contains("/hook"), "the webhook's URL is never printed")
            #expect(harness.dir.read("reports/sites.summary.json").contains("\"status\": \"completed\""))
            // One retry of a one-second time-out: the run's end is held back seconds, not minutes.
            #expect(elapsed < 20, "\(what): \(elapsed) s")
        }
        // The failing receiver was asked twice (max_retries: 1), then given up on.
        #expect(failing.requests.count == 2)
    }

    @Test(
        "--metrics-file: Prometheus text, two pipelines in one file, counters go on, last success kept",
        .timeLimit(minutes(3)))
    func metricsFile() async throws {
        let harness = try await UploadHarness(rows: 12)
        let state = harness.dir.path + "/state"
        let metrics = harness.dir.path + "/textfile/mapsemble.prom"
        try FileManager.default.createDirectory(
            atPath: harness.dir.path + "/textfile", withIntermediateDirectories: true)
        let stores = Self.pipeline(harness)
        try FileManager.default.copyItem(atPath: stores, toPath: harness.dir.path + "/depots.yml")
        for path in [stores, harness.dir.path + "/depots.yml", stores] {
            let result = try await runCLIAsync(["run", path, "--state-dir", state, "--metrics-file", metrics])
            #expect(result.status == 0, "\(result.stderr)")
        }
        var text = try String(contentsOfFile: metrics, encoding: .utf8)
        #expect(checkPrometheusText(text) == [], "\(text)")
        let map = UploadHarness.mapID
        let pipeline = (harness.dir.path as NSString).lastPathComponent
        for name in [
            "runs_total", "rows_total", "last_run_timestamp_seconds", "last_success_timestamp_seconds",
            "duration_seconds", "retries_total", "geocoder_requests_total", "requests_total", "features_total",
        ] {
            #expect(text.contains("# TYPE mapsemble_import_\(name) "), "\(name)")
        }
        // pipeline.yml is named by its folder; depots.yml by its name.
        #expect(metricValue(text, "mapsemble_import_rows_total", ["pipeline": pipeline, "outcome": "imported"]) == 24)
        #expect(metricValue(text, "mapsemble_import_rows_total", ["pipeline": "depots", "outcome": "imported"]) == 12)
        #expect(metricValue(text, "mapsemble_import_runs_total", ["pipeline": pipeline, "status": "completed"]) == 2)
        let success = try #require(
            metricValue(text, "mapsemble_import_last_success_timestamp_seconds", ["pipeline": pipeline, "map": map]))
        #expect(abs(success - Date().timeIntervalSince1970) < 120)

        // A failed run: its last run moves on, its last success stays, the other pipeline is kept.
        harness.dir.write("sites.csv", "id,name,lat,lon,kind\nS1,Site 1,10,10,shop\n")
        let failed = try await runCLIAsync(["run", stores, "--state-dir", state, "--metrics-file", metrics])
        #expect(failed.status == 2)
        text = try String(contentsOfFile: metrics, encoding: .utf8)
        #expect(checkPrometheusText(text) == [], "\(text)")
        #expect(metricValue(text, "mapsemble_import_last_success_timestamp_seconds", ["pipeline": pipeline]) == success)
        #expect(metricValue(text, "mapsemble_import_last_exit_code", ["pipeline": pipeline]) == 2)
        #expect(metricValue(text, "mapsemble_import_runs_total", ["pipeline": pipeline, "status": "failed"]) == 1)
        #expect(metricValue(text, "mapsemble_import_runs_total", ["pipeline": pipeline, "status": "completed"]) == 2)
        #expect(metricValue(text, "mapsemble_import_rows_total", ["pipeline": pipeline, "outcome": "imported"]) == 24)
        #expect(metricValue(text, "mapsemble_import_rows_total", ["pipeline": "depots", "outcome": "imported"]) == 12)
        #expect(metricValue(text, "mapsemble_import_last_exit_code", ["pipeline": "depots"]) == 0)
        // Replaced by a rename: no temporary file left beside it.
        let left = try FileManager.default.contentsOfDirectory(atPath: harness.dir.path + "/textfile")
        #expect(left.sorted() == ["mapsemble.prom", "mapsemble.prom.lock"])
    }

    @Test("watch --metrics-listen serves /metrics and /healthz", .timeLimit(minutes(3)))
    func metricsListener() async throws {
        let harness = try await UploadHarness(rows: 8)
        let drop = harness.dir.path + "/drop"
        try FileManager.default.createDirectory(atPath: drop, withIntermediateDirectories: true)
        let pipeline = Self.pipeline(harness)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "watch", drop, pipeline, "--settle-seconds", "0.2", "--interval", "0.2", "--metrics-listen", "127.0.0.1:0",
            "--state-dir", harness.dir.path + "/state",
        ]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        let output = NIOLockedValueBox("")
        Thread {
            while true {
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { return }
                output.withLockedValue { $0 += String(decoding: chunk, as: UTF8.self) }
            }
        }.start()
        var port: Int?
        for _ in 0..<100 where port == nil {
            try await Task.sleep(for: .milliseconds(100))
            let text = output.withLockedValue { $0 }
            if let range = text.firstMatch(of: #/serving /metrics and /healthz on 127\.0\.0\.1:([0-9]+)/#) {
                port = Int(range.1)
            }
        }
        let listening = try #require(port, "\(output.withLockedValue { $0 })")
        let base = "http://127.0.0.1:\(listening)"
        let health = try await fetch(base + "/healthz")
        #expect(health.status == 200)
        #expect(health.body == "ok\n")
        try FileManager.default.copyItem(atPath: harness.input, toPath: drop + "/sites.csv")
        var processed = false
        for _ in 0..<150 where !processed {
            try await Task.sleep(for: .milliseconds(100))
            processed = FileManager.default.fileExists(atPath: drop + "/processed/sites.csv")
        }
        #expect(processed, "\(output.withLockedValue { $0 })")
        try await Task.sleep(for: .milliseconds(300))
        let metrics = try await fetch(base + "/metrics")
        #expect(metrics.status == 200)
        #expect(checkPrometheusText(metrics.body) == [], "\(metrics.body)")
        #expect(metricValue(metrics.body, "mapsemble_import_rows_total", ["outcome": "imported"]) == 8)
        #expect(metricValue(metrics.body, "mapsemble_import_runs_total", ["status": "completed"]) == 1)
        #expect(metricValue(metrics.body, "mapsemble_import_run_duration_seconds_count", [:]) == 1)
        #expect(metrics.body.contains("mapsemble_import_last_success_timestamp_seconds{"))
        // The folder gone: not healthy, and why.
        try FileManager.default.moveItem(atPath: drop, toPath: drop + "-moved")
        let sick = try await fetch(base + "/healthz")
        #expect(sick.status == 503)
        #expect(sick.body.contains("cannot be read"), "\(sick.body)")
        #expect(try await fetch(base + "/other").status == 404)
    }

    /// Rows `first...last` of the harness's shape, with names from `name`.
    static func rows(_ ids: [Int], prefix: String = "S", name: (Int) -> String = { "Site \($0)" }) -> String {
        var text = "id,name,lat,lon,kind,score\n"
        for row in ids {
            text +=
                "\(prefix)\(row),\(name(row)),\(Double(row % 160) / 2 - 40),\(Double(row % 300) / 2 - 75),shop,\(row)\n"
        }
        return text
    }

    @Test(
        "history: parallel runs and a watcher's files, with their counts; a killed run shows as interrupted",
        .timeLimit(minutes(4)))
    func runHistory() async throws {
        let harness = try await UploadHarness(rows: 1)
        let state = harness.dir.path + "/state"
        // Four runs at once, each with a file of its own.
        let sizes = [11, 12, 13, 14]
        let template = try String(contentsOfFile: Self.pipeline(harness), encoding: .utf8)
        var pipelines: [String] = []
        for (index, size) in sizes.enumerated() {
            let input = harness.dir.write("part\(index).csv", Self.rows(Array(1...size), prefix: "P\(index)-"))
            pipelines.append(
                harness.dir.write("p\(index).yml", template.replacingOccurrences(of: harness.input, with: input)))
        }
        let codes = try await withThrowingTaskGroup(of: Int32.self) { group in
            for path in pipelines {
                group.addTask { try await runCLIAsync(["run", path, "--state-dir", state]).status }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(codes == [0, 0, 0, 0])
        // A watcher takes two files, one with a rejected row.
        let drop = harness.dir.path + "/drop"
        try FileManager.default.createDirectory(atPath: drop, withIntermediateDirectories: true)
        harness.dir.write("drop/a.csv", Self.rows(Array(1...5), prefix: "W"))
        harness.dir.write("drop/b.csv", Self.rows(Array(6...8), prefix: "W") + "W9,Bad,abc,1,shop,9\n")
        // The watcher notifies per file, once the file and its reports are in processed/.
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        let watchPipeline = Self.pipeline(harness, extra: Self.notify(receiver.url + "/hook", on: "always"))
        let watched = try await runCLIAsync([
            "watch", drop, watchPipeline, "--once", "--settle-seconds", "0", "--state-dir", state,
        ])
        #expect(watched.status == 1, "\(watched.stderr)")
        let notified = receiver.bodies.sorted { ($0["input"]?.string ?? "") < ($1["input"]?.string ?? "") }
        #expect(notified.map { ($0["input"]?.string ?? "" as String).hasSuffix(".csv") } == [true, true])
        #expect(notified.map { $0["exit_code"]?.integer } == [0, 1])
        #expect(notified.last?["reports"]?["summary"]?.string == drop + "/processed/b.summary.json")
        #expect(notified.last?["reports"]?["rejected"]?.string == drop + "/processed/b.rejected.csv")

        let listed = try await runCLIAsync(["history", "--json", "--state-dir", state])
        #expect(listed.status == 0, "\(listed.stderr)")
        let runs = try #require(JSONParser.parse(Array(listed.stdout.utf8))?.array)
        #expect(runs.count == 6)
        var byInput: [String: JSONValue] = [:]
        for run in runs { byInput[((run["input"]?.string ?? "") as NSString).lastPathComponent] = run }
        for (index, size) in sizes.enumerated() {
            let run = try #require(byInput["part\(index).csv"])
            #expect(run["command"]?.string == "run")
            #expect(run["status"]?.string == "completed")
            #expect(run["rows_read"]?.integer == size)
            #expect(run["imported"]?.integer == size)
            #expect(run["created"]?.integer == size)
            #expect(run["exit_code"]?.integer == 0)
            #expect(run["mode"]?.string == "upsert")
            #expect(run["map"]?.string == UploadHarness.mapID)
        }
        let second = try #require(byInput["b.csv"])
        #expect(second["command"]?.string == "watch")
        #expect(second["status"]?.string == "completed_with_rejects")
        #expect(second["rows_read"]?.integer == 4)
        #expect(second["imported"]?.integer == 3)
        #expect(second["rejected"]?.integer == 1)
        #expect(second["report_dir"]?.string == drop + "/processed")
        #expect(byInput["a.csv"]?["imported"]?.integer == 5)
        // Every id differs, and the latest comes first.
        let ids = runs.compactMap { $0["run_id"]?.string }
        #expect(Set(ids).count == 6)
        let started = runs.compactMap { $0["started"]?.string }
        #expect(started == started.sorted(by: >))

        // Filters and the table.
        let rejected = try await runCLIAsync([
            "history", "--status", "completed_with_rejects", "--json", "--state-dir", state,
        ])
        #expect(JSONParser.parse(Array(rejected.stdout.utf8))?.array?.count == 1)
        let limited = try await runCLIAsync(["history", "--limit", "2", "--state-dir", state])
        #expect(limited.stdout.split(separator: "\n").count == 3, "\(limited.stdout)")
        #expect(limited.stdout.hasPrefix("RUN ID"))
        let otherMap = try await runCLIAsync(["history", "--map", "nope", "--json", "--state-dir", state])
        #expect(otherMap.stdout == "[]\n")
        // history show takes the start of an id, and prints the summary with its run_id.
        let shown = try await runCLIAsync(["history", "show", String(ids[0].prefix(22)), "--state-dir", state])
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("\"run_id\": \"\(ids[0])\""))
        let missing = try await runCLIAsync(["history", "show", "nope", "--state-dir", state])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no run \"nope\""))

        // A run killed with -9 part-way: interrupted, once its process is gone.
        var slowPlan = FaultPlan()
        slowPlan.latencyMilliseconds = 300
        harness.server.store.setFaults(slowPlan)
        harness.dir.write("slow.csv", Self.rows(Array(1...40), prefix: "K"))
        harness.dir.write(
            "slow.yml", template.replacingOccurrences(of: harness.input, with: harness.dir.path + "/slow.csv"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "run", harness.dir.path + "/slow.yml", "--batch-size", "1", "--concurrency", "1", "--state-dir", state,
        ]
        process.standardError = FileHandle.nullDevice
        try process.run()
        let history = try RunHistory(stateDirectory: state)
        var running = false
        for _ in 0..<100 where !running {
            try await Task.sleep(for: .milliseconds(50))
            running = try history.list(limit: 1, status: "running").count == 1
        }
        #expect(running)
        try await Task.sleep(for: .milliseconds(400))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let killed = try #require(try history.list(limit: 1).first)
        #expect(killed.status == "interrupted")
        #expect(killed.input?.hasSuffix("slow.csv") == true)
        #expect(killed.error?.contains("ended without finishing") == true)
    }

    /// The map as `remote id → properties and geometry`, to compare feature by feature.
    static func mapState(_ harness: UploadHarness) -> [String: String] {
        harness.stored.reduce(into: [:]) { state, feature in
            let id = feature["ext_id"]?.string ?? "?"
            let properties = feature.properties.filter { $0.1 != .null }.sorted { $0.0 < $1.0 }
                .map { "\($0.0)=\($0.1.text)" }.joined(separator: ";")
            state[id] = properties + "|" + feature.geometry.text
        }
    }

    /// A PATCH of one feature, as someone on the map would make it.
    static func changeByHand(_ harness: UploadHarness, id: String, label: String) async throws {
        let body =
            #"{"type":"FeatureCollection","remoteField":"ext_id","features":[{"type":"Feature","geometry":null,"properties":{"ext_id":"\#(id)","label":"\#(label)"}}]}"#
        let worker = CurlWorker(name: "hand")
        let result = await worker.send(
            HTTPRequest(
                method: "PATCH", url: harness.server.url + "/api/v1/maps/\(UploadHarness.mapID)/features",
                headers: ["Authorization: Bearer test-key", "Content-Type: application/json"], body: Array(body.utf8)))
        #expect((try? result.get().status) == 200)
    }

    @Test(
        "rollback of a sync that deleted, changed and created features restores the map feature by feature, also after kill -9",
        .timeLimit(minutes(4)))
    func rollbackAfterSync() async throws {
        let harness = try await UploadHarness(rows: 40)
        let state = harness.dir.path + "/state"
        let first = try await runCLIAsync(["run", Self.pipeline(harness), "--state-dir", state])
        #expect(first.status == 0, "\(first.stderr)")
        let before = Self.mapState(harness)
        #expect(before.count == 40)

        // The next export: rows 1-10 gone, 11-20 renamed, 41-45 new.
        harness.dir.write(
            "sites.csv",
            Self.rows(Array(11...45), name: { (11...20).contains($0) ? "Site \($0) (moved)" : "Site \($0)" }))
        let sync = Self.pipeline(harness, mode: "sync", extra: "  undo: true\nsync:\n  max_delete: \"50%\"")
        let synced = try await runCLIAsync(["run", sync, "--state-dir", state])
        #expect(synced.status == 0, "\(synced.stderr)")
        #expect(synced.stderr.contains("5 created, 10 updated, 20 unchanged, 10 deleted"), "\(synced.stderr)")
        #expect(Self.mapState(harness) != before)
        let runID = try #require(try RunHistory(stateDirectory: state).list(limit: 1).first?.runID)
        let undoFile = UndoLog.path(stateDirectory: state, runID: runID)
        let attributes = try FileManager.default.attributesOfItem(atPath: undoFile)
        #expect((attributes[.posixPermissions] as? Int) == 0o600, "the undo file is its owner's only")
        // gzip, readable by any gzip tool.
        #expect(Array(FileManager.default.contents(atPath: undoFile)!.prefix(2)) == [0x1F, 0x8B])

        // The dry run says what it would do and does nothing.
        let writes = harness.writes
        let dry = try await runCLIAsync(["rollback", runID, "--dry-run", "--state-dir", state, "--pipeline", sync])
        #expect(dry.status == 0, "\(dry.stderr)")
        let planned = dry.stdout.split(separator: "\n")
        #expect(planned.filter { $0.hasPrefix("recreate,") }.count == 10)
        #expect(planned.filter { $0.hasPrefix("restore,") }.count == 10)
        #expect(planned.filter { $0.hasPrefix("delete,") }.count == 5)
        #expect(planned.contains("delete,S41"))
        #expect(harness.writes == writes)

        // Slowed down, one feature a request: killed part-way.
        var slowPlan = FaultPlan()
        slowPlan.latencyMilliseconds = 250
        harness.server.store.setFaults(slowPlan)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "rollback", runID, "--batch-size", "1", "--state-dir", state, "--pipeline", sync, "--report-dir",
            harness.dir.path + "/reports",
        ]
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let killedAt = try await onThread {
            while harness.writes < writes + 6 && process.isRunning { usleep(5000) }
            kill(process.processIdentifier, SIGKILL)
            return harness.writes - writes
        }
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal, "the rollback finished before the kill")
        #expect(killedAt >= 6)
        let partly = Self.mapState(harness)
        #expect(partly != before, "the kill came before the end")
        harness.server.store.setFaults(FaultPlan())

        // Run again: finishes, sending only what is left.
        let writesBeforeRerun = harness.writes
        let rerun = try await runCLIAsync([
            "rollback", runID, "--state-dir", state, "--pipeline", sync, "--report-dir", harness.dir.path + "/reports",
        ])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(Self.mapState(harness) == before, "feature by feature as before the sync")
        #expect(harness.writes - writesBeforeRerun <= 3, "a PATCH and a DELETE at most: the rest was done")
        #expect(rerun.stderr.contains("already as before"), "\(rerun.stderr)")
        let report = harness.dir.read("reports/\(runID).rollback.csv")
        #expect(report.hasPrefix("remote_id,action,as_before\n"))
        #expect(report.split(separator: "\n").dropFirst().allSatisfy { $0.hasSuffix(",yes") }, "\(report)")
        let history = try RunHistory(stateDirectory: state)
        #expect(try history.find(runID)?.rolledBackBy != nil)
        #expect(
            try history.list(limit: 5).filter { $0.command == "rollback" }.map(\.status).sorted() == [
                "completed", "interrupted",
            ])

        // A feature changed by hand after a run is left alone, unless --force.
        let again = try await runCLIAsync(["run", sync, "--state-dir", state])
        #expect(again.status == 0, "\(again.stderr)")
        let secondRun = try #require(try history.list(limit: 1).first?.runID)
        try await Self.changeByHand(harness, id: "S12", label: "Renamed on the map")
        let careful = try await runCLIAsync(["rollback", secondRun, "--state-dir", state, "--pipeline", sync])
        #expect(careful.status == 1, "\(careful.stderr)")
        #expect(careful.stderr.contains("S12 changed on the map after run"), "\(careful.stderr)")
        var now = Self.mapState(harness)
        #expect(now["S12"]?.contains("Renamed on the map") == true)
        now["S12"] = before["S12"]
        #expect(now == before, "every other feature is back")
        let forced = try await runCLIAsync(["rollback", secondRun, "--force", "--state-dir", state, "--pipeline", sync])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(Self.mapState(harness) == before)
    }

    @Test("a sync killed with -9 part-way is rolled back from what its undo file holds", .timeLimit(minutes(3)))
    func rollbackOfKilledRun() async throws {
        let harness = try await UploadHarness(rows: 30)
        let state = harness.dir.path + "/state"
        #expect(try await runCLIAsync(["run", Self.pipeline(harness), "--state-dir", state]).status == 0)
        let before = Self.mapState(harness)
        harness.dir.write(
            "sites.csv", Self.rows(Array(6...40), name: { $0 % 2 == 0 ? "Site \($0) (renamed)" : "Site \($0)" }))
        let sync = Self.pipeline(harness, mode: "sync", extra: "  undo: true\nsync:\n  max_delete: \"50%\"")
        var slow = FaultPlan()
        slow.latencyMilliseconds = 200
        harness.server.store.setFaults(slow)
        let writes = harness.writes
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["run", sync, "--batch-size", "1", "--concurrency", "2", "--state-dir", state]
        process.standardError = FileHandle.nullDevice
        try process.run()
        try await onThread {
            while harness.writes < writes + 5 && process.isRunning { usleep(5000) }
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal, "the run finished before the kill")
        harness.server.store.setFaults(FaultPlan())
        #expect(Self.mapState(harness) != before)
        let history = try RunHistory(stateDirectory: state)
        let killed = try #require(try history.list(limit: 1).first)
        #expect(killed.status == "interrupted")
        #expect(killed.undo == UndoLog.path(stateDirectory: state, runID: killed.runID))
        let rollback = try await runCLIAsync(["rollback", killed.runID, "--state-dir", state, "--pipeline", sync])
        #expect(rollback.status == 0, "\(rollback.stderr)")
        #expect(Self.mapState(harness) == before, "feature by feature as before the killed sync")
    }

    @Test("rollback restores on the run's server; another configured one is refused unless --api-url names it")
    func rollbackServer() async throws {
        let harness = try await UploadHarness(rows: 3)
        let state = harness.dir.path + "/state"
        let sync = Self.pipeline(harness, mode: "upsert", extra: "  undo: true")
        #expect(try await runCLIAsync(["run", sync, "--state-dir", state]).status == 0)
        let runID = try #require(try RunHistory(stateDirectory: state).list(limit: 1).first?.runID)
        let other = try await runCLIAsync(
            ["rollback", runID, "--dry-run", "--state-dir", state],
            environment: ["MAPSEMBLE_API_URL": "https://elsewhere.example.test", "MAPSEMBLE_API_KEY": "test-key"])
        #expect(other.status == 2)
        #expect(other.stderr.contains("give --api-url"), "\(other.stderr)")
        let same = try await runCLIAsync(
            ["rollback", runID, "--dry-run", "--state-dir", state], environment: ["MAPSEMBLE_API_KEY": "test-key"])
        #expect(same.status == 0, "\(same.stderr)")
        #expect(same.stdout.split(separator: "\n").count == 3, "\(same.stdout)")
        #expect(same.stdout.hasPrefix("delete,S1\n"))
    }

    @Test("report.undo is refused, before anything is sent, where it cannot be exact")
    func undoRefusals() async throws {
        let harness = try await UploadHarness(rows: 3)
        let state = harness.dir.path + "/state"
        for mode in ["replace", "create"] {
            let refused = Self.pipeline(harness, mode: mode, extra: "  undo: true")
            // --create-fields would add fields in the pre-flight: the refusal comes before it.
            let result = try await runCLIAsync(["run", refused, "--state-dir", state, "--create-fields"])
            #expect(result.status == 2)
            #expect(result.stderr.contains("mode \(mode)"), "\(result.stderr)")
            #expect(result.stderr.contains("run 20"), "the last line names the run")
            #expect(harness.server.store.requestCounts.all == 0, "nothing sent, nothing read")
        }
        let noUndo = try await runCLIAsync(["run", Self.pipeline(harness), "--state-dir", state])
        #expect(noUndo.status == 0)
        let runID = try #require(try RunHistory(stateDirectory: state).list(limit: 1).first?.runID)
        let refused = try await runCLIAsync(["rollback", runID, "--state-dir", state])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("was not made with report.undo: true"), "\(refused.stderr)")
    }

    @Test("a new history opened by many runs at once: each opens it and records its run")
    func historyOpenedAtOnce() throws {
        // Repeated on fresh directories: the first openers race to make the table and its columns.
        for round in 0..<20 {
            let state = TempDir().path + "/state\(round)"
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 8) { index in
                do {
                    let history = try RunHistory(stateDirectory: state)
                    try history.begin(
                        RunRecord(
                            runID: "r\(index)", command: "run", input: nil, pipeline: nil, map: nil, mode: nil))
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            #expect(failures.withLock { $0 } == [], "round \(round)")
            #expect(try RunHistory(stateDirectory: state).list(limit: 20).count == 8, "round \(round)")
        }
    }

    @Test("undo files: complete gzip members are read, a member cut short by a crash is not")
    func undoMembers() throws {
        let members = try ["first\n", "second\n", "third\n"].map { try Gzip.member(Array($0.utf8)) }
        let whole = members.joined()
        #expect(
            Gzip.members(Array(whole)).map { String(decoding: $0, as: UTF8.self) } == [
                "first\n", "second\n", "third\n",
            ])
        for cut in 1..<members[2].count {
            let torn = Array(whole.dropLast(cut))
            #expect(Gzip.members(torn).count == 2, "cut \(cut) bytes short")
        }
        // Differential: what gunzip makes of the same bytes.
        let dir = TempDir()
        let path = dir.write("members.gz", Array(whole))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = ["-dc", path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(String(decoding: data, as: UTF8.self) == "first\nsecond\nthird\n")
    }

    @Test("the remote id read from a feature's bytes is the one JSON parsing finds, for generated ids and labels")
    func remoteIDScan() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ab\"\\:,{}[] é\u{1F600}\n\t0123456789")
        func text(_ length: Int) -> String {
            String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
        }
        let key = Array(#""ext_id":"#.utf8)
        for round in 0..<5000 {
            let id: JSONValue =
                round % 5 == 0
                ? .number(Double(Int.random(in: -1000...100_000))) : .string(text(Int.random(in: 1...12)))
            // Labels and other values that hold the member's name as text, quotes and all.
            let label = text(Int.random(in: 0...8)) + (round % 2 == 0 ? #""ext_id":"x""# : "") + text(3)
            let feature: JSONValue = [
                "type": "Feature", "geometry": ["type": "Point", "coordinates": [1.5, -2]],
                "properties": ["label": .string(label), "note": .string(#"\"ext_id\": 1"#), "ext_id": id],
            ]
            let bytes = feature.bytes
            #expect(
                UndoLog.remoteID(in: bytes[...], key: key)
                    == JSONParser.parse(bytes)?["properties"]?["ext_id"]?.remoteKey, "\(feature.text)")
        }
    }

    @Test("rollback decides from what a feature was, what the run made it and what it is")
    func rollbackDecisions() {
        let before: JSONValue = [
            "type": "Feature", "geometry": ["type": "Point", "coordinates": [1, 2]],
            "properties": ["ext_id": "A", "label": "Old", "score": 1],
        ]
        let after: JSONValue = [
            "type": "Feature", "geometry": ["type": "Point", "coordinates": [1, 2]],
            "properties": ["ext_id": "A", "label": "New", "score": 2],
        ]
        var current = after
        #expect(Rollback.step("A", before: before, after: after, current: current).action == .restore)
        #expect(Rollback.step("A", before: before, after: after, current: before).action == .none)
        #expect(Rollback.step("A", before: nil, after: after, current: current).action == .delete)
        #expect(Rollback.step("A", before: nil, after: after, current: nil).action == .none)
        #expect(Rollback.step("A", before: before, after: .null, current: nil).action == .recreate)
        #expect(Rollback.step("A", before: before, after: .null, current: after).action == .conflict)
        // Numbers stored as text, empty text as null: the same.
        current = [
            "type": "Feature", "geometry": ["type": "Point", "coordinates": [1, 2]],
            "properties": ["ext_id": "A", "label": "New", "score": "2", "note": ""],
        ]
        #expect(Rollback.step("A", before: before, after: after, current: current).action == .restore)
        current = [
            "type": "Feature", "geometry": ["type": "Point", "coordinates": [1, 3]],
            "properties": ["ext_id": "A", "label": "New", "score": 2],
        ]
        let step = Rollback.step("A", before: before, after: after, current: current)
        #expect(step.action == .conflict)
        #expect(step.forced == .restore)
        // Someone changed what the run did not touch (a property, the point): changed since.
        current = [
            "type": "Feature", "geometry": ["type": "Point", "coordinates": [1, 2]],
            "properties": ["ext_id": "A", "label": "New", "score": 2, "note": "by hand"],
        ]
        #expect(Rollback.step("A", before: before, after: after, current: current).action == .conflict)
        // A PATCH without a point kept the stored one: the feature is as the run left it.
        let pointless: JSONValue = [
            "type": "Feature", "geometry": .null, "properties": ["ext_id": "A", "label": "New"],
        ]
        current = [
            "type": "Feature", "geometry": ["type": "Point", "coordinates": [1, 2]],
            "properties": ["ext_id": "A", "label": "New", "score": 1],
        ]
        #expect(Rollback.step("A", before: before, after: pointless, current: current).action == .restore)
        // What goes back is what the run changed: a property it added is cleared, the point only
        // when it sent one, the rest untouched.
        let restoring = Rollback.restoring(
            before, after: ["geometry": .null, "properties": ["ext_id": "A", "label": "New", "extra": "x"]])
        #expect(restoring["properties"]?["extra"] == .null)
        #expect(restoring["properties"]?["label"]?.string == "Old")
        #expect(restoring["properties"]?["score"] == nil)
        #expect(restoring["geometry"] == .null)
        #expect(Rollback.restoring(before, after: after)["geometry"] == before["geometry"])
        // A feature the run deleted goes back whole.
        #expect(Rollback.restoring(before, after: .null)["properties"] == before["properties"])
    }

    @Test(
        "the version: --version, User-Agent on API, geocoder and webhook requests, tool_version in the reports and history"
    )
    func version() async throws {
        let printed = try await runCLIAsync(["--version"])
        #expect(printed.status == 0)
        #expect(printed.stdout == ToolVersion.described + "\n")
        // Built from a checkout: the commit checked out, as git itself names it.
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        git.arguments = ["-C", projectDirectory, "rev-parse", "HEAD"]
        let out = Pipe()
        git.standardOutput = out
        git.standardError = FileHandle.nullDevice
        if FileManager.default.fileExists(atPath: projectDirectory + "/.git"), (try? git.run()) != nil {
            let head = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            git.waitUntilExit()
            #expect(printed.stdout == "\(ToolVersion.number) (commit \(head.prefix(12)))\n", "\(head)")
        }
        let harness = try await UploadHarness(rows: 3, configure: { $0.geocoder = SandboxGeocoder() })
        let receiver = try WebhookReceiver()
        defer { receiver.stop() }
        let state = harness.dir.path + "/state"
        let extra =
            Self.notify(receiver.url, on: "always")
            + "geocode:\n  address: \"{name}\"\n  when: always\n  provider: photon\n  url: \(harness.server.url)\n  user_agent: \"acme-import/1.0 (ops@example.org)\"\n  cache: \(harness.dir.path)/geocodes.sqlite\n"
        let result = try await runCLIAsync(["run", Self.pipeline(harness, extra: extra), "--state-dir", state])
        #expect(result.status <= 1, "\(result.stderr)")
        let agents = harness.server.store.userAgents
        #expect(agents.contains(ToolVersion.userAgent), "\(agents)")
        #expect(agents.contains(ToolVersion.userAgent + " acme-import/1.0 (ops@example.org)"), "\(agents)")
        #expect(agents.allSatisfy { $0.hasPrefix("mapsemble-import/") }, "\(agents)")
        #expect(receiver.requests.first?.head.lowercased().contains("user-agent: \(ToolVersion.userAgent)") == true)
        #expect(harness.dir.read("reports/sites.summary.json").contains("\"tool_version\": \"\(ToolVersion.number)\""))
        #expect(harness.dir.read("reports/sites.report.html").contains(ToolVersion.userAgent))
        #expect(try RunHistory(stateDirectory: state).list(limit: 1).first?.toolVersion == ToolVersion.number)
    }

    /// A GET over libcurl (the tool's own transport).
    func fetch(_ url: String) async throws -> (status: Int, body: String) {
        let worker = CurlWorker(name: "test")
        switch await worker.send(HTTPRequest(method: "GET", url: url, timeoutSeconds: 5)) {
        case .success(let response): return (response.status, String(decoding: response.body, as: UTF8.self))
        case .failure(let error): throw error
        }
    }
}
