import Foundation
import MapsembleJSON

/// How a run ended, as a notification, the history and the metrics tell it.
public struct RunEnd: Sendable {
    public var runID: String
    /// nil when the run stopped before any row moved.
    public var summary: RunSummary?
    public var exitCode: Int32
    /// Why the run stopped, when it did.
    public var failure: String?
    public var input: String
    /// The pipeline file, when there was one.
    public var pipeline: String?
    public var map: String?
    public var mode: String
    /// The report files the run wrote (those that exist).
    public var reports: [String: String] = [:]

    public init(
        runID: String, summary: RunSummary?, exitCode: Int32, failure: String?, input: String, pipeline: String?,
        map: String?, mode: String
    ) {
        self.runID = runID
        self.summary = summary
        self.exitCode = exitCode
        self.failure = failure
        self.input = input
        self.pipeline = pipeline
        self.map = map
        self.mode = mode
    }

    /// `running` never; else as the history says it.
    public var status: String {
        if exitCode == 130 || summary?.interrupted == true { return "interrupted" }
        return summary?.status.rawValue ?? "failed"
    }
}

/// `notify:`: once a run ends, a webhook gets a POST (with the shared retry policy and a short
/// time-out). A notification that cannot be delivered is a warning: it never changes the exit
/// code nor touches the reports. The webhook's URL is a secret and appears nowhere.
public enum Notifier {
    /// Whether a run that ended with `exitCode` is worth a notification under `on`.
    public static func wanted(_ on: PipelineConfig.Notify.When, exitCode: Int32) -> Bool {
        switch on {
        case .always: true
        case .rejects: (1...3).contains(exitCode)
        case .failure: exitCode == 2 || exitCode == 3
        }
    }

    /// The request body for `end`.
    public static func body(_ format: PipelineConfig.Notify.Format, _ end: RunEnd) -> [UInt8] {
        let host = ProcessInfo.processInfo.hostName
        var members: [(String, JSONValue)] = [
            ("event", "import_finished"), ("run_id", .string(end.runID)), ("host", .string(host)),
            ("exit_code", .number(Double(end.exitCode))), ("status", .string(end.status)),
            ("input", .string(end.input)), ("map", end.map.map { .string($0) } ?? .null), ("mode", .string(end.mode)),
            ("pipeline", end.pipeline.map { .string($0) } ?? .null),
        ]
        if let failure = end.failure { members.append(("error", .string(failure))) }
        switch format {
        case .json:
            if let summary = end.summary, let parsed = JSONParser.parse(Array(summary.json.utf8)),
                let fields = parsed.members
            {
                let known = Set(members.map(\.0))
                members += fields.filter { !known.contains($0.0) && $0.0 != "run_id" }
            }
            members.append(
                ("reports", .object(end.reports.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
            return JSONValue.object(members).bytes
        case .slack:
            return JSONValue.object([("text", .string(slackText(end, host: host)))]).bytes
        }
    }

    /// One paragraph: what ran, how it ended, the counts and the top reject codes.
    static func slackText(_ end: RunEnd, host: String) -> String {
        let mark = end.exitCode == 0 ? ":white_check_mark:" : end.exitCode == 1 ? ":warning:" : ":x:"
        let name = (end.input as NSString).lastPathComponent
        var text =
            "\(mark) mapsemble-import \(end.mode) of \(name) into map \(end.map ?? "?"): \(end.status) (exit \(end.exitCode))"
        if let summary = end.summary {
            text +=
                ". \(summary.imported) of \(summary.rowsRead) rows imported (\(summary.created) created, \(summary.updated) updated, \(summary.deleted) deleted, \(summary.unchanged) unchanged), \(summary.rejected) rejected, \(summary.notSent) not sent in \(String(format: "%.1f", summary.durationSeconds)) s"
            let top = summary.rejectedByCode.sorted { ($1.value, $0.key.rawValue) < ($0.value, $1.key.rawValue) }
                .prefix(3)
            if !top.isEmpty {
                text += "; top reject codes: " + top.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")
            }
        }
        if let failure = end.failure { text += ". \(failure)" }
        text += ". Run \(end.runID) on \(host)"
        if let report = end.reports["html"] ?? end.reports["summary"] { text += "; report: \(report)" }
        return text + "."
    }

    /// POSTs the notification. Returns nil once delivered, else a warning to print (never the URL).
    /// Not cancelled with the run: an interrupted run is still told about.
    public static func send(_ settings: PipelineConfig.Notify, _ end: RunEnd) async -> String? {
        let body = body(settings.format, end)
        return await Task.detached {
            let worker = CurlWorker(name: "notify")
            let policy = RetryPolicy(maxRetries: settings.maxRetries, backoffSeconds: 0.5, maxBackoffSeconds: 5)
            do {
                let (response, _) = try await worker.exchange(
                    policy: policy, timeoutSeconds: settings.timeoutSeconds,
                    request: {
                        HTTPRequest(
                            method: "POST", url: settings.webhook,
                            headers: ["Content-Type: application/json"], body: body,
                            timeoutSeconds: settings.timeoutSeconds)
                    })
                guard (200..<300).contains(response.status) else {
                    return "the notification webhook answered HTTP \(response.status); the run's outcome stands"
                }
                return nil
            } catch let exhausted as RetriesExhausted {
                return
                    "the notification could not be delivered (\(exhausted.reason), \(exhausted.attempts) attempt\(exhausted.attempts == 1 ? "" : "s")); the run's outcome stands"
            } catch {
                return "the notification could not be delivered (\(error)); the run's outcome stands"
            }
        }.value
    }
}
