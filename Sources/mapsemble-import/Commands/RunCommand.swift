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
        guard options.dryRun else {
            Console.error(
                "uploading to Mapsemble is not available in this version yet; use --dry-run (with --output FILE to see the features) or the validate command"
            )
            throw ExitCode(2)
        }
        if options.sandbox {
            Console.error("--sandbox is not available in this version yet")
            throw ExitCode(2)
        }
        try await PipelineRunner(options: options, command: "run").run()
    }
}

/// `mapsemble-import validate`: everything but the upload; same report.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a file against the pipeline without uploading; write the same report.")

    @OptionGroup var options: PipelineOptions

    func run() async throws {
        try await PipelineRunner(options: options, command: "validate").run()
    }
}
