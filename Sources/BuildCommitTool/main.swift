import Foundation

// The build's helper for the `BuildCommit` plugin: `BuildCommitTool DOT_GIT OUTPUT` writes
// `enum BuildCommit { static let hash: String? }` with the commit `HEAD` names, read from the files
// git keeps (no git binary needed): a loose ref, then `packed-refs`; a worktree's `.git` file is
// followed.
let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: BuildCommitTool DOT_GIT OUTPUT\n".utf8))
    exit(2)
}
/// The folder holding `HEAD` (`.git` itself, or in a worktree the one its `gitdir:` line names),
/// and the one holding the refs (a worktree's `commondir`, else the same).
func folders(_ dotGit: URL) -> (git: URL, common: URL) {
    var git = dotGit
    if let text = try? String(contentsOf: dotGit, encoding: .utf8), text.hasPrefix("gitdir: ") {
        let path = text.dropFirst(8).trimmingCharacters(in: .whitespacesAndNewlines)
        git = URL(fileURLWithPath: path, relativeTo: dotGit.deletingLastPathComponent()).standardizedFileURL
    }
    var common = git
    if let text = try? String(contentsOf: git.appendingPathComponent("commondir"), encoding: .utf8) {
        let path = text.trimmingCharacters(in: .whitespacesAndNewlines)
        common = URL(fileURLWithPath: path, relativeTo: git.appendingPathComponent("")).standardizedFileURL
    }
    return (git, common)
}

func read(_ path: String, in folder: URL) -> String? {
    (try? String(contentsOf: folder.appendingPathComponent(path), encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines)
}

func isHash(_ text: String) -> Bool { text.count == 40 && text.allSatisfy(\.isHexDigit) }

func commit(_ dotGit: URL) -> String? {
    let (git, common) = folders(dotGit)
    guard let head = read("HEAD", in: git) else { return nil }
    if isHash(head) { return head }
    guard head.hasPrefix("ref: ") else { return nil }
    let reference = String(head.dropFirst(5))
    if let loose = read(reference, in: common), isHash(loose) { return loose }
    for line in (read("packed-refs", in: common) ?? "").split(separator: "\n") {
        let parts = line.split(separator: " ")
        if parts.count == 2, parts[1] == reference, isHash(String(parts[0])) { return String(parts[0]) }
    }
    return nil
}

let value = commit(URL(fileURLWithPath: arguments[1])).map { "\"\($0)\"" } ?? "nil"
let text = """
    // Written by the build (Plugins/BuildCommit) from the checkout's .git: not edited by hand.
    enum BuildCommit {
        static let hash: String? = \(value)
    }

    """
do {
    try Data(text.utf8).write(to: URL(fileURLWithPath: arguments[2]), options: .atomic)
} catch {
    FileHandle.standardError.write(Data("BuildCommitTool: cannot write \(arguments[2]): \(error)\n".utf8))
    exit(1)
}
