import ArgumentParser
import Foundation
import MapsembleImport

/// The `mapsemble-import` command line. Thin: options become a `PipelineConfig` and the core
/// library does the work.
@main
struct MapsembleImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mapsemble-import",
        abstract: "Load CSV files and Excel workbooks into Mapsemble maps, accounting for every row.",
        version: ToolVersion.described,
        subcommands: [
            RunCommand.self, ValidateCommand.self, InspectCommand.self, MapsCommand.self, FieldsCommand.self,
            SandboxCommand.self, WatchCommand.self, HistoryCommand.self, RollbackCommand.self,
        ])

    /// Exit codes of spec/cli.md: usage errors are 2, not the parser's 64.
    static func main() async {
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            Console.error(fullMessage(for: error))
            Foundation.exit(2)
        }
    }
}
