import Foundation
import MapsembleSandbox
import Testing

@testable import MapsembleImport

@Suite("Runs that geocode: addresses to points against the sandbox's geocoder, cached between runs", .serialized)
struct GeocodeRunTests {
    func run(_ config: PipelineConfig, in dir: TempDir) async throws -> RunSummary {
        var options = RunOptions()
        options.output = dir.path + "/out.geojson"
        options.backoffSeconds = 0.005
        options.stateDirectory = dir.path + "/state"
        return try await Pipeline(config: config, options: options).run()
    }

    /// A sandbox serving the geocoder's endpoints over its built-in places.
    func geocoderSandbox() async throws -> SandboxServer {
        var sandbox = SandboxConfig()
        sandbox.geocoder = SandboxGeocoder()
        return try await SandboxServer(config: sandbox)
    }

    func config(_ input: String, server: SandboxServer, in dir: TempDir) -> PipelineConfig {
        var config = PipelineConfig()
        config.source.path = input
        config.report.dir = dir.path
        config.properties.label = "name"
        var geocode = PipelineConfig.Geocode()
        geocode.address = "{street}, {city}, {country}"
        geocode.url = server.url
        geocode.rateLimit = 50
        config.geocode = geocode
        return config
    }

    @Test("a file without coordinates: every row geocoded, the unknown and the empty rejected; a rerun asks nothing")
    func addressesOnly() async throws {
        let dir = TempDir()
        let server = try await geocoderSandbox()
        let input = dir.write(
            "offices.csv",
            "id,name,street,city,country\nA1,Head office,Marienplatz 1,München,DE\nA2,Depot,,Muenchen,DE\n"
                + "A3,Lost,,Atlantis,XX\nA4,Blank,,,\nA5,Rio,Av. Atlântica 1702,Rio de Janeiro,BR\nA6,Head again,marienplatz 1, MÜNCHEN ,de\n"
        )
        let config = config(input, server: server, in: dir)
        let first = try await run(config, in: dir)
        #expect(first.rowsRead == 6)
        #expect(first.imported == 4)
        #expect(first.rejectedByCode == [.addressNotFound: 1, .missingAddress: 1])
        #expect(first.rowsRead == first.imported + first.rejected + first.notSent)
        // A1 and A6 are one address written two ways: asked once.
        #expect(first.geocoding == .init(geocoded: 4, cacheHits: 0, requests: 4))
        let output = dir.read("out.geojson")
        #expect(output.components(separatedBy: "[11.57549,48.13743]").count == 4)
        #expect(output.contains("[-43.18223,-22.90642]"))
        let rejected = dir.read("offices.rejected.csv")
        #expect(rejected.contains("address_not_found") && rejected.contains("\"Lost\"") == false)
        #expect(rejected.contains(",A3,Lost,,Atlantis,XX\n") && rejected.contains(",A4,Blank,,,\n"))
        #expect(dir.read("offices.summary.json").contains("\"geocode_requests\": 4"))

        let second = try await run(config, in: dir)
        #expect(second.imported == 4)
        #expect(second.geocoding == .init(geocoded: 4, cacheHits: 4, requests: 0))
        #expect(server.store.geocoderCounts.requests == 4, "a rerun of an unchanged file asks the geocoder nothing")
        await server.stop()
    }

    @Test("the HTML report draws geocoded rows in their own colour by confidence and lists the rows it could not place")
    func htmlReport() async throws {
        let dir = TempDir()
        let server = try await geocoderSandbox()
        let input = dir.write(
            "offices.csv",
            "id,name,street,city,country,lat,lon\nA1,Head office,Marienplatz 1,München,DE,,\nA2,Own point,,Berlin,DE,52.5,13.4\n"
                + "A3,Lost,,Atlantis,XX,,\nA4,Blank,,,,,\n")
        let summary = try await run(config(input, server: server, in: dir), in: dir)
        #expect(summary.imported == 2)
        let html = dir.read("offices.report.html")
        #expect(html.contains("<h2>Geocoding</h2>"))
        #expect(html.contains("geocoded, confidence 0.5 to 0.8"), "the sandbox answers cities with 0.5")
        #expect(html.contains("href=\"#code-address_not_found\">address_not_found (1)</a>"))
        #expect(html.contains("href=\"#code-missing_address\">missing_address (1)</a>"))
        #expect(html.contains("id=\"code-address_not_found\""), "the table of those rows")
        await server.stop()
    }

