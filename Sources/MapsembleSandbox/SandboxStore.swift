import Foundation
import MapsembleJSON
import MapsembleMapView
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// A feature as the sandbox stores it.
public struct StoredFeature: Sendable, Equatable {
    public var id: String
    /// A point's position; for other geometries, their first position (where the viewer marks
    /// them when it cannot draw the shape).
    public var longitude: Double
    public var latitude: Double
    public var properties: [(String, JSONValue)]
    /// The geometry as sent, for every type but `Point`.
    public var shape: JSONValue?

    public init(
        id: String, longitude: Double, latitude: Double, properties: [(String, JSONValue)], shape: JSONValue? = nil
    ) {
        self.id = id
        self.longitude = longitude
        self.latitude = latitude
        self.properties = properties
        self.shape = shape
    }

    /// A feature stored with the geometry a request sent (checked by `SandboxGeometry.problem`).
    init(id: String, geometry: JSONValue, properties: [(String, JSONValue)]) {
        let first = SandboxGeometry.firstPosition(geometry) ?? (0, 0)
        self.init(
            id: id, longitude: first.0, latitude: first.1, properties: properties,
            shape: geometry["type"]?.string == "Point" ? nil : geometry)
    }

    /// Takes the geometry a request sent.
    mutating func move(to geometry: JSONValue) {
        let first = SandboxGeometry.firstPosition(geometry) ?? (longitude, latitude)
        longitude = first.0
        latitude = first.1
        shape = geometry["type"]?.string == "Point" ? nil : geometry
    }

    public static func == (lhs: StoredFeature, rhs: StoredFeature) -> Bool {
        lhs.id == rhs.id && lhs.longitude == rhs.longitude && lhs.latitude == rhs.latitude && lhs.shape == rhs.shape
            && JSONValue.object(lhs.properties) == JSONValue.object(rhs.properties)
    }

    /// The geometry as the API answers it.
    public var geometry: JSONValue {
        shape ?? ["type": "Point", "coordinates": [.number(longitude), .number(latitude)]]
    }

    public subscript(property: String) -> JSONValue? { properties.first { $0.0 == property }?.1 }

    /// The feature as one line of GeoJSON.
    public var geoJSON: String { json.text }

    var json: JSONValue {
        [
            "type": "Feature", "id": .string(id),
            "geometry": geometry,
            "properties": .object(properties),
        ]
    }
}

/// The sandbox's state and the API's rules (spec/mapsemble-api.md): every route as a function from
/// request to reply, behind one lock. The HTTP server in front of it only moves bytes.
public final class SandboxStore: Sendable {
    struct MapState {
        var config: SandboxConfig.Map
        var features: [String: StoredFeature] = [:]
        /// Ids in creation order (deleted ids are skipped when listing).
        var order: [String] = []
        var byRemoteID: [String: String] = [:]

        mutating func insert(_ feature: StoredFeature, remoteID: String?) {
            features[feature.id] = feature
            order.append(feature.id)
            if let remoteID { byRemoteID[remoteID] = feature.id }
        }

        mutating func remove(id: String) {
            guard let feature = features.removeValue(forKey: id) else { return }
            if let slug = config.remoteField, let remote = feature[slug]?.remoteKey {
                byRemoteID.removeValue(forKey: remote)
            }
            if order.count > 64 && order.count > features.count * 2 { order.removeAll { features[$0] == nil } }
        }

        var listed: [StoredFeature] { order.compactMap { features[$0] } }

        /// Drops deleted ids from `order`, so that a page can be sliced out of it directly.
        mutating func compact() {
            if order.count != features.count { order.removeAll { features[$0] == nil } }
        }

        /// Features `range` of the listing (in creation order).
        func page(_ range: Range<Int>) -> [StoredFeature] {
            let clamped = range.clamped(to: 0..<order.count)
            return order[clamped].compactMap { features[$0] }
        }
    }

    struct State {
        var config: SandboxConfig
        var maps: [String: MapState] = [:]
        var tokens: [String: String] = [:]
        var random: SeededGenerator
        var nextID: UInt64 = 1
        var requests = 0
        /// Every `User-Agent` the API was asked with.
        var userAgents = Set<String>()
        var writeRequests = 0
        var writeLog: [WriteRecord] = []
        /// Geocoder requests answered (refusals included), the second the last one came in and
        /// how many came in it, and the most any one second held.
        var geocoderRequests = 0
        var geocoderSecond = 0
        var geocoderInSecond = 0
        var geocoderBusiestSecond = 0
        /// The text of each geocoder request answered with places (`q`, `text`, or the structured
        /// parts joined), in order.
        var geocoderQueries: [String] = []
        /// Features the maps geocoded from their geocode field.
        var serverGeocodes = 0
        /// `--serve-dir` requests answered with the file, and with `304 Not Modified`.
        var fileBodies = 0
        var fileNotModified = 0
    }

