import Foundation
import NIOConcurrencyHelpers
import Synchronization

/// Which geocoder is asked, and how (`geocode:` in pipeline.yml).
struct GeocoderSettings: Sendable {
    enum Provider: String, Sendable, CaseIterable {
        case nominatim, photon, pelias
    }

    var provider: Provider
    /// The geocoder's base URL: `https://` (plain `http://` only to this machine).
    var url: String
    /// Pelias' `api_key`: sent to that geocoder only, never printed.
    var apiKey: String?
    /// Who is asking, added to the tool's own name in `User-Agent` (Nominatim's usage policy asks
    /// for an application and a contact).
    var userAgent: String?
    /// ISO 3166-1 alpha-2 codes the answers must lie in.
    var countryCodes: [String] = []
    /// Requests per second at most; Nominatim's usage policy: 1.
    var rateLimit: Double?
    var timeoutSeconds = 10.0
    var maxRetries = 5

    init(provider: Provider, url: String) {
        self.provider = provider
        self.url = url
        if provider == .nominatim { rateLimit = 1 }
    }
}

/// A geocoder over HTTP (Nominatim, Photon, Pelias, self-hosted or hosted): builds each
/// provider's query, keeps to its rate limit, sends through the one retry loop
/// (`CurlWorker.exchange`) and reads the answer into candidates (`GeocoderAnswers`).
final class HTTPGeocoder: Sendable {
    let settings: GeocoderSettings
    /// Requests sent so far, retries included.
    var requests: Int { sent.load(ordering: .relaxed) }
    private let sent = Atomic<Int>(0)
    let baseURL: String
    let policy: RetryPolicy
    private let limiter: RateLimiter?
    private let headers: [String]

    init(settings: GeocoderSettings, backoffSeconds: Double = 0.5, maxBackoffSeconds: Double = 30) throws {
        self.settings = settings
        baseURL = try BaseURL.checked(settings.url, name: "geocode.url", example: "https://geocoder.example.org")
        let loopback = URL(string: baseURL)?.host.map(BaseURL.isLoopback) ?? false
        if settings.provider == .nominatim && !loopback
            && (settings.userAgent ?? "").trimmingCharacters(in: .whitespaces).isEmpty
        {
            throw ImportError(
                .config,
                "geocode.user_agent is needed for nominatim: its usage policy asks every client to name itself and a contact, e.g. user_agent: \"acme-import/1.0 (ops@example.org)\""
            )
        }
        policy = RetryPolicy(
            maxRetries: settings.maxRetries, backoffSeconds: backoffSeconds, maxBackoffSeconds: maxBackoffSeconds)
        limiter = settings.rateLimit.map { RateLimiter(perSecond: $0) }
        let agent = [ToolVersion.userAgent, settings.userAgent].compactMap { $0 }.joined(separator: " ")
        headers = ["Accept: application/json", "User-Agent: \(agent)"]
    }

    /// The places the geocoder offers for `address`, best first as it ranks them; empty when it
    /// knows none.
    /// - Throws: `ImportError` (`remote`) when it did not answer usably after every retry; the
    ///   sentence names its host, never the query or a key.
    func candidates(for address: Address, worker: CurlWorker) async throws -> [GeocodeCandidate] {
        let url = baseURL + path(for: address)
        let host = URL(string: baseURL)?.host ?? "the geocoder"
        let response: HTTPResponse
        do {
            response = try await worker.exchange(
                policy: policy, timeoutSeconds: settings.timeoutSeconds,
                request: {
                    try await self.limiter?.wait()
                    self.sent.add(1, ordering: .relaxed)
                    return HTTPRequest(
                        method: "GET", url: url, headers: self.headers, timeoutSeconds: self.settings.timeoutSeconds)
                }
            ).response
        } catch let error as RetriesExhausted {
            throw ImportError(
                .remote, "the geocoder at \(host) failed \(error.attempts) times (last: \(error.reason))")
        }
        guard response.status == 200 else {
            throw ImportError(.remote, "the geocoder at \(host) answered HTTP \(response.status)")
        }
        let read: [GeocodeCandidate]? =
            switch settings.provider {
            case .nominatim: GeocoderAnswers.nominatim(response.body)
            case .photon: GeocoderAnswers.photon(response.body)
            case .pelias: GeocoderAnswers.pelias(response.body)
            }
        guard let read else {
            throw ImportError(.remote, "the geocoder at \(host) answered with something that is not its format")
        }
        return read
    }

    /// The request's path and query for `address`.
    func path(for address: Address) -> String {
        var query: [(String, String)] = []
        let countries = settings.countryCodes.map { $0.lowercased() }
        let path: String
        switch settings.provider {
        case .nominatim:
            path = "/search"
            query = [("format", "jsonv2"), ("addressdetails", "1"), ("limit", "5")]
            if let text = address.freeForm {
                query.append(("q", text))
            } else {
                let names: [AddressQuery.Part: String] = [
                    .street: "street", .postcode: "postalcode", .city: "city", .state: "state", .country: "country",
                ]
                for part in AddressQuery.Part.allCases {
                    if let value = address.parts[part], let name = names[part] { query.append((name, value)) }
                }
            }
            if !countries.isEmpty { query.append(("countrycodes", countries.joined(separator: ","))) }
        case .photon:
            // Photon takes free text only, and filters by country on our side (`GeocoderAnswers.best`).
            path = "/api"
            query = [("q", address.text), ("limit", "5")]
        case .pelias:
            if let text = address.freeForm {
                path = "/v1/search"
                query = [("text", text)]
            } else {
                path = "/v1/search/structured"
                let names: [AddressQuery.Part: String] = [
                    .street: "address", .postcode: "postalcode", .city: "locality", .state: "region",
                    .country: "country",
                ]
                for part in AddressQuery.Part.allCases {
                    if let value = address.parts[part], let name = names[part] { query.append((name, value)) }
                }
            }
            query.append(("size", "5"))
            if !countries.isEmpty {
                query.append(("boundary.country", countries.map { $0.uppercased() }.joined(separator: ",")))
            }
            if let key = settings.apiKey { query.append(("api_key", key)) }
        }
        return path + "?" + query.map { "\(Self.encoded($0.0))=\(Self.encoded($0.1))" }.joined(separator: "&")
    }

    /// A query component: everything but unreserved characters percent-encoded (a space as `%20`).
    static func encoded(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: "\0"..."\u{7F}"))
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

/// Spaces requests at most `perSecond` a second, whichever task makes them: each takes the next
/// free slot and waits for it. Slots are 5 % further apart than the rate asks, so that a request
/// sent a little late does not land in the same second of the server's clock as the next one.
final class RateLimiter: Sendable {
    private let interval: Duration
    private let next = NIOLockedValueBox<ContinuousClock.Instant?>(nil)

    init(perSecond: Double) {
        interval = .nanoseconds(Int64(1.05e9 / max(perSecond, 0.001)))
    }

    func wait() async throws {
        let now = ContinuousClock.now
        let slot = next.withLockedValue { next -> ContinuousClock.Instant in
            let slot = max(now, next ?? now)
            next = slot + interval
            return slot
        }
        if slot > now { try await Task.sleep(until: slot, clock: .continuous) }
    }
}
