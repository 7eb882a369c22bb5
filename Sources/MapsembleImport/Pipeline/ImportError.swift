#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fatal problem: the run cannot go on. Row-level problems are `Rejection` values instead.
///
/// `description` is one sentence naming the file, and the line and column when known — what the
/// command line prints after `error:`, never a stack trace.
public struct ImportError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Wrong flags or arguments. Exit code 2.
        case usage
        /// pipeline.yml is missing, malformed or inconsistent with the input. Exit code 2.
        case config
        /// The input cannot be opened or read. Exit code 2.
        case unreadableInput
        /// More rows were rejected than `report.max_rejects` allows. Exit code 3.
        case tooManyRejects
        /// An output or report file cannot be written. Exit code 2.
        case output
        /// The API refused the pre-flight (key, map, fields) or cannot be reached: nothing was sent. Exit code 2.
        case remote
        /// The upload stopped part-way (auth, plan limit, retries exhausted). Exit code 3.
        case uploadAborted
    }

    public var kind: Kind
    public var file: String?
    public var line: Int?
    public var column: String?
    public var message: String

    public init(_ kind: Kind, _ message: String, file: String? = nil, line: Int? = nil, column: String? = nil) {
        self.kind = kind
        self.message = message
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String {
        var place = ""
        if let file { place += file }
        if let line { place += place.isEmpty ? "line \(line)" : ":\(line)" }
        if let column { place += (place.isEmpty ? "" : ", ") + "column \"\(column)\"" }
        return place.isEmpty ? message : "\(place): \(message)"
    }

    /// The process exit code this error ends a command with.
    public var exitCode: Int32 {
        switch kind {
        case .tooManyRejects, .uploadAborted: 3
        default: 2
        }
    }

    /// The same error, attributed to `file` when it names none yet.
    func inFile(_ name: String) -> ImportError {
        var copy = self
        if copy.file == nil { copy.file = name }
        return copy
    }
}

extension ImportError {
    /// A failed system call, its reason read from `errno`: "`what`: reason", e.g. "cannot open the
    /// input: No such file or directory". Make it right after the call that failed, before another
    /// one (`close`, `unlink`) can change `errno`.
    static func system(_ kind: Kind, _ what: String, file: String? = nil, line: Int? = nil) -> ImportError {
        ImportError(kind, "\(what): \(String(cString: strerror(errno)))", file: file, line: line)
    }
}
