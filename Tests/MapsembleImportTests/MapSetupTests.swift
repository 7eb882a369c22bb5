import Foundation
import MapsembleJSON
import MapsembleSandbox
import NIOConcurrencyHelpers
import Testing

@testable import MapsembleImport

/// From a file to a ready map: `maps create`, `fields add`, `run --create-fields` and schema
/// drift, over real HTTP against the sandbox.
@Suite("Map setup: maps create, fields add, run --create-fields, schema drift")
struct MapSetupTests {
    /// A sandbox with one empty map of one field (a number) and a remote field, for the key `setup-key`.
    static func sandbox() async throws -> SandboxServer {
        _ = ignoreSIGPIPE
        var config = SandboxConfig(maps: [
            .init(
                id: "5e7a0000-0000-4000-8000-000000000001", label: "Existing",
                fields: [.init(slug: "ext_id"), .init(slug: "score", type: "number")], remoteField: "ext_id")
        ])
        config.apiKeys = ["setup-key": "sandbox"]
        config.recordWrites = true
        return try await SandboxServer(config: config)
    }

    /// Shops with a column of each kind `maps create` tells apart.
    static func shops(rows: Int = 40, extra: Bool = false) -> String {
        var text = "id,name,lat,lon,kind,score,opened,photo,notes,tags" + (extra ? ",floor,manager" : "") + "\n"
        let kinds = ["bakery", "Café", "kiosk"]
        for row in 1...rows {
            let notes = row % 7 == 0 ? "\"first line\nsecond line\"" : "plain note \(row)"
            let tags = row % 2 == 0 ? "\"wifi, parking\"" : "wifi"
            text +=
                "S\(row),Shop \(row),\(48 + Double(row) / 100),\(2 + Double(row) / 100),\(kinds[row % 3]),\(row * 3).5,"
                + "2024-01-\(String(format: "%02d", row % 28 + 1)),https://img.example.org/shop\(row).jpg,\(notes),\(tags)"
                + (extra ? ",\(row % 4),Manager \(row)" : "") + "\n"
        }
        return text
    }

    static func environment(_ server: SandboxServer) -> [String: String] {
        ["MAPSEMBLE_API_KEY": "setup-key", "MAPSEMBLE_API_URL": server.url]
    }

    /// A pipeline into the sandbox's existing map: label `name`, remote id `id`, the field `score`.
    static func existingMap(_ input: String, server: SandboxServer, dir: TempDir) -> PipelineConfig {
        var config = PipelineConfig()
        config.source.path = input
        config.report.dir = dir.path
        config.target.apiURL = server.url
        config.target.apiKey = "setup-key"
        config.target.mapID = "5e7a0000-0000-4000-8000-000000000001"
        config.properties.label = "name"
        config.properties.remoteID = "id"
        config.properties.fields = [.init(slug: "score", column: "score")]
        return config
    }

    @Test(
        "maps create --from a data file types every field from its values; run with the pipeline it writes fills every field as typed (exit 0)"
    )
    func createFromFile() async throws {
        let server = try await Self.sandbox()
        let dir = TempDir()
        let input = dir.write("shops.csv", Self.shops())
        // --dry-run prints the body and creates nothing.
        let dry = try await runCLIAsync(
            ["maps", "create", "--label", "Shops", "--from", input, "--dry-run"], in: dir.path,
            environment: Self.environment(server))
        #expect(dry.status == 0, "\(dry.stderr)")
        let body = try #require(JSONParser.parse(Array(dry.stdout.utf8)))
        let types = Dictionary(
            uniqueKeysWithValues: (body["fields"]?.array ?? []).map { ($0["slug"]!.string!, $0["type"]!.string!) })
        #expect(
            types == [
                "name": "text", "kind": "single_select", "score": "number", "opened": "date", "photo": "image",
                "notes": "multiline_text", "tags": "multi_select", "remote_id": "text",
            ], "\(types)")
        #expect(body["config"]?["remoteField"]?.string == "remote_id")
        #expect(server.store.maps.count == 1)

