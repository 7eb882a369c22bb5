import Foundation
import NIOConcurrencyHelpers

/// A map as the pre-flight reads it: its fields and remote field.
public struct MapInfo: Sendable, Equatable {
    public struct Field: Sendable, Equatable {
        public var slug: String
        public var type: String
        public var label: String
        /// `single_select` and `multi_select`: the options (`config.options`).
        public var options: [FieldKind.SelectOption] = []
    }

    public var id: String
    public var label: String
    public var fields: [Field]
    public var remoteField: String?
    /// The field whose address the map geocodes for features sent without a point.
    public var geocodeField: String? = nil
}

/// Who the requests are made as: an API key, or OAuth client credentials (a token fetched from
/// `POST /token`, fetched again once on a 401).
public enum Credentials: Sendable {
    case apiKey(String)
    case client(id: String, secret: String)
}

/// The paths of the Mapsemble API, in one place.
enum APIPath {
    static let token = "/token"
    static let maps = "/api/v1/maps"
    static let me = "/api/v1/me"
    static func map(_ id: String) -> String { "/api/v1/maps/\(id)" }
    /// Where a map's features are written (POST, PATCH, PUT, DELETE) and listed (GET).
    static func features(_ mapID: String) -> String { "/api/v1/maps/\(mapID)/features" }
    static func features(_ mapID: String, page: Int, perPage: Int) -> String {
        "\(features(mapID))?page=\(page)&per_page=\(perPage)"
    }
}

/// The Mapsemble API's client: base URL checks, authentication, the one retry policy
/// (`RetryPolicy`) every request goes through (`exchange`), and error sentences. The key is only
/// ever put in the `Authorization` header.
final class MapsembleClient: Sendable {
    let baseURL: String
    let timeoutSeconds: Double
    /// How every request of this client is retried.
    let policy: RetryPolicy
    private let credentials: Credentials
    private let token = NIOLockedValueBox<String?>(nil)
    private let worker = CurlWorker(name: "api")

    init(baseURL: String, credentials: Credentials?, timeoutSeconds: Double, policy: RetryPolicy) throws {
        self.baseURL = try Self.checkedBaseURL(baseURL)
        guard let credentials else {
            throw ImportError(
                .remote,
                "no API key: set MAPSEMBLE_API_KEY (or target.api_key in pipeline.yml, or MAPSEMBLE_CLIENT_ID and MAPSEMBLE_CLIENT_SECRET)"
            )
        }
        self.credentials = credentials
        self.timeoutSeconds = timeoutSeconds
        self.policy = policy
    }

    /// `https://` everywhere; plain `http://` only to this machine.
    static func checkedBaseURL(_ text: String) throws -> String {
        try BaseURL.checked(text, name: "the API URL", example: "https://app.mapsemble.com")
    }

    /// The `Authorization` header value.
    private func authorization() async throws -> String {
        switch credentials {
        case .apiKey(let key): return "Bearer \(key)"
        case .client:
            if let current = token.withLockedValue({ $0 }) { return "Bearer \(current)" }
            return "Bearer \(try await fetchToken())"
        }
    }

    /// After a 401 with client credentials: forget the token so the next request fetches one.
    /// Returns whether trying again can help.
    private func refreshAfterUnauthorized() -> Bool {
        guard case .client = credentials else { return false }
        token.withLockedValue { $0 = nil }
        return true
    }

    private func fetchToken() async throws -> String {
        guard case .client(let id, let secret) = credentials else { return "" }
        func encode(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
        }
        let body = "grant_type=client_credentials_with_user&client_id=\(encode(id))&client_secret=\(encode(secret))"
        let response = try await request(
            "POST", APIPath.token, body: Array(body.utf8), contentType: "application/x-www-form-urlencoded",
            authorized: false, what: "fetching an OAuth token")
        guard response.status == 200,
            let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
            let value = object["access_token"] as? String
        else {
            throw ImportError(
                .remote, "the client id and secret were refused by \(baseURL)/token (HTTP \(response.status))")
        }
        token.withLockedValue { $0 = value }
        return value
    }

