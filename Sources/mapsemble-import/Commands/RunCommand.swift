import ArgumentParser
import Foundation
import MapsembleImport

/// `mapsemble-import run`: read → validate → transform → chunk → upload; write the report.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Import a file into a map and write the report.")

    @OptionGroup var options: PipelineOptions

    func run() async throws {
        if !options.dryRun && (options.output != nil || options.outputBatches != nil) {
            Console.error("--output and --output-batches go with --dry-run")
            throw ExitCode(2)
        }
        try await PipelineRunner(options: options, dryRun: options.dryRun).run()
    }
}

/// `mapsemble-import validate`: everything but the upload; same report.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract:
            "Check a file against the pipeline, and the map's fields when a key and map are given, without uploading.")

    @OptionGroup var options: PipelineOptions

    func run() async throws {
        try await PipelineRunner(options: options, dryRun: true, checkMap: true).run()
    }
}
