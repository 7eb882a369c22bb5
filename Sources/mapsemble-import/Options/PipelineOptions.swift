import ArgumentParser
import Foundation
import MapsembleImport

/// Flags every pipeline command takes; each overrides pipeline.yml (spec/cli.md).
struct PipelineOptions: ParsableArguments {
    @Argument(help: "The pipeline file (default: pipeline.yml in the current folder, if there is one).")
    var pipeline: String?

    @Option(help: "The input file; - reads standard input.")
    var input: String?

    @Option(help: "For a workbook: the sheet to read, by name or 1-based position (default: the first).")
    var sheet: String?

    @Option(help: "The map id.")
    var map: String?

    @Option(name: .customLong("api-url"), help: "The Mapsemble API base URL.")
    var apiURL: String?

    @Option(help: "create, upsert, replace, delete, update or sync.")
    var mode: String?

    @Option(name: .customLong("report-dir"), help: "Where the report files go.")
    var reportDir: String?

    @Option(name: .customLong("batch-size"), help: "Features per request, 1 to 1000.")
    var batchSize: Int?

    @Option(help: "Requests in flight at once.")
    var concurrency: Int?

    @Option(
        name: .customLong("max-rejects"), help: "Stop when more rows than this are rejected: a count N or a share P%.")
    var maxRejects: String?

    @Flag(name: .customLong("dry-run"), help: "Do everything but upload; no network.")
    var dryRun = false

    @Option(help: "With --dry-run: write every feature as one GeoJSON FeatureCollection to FILE (- for stdout).")
    var output: String?

    @Option(
        name: .customLong("output-batches"),
        help: "With --dry-run: write each request body, one per line, to FILE (- for stdout).")
    var outputBatches: String?

    @Flag(name: .customLong("no-html-report"), help: "Do not write NAME.report.html (report.html: false).")
    var noHTMLReport = false

    @Flag(help: "Ignore a resume journal and start from the first row.")
    var fresh = false

    @Flag(
        name: .customLong("force-delete"),
        help: "mode sync: delete the map's features missing from the file even past sync.max_delete.")
    var forceDelete = false

    @Flag(
        name: .customLong("refresh-geocodes"),
        help: "geocode: ask the geocoder again for every address, whatever the cache holds.")
    var refreshGeocodes = false

    @Option(
        help:
            "Before anything is written (a sync's deletions included), export the map to FILE: CSV for .csv, else GeoJSON."
    )
    var backup: String?

    @Flag(
        name: .customLong("create-fields"),
        help:
            "Map the columns the pipeline does not map to new fields, and add the mapped fields the map lacks before the first row is sent (never removes or retypes a field)."
    )
    var createFields = false

    @Flag(
        name: .customLong("add-options"),
        help: "With --create-fields: add the values of select columns that are no option of their field as options.")
    var addOptions = false

    @Option(
        name: .customLong("state-dir"),
        help:
            "Where state kept between runs goes (the geocoding cache); default $MAPSEMBLE_STATE_DIR, else $XDG_STATE_HOME/mapsemble-import, else ~/.local/state/mapsemble-import."
    )
    var stateDir: String?

    @Option(
        name: .customLong("metrics-file"),
        help:
            "After each run, write its Prometheus metrics to FILE (for node_exporter's textfile collector), keeping other pipelines' series there."
    )
    var metricsFile: String?

    @Flag(help: "Import into an embedded sandbox server on loopback.")
    var sandbox = false

    @Option(help: "auto, always or never.")
    var progress: ProgressMode = .auto

    @Option(name: .customLong("log-format"), help: "text or json.")
    var logFormat: LogFormat = .text

    @Flag(name: .shortAndLong, help: "Print only errors.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Print more detail.")
    var verbose = false

    mutating func validate() throws {
        if let batchSize, !(1...1000).contains(batchSize) {
            throw ValidationError("--batch-size must be from 1 to 1000, got \(batchSize)")
        }
        if let concurrency, !(1...64).contains(concurrency) {
            throw ValidationError("--concurrency must be from 1 to 64, got \(concurrency)")
        }
        if let mode, PipelineConfig.Mode(rawValue: mode) == nil {
            throw ValidationError(
                "--mode must be one of create, upsert, replace, delete, update, sync; got \"\(mode)\"")
        }
        if let maxRejects, PipelineConfig.Threshold(parsing: maxRejects) == nil {
            throw ValidationError(
                "--max-rejects must be a count such as 100 or a share such as 5%, got \"\(maxRejects)\"")
        }
        if addOptions && !createFields {
            throw ValidationError("--add-options goes with --create-fields")
        }
        if output == "-" && outputBatches == "-" {
            throw ValidationError("--output and --output-batches cannot both write to standard output")
        }
    }

    /// pipeline.yml (when there is one; `path` instead of the argument when given) with the
    /// environment and these flags applied.
    func config(pipeline path: String? = nil) throws -> PipelineConfig {
        let environment = ProcessInfo.processInfo.environment
        var config = PipelineConfig()
        if let pipeline = path ?? pipeline {
            config = try ConfigLoader.load(path: pipeline, environment: environment)
        } else if FileManager.default.fileExists(atPath: "pipeline.yml") {
            config = try ConfigLoader.load(path: "pipeline.yml", environment: environment)
        }
        Self.applyEnvironment(&config, environment)
        if let input { config.source.path = input }
        if let sheet { config.source.sheet = sheet }
        if let map { config.target.mapID = map }
        if let apiURL { config.target.apiURL = apiURL }
        if let mode { config.target.mode = PipelineConfig.Mode(rawValue: mode) }
        if let reportDir { config.report.dir = reportDir }
        if let batchSize { config.upload.batchSize = batchSize }
        if let concurrency { config.upload.concurrency = concurrency }
        if let maxRejects { config.report.maxRejects = PipelineConfig.Threshold(parsing: maxRejects) }
        if noHTMLReport { config.report.html = false }
        return config
    }
}

extension PipelineOptions {
    /// The credentials and API URL the environment gives, where pipeline.yml gives none.
    static func applyEnvironment(
        _ config: inout PipelineConfig, _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        if config.target.apiKey == nil {
            config.target.apiKey = environment["MAPSEMBLE_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        }
        if let url = environment["MAPSEMBLE_API_URL"], !url.isEmpty,
            config.target.apiURL == PipelineConfig.Target().apiURL
        {
            config.target.apiURL = url
        }
        if config.target.clientID == nil { config.target.clientID = environment["MAPSEMBLE_CLIENT_ID"] }
        if config.target.clientSecret == nil { config.target.clientSecret = environment["MAPSEMBLE_CLIENT_SECRET"] }
    }
}

enum ProgressMode: String, ExpressibleByArgument, CaseIterable {
    case auto, always, never
}

enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}
