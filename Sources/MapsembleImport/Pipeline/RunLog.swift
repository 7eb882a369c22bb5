import Logging
import Synchronization

/// How much a log line matters: `detail` says what was decided (shown with `--verbose`);
/// `notice` reports something that happened to the run, such as a retry (shown unless `--quiet`).
public enum LogLevel: String, Sendable {
    case detail
    case notice
}

/// One log line: a sentence for people, and for `--log-format json` a stable event name with
/// fields (`file`, `line`, `code`, `batch`, `status`, `attempt`, `delay_ms`, …) for machines.
public struct RunEvent: Sendable {
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

extension LogLevel {
    /// The swift-log level: a decision is `info`, something that happened to the run `notice`.
    public var loggerLevel: Logger.Level { self == .detail ? .info : .notice }
}

extension RunEvent {
    /// The run's event a swift-log record carries, as `Logger.log(_:)` wrote it: the message, the
    /// `event` metadata key, the other keys as fields (whole numbers as numbers). A record logged
    /// otherwise is a `notice` from `notice` up, else a `detail`.
    public init(_ record: Logging.LogEvent, handlerMetadata: Logger.Metadata = [:]) {
        var fields: [String: Value] = [:]
        var name: String?
        for (key, value) in handlerMetadata.merging(record.metadata ?? [:], uniquingKeysWith: { $1 }) {
            switch value {
            case .string(let text) where key == "event": name = text
            case .stringConvertible(let number as Int): fields[key] = .int(number)
            default: fields[key] = .text(value.description)
            }
        }
        self.init(
            record.level >= .notice ? .notice : .detail, record.message.description, event: name, fields: fields)
    }
}

extension Logger {
    /// A logger that drops everything: a run's logger unless one is given.
    public static let silent = Logger(label: "mapsemble-import", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Logs a run's event: its sentence as the message, its `event` name and fields as metadata.
    public func log(_ event: RunEvent) {
        var metadata: Logger.Metadata = ["event": .string(event.event)]
        for (key, value) in event.fields {
            switch value {
            case .int(let number): metadata[key] = .stringConvertible(number)
            case .text(let text): metadata[key] = .string(text)
            }
        }
        log(level: event.level.loggerLevel, "\(event.message)", metadata: metadata)
    }
}

/// A swift-log handler that hands each record on as a run's `RunEvent`: how the command line
/// writes its text and JSON lines, and an easy way for an application to collect a run's events.
public struct EventLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let receive: @Sendable (RunEvent) -> Void

    public init(logLevel: Logger.Level = .info, _ receive: @escaping @Sendable (RunEvent) -> Void) {
        self.logLevel = logLevel
        self.receive = receive
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: Logging.LogEvent) {
        receive(RunEvent(event, handlerMetadata: metadata))
    }
}

extension Logger {
    /// A logger whose records reach `receive` as `RunEvent`s (`EventLogHandler`).
    public static func events(
        label: String = "mapsemble-import", logLevel: Logger.Level = .info,
        _ receive: @escaping @Sendable (RunEvent) -> Void
    ) -> Logger {
        Logger(label: label, factory: { _ in EventLogHandler(logLevel: logLevel, receive) })
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
    /// What geocoding did so far, when the pipeline geocodes.
    public var geocoding: RunSummary.Geocoding?
    /// While a URL source downloads (before any row is read): its bytes so far.
    public var downloaded: Int?
}

/// The first rejected rows, one log line each (shown with `-v`; `rejected` events in JSON).
final class RejectionLog: Sendable {
    /// Rows logged one by one, at most; all of them are in the report.
    static let limit = 100
    let log: @Sendable (RunEvent) -> Void
    let report: String
    private let count = Atomic<Int>(0)

    init(log: @escaping @Sendable (RunEvent) -> Void, report: String) {
        self.log = log
        self.report = report
    }

    func observe(_ rejection: Rejection) {
        let number = count.add(1, ordering: .relaxed).newValue
        guard number <= Self.limit else { return }
        let column = rejection.column.isEmpty ? "" : " in \"\(rejection.column)\""
        let more = number == Self.limit ? " (further rejected rows are in \(report) only)" : ""
        log(
            RunEvent(
                .detail, "line \(rejection.line): \(rejection.code.rawValue)\(column): \(rejection.message)\(more)",
                event: "rejected",
                fields: [
                    "line": .int(rejection.line), "code": .text(rejection.code.rawValue),
                    "column": .text(rejection.column),
                ]))
    }
}
