import Foundation
import PackagePlugin

/// Writes `BuildCommit.swift` for the target: the git commit the package is built from, read from
/// the checkout's git folder (nil when built from a source tree without one). Run again when
/// `HEAD`, the branch it names or `packed-refs` change, so a new commit or checkout is never shown
/// stale. A worktree's `.git` file (`gitdir: …`) and its `commondir` are followed.
@main
struct BuildCommit: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let root = context.package.directoryURL
        let files = FileManager.default
        var inputs: [URL] = []
        if let (git, common) = Self.gitFolders(root.appending(path: ".git")) {
            inputs.append(git.appending(path: "HEAD"))
            if let text = try? String(contentsOf: git.appending(path: "HEAD"), encoding: .utf8), text.hasPrefix("ref: ")
            {
                inputs.append(common.appending(path: text.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)))
            }
            inputs.append(common.appending(path: "packed-refs"))
            inputs = inputs.filter { files.fileExists(atPath: $0.path) }
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "BuildCommit.swift")
        return [
            .buildCommand(
                displayName: "Reading the commit built", executable: try context.tool(named: "BuildCommitTool").url,
                arguments: [root.appending(path: ".git").path, output.path], inputFiles: inputs, outputFiles: [output])
        ]
    }

    /// The git folder holding `HEAD`, and the one holding the refs (the same but in a worktree).
    static func gitFolders(_ dotGit: URL) -> (URL, URL)? {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dotGit.path, isDirectory: &isFolder) else { return nil }
        var git = dotGit
        if !isFolder.boolValue {
            guard let text = try? String(contentsOf: dotGit, encoding: .utf8), text.hasPrefix("gitdir: ") else {
                return nil
            }
            let path = text.dropFirst(8).trimmingCharacters(in: .whitespacesAndNewlines)
            git = URL(fileURLWithPath: path, relativeTo: dotGit.deletingLastPathComponent()).standardizedFileURL
        }
        var common = git
        if let text = try? String(contentsOf: git.appending(path: "commondir"), encoding: .utf8) {
            let path = text.trimmingCharacters(in: .whitespacesAndNewlines)
            common = URL(fileURLWithPath: path, relativeTo: git.appending(path: "")).standardizedFileURL
        }
        return (git, common)
    }
}
