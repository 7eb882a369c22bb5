import MapsembleMapView

/// Faults the sandbox injects on write requests, deterministic for a given seed and request order.
///
/// Each write request draws one fate, in this order: refused by the rate limit (429 with
/// `Retry-After`), answered 500/502/503 before anything is applied, applied and then the connection
/// dropped without a response, or stalled past the client's time-out (then dropped, not applied).
/// `latencyMilliseconds` is added to every response. With `faultListings`, each GET of a map's
/// features (the listing a sync reads) draws a fate too: refused with 429 or answered 5xx, else
/// answered.
public struct FaultPlan: Sendable, Equatable {
    public var seed: UInt64 = 1
    /// Share (0…1) of write requests refused with 429.
    public var rateLimited = 0.0
    /// `Retry-After` seconds sent with a 429; nil sends none.
    public var retryAfterSeconds: Int? = 1
    /// Share (0…1) of 429s sent without `Retry-After` even when `retryAfterSeconds` is set, so a
    /// client meets both kinds in one run.
    public var withoutRetryAfter = 0.0
    /// Share answered 500, 502 or 503 before applying.
    public var serverErrors = 0.0
    /// Share applied and then dropped without a response.
    public var droppedAfterApply = 0.0
    /// Share stalled for `stallSeconds` and then dropped, not applied.
    public var stalls = 0.0
    public var stallSeconds = 5.0
    /// Share of write requests whose body the server reads slowly: 4 kB at a time, with
    /// `slowReadMilliseconds` between reads, so the client's send waits on a full socket.
    public var slowReads = 0.0
    public var slowReadMilliseconds = 20
    public var latencyMilliseconds = 0
    /// The listing of a map's features (GET) meets the 429s and 5xx of the plan as writes do.
    public var faultListings = false
    /// Answer 422s with errors that name no feature (as some servers do).
    public var anonymousValidationErrors = false
    /// Leave `index` out of `failed[]` entries.
    public var unindexedFailures = false
    /// Describe select fields without their options, so a client cannot check the values
    /// before sending and the server's own 422 is what rejects them.
    public var hiddenFieldOptions = false
    /// Answer every API request with a 307 to this base URL (plus the request's path): a client
    /// must not follow it with its key.
    public var redirectTo: String?

    public init() {}

    /// What happens to one write request.
    public enum Fate: Sendable, Equatable {
        case normal
        case rateLimited
        case serverError(Int)
        case dropAfterApply
        case stall
    }

    var isActive: Bool { rateLimited + serverErrors + droppedAfterApply + stalls > 0 }
}

/// SplitMix64: small, fast, and the same sequence for the same seed on every machine.
public typealias SeededGenerator = SplitMix64

extension SplitMix64 {
    public init(state: UInt64) { self.init(seed: state) }

    /// A uniform draw in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
