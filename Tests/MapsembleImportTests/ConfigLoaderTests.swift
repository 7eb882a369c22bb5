import Foundation
import Testing

@testable import MapsembleImport

@Suite("pipeline.yml")
struct ConfigLoaderTests {
    func parse(_ yaml: String, environment: [String: String] = [:]) throws -> PipelineConfig {
        try ConfigLoader.parse(yaml: yaml, file: "pipeline.yml", environment: environment)
    }

    func failure(_ yaml: String) -> ImportError? {
        do {
            _ = try parse(yaml)
            return nil
        } catch {
            return error as? ImportError
        }
    }

    @Test("every documented key is read")
    func fullFile() throws {
        let config = try parse(
            """
            version: 1
            source: { path: stores.csv, format: csv, delimiter: ";", encoding: auto, header: true, quote: "'", decimal: comma, sheet: null }
            target: { api_url: "https://example.test", api_key: "${KEY}", map_id: m-1, mode: create }
            coordinates: { longitude: x, latitude: y, point: null, swapped: fix, bounds: [5, 47, 15, 55] }
            properties:
              label: "{name}"
              remote_id: store_id
              remote_field: ext-id
              fields:
                city: City
                revenue: { column: "Revenue (EUR)", type: number }
            upload: { batch_size: 250, concurrency: 2, max_retries: 3, timeout_s: 12.5, max_body_bytes: 100000 }
            report: { dir: out, max_rejects: "5%" }
            sync: { max_delete: 20 }
            """, environment: ["KEY": "k-123"])
        #expect(config.source.delimiter == ";")
        #expect(config.source.quote == "'")
        #expect(config.source.decimal == "comma")
        #expect(config.target.apiKey == "k-123")
        #expect(config.target.mode == .create)
        #expect(config.coordinates.swapped == .fix)
        #expect(config.coordinates.bounds == [5, 47, 15, 55])
        #expect(config.properties.remoteField == "ext-id")
        #expect(
            config.properties.fields == [
                .init(slug: "city", column: "City"),
                .init(slug: "revenue", column: "Revenue (EUR)", type: "number", typeStated: true),
            ])
        #expect(
            config.upload
                == .init(batchSize: 250, concurrency: 2, maxRetries: 3, timeoutSeconds: 12.5, maxBodyBytes: 100000))
        #expect(config.report.maxRejects == .percent(5))
        #expect(config.sync.maxDelete == .count(20))
    }

    @Test("defaults: upsert with a remote id, create without")
    func defaults() throws {
        #expect(try parse("properties: { remote_id: id }").mode == .upsert)
        #expect(try parse("version: 1").mode == .create)
        #expect(try parse("").upload.batchSize == 500)
    }

    @Test("an unknown key is an error naming the key and its line")
    func unknownKey() throws {
        let error = try #require(failure("version: 1\nsource:\n  path: a.csv\n  delimeter: \";\"\n"))
        #expect(error.line == 4)
        #expect(error.message.contains("\"source.delimeter\""))
        #expect(error.description.hasPrefix("pipeline.yml:4: unknown key"))
        #expect(self.failure("sources: {}")?.message.contains("\"sources\"") == true)
    }

    @Test(
        "a wrong type or value is an error naming the key and its line",
        arguments: [
            ("upload:\n  batch_size: lots\n", 2, "upload.batch_size"),
            ("upload:\n  batch_size: 1001\n", 2, "upload.batch_size"),
            ("\n\ntarget: { mode: merge }\n", 3, "target.mode"),
            ("coordinates:\n  bounds: [1, 2, 3]\n", 2, "coordinates.bounds"),
            ("source:\n  delimiter: \"::\"\n", 2, "source.delimiter"),
            ("properties:\n  fields:\n    City Name: city\n", 3, "City Name"),
            ("report:\n  max_rejects: many\n", 2, "report.max_rejects"),
            ("source: stores.csv\n", 1, "source"),
        ])
    func wrongValues(yaml: String, line: Int, key: String) throws {
        let error = try #require(failure(yaml))
        #expect(error.line == line)
        #expect(error.message.contains(key))
        #expect(error.kind == .config)
    }

    @Test(
        "${VAR} and ${VAR:-default} expand from the environment",
        arguments: [
            ("${A}", "x"), ("${MISSING}", ""), ("${MISSING:-fallback}", "fallback"), ("${A:-fallback}", "x"),
            ("pre-${A}-post", "pre-x-post"), ("$$A", "$A"), ("cost $5", "cost $5"),
        ])
    func expansion(text: String, expected: String) {
        #expect(ConfigLoader.expand(text, environment: ["A": "x"]) == expected)
    }

    @Test("expansion also feeds typed keys")
    func typedExpansion() throws {
        let config = try parse("upload: { batch_size: \"${SIZE:-42}\" }")
        #expect(config.upload.batchSize == 42)
    }

    @Test("invalid YAML is a config error")
    func invalidYAML() {
        #expect(failure("source: [unclosed\n")?.kind == .config)
    }

    @Test("paths are relative to the pipeline file's folder")
    func relativePaths() throws {
        let config = try ConfigLoader.parse(
            yaml: "source: { path: data/a.csv }", file: "jobs/p.yml", environment: [:], baseDirectory: "jobs")
        #expect(config.source.path == "jobs/data/a.csv")
        #expect(config.report.dir == "jobs/reports")
    }
}

