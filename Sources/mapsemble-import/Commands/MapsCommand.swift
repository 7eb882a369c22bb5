import ArgumentParser
import Foundation
import MapsembleImport

/// Where the read-only commands connect: flags over pipeline.yml over the environment.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("api-url"), help: "The Mapsemble API base URL.")
    var apiURL: String?

    @Option(help: "Take the API URL and key from this pipeline file.")
    var pipeline: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func config() throws -> PipelineConfig {
        var options = try PipelineOptions.parse(pipeline.map { [$0] } ?? [])
        options.apiURL = apiURL
        return try options.config()
    }

    /// Runs `body`, turning errors into one sentence and exit code 2.
    func run<T>(_ body: (PipelineConfig) async throws -> T) async throws -> T {
        try await Console.exitingOnError { try await body(try config()) }
    }

    func printJSON(_ object: Any) {
        let data =
            (try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        print(String(decoding: data, as: UTF8.self))
    }
}

/// `mapsemble-import maps`: the account's maps; `maps create`.
struct MapsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maps", abstract: "List the account's maps, create one from a file, or export one.",
        subcommands: [MapsListCommand.self, MapsCreateCommand.self, MapsExportCommand.self],
        defaultSubcommand: MapsListCommand.self)
}

/// `mapsemble-import maps [list]`.
struct MapsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the account's maps.")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let maps = try await connection.run { try await MapsembleAPI.maps($0) }
        if connection.json {
            connection.printJSON(maps.map { ["id": $0.id, "label": $0.label] })
            return
        }
        let width = maps.map(\.id.count).max() ?? 2
        print("ID".padding(toLength: width, withPad: " ", startingAt: 0) + "  LABEL")
        for map in maps { print(map.id.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + map.label) }
    }
}

/// `mapsemble-import fields MAP_ID`; `fields add`.
struct FieldsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fields", abstract: "List a map's fields, or add the ones a pipeline maps.",
        subcommands: [FieldsListCommand.self, FieldsAddCommand.self], defaultSubcommand: FieldsListCommand.self)
}

/// `mapsemble-import fields [list] MAP_ID`: one map's fields and remote field.
struct FieldsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List a map's fields (the slugs properties.fields maps to) and its remote field.")

    @Argument(help: "The map id.")
    var mapID: String

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let map = try await connection.run { try await MapsembleAPI.map(mapID, $0) }
        if connection.json {
            connection.printJSON(
                [
                    "id": map.id, "label": map.label, "remoteField": map.remoteField ?? NSNull(),
                    "fields": map.fields.map { ["slug": $0.slug, "type": $0.type, "label": $0.label] },
                ] as [String: Any])
            return
        }
        let width = max(4, map.fields.map(\.slug.count).max() ?? 4)
        let typeWidth = max(4, map.fields.map(\.type.count).max() ?? 4)
        print(
            "SLUG".padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                + "TYPE".padding(toLength: typeWidth, withPad: " ", startingAt: 0) + "  LABEL")
        for field in map.fields {
            let marker = field.slug == map.remoteField ? "  (remote field)" : ""
            print(
                field.slug.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                    + field.type.padding(toLength: typeWidth, withPad: " ", startingAt: 0) + "  " + field.label + marker
            )
        }
        if map.remoteField == nil { print("(no remote field: upsert and delete need one)") }
    }
}

