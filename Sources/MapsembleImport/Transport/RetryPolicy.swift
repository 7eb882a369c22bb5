import Foundation

/// The one HTTP retry policy of the tool, for every request it makes (uploads, the map listing,
/// deletes, reads of a map): which answers are tried again, how long to wait, when to give up.
///
/// Tried again: 429, 500, 502, 503, 504, time-outs and dropped connections. The wait before retry
/// `n` is the server's `Retry-After` when it sent one (seconds or an HTTP date, an hour at most),
/// else full jitter: a uniform draw in `0...min(maxBackoffSeconds, backoffSeconds × 2^(n-1))`, so
/// that many clients refused at once do not come back at once.
public struct RetryPolicy: Sendable, Equatable {
    /// Retries after the first attempt.
    public var maxRetries: Int
    /// First backoff step, doubled each retry.
    public var backoffSeconds: Double
    /// The backoff never grows past this.
    public var maxBackoffSeconds: Double

    public init(maxRetries: Int, backoffSeconds: Double = 0.5, maxBackoffSeconds: Double = 30) {
        self.maxRetries = maxRetries
        self.backoffSeconds = backoffSeconds
        self.maxBackoffSeconds = maxBackoffSeconds
    }

    /// For a command's first request (reading the map): two retries at most, so that a mistyped
    /// address or a server that is down is said in seconds, not after every retry of a long run.
    public var firstContact: RetryPolicy {
        RetryPolicy(
            maxRetries: min(maxRetries, 2), backoffSeconds: backoffSeconds, maxBackoffSeconds: maxBackoffSeconds)
    }

    /// Whether an answer with this status is worth sending again.
    public static func isRetryable(status: Int) -> Bool {
        status == 429 || status == 500 || status == 502 || status == 503 || status == 504
    }

    /// The ceiling of the jittered wait before retry `attempt` (1-based).
    public func backoffCeiling(attempt: Int) -> Double {
        min(maxBackoffSeconds, backoffSeconds * pow(2, Double(min(attempt, 62) - 1)))
    }

    /// The wait before retry `attempt` (1-based), in seconds.
    public func delay<Generator: RandomNumberGenerator>(
        attempt: Int, retryAfter: String?, using generator: inout Generator
    ) -> Double {
        if let retryAfter, let seconds = Self.retryAfterSeconds(retryAfter) { return seconds }
        return Double.random(in: 0...backoffCeiling(attempt: attempt), using: &generator)
    }

    public func delay(attempt: Int, retryAfter: String?) -> Double {
        var generator = SystemRandomNumberGenerator()
        return delay(attempt: attempt, retryAfter: retryAfter, using: &generator)
    }

    /// `Retry-After` as seconds: a number, or an HTTP date; an hour at most.
    static func retryAfterSeconds(_ value: String) -> Double? {
        if let seconds = Double(value.trimmingSpaces), seconds >= 0 { return min(seconds, 3600) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value.trimmingSpaces) else { return nil }
        return min(max(0, date.timeIntervalSinceNow), 3600)
    }
}

/// A request that still had no answer worth reading after the policy's last retry.
struct RetriesExhausted: Error {
    /// Attempts made.
    var attempts: Int
    /// Why the last one failed: `HTTP 503`, `rate limited (HTTP 429)`, a transport error.
    var reason: String
    /// The last answer's status; nil when it got none.
    var status: Int?
}

/// One retry about to happen, for counters and log lines.
struct RetryNotice: Sendable {
    var attempt: Int
    var maxRetries: Int
    var delaySeconds: Double
    var reason: String
    /// The status of the answer that is retried; nil when none came.
    var status: Int?

    /// `retry 2 of 8 in 0.4 s: HTTP 503`.
    var sentence: String {
        "retry \(attempt) of \(maxRetries) in \(String(format: "%.1f", delaySeconds)) s: \(reason)"
    }

    /// The `retry` log event's fields.
    var fields: [String: RunEvent.Value] {
        var fields: [String: RunEvent.Value] = [
            "attempt": .int(attempt), "max_retries": .int(maxRetries), "delay_ms": .int(Int(delaySeconds * 1000)),
            "reason": .text(reason),
        ]
        if let status { fields["status"] = .int(status) }
        return fields
    }
}