@Suite("pipeline.yml.example")
struct ExampleConfigTests {
    @Test("the example documents every key and loads as it is")
    func exampleLoads() throws {
        let path = projectDirectory + "/pipeline.yml.example"
        let config = try ConfigLoader.load(path: path, environment: ["MAPSEMBLE_API_KEY": "k"])
        #expect(config.target.apiKey == "k")
        #expect(config.target.apiURL == "https://app.mapsemble.com")
        #expect(config.properties.fields.count == 2)
        #expect(config.report.maxRejects == .percent(5))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for key in [
            "path", "format", "delimiter", "encoding", "header", "quote", "decimal", "sheet", "api_url", "api_key",
            "map_id", "mode", "longitude", "latitude", "point", "swapped", "bounds", "label", "remote_id",
            "remote_field",
            "fields", "batch_size", "concurrency", "max_retries", "timeout_s", "max_body_bytes", "dir", "max_rejects",
            "max_delete", "undo",
        ] {
            #expect(text.contains("\n  \(key):"), "\(key) is not documented")
        }
        for key in ["notify", "  webhook", "  on", "  format", "  timeout_s", "  max_retries"] {
            #expect(text.contains("\n# \(key):"), "notify: \(key) is not documented")
        }
    }

    @Test("notify: and report.undo are read and checked, the webhook never quoted back")
    func notifyKeys() throws {
        let dir = TempDir()
        func load(_ yaml: String, _ environment: [String: String] = [:]) throws -> PipelineConfig {
            try ConfigLoader.load(path: dir.write("p.yml", yaml), environment: environment)
        }
        let config = try load(
            "notify:\n  webhook: \"${HOOK}\"\n  on: rejects\n  format: slack\n  timeout_s: 2.5\n  max_retries: 0\nreport:\n  undo: true\n",
            ["HOOK": "https://hooks.example.test/T/B/secret"])
        #expect(config.notify?.webhook == "https://hooks.example.test/T/B/secret")
        #expect(config.notify?.on == .rejects)
        #expect(config.notify?.format == .slack)
        #expect(config.notify?.timeoutSeconds == 2.5)
        #expect(config.notify?.maxRetries == 0)
        #expect(config.report.undo)
        #expect(try load("notify:\n  webhook: https://h.test/x\n").notify?.on == .failure)
        for (yaml, expected) in [
            ("notify:\n  webhook: \"${UNSET}\"\n", "is empty: is the environment variable it names set?"),
            ("notify:\n  webhook: ftp://secret-host/x\n", "must be an http:// or https:// URL"),
            ("notify:\n  webhook: https://h.test/x\n  on: never\n", "notify.on"),
            ("notify:\n  on: always\n", "notify.webhook\" is missing"),
            ("notify:\n  webhook: https://h.test/x\n  channel: x\n", "channel"),
        ] {
            do {
                _ = try load(yaml)
                Issue.record("accepted: \(yaml)")
            } catch let error as ImportError {
                #expect(error.description.contains(expected), "\(error.description)")
                #expect(!error.description.contains("secret-host"))
            }
        }
    }
}