    @Test(
        "a rerun reads each unchanged block's answers whole; a replaced answer, a changed row or a higher min_confidence is never served from an old block memo"
    )
    func blockMemos() async throws {
        let dir = TempDir()
        var text = "id,name,street,city,country\n"
        for row in 1...40 { text += "M\(row),Site \(row),Street \(row),\(row % 2 == 0 ? "Berlin" : "Wien"),\n" }
        let input = dir.write("sites.csv", text)
        var sandbox = SandboxConfig()
        sandbox.geocoder = SandboxGeocoder()
        let first = try await SandboxServer(config: sandbox)
        var config = config(input, server: first, in: dir)
        config.geocode?.url = first.url
        _ = try await run(config, in: dir)
        let berlin = "[13.41053,52.52437]"
        #expect(dir.read("out.geojson").components(separatedBy: berlin).count == 21)
        let cachePath = dir.path + "/state/geocode-cache.sqlite"
        let memos = try SQLiteDatabase(path: cachePath).prepare("SELECT count(*) FROM blocks").rows()
        #expect(memos.first?.first == .integer(1))
        let again = try await run(config, in: dir)
        #expect(again.geocoding == .init(geocoded: 40, cacheHits: 40, requests: 0))
        #expect(first.store.geocoderCounts.requests == 40)

        // Another geocoder (the same URL scope) that puts Berlin elsewhere; --refresh-geocodes
        // replaces every answer: the old memo must not serve the next run.
        var moved = SandboxConfig()
        var places = SandboxGeocoder.builtIn
        places[0].longitude = 13.5
        moved.geocoder = SandboxGeocoder(places: places)
        let port = Int(first.url.split(separator: ":").last!)!
        await first.stop()
        let second = try await SandboxServer(config: moved, host: "127.0.0.1", port: port)
        #expect(second.url == first.url)
        // Another file holding one of the addresses, run with --refresh-geocodes: that answer is
        // replaced, and the first file's memo, which holds the old one, must not serve it again.
        var other = config
        other.source.path = dir.write("other.csv", "id,name,street,city,country\nX1,Other,Street 2,Berlin,\n")
        var options = RunOptions()
        options.output = dir.path + "/other.geojson"
        options.stateDirectory = dir.path + "/state"
        options.refreshGeocodes = true
        _ = try await Pipeline(config: other, options: options).run()
        #expect(dir.read("other.geojson").contains("[13.5,52.52437]"))
        let afterRefresh = try await run(config, in: dir)
        #expect(afterRefresh.geocoding?.requests == 0)
        let output = dir.read("out.geojson")
        #expect(output.contains("[13.5,52.52437]"), "the replaced answer, not the memo's")
        #expect(output.components(separatedBy: berlin).count == 20, "the other 19 Berlin rows as cached")

        // One row changed: its block is answered address by address (one new address asked).
        dir.write("sites.csv", text.replacingOccurrences(of: "Street 7,", with: "Street 77,"))
        let changed = try await run(config, in: dir)
        #expect(changed.geocoding == .init(geocoded: 40, cacheHits: 39, requests: 1))

        // A higher min_confidence than the memo's answers: the rows are rejected with their match.
        config.geocode?.minConfidence = 0.9
        let strict = try await run(config, in: dir)
        #expect(strict.rejectedByCode == [.geocodeLowConfidence: 40])
        #expect(dir.read("sites.rejected.csv").contains("is \"\"Berlin, DE\"\" with confidence 0.5"))

        // Another template over the same columns asks other questions: no old block answers them.
        config.geocode?.minConfidence = 0
        config.geocode?.address = "{street}, {city}, {country}, Europe"
        let retemplated = try await run(config, in: dir)
        #expect(retemplated.geocoding == .init(geocoded: 40, cacheHits: 0, requests: 40))
        await second.stop()
    }