        let created = try await runCLIAsync(
            ["maps", "create", "--label", "Shops", "--from", input, "--write-pipeline", dir.path + "/shops.yml"],
            in: dir.path, environment: Self.environment(server))
        #expect(created.status == 0, "\(created.stderr)")
        let mapID = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(server.store.maps[mapID]?.fields.count == 8)
        let run = try await runCLIAsync(
            ["run", dir.path + "/shops.yml"], in: dir.path, environment: Self.environment(server))
        #expect(run.status == 0, "\(run.stderr)")
        let stored = server.store.features(map: mapID)
        #expect(stored.count == 40)
        let shop = try #require(stored.first { $0["remote_id"]?.string == "S14" })
        #expect(shop["score"] == .number(42.5))
        #expect(shop["kind"] == .string("kiosk"))
        #expect(shop["opened"]?.string?.hasPrefix("2024-01-15") == true)
        #expect(shop["photo"] == .string("https://img.example.org/shop14.jpg"))
        #expect(shop["notes"] == .string("first line\nsecond line"))
        #expect(shop["tags"] == .array([.string("wifi"), .string("parking")]))
        #expect(stored.allSatisfy { $0["name"]?.string?.hasPrefix("Shop ") == true && $0["kind"] != nil })
    }

    @Test("run --create-fields on a file with two new columns adds exactly those two fields, then imports them")
    func createFields() async throws {
        let server = try await Self.sandbox()
        let dir = TempDir()
        let input = dir.write("shops.csv", Self.shops(extra: true))
        var config = Self.existingMap(input, server: server, dir: dir)
        var options = RunOptions()
        options.dryRun = false
        // Without --create-fields: a notice names the new columns, nothing is added.
        let notices = NIOLockedValueBox<[String]>([])
        let plain = try await Pipeline(config: config, options: options).run(log: { event in
            if event.level == .notice { notices.withLockedValue { $0.append(event.message) } }
        })
        #expect(plain.imported == 40)
        #expect(
            notices.withLockedValue { $0 }.contains {
                $0.contains("the pipeline does not map: kind, opened, photo, notes, tags, floor, manager")
            })
        // Only the pipeline's own columns plus two: the pipeline maps all but floor and manager.
        config.properties.fields += ["kind", "opened", "photo", "notes", "tags", "name"].map {
            .init(slug: "c_\($0)", column: $0)
        }
        let before = server.store.maps[config.target.mapID!]!.fields.map(\.slug)
        let refused = await #expect(throws: ImportError.self) {
            try await Pipeline(config: config, options: options).run()
        }
        #expect(refused?.message.contains("has no field \"c_kind\"") == true)
        options.createFields = true
        config.properties.fields = [.init(slug: "score", column: "score")]
        config.source.path = dir.write(
            "two.csv",
            "id,name,lat,lon,score,floor,manager\n"
                + (1...12).map { "S\($0),Shop \($0),48.1,2.1,\($0),level \($0 % 3),M\($0)" }.joined(separator: "\n")
                + "\n")
        let summary = try await Pipeline(config: config, options: options).run()
        #expect(summary.imported == 12 && summary.rejected == 0)
        let after = server.store.maps[config.target.mapID!]!.fields
        #expect(after.map(\.slug) == before + ["floor", "manager"], "\(after.map(\.slug))")
        #expect(after.first { $0.slug == "floor" }?.type == "single_select")
        #expect(after.first { $0.slug == "manager" }?.type == "text")
        let stored = server.store.features(map: config.target.mapID!)
        #expect(stored.first { $0["ext_id"]?.string == "S5" }?["manager"] == .string("M5"))
    }

    @Test(
        "a type conflict (the map's number field mapped to a column of text) is refused before any write, naming both")
    func conflict() async throws {
        let server = try await Self.sandbox()
        let dir = TempDir()
        var config = Self.existingMap(
            dir.write(
                "shops.csv",
                "id,name,lat,lon,score\n"
                    + (1...5).map { "S\($0),Shop \($0),48.1,2.1,grade \($0)" }.joined(separator: "\n")
                    + "\n"), server: server, dir: dir)
        var options = RunOptions()
        options.dryRun = false
        options.createFields = true
        let error = await #expect(throws: ImportError.self) {
            try await Pipeline(config: config, options: options).run()
        }
        #expect(
            error?.message.contains(
                "map 5e7a0000-0000-4000-8000-000000000001's field \"score\" is a number field, but 5 of the 5 values of the column \"score\" are not numbers"
            )
                == true, "\(error?.message ?? "")")
        #expect(server.store.writeLog.isEmpty)
        #expect(server.store.maps[config.target.mapID!]!.fields.count == 2)
        // A stated type against the map's is refused too.
        config.properties.fields = [.init(slug: "score", column: "score", type: "date", typeStated: true)]
        let stated = await #expect(throws: ImportError.self) {
            try await Pipeline(config: config, options: options).run()
        }
        #expect(stated?.message.contains("has type: date, but map") == true)
    }

    @Test("fields add --from a pipeline adds the missing fields and, with --add-options, the missing options")
    func fieldsAdd() async throws {
        let server = try await Self.sandbox()
        let dir = TempDir()
        dir.write("shops.csv", Self.shops())
        let pipeline = dir.write(
            "pipeline.yml",
            """
            source: { path: shops.csv }
            properties:
              label: "{name}"
              remote_id: id
              remote_field: ext_id
              fields:
                kind: { column: kind, type: single_select }
                score: score
            """)
        let map = "5e7a0000-0000-4000-8000-000000000001"
        let dry = try await runCLIAsync(
            ["fields", "add", map, "--from", pipeline, "--dry-run"], in: dir.path, environment: Self.environment(server)
        )
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("\"slug\" : \"kind\"") && dry.stdout.contains("\"slug\" : \"ext_id\""))
        #expect(server.store.maps[map]!.fields.count == 2)
        let added = try await runCLIAsync(
            ["fields", "add", map, "--from", pipeline], in: dir.path, environment: Self.environment(server))
        #expect(added.status == 0, "\(added.stderr)")
        // The new columns of the file are mapped and added too (lat and lon are the coordinates).
        let slugs = server.store.maps[map]!.fields.map(\.slug)
        #expect(slugs == ["ext_id", "score", "kind", "opened", "photo", "notes", "tags"], "\(slugs)")
        let kind = server.store.maps[map]!.fields.first { $0.slug == "kind" }
        #expect(kind?.options == ["cafe", "kiosk", "bakery"] && kind?.optionLabels == ["Café", "kiosk", "bakery"])
        // A later file brings a kind the field lacks: --add-options adds it.
        dir.write(
            "shops.csv",
            Self.shops() + "S99,Shop 99,48.5,2.5,florist,1,2024-02-01,https://img.example.org/x.png,n,wifi\n")
        let options = try await runCLIAsync(
            ["fields", "add", map, "--from", pipeline, "--add-options"], in: dir.path,
            environment: Self.environment(server))
        #expect(options.status == 0, "\(options.stderr)")
        #expect(options.stdout.contains("added to kind: florist"))
        #expect(server.store.maps[map]!.fields.first { $0.slug == "kind" }?.options.last == "florist")
        let again = try await runCLIAsync(
            ["fields", "add", map, "--from", pipeline], in: dir.path, environment: Self.environment(server))
        #expect(again.status == 0 && again.stderr.contains("nothing to add"))
    }

    @Test(
        "maps create for a pipeline with geocode.provider mapsemble makes the geocode field and the quality field; the map then places the rows without coordinates"
    )
    func geocodeField() async throws {
        _ = ignoreSIGPIPE
        var sandbox = SandboxConfig()
        sandbox.apiKeys = ["setup-key": "sandbox"]
        sandbox.geocoder = SandboxGeocoder()
        let server = try await SandboxServer(config: sandbox)
        let dir = TempDir()
        var config = PipelineConfig()
        config.source.path = dir.write("stores.csv", MapGeocodingTests.stores)
        config.report.dir = dir.path
        config.target.apiURL = server.url
        config.target.apiKey = "setup-key"
        config.properties.label = "name"
        config.properties.remoteID = "id"
        var geocode = PipelineConfig.Geocode()
        geocode.parts = ["street": "street", "city": "city"]
        geocode.provider = "mapsemble"
        geocode.qualityField = "quality"
        config.geocode = geocode
        let creation = try await MapSetup.create(label: "Stores", config: config, dryRun: false)
        let map = try #require(creation.mapID.flatMap { server.store.maps[$0] })
        #expect(map.geocodeField == "address" && map.remoteField == "remote_id")
        #expect(map.fields.map(\.slug) == ["remote_id", "address", "quality"])
        #expect(map.fields.first { $0.slug == "quality" }?.type == "number")
        config.target.mapID = map.id
        var options = RunOptions()
        options.dryRun = false
        options.stateDirectory = dir.path + "/state"
        let summary = try await Pipeline(config: config, options: options).run()
        #expect(summary.imported == 2 && server.store.serverGeocodes == 2, "\(summary.rejectedByCode)")
    }

    @Test(
        "types read from values: codes stay text, decimal commas are numbers, one comma in free text is no multi_select"
    )
    func typesFromValues() throws {
        func typed(_ values: [String], decimalComma: Bool = false) -> String {
            var evidence = ColumnEvidence()
            evidence.decimalComma = decimalComma
            for value in values {
                let bytes = Array(value.utf8)
                bytes.withUnsafeBytes { evidence.add($0, separator: ",") }
            }
            return FieldPlanner.type(evidence).type
        }
        let many = { (make: (Int) -> String) in (1...30).map(make) }
        #expect(typed(many { "\($0 * 7).25" }) == "number")
        #expect(typed(many { "+4930\(1_000_000 + $0)" }) == "text")
        #expect(typed(many { "\(1_234_567_890_123_456 + $0)" }) == "text")
        #expect(typed(many { "0\(1000 + $0)" }) == "text")
        #expect(typed(many { "\($0),5" }, decimalComma: true) == "number")
        #expect(typed(many { "1,\(100 + $0).5" }) == "number")
        #expect(typed(many { "2024-01-\(String(format: "%02d", $0 % 28 + 1))T10:00:00Z" }) == "date")
        #expect(typed(many { "2024-01-01 10:00 UTC+\($0)" }) != "date")
        #expect(typed(many { $0 == 1 ? "Paris, France" : "city \($0 % 3)" }) == "single_select")
        #expect(typed(many { $0 % 3 == 0 ? "wifi, parking" : "wifi" }) == "multi_select")
        // Inspect's pipeline keeps a column of codes as text.
        let dir = TempDir()
        let file = dir.write(
            "zips.csv",
            "name,zip,lat,lon\n" + (1...20).map { "P\($0),\(75000 + $0),48.8,2.3" }.joined(separator: "\n") + "\n")
        let yaml = try Inspector.inspect(path: file).starterPipeline(path: file)
        #expect(yaml.contains("zip: { column: \"zip\", type: text }"), "\(yaml)")
    }

    @Test(
        "--write-pipeline edits flow-style, block-style, four-space and CRLF pipelines; a run --create-fields from stdin is refused"
    )
    func pipelineEdits() async throws {
        let id = "\"5e7a0000-0000-4000-8000-00000000abcd\""
        #expect(
            try YAMLLines.set(
                "target", "map_id", to: id, in: "source: { path: a.csv }\ntarget: { mode: upsert }  # m\n")
                == "source: { path: a.csv }\ntarget: { mode: upsert, map_id: \(id) }  # m\n")
        #expect(
            try YAMLLines.set("target", "map_id", to: id, in: "target: { map_id: \"x\", mode: sync }\n")
                == "target: { map_id: \(id), mode: sync }\n")
        #expect(
            try YAMLLines.set(
                "target", "map_id", to: id, in: "target:\r\n    mode: upsert\r\n    map_id: old # c\r\nsource:\r\n")
                == "target:\r\n    mode: upsert\r\n    map_id: \(id)\r\nsource:\r\n")
        #expect(
            try YAMLLines.set("target", "map_id", to: id, in: "target:\n    mode: upsert\nsource:\n  path: x\n")
                == "target:\n    map_id: \(id)\n    mode: upsert\nsource:\n  path: x\n")
        #expect(
            try YAMLLines.set("target", "map_id", to: id, in: "source:\n  path: x\n")
                == "source:\n  path: x\ntarget:\n  map_id: \(id)\n")
        #expect(throws: ImportError.self) {
            try YAMLLines.set("target", "map_id", to: id, in: "target: {\n  mode: sync }\n")
        }
        // Each edited text still loads, with the map id set.
        for text in ["source: { path: a.csv }\ntarget: { mode: upsert }\n", "target:\r\n    mode: upsert\r\n"] {
            let edited = try YAMLLines.set("target", "map_id", to: id, in: text)
            let config = try ConfigLoader.parse(yaml: edited, file: "edited", environment: [:])
            #expect(config.target.mapID == "5e7a0000-0000-4000-8000-00000000abcd")
        }
        let dir = TempDir()
        var config = PipelineConfig()
        config.source.path = "-"
        config.report.dir = dir.path
        var options = RunOptions()
        options.createFields = true
        let refused = await #expect(throws: ImportError.self) {
            try await Pipeline(config: config, options: options).run()
        }
        #expect(refused?.message.contains("give its path, not -") == true)
    }

    @Test(
        "the sandbox creates and changes maps as the API spec says: 201 with the map, 422 naming invalid slugs, types and options"
    )
    func sandboxRoutes() async throws {
        let server = try await Self.sandbox()
        let store = server.store
        func send(_ method: String, _ path: String, _ body: String) -> SandboxReply {
            store.handle(
                SandboxRequest(
                    method: method, target: path, headers: ["authorization": "Bearer setup-key"], body: Array(body.utf8)
                ))
        }
        let created = send(
            "POST", "/api/v1/maps",
            #"{"label":"Depots","fields":[{"slug":"kind","type":"single_select","label":"Kind","config":{"options":[{"key":"a","label":"A"}]}},{"slug":"ref","type":"text","label":"Ref"}],"config":{"remoteField":"ref"}}"#
        )
        #expect(created.status == 201)
        let map = try #require(JSONParser.parse(created.body))
        let id = try #require(map["id"]?.string)
        #expect(map["config"]?["remoteField"]?.string == "ref")
        #expect(map["fields"]?.array?.first?["config"]?["options"]?.array?.first?["label"]?.string == "A")
        let invalid = send(
            "POST", "/api/v1/maps",
            #"{"label":"X","fields":[{"slug":"Bad Slug","type":"text"},{"slug":"n","type":"integer"}]}"#)
        #expect(invalid.status == 422)
        let errors = JSONParser.parse(invalid.body)?["errors"]
        #expect(errors?["fields.0.slug"] != nil && errors?["fields.1.type"] != nil)
        #expect(send("POST", "/api/v1/maps", #"{"fields":[]}"#).status == 422)
        let options = send(
            "PATCH", "/api/v1/maps/\(id)",
            #"{"fields":[{"slug":"kind","type":"single_select","config":{"options":[{"key":"a"},{"key":"a"}]}}]}"#)
        #expect(options.status == 422)
        let remote = send("PATCH", "/api/v1/maps/\(id)", #"{"fields":[{"slug":"kind","type":"text"}]}"#)
        #expect(remote.status == 422, "the remote field ref would be gone")
        let changed = send(
            "PATCH", "/api/v1/maps/\(id)",
            #"{"label":"Depots 2","fields":[{"slug":"ref","type":"text"},{"slug":"size","type":"number"}]}"#)
        #expect(changed.status == 200)
        #expect(JSONParser.parse(changed.body)?["fields"]?.array?.count == 2)
        #expect(store.maps[id]?.label == "Depots 2")
        // The viewer lists it.
        let page = store.handle(SandboxRequest(method: "GET", target: "/", headers: [:], body: []))
        #expect(String(decoding: page.body, as: UTF8.self).contains("Depots 2"))
    }

    @Test("schema drift: every mapped column the header lacks in one sentence, with the columns it has instead")
    func drift() async throws {
        let dir = TempDir()
        var config = PipelineConfig()
        config.source.path = dir.write("shops.csv", "id,title,lat,lon,town,kind\nS1,A,48.1,2.1,Paris,shop\n")
        config.report.dir = dir.path
        config.properties.label = "{name} ({city})"
        config.properties.fields = [.init(slug: "city", column: "city"), .init(slug: "kind", column: "kind")]
        let error = await #expect(throws: ImportError.self) {
            try await Pipeline(config: config, options: RunOptions()).run()
        }
        #expect(
            error?.description.hasPrefix(
                "\(config.source.path!):1: the header does not have 2 of the columns the pipeline maps: \"name\" (properties.label), \"city\" (properties.label, properties.fields.city); its columns are: id, title, lat, lon, town, kind"
            ) == true, "\(error?.description ?? "")")
        #expect(
            error?.description.hasSuffix("; not mapped: id, title, town (a column renamed?)") == true,
            "\(error?.description ?? "")")
    }
}