    /// Sends a request to the API under `policy` (the client's by default; `CurlWorker.exchange`
    /// retries), authenticated unless `authorized` is false: a 401 with client credentials
    /// fetches a new token and tries once more. Returns the answer (any status the policy does not
    /// retry, 401 and 403 included) and whether an earlier attempt may have been applied.
    /// - Throws: `RetriesExhausted` after the last retry; `CancellationError` when the worker's
    ///   transfer was aborted or the task cancelled.
    func exchange(
        _ method: String, _ path: String, body: [UInt8]? = nil, contentType: String? = nil, authorized: Bool = true,
        worker: CurlWorker? = nil, policy: RetryPolicy? = nil, timeoutSeconds: Double? = nil,
        onAttempt: (() -> Void)? = nil, onRetry: ((RetryNotice) -> Void)? = nil
    ) async throws -> (response: HTTPResponse, uncertain: Bool) {
        let timeout = timeoutSeconds ?? self.timeoutSeconds
        let url = baseURL + path
        return try await (worker ?? self.worker).exchange(
            policy: policy ?? self.policy, timeoutSeconds: timeout,
            request: {
                var headers = ["Accept: application/json"]
                if authorized { headers.append("Authorization: \(try await self.authorization())") }
                if let contentType { headers.append("Content-Type: \(contentType)") }
                return HTTPRequest(method: method, url: url, headers: headers, body: body, timeoutSeconds: timeout)
            },
            retryUnauthorized: authorized ? { self.refreshAfterUnauthorized() } : nil, onAttempt: onAttempt,
            onRetry: onRetry)
    }

    /// A request whose failure after every retry is one sentence (`ImportError`, `remote`).
    func request(
        _ method: String, _ path: String, body: [UInt8]? = nil, contentType: String? = nil, authorized: Bool = true,
        policy: RetryPolicy? = nil, what: String, onRetry: ((RetryNotice) -> Void)? = nil
    ) async throws -> HTTPResponse {
        do {
            return try await exchange(
                method, path, body: body, contentType: contentType, authorized: authorized, policy: policy,
                onRetry: onRetry
            ).response
        } catch let error as RetriesExhausted {
            guard error.status != nil else {
                throw ImportError(
                    .remote,
                    "cannot reach \(baseURL) while \(what): \(error.reason)"
                        + (error.attempts > 1 ? " (\(error.attempts) attempts)" : ""))
            }
            throw ImportError(.remote, "\(what) failed \(error.attempts) times (last: \(error.reason)); stopped")
        }
    }

    /// GET on the API, authenticated and retried (under `policy`, the client's by default).
    func get(
        _ path: String, what: String, policy: RetryPolicy? = nil, onRetry: ((RetryNotice) -> Void)? = nil
    ) async throws -> HTTPResponse {
        try await request("GET", path, policy: policy, what: what, onRetry: onRetry)
    }

    /// `GET /api/v1/maps/{id}`: the pre-flight.
    func map(_ id: String) async throws -> MapInfo {
        Self.mapInfo(try await mapObject(id), id: id)
    }

