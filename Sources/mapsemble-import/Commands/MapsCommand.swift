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
        do {
            return try await body(try config())
        } catch let error as ImportError {
            Console.error(error.description)
            throw ExitCode(2)
        }
    }

    func printJSON(_ object: Any) {
        let data =
            (try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        print(String(decoding: data, as: UTF8.self))
    }
}

/// `mapsemble-import maps`: the account's maps.
struct MapsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "maps", abstract: "List the account's maps.")

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

/// `mapsemble-import fields MAP_ID`: one map's fields and remote field.
struct FieldsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fields",
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
