import Foundation

// The build's helper for the `BuildCommit` plugin: `BuildCommitTool GIT_DIR OUTPUT` writes
// `enum BuildCommit { static let hash: String? }` with the commit `GIT_DIR/HEAD` names, read from
// the files git keeps (no git binary needed): a loose ref, then `packed-refs`.
let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: BuildCommitTool GIT_DIR OUTPUT\n".utf8))
    exit(2)
}
let git = URL(fileURLWithPath: arguments[1])

func read(_ path: String) -> String? {
    (try? String(contentsOf: git.appendingPathComponent(path), encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines)
}

func isHash(_ text: String) -> Bool { text.count == 40 && text.allSatisfy(\.isHexDigit) }

func commit() -> String? {
    guard let head = read("HEAD") else { return nil }
    if isHash(head) { return head }
    guard head.hasPrefix("ref: ") else { return nil }
    let reference = String(head.dropFirst(5))
    if let loose = read(reference), isHash(loose) { return loose }
    for line in (read("packed-refs") ?? "").split(separator: "\n") {
        let parts = line.split(separator: " ")
        if parts.count == 2, parts[1] == reference, isHash(String(parts[0])) { return String(parts[0]) }
    }
    return nil
}

let value = commit().map { "\"\($0)\"" } ?? "nil"
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