    /// One write request as the sandbox answered it (with `SandboxConfig.recordWrites`).
    public struct WriteRecord: Sendable {
        public var method: String
        public var status: Int
        /// The reply was dropped: the client never saw it.
        public var dropped: Bool
        /// The remote ids in the body, in order (the `remoteField` property of each feature).
        public var remoteIDs: [String]
        /// When the connection that carried it was opened (`SandboxRequest.connected`).
        public var connected = 0.0
    }

    let state: NIOLockedValueBox<State>
    /// `SandboxConfig.writeLogPath`, open for appending; written under the state's lock, so its
    /// lines are in the order the requests were answered.
    private let writeLogFile: WriteLogFile?

    public init(config: SandboxConfig) {
        var state = State(config: config, random: SeededGenerator(state: config.faults.seed))
        for map in config.maps { state.maps[map.id] = MapState(config: map) }
        self.state = NIOLockedValueBox(state)
        writeLogFile = config.writeLogPath.flatMap(WriteLogFile.init(path:))
    }

    /// Whether the body of the write request starting now is read slowly (`FaultPlan.slowReads`),
    /// and the pause between reads in milliseconds.
    func slowRead(method: String) -> Int? {
        guard ["POST", "PATCH", "PUT", "DELETE"].contains(method) else { return nil }
        return state.withLockedValue { state in
            let faults = state.config.faults
            guard faults.slowReads > 0, state.random.unit() < faults.slowReads else { return nil }
            return faults.slowReadMilliseconds
        }
    }

    /// The features stored on a map, in creation order.
    public func features(map: String) -> [StoredFeature] {
        state.withLockedValue { $0.maps[map]?.listed ?? [] }
    }

    /// Requests answered so far, and how many of them were writes.
    /// The `User-Agent`s of the requests so far (API, geocoder, files) ("" for a request without one).
    public var userAgents: Set<String> { state.withLockedValue { $0.userAgents } }

    public var requestCounts: (all: Int, writes: Int) { state.withLockedValue { ($0.requests, $0.writeRequests) } }

    /// Changes a map's plan, as an upgrade on Mapsemble would: its stored features stay.
    public func setPlan(_ plan: SandboxConfig.Plan, map: String) {
        state.withLockedValue { $0.maps[map]?.config.plan = plan }
    }

    /// Changes the faults from the next request on (a test's server that starts failing part-way).
    public func setFaults(_ faults: FaultPlan) {
        state.withLockedValue {
            $0.config.faults = faults
            $0.random = SeededGenerator(state: faults.seed)
        }
    }

    /// Write requests so far, in the order they were answered (empty unless `recordWrites`).
    public var writeLog: [WriteRecord] { state.withLockedValue { $0.writeLog } }
    /// The maps held now (made through the API too), by id.
    public var maps: [String: SandboxConfig.Map] {
        state.withLockedValue { $0.maps.mapValues(\.config) }
    }

    /// The text of each geocoder request answered so far, in order.
    public var geocoderQueries: [String] { state.withLockedValue { $0.geocoderQueries } }

    /// Features the maps geocoded server-side (sent without a point, an address under the map's
    /// geocode field), failures included.
    public var serverGeocodes: Int { state.withLockedValue { $0.serverGeocodes } }

    /// Geocoder requests so far, and the most any one second held (the rate a client kept to).
    public var geocoderCounts: (requests: Int, busiestSecond: Int) {
        state.withLockedValue { ($0.geocoderRequests, $0.geocoderBusiestSecond) }
    }

    public func handle(_ request: SandboxRequest) -> SandboxReply {
        state.withLockedValue { _ = $0.userAgents.insert(request.headers["user-agent"] ?? "") }
        if let file = serveFile(request) { return file }
        if let page = viewer(request) { return page }
        if let reply = geocode(request) { return reply }
        if let target = state.withLockedValue({ $0.config.faults.redirectTo }) {
            state.withLockedValue { $0.requests += 1 }
            return SandboxReply(
                status: 307, json: ["message": "Moved"], headers: [("Location", target + request.path)])
        }
        // Parsing is most of the work and needs no lock: requests on different connections parse
        // in parallel.
        let body = request.method == "GET" || request.body.isEmpty ? nil : JSONValue.parse(request.body)
        var reply = state.withLockedValue { state in
            state.requests += 1
            var reply = route(request, body, &state)
            if state.config.faults.latencyMilliseconds > 0 {
                reply.delaySeconds += Double(state.config.faults.latencyMilliseconds) / 1000
            }
            return reply
        }
        if let page = reply.page {
            let json: JSONValue = [
                "featureCollection": [
                    "type": "FeatureCollection", "features": .array(page.features.map(\.json)),
                    "properties": ["total": .number(Double(page.total))],
                ]
            ]
            reply.body = json.bytes
            reply.headers.append(("Content-Type", "application/json"))
            reply.page = nil
        }
        return reply
    }

