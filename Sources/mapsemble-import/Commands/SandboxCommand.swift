import ArgumentParser
import Foundation
import MapsembleImport
import MapsembleSandbox

/// `mapsemble-import sandbox`: the local Mapsemble-compatible API server.
struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run a local Mapsemble-compatible API server to try a pipeline without touching production.",
        discussion: """
            A map is given as ID[:plan=free|pro][:remote=SLUG][:geocode=SLUG][:fields=SLUG[=TYPE],...], for example
            --map 5a9db0c0-0000-4000-8000-000000000001:plan=free:remote=store_id:fields=city,revenue=number
            With --pipeline, a map that fits that pipeline is made instead.
            """)

    @Option(help: "Port to listen on (0 picks a free one).")
    var port = 8787

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(name: .customLong("map"), help: "A map to serve (repeatable).")
    var maps: [String] = []

    @Option(help: "Serve a map made for this pipeline file.")
    var pipeline: String?

    @Option(name: .customLong("api-key"), help: "The API key clients must send.")
    var apiKey = "sandbox-key"

    @Option(name: .customLong("max-features"), help: "Features per request before answering 400.")
    var maxFeatures = 1000

    @Option(name: .customLong("free-limit"), help: "Features a free-plan map holds.")
    var freeLimit = 100

    @Option(help: "Seed of the fault draws.")
    var seed: UInt64 = 1

    @Option(name: .customLong("rate-limit"), help: "Share (0-1) of writes answered 429.")
    var rateLimit = 0.0

    @Option(name: .customLong("retry-after"), help: "Retry-After seconds sent with a 429 (-1: none).")
    var retryAfter = 1

    @Option(
        name: .customLong("without-retry-after"),
        help: "Share of 429s sent without Retry-After (the client backs off by itself).")
    var withoutRetryAfter = 0.0

    @Option(name: .customLong("server-errors"), help: "Share of writes answered 500/502/503 before applying.")
    var serverErrors = 0.0

    @Option(name: .customLong("drop-after-apply"), help: "Share of writes applied and then dropped without an answer.")
    var dropAfterApply = 0.0

    @Option(help: "Share of writes stalled past the client's time-out, then dropped.")
    var stalls = 0.0

    @Option(name: .customLong("stall-seconds"), help: "How long a stall lasts.")
    var stallSeconds = 60.0

    @Option(name: .customLong("slow-reads"), help: "Share of writes whose body is read 4 kB at a time, with pauses.")
    var slowReads = 0.0

    @Option(name: .customLong("slow-read-ms"), help: "The pause between two reads of a slow read.")
    var slowReadMilliseconds = 20

    @Option(name: .customLong("latency-ms"), help: "Added to every answer.")
    var latencyMilliseconds = 0

    @Option(
        name: .customLong("redirect-to"),
        help: "Answer every API request with a 307 to this base URL (a client must not follow it with its key).")
    var redirectTo: String?

    @Option(
        name: .customLong("write-log"),
        help: "Append one JSON line per write request (method, status, dropped, remote ids) to this file.")
    var writeLog: String?

    @Flag(
        help:
            "Also serve geocoder endpoints (Nominatim /search, Photon /api, Pelias /v1/search) over a small built-in gazetteer, with the fault flags above."
    )
    var geocoder = false

    @Option(
        name: .customLong("geocoder-gazetteer"),
        help:
            "Serve the geocoder (and maps that geocode) from this GeoNames file (cities15000.txt, a country's file; .zip ok) instead of the built-in places.",
        completion: .file())
    var geocoderGazetteer: String?

    @Option(
        name: .customLong("geocoder-rate-limit"),
        help: "Geocoder requests per second at most; past it, 429 with Retry-After: 1.")
    var geocoderRateLimit: Double?

    @Option(
        name: .customLong("serve-dir"),
        help:
            "Also serve this folder's files at /files/NAME, with ETag and Last-Modified and 304 Not Modified for a conditional request: a source at a URL to try offline.",
        completion: .directory)
    var serveDir: String?

    @Flag(
        name: .customLong("print-features"),
        help: "On exit, print every stored feature to stdout, one GeoJSON Feature a line.")
    var printFeatures = false

    func run() async throws {
        var config = SandboxConfig()
        config.apiKeys = [apiKey: "sandbox"]
        config.maxFeaturesPerRequest = maxFeatures
        config.freePlanLimit = freeLimit
        config.faults.seed = seed
        config.faults.rateLimited = rateLimit
        config.faults.retryAfterSeconds = retryAfter < 0 ? nil : retryAfter
        config.faults.withoutRetryAfter = withoutRetryAfter
        config.faults.slowReads = slowReads
        config.faults.slowReadMilliseconds = slowReadMilliseconds
        config.faults.serverErrors = serverErrors
        config.faults.droppedAfterApply = dropAfterApply
        config.faults.stalls = stalls
        config.faults.stallSeconds = stallSeconds
        config.faults.latencyMilliseconds = latencyMilliseconds
        config.faults.redirectTo = redirectTo
        config.serveDirectory = serveDir.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        if geocoder || geocoderGazetteer != nil {
            var served = SandboxGeocoder(rateLimit: geocoderRateLimit)
            served.faults = rateLimit + serverErrors + stalls > 0
            if let geocoderGazetteer {
                do {
                    served.places = try GeoNamesFile.places(geocoderGazetteer).map {
                        SandboxGeocoder.Place(
                            name: $0.name, alternateNames: $0.alternateNames, countryCode: $0.countryCode,
                            latitude: $0.latitude, longitude: $0.longitude, population: $0.population)
                    }
                } catch let error as ImportError {
                    Console.error(error.description)
                    throw ExitCode(2)
                }
            }
            config.geocoder = served
        }
        if let writeLog {
            guard FileManager.default.createFile(atPath: writeLog, contents: nil) else {
                Console.error("cannot write the write log \(writeLog)")
                throw ExitCode(2)
            }
            config.writeLogPath = writeLog
        }
        do {
            config.maps = try maps.map(Self.parseMap)
            if let pipeline {
                var pipelineConfig = try ConfigLoader.load(
                    path: pipeline, environment: ProcessInfo.processInfo.environment)
                config.maps.append(EmbeddedSandbox.map(for: &pipelineConfig))
            }
        } catch let error as ImportError {
            Console.error(error.description)
            throw ExitCode(2)
        }
        if config.maps.isEmpty {
            config.maps = [
                .init(
                    id: EmbeddedSandbox.defaultMapID, label: "Sandbox map", fields: [.init(slug: "remote_id")],
                    remoteField: "remote_id")
            ]
        }
        let server: SandboxServer
        do {
            server = try await SandboxServer(config: config, host: host, port: port)
        } catch {
            Console.error("cannot listen on \(host):\(port): \(error)")
            throw ExitCode(2)
        }
        var lines = [
            "mapsemble-import sandbox listening on \(server.url)", "  API key: \(apiKey)",
            "  viewer: \(server.url)/ (draws each map's features as they land)",
        ]
        for map in config.maps {
            let fields = map.fields.map { $0.type == "text" ? $0.slug : "\($0.slug) (\($0.type))" }.joined(
                separator: ", ")
            lines.append(
                "  map \(map.id): plan \(map.plan.rawValue), remote field \(map.remoteField ?? "none")\(map.geocodeField.map { ", geocode field \($0)" } ?? ""), fields: \(fields.isEmpty ? "none" : fields)"
            )
        }
        if let directory = config.serveDirectory {
            lines.append("  files: \(server.url)/files/NAME serves \(directory) (ETag, Last-Modified, 304)")
        }
        lines.append(
            "try: MAPSEMBLE_API_KEY=\(apiKey) mapsemble-import run PIPELINE.yml --api-url \(server.url) --map \(config.maps[0].id)"
        )
        Console.write(lines.joined(separator: "\n") + "\n")

        let stopped = AsyncStream<Void>.makeStream()
        let interrupts = Interrupts { stopped.continuation.finish() }
        for await _ in stopped.stream {}
        interrupts.stop()
        if config.geocoder != nil {
            let counts = server.store.geocoderCounts
            print(
                "geocoder: \(counts.requests) requests, at most \(counts.busiestSecond) in one second; maps geocoded \(server.store.serverGeocodes) features"
            )
        }
        if printFeatures {
            for map in config.maps {
                for feature in server.store.features(map: map.id) {
                    print(feature.geoJSON)
                }
            }
        }
        await server.stop()
    }

    /// `ID[:plan=free|pro][:remote=SLUG][:geocode=SLUG][:fields=SLUG[=TYPE],...]`
    static func parseMap(_ spec: String) throws -> SandboxConfig.Map {
        let parts = spec.split(separator: ":").map(String.init)
        guard let id = parts.first, !id.isEmpty else { throw ImportError(.usage, "--map needs an id, got \"\(spec)\"") }
        var map = SandboxConfig.Map(id: id)
        for part in parts.dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { throw ImportError(.usage, "--map \"\(spec)\": \"\(part)\" is not KEY=VALUE") }
            switch pair[0] {
            case "plan":
                guard let plan = SandboxConfig.Plan(rawValue: pair[1]) else {
                    throw ImportError(.usage, "--map \"\(spec)\": plan must be free, pro or enterprise")
                }
                map.plan = plan
            case "remote": map.remoteField = pair[1]
            case "geocode": map.geocodeField = pair[1]
            case "label": map.label = pair[1]
            case "fields":
                map.fields = pair[1].split(separator: ",").map { entry in
                    let field = entry.split(separator: "=", maxSplits: 1).map(String.init)
                    return SandboxConfig.Field(slug: field[0], type: field.count > 1 ? field[1] : "text")
                }
            default:
                throw ImportError(
                    .usage,
                    "--map \"\(spec)\": unknown key \"\(pair[0])\"; expected plan, remote, geocode, label or fields")
            }
        }
        for slug in [map.geocodeField, map.remoteField].compactMap({ $0 })
        where !map.fields.contains(where: { $0.slug == slug }) {
            map.fields.insert(SandboxConfig.Field(slug: slug), at: 0)
        }
        return map
    }
}