/// `mapsemble-import maps create --label LABEL [--from PIPELINE.yml|FILE]`.
struct MapsCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract:
            "Create a map whose fields, remote field and geocode field come from a pipeline, or from inspect of a data file."
    )

    @Option(help: "The new map's label.")
    var label: String

    @Option(
        help:
            "A pipeline file (.yml), or a data file whose columns inspect profiles (default: pipeline.yml in the current folder)."
    )
    var from: String?

    @Option(
        name: .customLong("write-pipeline"),
        help: "Write a pipeline.yml that imports the file as it is into the new map to FILE.")
    var writePipeline: String?

    @Flag(name: .customLong("dry-run"), help: "Print the request body; create nothing.")
    var dryRun = false

    @Option(name: .customLong("api-url"), help: "The Mapsemble API base URL.")
    var apiURL: String?

    @Flag(help: "Print the created map as JSON.")
    var json = false

    func run() async throws {
        try await Console.exitingOnError {
            // A data file at a URL or in a .zip is read from a temporary copy.
            let input = from ?? "pipeline.yml"
            let dataCopy = try await LocalCopy.of(input)
            let source = try MapSetup.source(
                input, environment: ProcessInfo.processInfo.environment, readFrom: dataCopy?.path)
            var config = source.config
            if dataCopy != nil {
                config.source.origin = input
                config.source.path = dataCopy?.path
            }
            let copy = try await LocalCopy.of(&config)
            defer { withExtendedLifetime((dataCopy, copy)) {} }
            try Self.connect(&config, apiURL: apiURL)
            // The pipeline to write is made (and its edit checked) before the map exists.
            if let writePipeline {
                _ = try MapSetup.pipelineText(source, mapID: "00000000-0000-4000-8000-000000000000", to: writePipeline)
            }
            let creation = try await MapSetup.create(label: label, config: config, dryRun: dryRun)
            if dryRun {
                print(creation.body)
                return
            }
            guard let mapID = creation.mapID else { return }
            print(json ? creation.answer ?? "{}" : mapID)
            if let writePipeline {
                do {
                    try MapSetup.writePipeline(source, mapID: mapID, to: writePipeline)
                } catch let error as ImportError {
                    Console.error("map \(mapID) was created, but \(error.description)")
                    throw ExitCode(2)
                }
            }
            if json { return }
            for field in creation.fields {
                Console.write("  \(field.slug): \(field.type) (\(field.reason))\n")
            }
            if let writePipeline { Console.write("pipeline written to \(writePipeline)\n") }
        }
    }

    /// Credentials and the API URL from the environment and `--api-url`, where the pipeline has
    /// none (no other pipeline file is read).
    static func connect(_ config: inout PipelineConfig, apiURL: String?) throws {
        let environment = ProcessInfo.processInfo.environment
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        if config.target.apiKey == nil { config.target.apiKey = value("MAPSEMBLE_API_KEY") }
        if config.target.clientID == nil { config.target.clientID = value("MAPSEMBLE_CLIENT_ID") }
        if config.target.clientSecret == nil { config.target.clientSecret = value("MAPSEMBLE_CLIENT_SECRET") }
        if let apiURL {
            config.target.apiURL = apiURL
        } else if config.target.apiURL == PipelineConfig.Target().apiURL, let url = value("MAPSEMBLE_API_URL") {
            config.target.apiURL = url
        }
    }
}

/// `mapsemble-import fields add MAP_ID --from PIPELINE.yml`.
struct FieldsAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract:
            "Add to a map the fields a pipeline maps that it lacks (columns the pipeline does not map too); nothing is removed or retyped."
    )

    @Argument(help: "The map id.")
    var mapID: String

    @Option(help: "The pipeline file (default: pipeline.yml in the current folder).")
    var from: String?

    @Flag(
        name: .customLong("add-options"),
        help: "Add the values of select columns that are no option of their field as options.")
    var addOptions = false

    @Flag(name: .customLong("dry-run"), help: "Print the request body; change nothing.")
    var dryRun = false

    @Option(name: .customLong("api-url"), help: "The Mapsemble API base URL.")
    var apiURL: String?

    func run() async throws {
        try await Console.exitingOnError {
            var config = try ConfigLoader.load(
                path: from ?? "pipeline.yml", environment: ProcessInfo.processInfo.environment)
            try MapsCreateCommand.connect(&config, apiURL: apiURL)
            let copy = try await LocalCopy.of(&config)
            defer { withExtendedLifetime(copy) {} }
            let change = try await MapSetup.addFields(
                mapID: mapID, config: config, addOptions: addOptions, dryRun: dryRun)
            guard change.changed else {
                Console.write("map \(mapID) has every field the pipeline maps: nothing to add\n")
                return
            }
            if dryRun {
                print(change.body)
                return
            }
            for field in change.added { print("added \(field.slug): \(field.type) (\(field.reason))") }
            for (slug, values) in change.options.sorted(by: { $0.key < $1.key }) {
                print("added to \(slug): \(values.joined(separator: ", "))")
            }
        }
    }
}

/// `mapsemble-import maps export MAP_ID [--format geojson|csv] [--output FILE|-]`.
struct MapsExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract:
            "Write every feature of a map, page by page, to GeoJSON or to a CSV that re-imports with the pipeline inspect --emit-config makes."
    )

    @Argument(help: "The map id.")
    var mapID: String

    @Option(help: "geojson or csv (default: csv for an --output ending in .csv, else geojson).")
    var format: String?

    @Option(help: "The file to write; - for standard output (the default).")
    var output = "-"

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let chosen: MapExport.Format
        if let format {
            guard let known = MapExport.Format(rawValue: format) else {
                Console.error("--format must be geojson or csv, got \"\(format)\"")
                throw ExitCode(2)
            }
            chosen = known
        } else {
            chosen = MapExport.format(for: output)
        }
        let outcome = try await connection.run {
            try await MapExport.export(mapID: mapID, config: $0, format: chosen, output: output)
        }
        if output != "-" {
            Console.write(
                "\(outcome.features) features of map \(mapID) written to \(output) (\(outcome.pages) pages)\n")
        }
    }
}