    private func route(_ request: SandboxRequest, _ body: JSONValue?, _ state: inout State) -> SandboxReply {
        let parts = request.path.split(separator: "/").map(String.init)
        if request.method == "GET" && parts == ["api", "v1", "schema"] { return schema() }
        if request.method == "POST" && parts == ["token"] { return token(request, &state) }
        if parts == ["api", "v1", "me"] {
            guard let account = authenticate(request, state) else { return .error(401, "Unauthenticated.") }
            guard request.method == "GET" else { return .error(405, "Method not allowed") }
            return me(account, state)
        }
        guard parts.count >= 3, parts[0] == "api", parts[1] == "v1", parts[2] == "maps" else {
            return .error(404, "Not found")
        }
        guard let account = authenticate(request, state) else { return .error(401, "Unauthenticated.") }
        if parts.count == 3 {
            if request.method == "POST" { return createMap(body, account: account, &state) }
            guard request.method == "GET" else { return .error(405, "Method not allowed") }
            let maps = state.maps.values.filter { $0.config.account == account }.sorted { $0.config.id < $1.config.id }
            return SandboxReply(status: 200, json: .array(maps.map { summary($0.config) }))
        }
        let mapID = parts[3]
        guard let map = state.maps[mapID] else { return .error(404, "Map not found") }
        guard map.config.account == account else { return .error(403, "This action is unauthorized.") }
        if parts.count == 4 {
            if request.method == "PATCH" { return changeMap(mapID, body, &state) }
            guard request.method == "GET" else { return .error(405, "Method not allowed") }
            return SandboxReply(
                status: 200, json: detail(map.config, withOptions: !state.config.faults.hiddenFieldOptions))
        }
        guard parts.count == 5, parts[4] == "features" else { return .error(404, "Not found") }
        switch request.method {
        case "GET":
            if let refusal = listingFault(&state) { return refusal }
            var map = state.maps.removeValue(forKey: mapID)!
            map.compact()
            defer { state.maps[mapID] = map }
            return list(request, map)
        case "POST", "PATCH", "PUT", "DELETE":
            let reply = write(request, body, mapID, &state)
            if state.config.recordWrites || writeLogFile != nil {
                let slug = body?["remoteField"]?.string ?? ""
                let ids = (body?["features"]?.array ?? []).map { $0["properties"]?[slug]?.remoteKey ?? "" }
                let record = WriteRecord(
                    method: request.method, status: reply.status, dropped: reply.drop, remoteIDs: ids,
                    connected: request.connected)
                if state.config.recordWrites { state.writeLog.append(record) }
                writeLogFile?.append(record)
            }
            return reply
        default: return .error(405, "Method not allowed")
        }
    }

    private func authenticate(_ request: SandboxRequest, _ state: State) -> String? {
        guard let header = request.headers["authorization"], header.hasPrefix("Bearer ") else { return nil }
        let token = String(header.dropFirst(7))
        return state.config.apiKeys[token] ?? state.tokens[token]
    }

    private func token(_ request: SandboxRequest, _ state: inout State) -> SandboxReply {
        let form = SandboxRequest(
            method: "POST", target: "/?" + String(decoding: request.body, as: UTF8.self), headers: [:], body: []
        ).query
        guard form["grant_type"] == "client_credentials_with_user",
            let client = state.config.clients.first(where: {
                $0.id == form["client_id"] && $0.secret == form["client_secret"]
            })
        else {
            return SandboxReply(
                status: 401, json: ["error": "invalid_client", "message": "Client authentication failed"])
        }
        let token = "sandbox-token-\(state.random.next())"
        state.tokens[token] = client.account
        return SandboxReply(
            status: 200, json: ["token_type": "Bearer", "expires_in": 3600, "access_token": .string(token)])
    }

    private func schema() -> SandboxReply {
        let types: [JSONValue] = ["text", "multiline_text", "number", "date", "image", "single_select", "multi_select"]
        return SandboxReply(
            status: 200,
            json: [
                "fieldTypes": .array(types), "filterTypes": [], "orderByTypes": [],
                "mapConfig": ["remoteField": "string|null", "geocodeField": "string|null"],
                "fieldConfig": ["options": "array", "allowMultiple": "boolean"], "filterConfig": [:],
                "orderByConfig": [:],
                "styleRuleConfig": [:],
            ])
    }

    /// `GET /api/v1/me`: the account, and whether its plan geocodes (the plan of its best map:
    /// pro and enterprise do, free does not).
    private func me(_ account: String, _ state: State) -> SandboxReply {
        let geocodes = state.maps.values.contains { $0.config.account == account && $0.config.plan != .free }
        return SandboxReply(
            status: 200,
            json: [
                "name": .string(account), "email": .string("\(account)@sandbox.invalid"),
                "featureFlags": ["geocoding": .bool(geocodes)],
            ])
    }