    /// `GET /api/v1/maps/{id}` as the server wrote it (a change sends its fields back unchanged).
    func mapObject(_ id: String) async throws -> [String: Any] {
        // The first request of a run: a wrong address or a server that is down is said at once.
        let response = try await get(APIPath.map(id), what: "reading map \(id)", policy: policy.firstContact)
        try Self.check(response, what: "map \"\(id)\"", baseURL: baseURL)
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
            throw ImportError(.remote, "the answer for map \"\(id)\" is not the JSON object expected")
        }
        return object
    }

    /// `POST /api/v1/maps` (`id` nil) or `PATCH /api/v1/maps/{id}` with `body`; the map as answered.
    /// A `422` is one sentence listing what the server refused.
    func writeMap(_ id: String?, body: [String: Any]) async throws -> (map: MapInfo, object: [String: Any]) {
        let bytes = Array(
            (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes]))
                ?? Data())
        let what = id.map { "changing map \($0)" } ?? "creating a map"
        let response = try await request(
            id == nil ? "POST" : "PATCH", id.map(APIPath.map) ?? APIPath.maps, body: bytes,
            contentType: "application/json", what: what)
        if response.status == 422 {
            let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
            let errors = (object?["errors"] as? [String: Any] ?? [:]).sorted { $0.key < $1.key }.map { key, value in
                "\(key): \((value as? [String])?.joined(separator: " ") ?? "\(value)")"
            }
            throw ImportError(
                .remote,
                "\(what) was refused by \(baseURL) (HTTP 422): \(errors.isEmpty ? Self.serverMessage(response.body) : errors.joined(separator: "; "))"
            )
        }
        try Self.check(response, what: id.map { "map \"\($0)\"" } ?? "the new map", baseURL: baseURL)
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
            throw ImportError(.remote, "the answer to \(what) is not the JSON object expected")
        }
        return (Self.mapInfo(object, id: id ?? ""), object)
    }

    /// `GET /api/v1/me`: the account's `featureFlags` (empty when it states none).
    func featureFlags() async throws -> [String: Any] {
        let response = try await get(APIPath.me, what: "reading the account")
        try Self.check(response, what: "the account", baseURL: baseURL)
        let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
        return object?["featureFlags"] as? [String: Any] ?? [:]
    }

    /// `GET /api/v1/maps`: a bare array, or `{"data": [...]}`.
    func maps() async throws -> [MapInfo] {
        let response = try await get(APIPath.maps, what: "listing maps")
        try Self.check(response, what: "the list of maps", baseURL: baseURL)
        let object = try? JSONSerialization.jsonObject(with: Data(response.body))
        let list = (object as? [[String: Any]]) ?? ((object as? [String: Any])?["data"] as? [[String: Any]]) ?? []
        return list.map { mapInfo($0) }
    }

    private func mapInfo(_ object: [String: Any]) -> MapInfo { Self.mapInfo(object, id: object["id"] as? String ?? "") }

    static func mapInfo(_ object: [String: Any], id: String) -> MapInfo {
        let fields = (object["fields"] as? [[String: Any]] ?? []).compactMap { field -> MapInfo.Field? in
            guard let slug = field["slug"] as? String else { return nil }
            let options = ((field["config"] as? [String: Any])?["options"] as? [[String: Any]] ?? []).compactMap {
                (option) -> FieldKind.SelectOption? in
                guard let key = option["key"] as? String else { return nil }
                return FieldKind.SelectOption(key: key, label: option["label"] as? String ?? key)
            }
            return MapInfo.Field(
                slug: slug, type: field["type"] as? String ?? "text", label: field["label"] as? String ?? slug,
                options: options)
        }
        let config = object["config"] as? [String: Any]
        return MapInfo(
            id: object["id"] as? String ?? id, label: object["label"] as? String ?? "", fields: fields,
            remoteField: config?["remoteField"] as? String, geocodeField: config?["geocodeField"] as? String)
    }

    /// One sentence for a refused read.
    static func check(_ response: HTTPResponse, what: String, baseURL: String) throws {
        switch response.status {
        case 200..<300: return
        case 300..<400:
            throw ImportError(
                .remote,
                "\(baseURL) redirects (HTTP \(response.status)\(response.location.map { " to \($0)" } ?? "")); redirects are not followed, so that the key never goes to another address: set --api-url to the address the API answers at"
            )
        case 401:
            throw ImportError(.remote, "the API key was refused by \(baseURL) (HTTP 401): check MAPSEMBLE_API_KEY")
        case 403: throw ImportError(.remote, "\(what) belongs to another account than the API key's (HTTP 403)")
        case 404: throw ImportError(.remote, "\(what) was not found at \(baseURL) (HTTP 404): check the map id")
        default:
            throw ImportError(
                .remote, "\(baseURL) answered HTTP \(response.status) for \(what): \(serverMessage(response.body))")
        }
    }

    /// The `message` or `error` of an error body, or its first 200 characters.
    static func serverMessage(_ body: [UInt8]) -> String {
        if let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] {
            if let message = object["message"] as? String { return message }
            if let error = object["error"] as? String { return error }
        }
        return String(String(decoding: body.prefix(200), as: UTF8.self))
    }
}

/// The read side of the API for commands (`maps`, `fields`).
public enum MapsembleAPI {
    /// The account's maps.
    public static func maps(_ config: PipelineConfig) async throws -> [MapInfo] {
        try await client(config).maps()
    }

    /// One map with its fields and remote field.
    public static func map(_ id: String, _ config: PipelineConfig) async throws -> MapInfo {
        try await client(config).map(id)
    }

    /// A client for a command's reads: a server that does not answer is said after two retries.
    static func client(_ config: PipelineConfig) throws -> MapsembleClient {
        try MapsembleClient(
            baseURL: config.target.apiURL, credentials: config.credentials,
            timeoutSeconds: config.upload.timeoutSeconds,
            policy: RetryPolicy(maxRetries: config.upload.maxRetries).firstContact)
    }
}
