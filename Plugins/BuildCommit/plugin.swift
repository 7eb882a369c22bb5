import Foundation
import PackagePlugin

/// Writes `BuildCommit.swift` for the target: the git commit the package is built from, read from
/// the checkout's `.git` (nil when built from a source tree without one). Run again when `HEAD`,
/// the branch it names or `packed-refs` change, so a new commit or checkout is never shown stale.
@main
struct BuildCommit: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let root = context.package.directoryURL
        let git = root.appending(path: ".git")
        let files = FileManager.default
        var inputs: [URL] = []
        let head = git.appending(path: "HEAD")
        if files.fileExists(atPath: head.path) {
            inputs.append(head)
            if let text = try? String(contentsOf: head, encoding: .utf8), text.hasPrefix("ref: ") {
                let reference = git.appending(path: text.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines))
                if files.fileExists(atPath: reference.path) { inputs.append(reference) }
            }
            let packed = git.appending(path: "packed-refs")
            if files.fileExists(atPath: packed.path) { inputs.append(packed) }
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "BuildCommit.swift")
        return [
            .buildCommand(
                displayName: "Reading the commit built", executable: try context.tool(named: "BuildCommitTool").url,
                arguments: [git.path, output.path], inputFiles: inputs, outputFiles: [output])
        ]
    }
}
