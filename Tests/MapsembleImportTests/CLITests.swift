import Foundation
import Testing

@Suite("Command line, end to end (the built binary)", .serialized)
struct CLITests {
    let samples = projectDirectory + "/samples"

    @Test("the bad-rows sample: exit 1, every bad row in rejected.csv with its code and line, byte for byte")
    func badRowsSample() throws {
        let dir = TempDir()
        let result = try runCLI(["validate", "\(samples)/bad-rows/pipeline.yml", "--report-dir", dir.path])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        let expected = try String(contentsOfFile: "\(samples)/bad-rows/expected/sites.rejected.csv", encoding: .utf8)
        #expect(dir.read("sites.rejected.csv") == expected)
        let summary = try String(contentsOfFile: "\(samples)/bad-rows/expected/sites.summary.json", encoding: .utf8)
        #expect(
            maskDuration(dir.read("sites.summary.json"))
                == summary.replacingOccurrences(of: "samples/bad-rows/sites.csv", with: "\(samples)/bad-rows/sites.csv")
        )
        #expect(result.stderr.contains("3 of 14 rows would be imported, 11 rejected"))
    }

    @Test("inspect: the profile on stdout, --json for scripts, and --emit-config that validate accepts unedited")
    func inspect() throws {
        let file = "\(samples)/stations-de/ladesaeulen.csv"
        let text = try runCLI(["inspect", file])
        #expect(text.status == 0)
        #expect(text.stdout.contains("delimiter  \";\", decimal comma"))
        #expect(text.stdout.contains("longitude \"Längengrad\", latitude \"Breitengrad\""))

        let json = try runCLI(["inspect", file, "--json"])
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["rows"] as? Int == 10)
        #expect(object["decimal"] as? String == "comma")
        #expect((object["coordinates"] as? [String: Any])?["latitude"] as? String == "Breitengrad")

        let dir = TempDir()
        let emitted = try runCLI(["inspect", file, "--emit-config"])
        #expect(emitted.status == 0)
        let pipeline = dir.write("pipeline.yml", emitted.stdout)
        let result = try runCLI(["validate", pipeline, "--report-dir", dir.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("10 of 10 rows would be imported"))

        let missing = try runCLI(["inspect", dir.path + "/nope.csv"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("nope.csv: cannot open the input"))
    }

    @Test("the stores sample: exit 0 and a valid GeoJSON FeatureCollection with [lon, lat] points")
    func storesSample() throws {
        let dir = TempDir()
        let result = try runCLI([
            "run", "\(samples)/stores/pipeline.yml", "--dry-run", "--output", "-", "--report-dir", dir.path,
        ])
        #expect(result.status == 0)
        let collection = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect(collection["type"] as? String == "FeatureCollection")
        let features = collection["features"] as! [[String: Any]]
        #expect(features.count == 15)
        let geometry = features[0]["geometry"] as! [String: Any]
        #expect(geometry["coordinates"] as? [Double] == [13.404954, 52.520008])
        let properties = features[0]["properties"] as! [String: Any]
        #expect(properties["store_id"] as? String == "ST-0001")
        #expect(properties["revenue"] as? Double == 1250000.50)
        #expect(
            dir.read("stores.rejected.csv")
                == "_error_line,_error_code,_error_column,_error_message,store_id,name,city,country,lat,lon,opened,revenue_eur,phone\n"
        )
        #expect(dir.read("stores.summary.json").contains("\"status\": \"completed\""))
    }

    @Test("--output-batches writes each request body on a line")
    func outputBatches() throws {
        let dir = TempDir()
        let result = try runCLI([
            "run", "\(samples)/stores/pipeline.yml", "--dry-run", "--batch-size", "4", "--output-batches", "-",
            "--report-dir", dir.path,
        ])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 4)
        for line in lines {
            let body = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            #expect(body["remoteField"] as? String == "store_id")
        }
        #expect(
            lines.map {
                ((try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["features"] as! [Any]).count
            } == [4, 4, 4, 3])
    }

    @Test("standard input and flags alone, without a pipeline file")
    func stdinInput() throws {
        let dir = TempDir()
        let result = try runCLI(
            ["run", "--dry-run", "--input", "-", "--output", "-", "--report-dir", dir.path], in: dir.path,
            stdin: "name,latitude,longitude\nA,1.5,2.5\nB,x,3\n")
        #expect(result.status == 1)
        let collection = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect((collection["features"] as! [Any]).count == 1)
        #expect(dir.read("stdin.rejected.csv").contains("3,invalid_number,latitude,"))
    }

    @Test("GeoJSON on standard input: kept in an owner-only temporary file for its two passes, then removed")
    func stdinGeoJSON() throws {
        let dir = TempDir()
        let spool = dir.path + "/tmp"
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        let pipeline = dir.write(
            "pipeline.yml", "source:\n  path: \"-\"\n  format: geojson\nproperties:\n  label: name\n")
        let result = try runCLI(
            ["run", pipeline, "--dry-run", "--output", "-", "--report-dir", dir.path], in: dir.path,
            stdin: """
                {"type": "FeatureCollection", "features": [
                {"type": "Feature", "properties": {"name": "A"}, "geometry": {"type": "Point", "coordinates": [2.35, 48.85]}},
                {"type": "Feature", "properties": {"name": "B", "kind": "shop"}, "geometry": {"type": "LineString", "coordinates": [[2, 48], [3, 49]]}},
                {"type": "Feature", "properties": {"name": "C"}, "geometry": {"type": "Point", "coordinates": [2.35]}}
                ]}
                """, environment: ["TMPDIR": spool])
        #expect(result.status == 1, "\(result.stderr)")
        let collection = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect((collection["features"] as! [Any]).count == 2)
        #expect(
            dir.read("stdin.rejected.geojsonl").contains(
                "\"name\": \"C\"}, \"geometry\": {\"type\": \"Point\", \"coordinates\": [2.35]}"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty)
    }

    @Test("without an API key, run stops before sending anything: exit 2 and how to set one")
    func noAPIKey() throws {
        let dir = TempDir()
        let result = try runCLI(["run", "\(samples)/stores/pipeline.yml", "--report-dir", dir.path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("no API key: set MAPSEMBLE_API_KEY"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/stores.summary.json"))
    }

    @Test("plain http is refused for hosts other than this machine")
    func plainHTTPRefused() throws {
        let result = try runCLI(
            ["run", "\(samples)/stores/pipeline.yml", "--api-url", "http://maps.example.com"],
            environment: ["MAPSEMBLE_API_KEY": "k"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("must use https://"))
    }

    @Test("config errors: exit 2, one line naming the file and line, no stack trace")
    func configError() throws {
        let dir = TempDir()
        let pipeline = dir.write("pipeline.yml", "version: 1\nsource:\n  path: x.csv\n  delimeter: \";\"\n")
        let result = try runCLI(["validate", pipeline])
        #expect(result.status == 2)
        #expect(
            result.stderr
                == "mapsemble-import: error: \(pipeline):4: unknown key \"source.delimeter\"; expected one of: path, format, delimiter, encoding, header, quote, decimal, sheet, max_record_bytes, max_columns, headers, ca_file, member\n"
        )
    }

    @Test(
        "unreadable input and usage errors exit 2 with one sentence",
        arguments: [
            ["validate", "--input", "/nonexistent/stores.csv"],
            ["run", "--dry-run", "--batch-size", "5000", "--input", "x.csv"],
            ["run", "--dry-run", "--mode", "merge", "--input", "x.csv"], ["frobnicate"],
        ])
    func usageErrors(arguments: [String]) throws {
        let dir = TempDir()
        let result = try runCLI(arguments, in: dir.path)
        #expect(result.status == 2)
        #expect(result.stderr.contains("error"))
        #expect(!result.stderr.contains("Fatal error"))
        #expect(result.stdout.isEmpty)
    }

    @Test("--max-rejects passed: exit 3, status aborted, the books still balance")
    func maxRejects() throws {
        let dir = TempDir()
        let result = try runCLI([
            "validate", "\(samples)/bad-rows/pipeline.yml", "--max-rejects", "2", "--report-dir", dir.path,
        ])
        #expect(result.status == 3)
        #expect(result.stderr.contains("more than report.max_rejects allows"))
        let summary =
            try JSONSerialization.jsonObject(with: Data(dir.read("sites.summary.json").utf8)) as! [String: Any]
        #expect(summary["status"] as? String == "aborted")
        let read = summary["rows_read"] as! Int
        #expect(read == (summary["imported"] as! Int) + (summary["rejected"] as! Int) + (summary["not_sent"] as! Int))
    }

    @Test("the API key never appears in output, logs or reports")
    func secretStaysSecret() throws {
        let dir = TempDir()
        let secret = "msk_live_5ecret_value_42"
        let result = try runCLI(
            [
                "run", "\(samples)/stores/pipeline.yml", "--dry-run", "--output", "-", "--output-batches",
                dir.path + "/b.ndjson",
                "--report-dir", dir.path, "--log-format", "json", "-v",
            ],
            environment: ["MAPSEMBLE_API_KEY": secret])
        #expect(result.status == 0)
        #expect(!result.stdout.contains(secret))
        #expect(!result.stderr.contains(secret))
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            #expect(!dir.read(file).contains(secret), "\(file) holds the key")
        }
    }

    @Test("--log-format json: the closing line is one JSON object")
    func jsonLog() throws {
        let dir = TempDir()
        let result = try runCLI([
            "validate", "\(samples)/bad-rows/pipeline.yml", "--log-format", "json", "--report-dir", dir.path,
        ])
        let line = try #require(result.stderr.split(separator: "\n").last)
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        #expect(object["rejected"] as? Int == 11)
        #expect(object["status"] as? String == "completed_with_rejects")
    }
}

@Suite("Command line: Ctrl-C")
struct InterruptTests {
    @Test("SIGINT mid-run: exit 130, the output is still valid GeoJSON, the reports add up", .timeLimit(minutes(1)))
    func interrupt() throws {
        let dir = TempDir()
        let rows = 300_000
        let input = writeRows(dir, rows: rows)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["run", "--dry-run", "--input", input, "--output", "-", "--report-dir", dir.path]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Nobody reads stdout for now: the run fills the pipe and waits there (back-pressure).
        let first = out.fileHandleForReading.readData(ofLength: 64)
        #expect(String(decoding: first, as: UTF8.self).hasPrefix("{\"type\":\"FeatureCollection\""))
        Thread.sleep(forTimeInterval: 0.3)
        kill(process.processIdentifier, SIGINT)
        let rest = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130, "\(stderr)")
        let collection = try JSONSerialization.jsonObject(with: first + rest) as! [String: Any]
        let written = (collection["features"] as! [Any]).count
        let summary = try JSONSerialization.jsonObject(with: Data(dir.read("rows.summary.json").utf8)) as! [String: Any]
        #expect(summary["status"] as? String == "aborted")
        let read = summary["rows_read"] as! Int
        #expect(read < rows)
        #expect(summary["imported"] as? Int == written)
        #expect(read == written + (summary["rejected"] as! Int) + (summary["not_sent"] as! Int))
    }
}