@Suite("maps export: GeoJSON and CSV, streamed page by page; the CSV re-imports into a new map")
struct MapExportTests {
    static let source = "e4904700-0000-4000-8000-000000000001"

    /// A sandbox whose map `source` holds `rows` features put there by a run: points, or polygons.
    static func seeded(rows: Int, polygons: Bool = false) async throws -> (SandboxServer, TempDir) {
        _ = ignoreSIGPIPE
        var config = SandboxConfig(maps: [
            .init(
                id: source, label: "Source",
                fields: [
                    .init(slug: "ext_id", label: "ext_id"),
                    .init(slug: "kind", type: "single_select", label: "Kind", options: ["shop", "depot"]),
                    .init(slug: "score", type: "number", label: "Score"), .init(slug: "note", label: "Note"),
                ], remoteField: "ext_id")
        ])
        config.apiKeys = ["export-key": "sandbox"]
        let server = try await SandboxServer(config: config)
        let dir = TempDir()
        var text = polygons ? "ext_id,name,kind,score,note,shape\n" : "ext_id,name,kind,score,note,lat,lon\n"
        for row in 1...rows {
            let (x, y) = (Double(row % 3000) / 20 - 75, Double(row % 1600) / 20 - 40)
            let note = row % 5 == 0 ? "\"with, comma\"" : "note \(row)"
            text += "E\(row),Place \(row),\(row % 4 == 0 ? "depot" : "shop"),\(Double(row) / 4),\(note),"
            text +=
                polygons
                ? "\"POLYGON((\(x) \(y), \(x + 0.1) \(y), \(x + 0.1) \(y + 0.1), \(x) \(y)))\"\n" : "\(y),\(x)\n"
        }
        var pipeline = PipelineConfig()
        pipeline.source.path = dir.write("source.csv", text)
        pipeline.report.dir = dir.path
        pipeline.target.apiURL = server.url
        pipeline.target.apiKey = "export-key"
        pipeline.target.mapID = source
        pipeline.properties.label = "name"
        pipeline.properties.remoteID = "ext_id"
        pipeline.properties.fields = ["kind", "score", "note"].map { .init(slug: $0, column: $0) }
        if polygons { pipeline.coordinates.geometry = "shape" }
        pipeline.upload.batchSize = 1000
        var options = RunOptions()
        options.dryRun = false
        let summary = try await Pipeline(config: pipeline, options: options).run()
        #expect(summary.imported == rows)
        return (server, dir)
    }