    @Test("when: missing geocodes only the rows without coordinates; min_confidence rejects weak matches")
    func missingOnly() async throws {
        let dir = TempDir()
        let server = try await geocoderSandbox()
        let input = dir.write(
            "mixed.csv",
            "id,name,street,city,country,lat,lon\nB1,Has point,,Berlin,DE,52.5,13.4\nB2,Needs one,,Wien,AT,,\n")
        var config = config(input, server: server, in: dir)
        let summary = try await run(config, in: dir)
        #expect(summary.imported == 2)
        #expect(summary.geocoding?.geocoded == 1)
        #expect(server.store.geocoderCounts.requests == 1)
        let output = dir.read("out.geojson")
        #expect(output.contains("[13.4,52.5]") && output.contains("[16.37208,48.20849]"))

        // The sandbox's places are cities (confidence 0.5 from Nominatim's place rank 16).
        config.geocode?.minConfidence = 0.6
        config.geocode?.provider = "photon"
        let strict = try await run(config, in: dir)
        #expect(strict.rejectedByCode == [.geocodeLowConfidence: 1])
        #expect(dir.read("mixed.rejected.csv").contains("with confidence 0.5, below geocode.min_confidence 0.6"))
        await server.stop()
    }

    @Test("a geocoder that keeps failing: those rows are geocode_failed, the run goes on and nothing is cached")
    func failing() async throws {
        let dir = TempDir()
        var sandbox = SandboxConfig()
        var geocoder = SandboxGeocoder()
        geocoder.faults = true
        sandbox.geocoder = geocoder
        sandbox.faults.serverErrors = 1
        let server = try await SandboxServer(config: sandbox)
        let input = dir.write("one.csv", "id,name,street,city,country\nC1,Somewhere,,Berlin,DE\n")
        var config = config(input, server: server, in: dir)
        config.geocode?.maxRetries = 2
        let summary = try await run(config, in: dir)
        #expect(summary.rejectedByCode == [.geocodeFailed: 1])
        #expect(summary.geocoding?.requests == 3)
        #expect(dir.read("one.rejected.csv").contains("failed 3 times (last: HTTP 50"))
        server.store.setFaults(FaultPlan())
        let again = try await run(config, in: dir)
        #expect(again.imported == 1 && again.geocoding?.cacheHits == 0)
        await server.stop()
    }
}