@Suite("Command line: sandbox, maps, fields and run against it", .serialized)
struct SandboxCLITests {

    @Test(
        "a user tries a pipeline: sandbox, maps, fields, run, and the stored features on exit", .timeLimit(minutes(1)))
    func tryAPipeline() throws {
        let dir = TempDir()
        let samples = projectDirectory + "/samples"
        let (process, out, url) = try startSandbox(["--pipeline", "\(samples)/stores/pipeline.yml", "--print-features"])
        defer { if process.isRunning { process.terminate() } }
        let env = ["MAPSEMBLE_API_KEY": "sandbox-key"]
        let maps = try runCLI(["maps", "--api-url", url], environment: env)
        #expect(maps.status == 0)
        #expect(maps.stdout.contains("00000000-0000-0000-0000-000000000000  Sandbox map"))
        let fields = try runCLI(
            ["fields", "00000000-0000-0000-0000-000000000000", "--api-url", url, "--json"], environment: env)
        let object = try JSONSerialization.jsonObject(with: Data(fields.stdout.utf8)) as! [String: Any]
        #expect(object["remoteField"] as? String == "store_id")
        let run = try runCLI(
            ["run", "\(samples)/stores/pipeline.yml", "--api-url", url, "--report-dir", dir.path], environment: env)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("imported 15 of 15 rows (15 created, 0 updated; 1 request, 0 retries)"))
        let wrongKey = try runCLI(["maps", "--api-url", url], environment: ["MAPSEMBLE_API_KEY": "nope"])
        #expect(wrongKey.status == 2)
        #expect(wrongKey.stderr.contains("API key was refused"))
        kill(process.processIdentifier, SIGINT)
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let lines = printed.split(separator: "\n")
        #expect(lines.count == 15)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        #expect((first["properties"] as! [String: Any])["store_id"] as? String == "ST-0001")
    }

    @Test("run --sandbox imports a sample into an embedded sandbox and shows what landed")
    func embeddedSandbox() throws {
        let dir = TempDir()
        let result = try runCLI([
            "run", "\(projectDirectory)/samples/stores/pipeline.yml", "--sandbox", "--report-dir", dir.path,
        ])
        #expect(result.status == 0)
        #expect(result.stderr.contains("now holds 15 features"))
        #expect(result.stderr.contains("Kaffeehaus Mitte  [13.404954, 52.520008]"))
        #expect(dir.read("stores.summary.json").contains("\"created\": 15"))
    }

    @Test("a southern-hemisphere \"lat, lon\" column imports into the sandbox, every sign combination")
    func southernPoints() throws {
        let dir = TempDir()
        dir.write(
            "places.csv",
            "id,name,where\nAU1,Melbourne,\"-37.8136, 144.9631\"\nBR1,Rio,\"-22.9068, -43.1729\"\n"
                + "ZA1,Cape Town,\"-33.9249, 18.4241\"\nUS1,New York,\"40.7128, -74.0060\"\nPT1,Atlantic,\"-38.183646, -16.774028\"\n"
        )
        let pipeline = dir.write(
            "pipeline.yml",
            """
            version: 1
            source: { path: places.csv }
            target: { map_id: "00000000-0000-0000-0000-000000000000" }
            coordinates: { point: where }
            properties: { label: "{name}", remote_id: id, remote_field: store_id }
            report: { dir: reports }
            """)
        let result = try runCLI(["run", pipeline, "--sandbox", "--report-dir", dir.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("now holds 5 features"), "\(result.stderr)")
        #expect(result.stderr.contains("[144.9631, -37.8136]"), "\(result.stderr)")
        #expect(result.stderr.contains("[-43.1729, -22.9068]"), "\(result.stderr)")
        #expect(result.stderr.contains("[18.4241, -33.9249]"), "\(result.stderr)")
        let summary = dir.read("places.summary.json")
        #expect(summary.contains("\"created\": 5") && summary.contains("\"rejected\": 0"), "\(summary)")
    }

    @Test("the API key stays out of every output, log line and report, retries and --verbose included")
    func secretStaysSecretWhileUploading() throws {
        let dir = TempDir()
        let secret = "msk_live_5ecret_value_99"
        let samples = projectDirectory + "/samples"
        let (process, _, url) = try startSandbox([
            "--pipeline", "\(samples)/bad-rows/pipeline.yml", "--api-key", secret, "--rate-limit", "0.5",
            "--retry-after", "0",
            "--server-errors", "0.2", "--seed", "5",
        ])
        defer { process.terminate() }
        let result = try runCLI(
            [
                "run", "\(samples)/bad-rows/pipeline.yml", "--api-url", url, "--map",
                "5a9db0c0-0000-4000-8000-000000000001", "-v",
                "--batch-size", "1", "--report-dir", dir.path,
            ],
            environment: ["MAPSEMBLE_API_KEY": secret])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("retry 1 of 8"))
        #expect(!result.stderr.contains(secret))
        #expect(!result.stdout.contains(secret))
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            #expect(!dir.read(file).contains(secret), "\(file) holds the key")
        }
    }
}