    /// A feature as compared across maps: label, values by field label, geometry.
    static func comparable(_ feature: StoredFeature, labels: [String: String]) -> String {
        var parts = ["label=\(feature["label"]?.text ?? "")"]
        for (slug, value) in feature.properties where slug != "label" {
            parts.append("\(labels[slug] ?? slug)=\(value.text)")
        }
        return parts.sorted().joined(separator: "|") + "|" + feature.geometry.text
    }

    static func environment(_ server: SandboxServer) -> [String: String] {
        ["MAPSEMBLE_API_KEY": "export-key", "MAPSEMBLE_API_URL": server.url]
    }

    @Test(
        "50,000 points: export to CSV, maps create --from that CSV, run the pipeline it writes: the new map holds the same features"
    )
    func csvRoundTrip() async throws {
        try await roundTrip(rows: 50_000, polygons: false)
    }

    @Test("polygons: the CSV carries them as WKT and the round trip gives the same features")
    func polygonRoundTrip() async throws {
        try await roundTrip(rows: 600, polygons: true)
    }

    func roundTrip(rows: Int, polygons: Bool) async throws {
        let (server, dir) = try await Self.seeded(rows: rows, polygons: polygons)
        let environment = Self.environment(server)
        let exported = try await runCLIAsync(
            ["maps", "export", Self.source, "--output", dir.path + "/export.csv"], in: dir.path,
            environment: environment)
        #expect(exported.status == 0, "\(exported.stderr)")
        #expect(exported.stderr.contains("\(rows) features of map \(Self.source) written"))
        let header = dir.read("export.csv").prefix { $0 != "\n" }
        #expect(header == (polygons ? "label,ext_id,Kind,Score,Note,wkt" : "label,ext_id,Kind,Score,Note,lon,lat"))
        let created = try await runCLIAsync(
            [
                "maps", "create", "--label", "Copy", "--from", dir.path + "/export.csv", "--write-pipeline",
                dir.path + "/copy.yml",
            ],
            in: dir.path, environment: environment)
        #expect(created.status == 0, "\(created.stderr)")
        let copy = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let run = try await runCLIAsync(
            ["run", dir.path + "/copy.yml", "--report-dir", dir.path], in: dir.path, environment: environment)
        #expect(run.status == 0, "\(run.stderr)")
        // Field by field under the fields' labels (the copy's slugs come from the CSV's header).
        func features(_ map: String) -> [String] {
            let fields = server.store.maps[map]?.fields ?? []
            let labels = Dictionary(uniqueKeysWithValues: fields.map { ($0.slug, $0.label.lowercased()) })
            return server.store.features(map: map).map { Self.comparable($0, labels: labels) }.sorted()
        }
        let original = features(Self.source)
        let copied = features(copy)
        #expect(original.count == rows && copied.count == rows)
        let differing = zip(original, copied).filter { $0 != $1 }
        #expect(
            differing.isEmpty, "\(differing.count) differ, first: \(differing.first.map { "\($0.0) / \($0.1)" } ?? "")")
    }

    @Test(
        "GeoJSON export is one valid FeatureCollection of every feature; run --backup saves the map before a sync deletes"
    )
    func geoJSONAndBackup() async throws {
        let (server, dir) = try await Self.seeded(rows: 1_234)
        let environment = Self.environment(server)
        let exported = try await runCLIAsync(
            ["maps", "export", Self.source, "--format", "geojson"], in: dir.path, environment: environment)
        #expect(exported.status == 0, "\(exported.stderr)")
        let collection = try #require(JSONParser.parse(Array(exported.stdout.utf8)))
        #expect(collection["type"]?.string == "FeatureCollection")
        #expect(collection["features"]?.array?.count == 1_234)
        // A sync of a file holding one row would delete 1,233 features: the backup keeps them.
        dir.write("one.csv", "ext_id,name,kind,score,note,lat,lon\nE1,Place 1,shop,0.25,note 1,-39.95,-74.95\n")
        dir.write(
            "sync.yml",
            """
            source: { path: one.csv }
            target: { map_id: "\(Self.source)", mode: sync }
            properties: { label: name, remote_id: ext_id, fields: { kind: kind, score: score, note: note } }
            """)
        let sync = try await runCLIAsync(
            [
                "run", dir.path + "/sync.yml", "--force-delete", "--backup", dir.path + "/before.csv", "--report-dir",
                dir.path,
            ],
            in: dir.path, environment: environment)
        #expect(sync.status == 0, "\(sync.stderr)")
        #expect(server.store.features(map: Self.source).count == 1)
        let backup = dir.read("before.csv").split(separator: "\n")
        #expect(backup.count == 1_235 && backup.first == "label,ext_id,Kind,Score,Note,lon,lat")
        #expect(backup.contains { $0.hasPrefix("Place 1234,E1234,shop,308.5,note 1234,") })
    }
}