@Suite("Geocoding from the command line", .serialized)
struct GeocodeCLITests {
    @Test(
        "run --dry-run with geocode: against `sandbox --geocoder`; the rerun is served by the cache; the key stays secret"
    )
    func commandLine() throws {
        let dir = TempDir()
        let (process, _, url) = try startSandbox(["--geocoder"])
        defer { process.terminate() }
        dir.write("sites.csv", "id,name,city,country\nS1,North,Berlin,DE\nS2,South,Cape Town,ZA\n")
        let secret = "ge-secret-7f3a"
        let pipeline = dir.write(
            "pipeline.yml",
            """
            version: 1
            source: { path: sites.csv }
            properties: { label: name }
            geocode:
              city: city
              country: country
              provider: pelias
              url: "\(url)"
              api_key: "${GEOCODER_KEY}"
            """)
        let arguments = [
            "run", pipeline, "--dry-run", "--output", dir.path + "/out.geojson", "--report-dir", dir.path,
            "--state-dir", dir.path + "/state", "-v",
        ]
        let first = try runCLI(arguments, environment: ["GEOCODER_KEY": secret])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(
            first.stderr.contains("2 geocoded (0 addresses from the cache, 2 geocoder requests)"), "\(first.stderr)")
        #expect(dir.read("out.geojson").contains("[18.42322,-33.92584]"))
        let second = try runCLI(arguments, environment: ["GEOCODER_KEY": secret])
        #expect(
            second.stderr.contains("2 geocoded (2 addresses from the cache, 0 geocoder requests)"), "\(second.stderr)")
        for output in [first.stdout, first.stderr, second.stderr] { #expect(!output.contains(secret)) }
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.path) where file != "pipeline.yml" {
            #expect(!dir.read(file).contains(secret), "\(file) holds the key")
        }
    }

    @Test("the gazetteer sample, and a pipeline whose map geocodes, run into the embedded sandbox")
    func gazetteerSampleAndMapProvider() throws {
        let dir = TempDir()
        let result = try runCLI([
            "run", "\(projectDirectory)/samples/addresses/gazetteer.yml", "--sandbox", "--report-dir", dir.path,
            "--state-dir", dir.path + "/state",
        ])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(
            result.stderr.contains("imported 8 of 10 rows") && result.stderr.contains("7 geocoded"), "\(result.stderr)")
        #expect(result.stderr.contains("Munich branch  [11.57549, 48.13743]"))

        dir.write("offices.csv", "id,name,city\nO1,North,Berlin\nO2,Far,Melbourne\n")
        let pipeline = dir.write(
            "pipeline.yml",
            """
            source: { path: offices.csv }
            properties: { label: name, remote_id: id }
            geocode: { address: "{city}", provider: mapsemble }
            """)
        let mapped = try runCLI(["run", pipeline, "--sandbox", "--report-dir", dir.path])
        #expect(mapped.status == 0, "\(mapped.stderr)")
        #expect(
            mapped.stderr.contains("imported 2 of 2 rows") && mapped.stderr.contains("2 geocoded"), "\(mapped.stderr)")
        #expect(mapped.stderr.contains("North  [13.41053, 52.52437]"), "the map placed it: \(mapped.stderr)")
    }

    @Test("sandbox --geocoder-gazetteer serves a GeoNames file, and says what it served when it stops")
    func sandboxGazetteer() throws {
        let dir = TempDir()
        let (process, out, url) = try startSandbox([
            "--geocoder-gazetteer", GazetteerTests.cities, "--geocoder-rate-limit", "100",
        ])
        dir.write("sites.csv", "id,name,city\nS1,North,Reykjavík\nS2,South,Atlantis\n")
        let pipeline = dir.write(
            "pipeline.yml",
            """
            source: { path: sites.csv }
            properties: { label: name }
            geocode: { address: city, provider: nominatim, url: "\(url)" }
            """)
        let result = try runCLI([
            "run", pipeline, "--dry-run", "--output", dir.path + "/out.geojson", "--report-dir", dir.path,
            "--state-dir", dir.path + "/state",
        ])
        #expect(result.status == 1, "\(result.stderr)")
        // Reykjavík is in the file, not among the built-in places.
        #expect(dir.read("out.geojson").contains("[-21.89541,64.13548]"), "\(dir.read("out.geojson"))")
        process.interrupt()
        process.waitUntilExit()
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(printed.contains("geocoder: 2 requests, at most "), "\(printed)")
    }

    @Test("the progress line shows geocoding while a slow geocoder answers (one block held for seconds)")
    func progressLine() throws {
        let dir = TempDir()
        let (process, _, url) = try startSandbox(["--geocoder", "--geocoder-rate-limit", "4"])
        defer { process.terminate() }
        var text = "id,name,city\n"
        for row in 1...8 { text += "S\(row),Site \(row),\"\(row) Berlin\"\n" }
        dir.write("sites.csv", text)
        let pipeline = dir.write(
            "pipeline.yml",
            """
            version: 1
            source: { path: sites.csv }
            properties: { label: name }
            geocode: { address: city, provider: photon, url: "\(url)", rate_limit: 4 }
            """)
        let result = try runCLI([
            "run", pipeline, "--dry-run", "--output", dir.path + "/out.geojson", "--report-dir", dir.path,
            "--state-dir", dir.path + "/state", "--progress", "always",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        // Lines while the block is answered: requests counted up before any row is placed.
        let asked = result.stderr.components(separatedBy: "\r").compactMap { line -> Int? in
            guard let range = line.range(of: #"\d+ asked"#, options: .regularExpression) else { return nil }
            return Int(line[range].split(separator: " ")[0])
        }
        #expect(asked.contains { $0 > 0 && $0 < 8 }, "\(result.stderr)")
    }

    @Test("the addresses sample geocodes into the embedded sandbox, offline, and leaves no cache behind")
    func sample() throws {
        let dir = TempDir()
        let result = try runCLI([
            "run", "\(projectDirectory)/samples/addresses/pipeline.yml", "--sandbox", "--report-dir", dir.path,
        ])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("imported 8 of 10 rows"), "\(result.stderr)")
        #expect(result.stderr.contains("7 geocoded"))
        #expect(result.stderr.contains("address_not_found 1, missing_address 1"))
        #expect(result.stderr.contains("Munich branch  [11.57549, 48.13743]"))
        let left = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())
        #expect(!left.contains { $0.hasPrefix("mapsemble-import-sandbox-geocodes-") })
    }
}