    private func summary(_ map: SandboxConfig.Map) -> JSONValue {
        [
            "id": .string(map.id), "label": .string(map.label), "slug": .string(slug(map.label)), "published": false,
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
        ]
    }

    func detail(_ map: SandboxConfig.Map, withOptions: Bool) -> JSONValue {
        let fields: [JSONValue] = map.fields.enumerated().map { index, field in
            var config: [(String, JSONValue)] = []
            if !field.options.isEmpty && withOptions {
                config.append(
                    (
                        "options",
                        .array(
                            field.options.enumerated().map {
                                [
                                    "key": .string($1),
                                    "label": .string($0 < field.optionLabels.count ? field.optionLabels[$0] : $1),
                                    "weight": .number(Double($0)),
                                ]
                            })
                    ))
            }
            return [
                "slug": .string(field.slug), "type": .string(field.type), "label": .string(field.label),
                "weight": .number(Double(index)), "required": .bool(field.required), "config": .object(config),
            ]
        }
        return [
            "id": .string(map.id), "label": .string(map.label), "slug": .string(slug(map.label)), "published": false,
            "config": [
                "remoteField": map.remoteField.map(JSONValue.string) ?? .null,
                "geocodeField": map.geocodeField.map(JSONValue.string) ?? .null, "plan": .string(map.plan.rawValue),
            ],
            "fields": .array(fields), "filters": [], "orderBy": [],
        ]
    }

    private func slug(_ text: String) -> String {
        String(text.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" })
    }

    private func list(_ request: SandboxRequest, _ map: MapState) -> SandboxReply {
        let page = max(1, Int(request.query["page"] ?? "") ?? 1)
        let perPage = min(500, max(1, Int(request.query["per_page"] ?? "") ?? 200))
        let start = (page - 1) * perPage
        var reply = SandboxReply(status: 200)
        reply.page = (map.page(start..<start + perPage), map.features.count)
        return reply
    }
}

/// An append-only file of write records, one JSON line each, flushed per line so that a process
/// watching it sees every answered request.
final class WriteLogFile: @unchecked Sendable {
    private let file: UnsafeMutablePointer<FILE>

    init?(path: String) {
        guard let file = fopen(path, "a") else { return nil }
        self.file = file
    }

    deinit { fclose(file) }

    /// Called under the store's lock only.
    func append(_ record: SandboxStore.WriteRecord) {
        let line: JSONValue = [
            "method": .string(record.method), "status": .number(Double(record.status)),
            "dropped": .bool(record.dropped), "connected": .number(record.connected),
            "ids": .array(record.remoteIDs.map(JSONValue.string)),
        ]
        var bytes = line.bytes
        bytes.append(UInt8(ascii: "\n"))
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fflush(file)
    }
}

extension SandboxStore {
    /// A request to the sandbox's geocoder, counted, refused past its rate limit or by the fault
    /// plan, else answered; nil when the sandbox has no geocoder or the path is not one of its.
    fileprivate func geocode(_ request: SandboxRequest) -> SandboxReply? {
        guard request.method == "GET", let geocoder = state.withLockedValue({ $0.config.geocoder }),
            ["/search", "/api", "/v1/search", "/v1/search/structured"].contains(request.path)
        else { return nil }
        let refusal: SandboxReply? = state.withLockedValue { state in
            state.requests += 1
            state.geocoderRequests += 1
            let second = Int(Date().timeIntervalSince1970)
            if second != state.geocoderSecond {
                state.geocoderSecond = second
                state.geocoderInSecond = 0
            }
            state.geocoderInSecond += 1
            state.geocoderBusiestSecond = max(state.geocoderBusiestSecond, state.geocoderInSecond)
            if let limit = geocoder.rateLimit, Double(state.geocoderInSecond) > limit {
                return SandboxReply(
                    status: 429, json: ["error": "Rate limit exceeded"], headers: [("Retry-After", "1")])
            }
            return geocoder.faults ? geocoderFault(&state) : nil
        }
        var reply = refusal ?? geocoder.answer(request)
        if refusal == nil {
            let query = request.query
            let text =
                query["q"] ?? query["text"]
                ?? ["street", "address", "postalcode", "city", "locality", "state", "region", "country"]
                .compactMap { query[$0] }.joined(separator: " ")
            state.withLockedValue { $0.geocoderQueries.append(text) }
        }
        let latency = state.withLockedValue { $0.config.faults.latencyMilliseconds }
        if latency > 0 { reply?.delaySeconds += Double(latency) / 1000 }
        return reply
    }
}