@Suite("sandbox --serve-dir: files at /files/NAME with ETag, Last-Modified and 304")
struct SandboxFilesTests {
    @Test(
        "a file comes with its validators; a conditional request for an unchanged file is 304; a changed one comes again; names outside the folder are 404"
    )
    func validators() async throws {
        let dir = TempDir()
        let path = dir.write("stores.csv", "id,name\n1,A\n")
        var config = SandboxConfig()
        config.serveDirectory = dir.path
        let store = SandboxStore(config: config)
        func get(_ target: String, _ headers: [String: String] = [:], method: String = "GET") -> SandboxReply {
            store.handle(SandboxRequest(method: method, target: target, headers: headers, body: []))
        }
        func header(_ reply: SandboxReply, _ name: String) -> String? { reply.headers.first { $0.0 == name }?.1 }
        let first = get("/files/stores.csv")
        #expect(first.status == 200 && first.body == Array("id,name\n1,A\n".utf8))
        let etag = try #require(header(first, "ETag"))
        let modified = try #require(header(first, "Last-Modified"))
        #expect(header(first, "Content-Type") == "text/csv; charset=utf-8")
        #expect(get("/files/stores.csv", ["if-none-match": etag]).status == 304)
        #expect(get("/files/stores.csv", ["if-none-match": etag]).body.isEmpty)
        #expect(get("/files/stores.csv", ["if-modified-since": modified]).status == 304)
        #expect(get("/files/stores.csv", ["if-none-match": "\"other\"", "if-modified-since": modified]).status == 200)
        #expect(get("/files/stores.csv", method: "HEAD").body.isEmpty)
        // Changed (same size, new bytes): a new ETag, and the body again.
        try Data("id,name\n1,B\n".utf8).write(to: URL(fileURLWithPath: path))
        let changed = get("/files/stores.csv", ["if-none-match": etag])
        #expect(changed.status == 200 && header(changed, "ETag") != etag)
        #expect(store.fileCounts.bodies == 3 && store.fileCounts.notModified == 3)
        for outside in [
            "/files/../stores.csv", "/files/%2e%2e/etc/passwd", "/files/.hidden", "/files/", "/files/nope.csv",
        ] {
            #expect(get(outside).status == 404, "\(outside)")
        }
        // Without --serve-dir, /files/ is no route of its own.
        #expect(
            SandboxStore(config: SandboxConfig()).handle(
                SandboxRequest(method: "GET", target: "/files/stores.csv", headers: [:], body: [])
            ).status == 404)
    }
}
