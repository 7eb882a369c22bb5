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
}

/// Who the requests are made as: an API key, or OAuth client credentials (a token fetched from
/// `POST /token`, fetched again once on a 401).
public enum Credentials: Sendable {
    case apiKey(String)
    case client(id: String, secret: String)
}

/// The Mapsemble API's read side and the request plumbing the uploader shares: base URL checks,
/// authentication, error sentences. The key is only ever put in the `Authorization` header.
final class MapsembleClient: Sendable {
    let baseURL: String
    let timeoutSeconds: Double
    private let credentials: Credentials
    private let token = NIOLockedValueBox<String?>(nil)
    private let worker = CurlWorker(name: "api")

    init(baseURL: String, credentials: Credentials?, timeoutSeconds: Double) throws {
        self.baseURL = try Self.checkedBaseURL(baseURL)
        guard let credentials else {
            throw ImportError(
                .remote,
                "no API key: set MAPSEMBLE_API_KEY (or target.api_key in pipeline.yml, or MAPSEMBLE_CLIENT_ID and MAPSEMBLE_CLIENT_SECRET)"
            )
        }
        self.credentials = credentials
        self.timeoutSeconds = timeoutSeconds
    }

    /// `https://` everywhere; plain `http://` only to this machine.
    static func checkedBaseURL(_ text: String) throws -> String {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased()
        else {
            throw ImportError(.config, "the API URL \"\(text)\" is not a URL such as https://app.mapsemble.com")
        }
        let loopback = host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
        guard scheme == "https" || (scheme == "http" && loopback) else {
            throw ImportError(
                .config, "the API URL \"\(text)\" must use https:// (plain http:// is allowed only for localhost)")
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    /// The `Authorization` header value.
    func authorization() async throws -> String {
        switch credentials {
        case .apiKey(let key): return "Bearer \(key)"
        case .client:
            if let current = token.withLockedValue({ $0 }) { return "Bearer \(current)" }
            return "Bearer \(try await fetchToken())"
        }
    }

    /// After a 401 with client credentials: forget the token so the next request fetches one.
    /// Returns whether trying again can help.
    func refreshAfterUnauthorized() -> Bool {
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
        let request = HTTPRequest(
            method: "POST", url: baseURL + "/token",
            headers: ["Content-Type: application/x-www-form-urlencoded", "Accept: application/json"],
            body: Array(body.utf8), timeoutSeconds: timeoutSeconds)
        let response = try await send(request, what: "fetching an OAuth token")
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

    private func send(_ request: HTTPRequest, what: String) async throws -> HTTPResponse {
        switch await worker.send(request) {
        case .success(let response): return response
        case .failure(let error):
            throw ImportError(.remote, "cannot reach \(baseURL) while \(what): \(error.message)")
        }
    }

    /// GET on the API, authenticated, with one token refresh on a 401.
    func get(_ path: String, what: String) async throws -> HTTPResponse {
        var refreshed = false
        while true {
            let request = HTTPRequest(
                method: "GET", url: baseURL + path,
                headers: ["Authorization: \(try await authorization())", "Accept: application/json"],
                timeoutSeconds: timeoutSeconds)
            let response = try await send(request, what: what)
            if response.status == 401 && !refreshed && refreshAfterUnauthorized() {
                refreshed = true
                continue
            }
            return response
        }
    }

    /// `GET /api/v1/maps/{id}`: the pre-flight.
    func map(_ id: String) async throws -> MapInfo {
        let response = try await get("/api/v1/maps/\(id)", what: "reading map \(id)")
        try Self.check(response, what: "map \"\(id)\"", baseURL: baseURL)
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
            throw ImportError(.remote, "the answer for map \"\(id)\" is not the JSON object expected")
        }
        return Self.mapInfo(object, id: id)
    }

    /// `GET /api/v1/maps`: a bare array, or `{"data": [...]}`.
    func maps() async throws -> [MapInfo] {
        let response = try await get("/api/v1/maps", what: "listing maps")
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
            remoteField: config?["remoteField"] as? String)
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

    private static func client(_ config: PipelineConfig) throws -> MapsembleClient {
        try MapsembleClient(
            baseURL: config.target.apiURL, credentials: config.credentials, timeoutSeconds: config.upload.timeoutSeconds
        )
    }
}
