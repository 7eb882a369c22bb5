import Foundation
import MapsembleSandbox
import Testing

@testable import MapsembleImport

@Suite("provider: mapsemble — the map geocodes; and quality_field — over HTTP against the sandbox", .serialized)
struct MapGeocodingTests {
    static let mapID = "5a9db0c0-0000-4000-8000-00000000c0de"

    func server(plan: SandboxConfig.Plan = .pro, geocodeField: String? = "address") async throws -> SandboxServer {
        var sandbox = SandboxConfig(maps: [
            SandboxConfig.Map(
                id: Self.mapID, plan: plan,
                fields: [.init(slug: "store_id"), .init(slug: "address"), .init(slug: "quality", type: "number")],
                remoteField: "store_id", geocodeField: geocodeField)
        ])
        sandbox.apiKeys = ["test-key": "sandbox"]
        sandbox.geocoder = SandboxGeocoder()
        return try await SandboxServer(config: sandbox)
    }

    func config(_ input: String, server: SandboxServer, in dir: TempDir, provider: String = "mapsemble")
        -> PipelineConfig
    {
        var config = PipelineConfig()
        config.source.path = input
        config.report.dir = dir.path
        config.target.apiURL = server.url
        config.target.apiKey = "test-key"
        config.target.mapID = Self.mapID
        config.target.mode = .upsert
        config.properties.label = "name"
        config.properties.remoteID = "id"
        var geocode = PipelineConfig.Geocode()
        geocode.parts = ["street": "street", "city": "city"]
        geocode.provider = provider
        if provider != "mapsemble" { geocode.url = server.url }
        config.geocode = geocode
        return config
    }

    func run(_ config: PipelineConfig, in dir: TempDir) async throws -> RunSummary {
        var options = RunOptions()
        options.dryRun = false
        options.backoffSeconds = 0.005
        options.stateDirectory = dir.path + "/state"
        return try await Pipeline(config: config, options: options).run()
    }

    static let stores =
        "id,name,street,city,lat,lon\nS1,Marienplatz,Marienplatz 1,München,,\nS2,Has a point,,Berlin,52.5,13.4\n"
        + "S3,Nowhere,Somewhere 5,Atlantis,,\nS4,No address,,,,\n"

    @Test(
        "rows without coordinates go with geometry null and the address under the map's geocode field; the map places them"
    )
    func roundTrip() async throws {
        let dir = TempDir()
        let server = try await server()
        let summary = try await run(config(dir.write("stores.csv", Self.stores), server: server, in: dir), in: dir)
        #expect(summary.rowsRead == 4)
        #expect(summary.imported == 2)
        #expect(summary.rejectedByCode == [.missingAddress: 1, .serverRejected: 1])
        #expect(summary.rowsRead == summary.imported + summary.rejected + summary.notSent)
        #expect(summary.geocoding == .init(geocoded: 2, cacheHits: 0, requests: 0))
        #expect(server.store.geocoderCounts.requests == 0, "the tool asked no geocoder: the map did")
        #expect(server.store.serverGeocodes == 2)
        let stored = Dictionary(
            uniqueKeysWithValues: server.store.features(map: Self.mapID).map { ($0["store_id"]?.string ?? "", $0) })
        #expect(stored["S1"]?.latitude == 48.13743 && stored["S1"]?["address"]?.string == "Marienplatz 1, München")
        #expect(stored["S2"]?.latitude == 52.5 && stored["S2"]?["address"] == nil, "a row with a point keeps it")
        let rejected = dir.read("stores.rejected.csv")
        #expect(rejected.contains("server_rejected") && rejected.contains(",S3,Nowhere,Somewhere 5,Atlantis,,\n"))
        await server.stop()
    }

    @Test("a sync sends a row whose address changed (the map geocodes it again) and leaves the others unchanged")
    func syncChangedAddress() async throws {
        let dir = TempDir()
        let server = try await server()
        let input = dir.write("stores.csv", "id,name,street,city,lat,lon\nS1,One,,Berlin,,\nS2,Two,,Wien,,\n")
        var config = config(input, server: server, in: dir)
        config.target.mode = .sync
        let first = try await run(config, in: dir)
        #expect(first.created == 2)
        dir.write("stores.csv", "id,name,street,city,lat,lon\nS1,One,,Paris,,\nS2,Two,,Wien,,\n")
        let second = try await run(config, in: dir)
        #expect(second.updated == 1 && second.unchanged == 1, "\(second)")
        let moved = server.store.features(map: Self.mapID).first { $0["store_id"]?.string == "S1" }
        #expect(moved?.latitude == 48.85341 && moved?["address"]?.string == "Paris")
        await server.stop()
    }

    @Test(
        "a map without a geocode field, or a plan without geocoding: the run stops before sending, saying what to change"
    )
    func refusals() async throws {
        let dir = TempDir()
        let input = dir.write("stores.csv", Self.stores)
        for (server, expected) in [
            (try await server(geocodeField: nil), "has no geocode field (config.geocodeField)"),
            (try await server(plan: .free), "the account's plan does not geocode"),
        ] {
            await #expect {
                try await run(config(input, server: server, in: dir), in: dir)
            } throws: { error in
                (error as? ImportError)?.message.contains(expected) == true
            }
            #expect(server.store.requestCounts.writes == 0)
            await server.stop()
        }
        // A column mapped to the geocode field would be sent twice.
        let server = try await server()
        var mapped = config(input, server: server, in: dir)
        mapped.properties.fields = [.init(slug: "address", column: "street")]
        await #expect(throws: ImportError.self) { try await run(mapped, in: dir) }
        await server.stop()
    }

    @Test("quality_field receives each geocoded row's confidence; rows with their own point get none")
    func qualityField() async throws {
        let dir = TempDir()
        let server = try await server()
        var config = config(dir.write("stores.csv", Self.stores), server: server, in: dir, provider: "nominatim")
        config.geocode?.qualityField = "quality"
        config.geocode?.rateLimit = 100
        let summary = try await run(config, in: dir)
        #expect(summary.imported == 2)
        let stored = Dictionary(
            uniqueKeysWithValues: server.store.features(map: Self.mapID).map { ($0["store_id"]?.string ?? "", $0) })
        // The sandbox's Nominatim answers cities at place_rank 16: 0.5.
        #expect(stored["S1"]?["quality"]?.number == 0.5)
        #expect(stored["S2"] != nil && stored["S2"]?["quality"] == nil)

        config.geocode?.qualityField = "nope"
        await #expect {
            try await run(config, in: dir)
        } throws: { error in
            (error as? ImportError)?.message.contains("geocode.quality_field: map") == true
        }
        await server.stop()
    }
}