@Suite("Geocoding and kill -9", .serialized)
struct GeocodeKillTests {
    @Test(
        "killed mid-geocoding, again and again: an address the cache held is never asked again", .timeLimit(minutes(3)))
    func killAndResume() async throws {
        _ = ignoreSIGPIPE
        let dir = TempDir()
        var sandbox = SandboxConfig(maps: [
            .init(
                id: "6e0c0de0-0000-4000-8000-000000000001", label: "Offices", fields: [.init(slug: "office_id")],
                remoteField: "office_id")
        ])
        sandbox.apiKeys = ["kill-key": "sandbox"]
        sandbox.faults.latencyMilliseconds = 30
        sandbox.geocoder = SandboxGeocoder()
        let server = try await SandboxServer(config: sandbox)
        let cities = ["Berlin", "Wien", "Paris", "Melbourne", "Cape Town"]
        var text = "id,name,address\n"
        for row in 1...300 { text += "O\(row),Office \(row),\"Street \(row), \(cities[row % cities.count])\"\n" }
        let input = dir.write("offices.csv", text)
        let pipeline = dir.write(
            "pipeline.yml",
            """
            source: { path: \(input) }
            target: { api_url: "\(server.url)", map_id: 6e0c0de0-0000-4000-8000-000000000001 }
            properties: { label: name, remote_id: id, remote_field: office_id }
            geocode: { address: address, provider: photon, url: "\(server.url)", concurrency: 4 }
            report: { dir: \(dir.path)/reports }
            """)
        let arguments = ["run", pipeline, "-q", "--state-dir", dir.path + "/state"]
        let environment = ["MAPSEMBLE_API_KEY": "kill-key"]
        let cachePath = dir.path + "/state/geocode-cache.sqlite"
        @Sendable func cachedKeys() throws -> Set<Int64> {
            guard FileManager.default.fileExists(atPath: cachePath) else { return [] }
            let rows = try SQLiteDatabase(path: cachePath).prepare("SELECT key FROM geocodes").rows()
            return Set(rows.compactMap { if case .integer(let key) = $0.first { key } else { nil } })
        }
        // The key each query asked is cached under.
        var geocode = PipelineConfig.Geocode()
        geocode.provider = "photon"
        geocode.url = server.url
        let keyer = AddressKeyer(
            query: try AddressQuery(address: "address", parts: [:], header: ["id", "name", "address"]),
            scope: GeocodeStage.scope(geocode))
        @Sendable func key(_ query: String) -> Int64 { keyer.key(normalised: AddressText.normalised(query)).primary }
        // Polled on a thread of its own (`onThread`): tests beside it cannot delay the kills.
        let (kills, againInLoop) = try await onThread {
            var kills = 0
            var askedAgain: [String] = []
            for round in 0..<6 {
                let cached = try cachedKeys()
                let mark = server.store.geocoderQueries.count
                let process = try startCLI(arguments, environment: environment)
                let target = mark + 20 + round * 7
                while process.isRunning && server.store.geocoderQueries.count < target { usleep(2_000) }
                if process.isRunning {
                    kill(process.processIdentifier, SIGKILL)
                    kills += 1
                }
                process.waitUntilExit()
                askedAgain += server.store.geocoderQueries[mark...].filter { cached.contains(key($0)) }
                if process.terminationReason == .exit { break }
            }
            return (kills, askedAgain)
        }
        var askedAgain = againInLoop
        let cached = try cachedKeys()
        let mark = server.store.geocoderQueries.count
        let last = try runCLI(arguments, environment: environment)
        askedAgain += server.store.geocoderQueries[mark...].filter { cached.contains(key($0)) }
        #expect(kills >= 2, "the runs should be killed part-way: \(kills) kills")
        #expect(last.status == 0, "\(last.stderr)")
        #expect(askedAgain.isEmpty, "asked again though cached: \(askedAgain.prefix(5))")
        // The keys computed here are the cache's: every query asked is in it now.
        let final = try cachedKeys()
        #expect(final.count == 300 && server.store.geocoderQueries.allSatisfy { final.contains(key($0)) })
        #expect(server.store.features(map: "6e0c0de0-0000-4000-8000-000000000001").count == 300)
        // Each of the 300 distinct addresses asked once, but for those in flight at a kill.
        #expect(server.store.geocoderQueries.count <= 300 + kills * 4)
        await server.stop()
    }
}
