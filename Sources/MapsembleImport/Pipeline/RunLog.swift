import Synchronization

/// How much a log line matters: `detail` says what was decided (shown with `--verbose`);
/// `notice` reports something that happened to the run, such as a retry (shown unless `--quiet`).
public enum LogLevel: String, Sendable {
    case detail
    case notice
}

/// One log line: a sentence for people, and for `--log-format json` a stable event name with
/// fields (`file`, `line`, `code`, `batch`, `status`, `attempt`, `delay_ms`, …) for machines.
public struct LogEvent: Sendable {
    public enum Value: Sendable, Equatable {
        case int(Int)
        case text(String)
    }

    public var level: LogLevel
    public var message: String
    /// `plan`, `notice`, `retry`, `resume`, `journal`, `diff`, `delete`, …
    public var event: String
    public var fields: [String: Value]

    public init(_ level: LogLevel, _ message: String, event: String? = nil, fields: [String: Value] = [:]) {
        self.level = level
        self.message = message
        self.event = event ?? (level == .detail ? "plan" : "notice")
        self.fields = fields
    }
}

/// Progress of a run, for a progress line.
public struct Progress: Sendable {
    public var rowsRead: Int
    public var bytesRead: Int
    /// Rows rejected so far (a few blocks behind `rowsRead`).
    public var rejected: Int
    /// Requests sent again so far.
    public var retries = 0
}

/// The first rejected rows, one log line each (shown with `-v`; `rejected` events in JSON).
final class RejectionLog: Sendable {
    /// Rows logged one by one, at most; all of them are in the report.
    static let limit = 100
    let log: @Sendable (LogEvent) -> Void
    let report: String
    private let count = Atomic<Int>(0)

    init(log: @escaping @Sendable (LogEvent) -> Void, report: String) {
        self.log = log
        self.report = report
    }

    func observe(_ rejection: Rejection) {
        let number = count.add(1, ordering: .relaxed).newValue
        guard number <= Self.limit else { return }
        let column = rejection.column.isEmpty ? "" : " in \"\(rejection.column)\""
        let more = number == Self.limit ? " (further rejected rows are in \(report) only)" : ""
        log(
            LogEvent(
                .detail, "line \(rejection.line): \(rejection.code.rawValue)\(column): \(rejection.message)\(more)",
                event: "rejected",
                fields: [
                    "line": .int(rejection.line), "code": .text(rejection.code.rawValue),
                    "column": .text(rejection.column),
                ]))
    }
}
