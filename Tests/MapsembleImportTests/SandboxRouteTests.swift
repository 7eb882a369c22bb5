import Foundation
import MapsembleJSON
import MapsembleSandbox
import Testing

@testable import MapsembleImport

/// Calls the sandbox's routes directly (the HTTP server in front only moves bytes).
struct Routes {
    let store: SandboxStore

    init(_ config: SandboxConfig = Routes.config()) {
        store = SandboxStore(config: config)
    }

    static let mapID = "11111111-2222-4333-8444-555555555555"
    static let otherMapID = "99999999-2222-4333-8444-555555555555"

    static func config(plan: SandboxConfig.Plan = .pro, maxFeatures: Int = 1000) -> SandboxConfig {
        var config = SandboxConfig(maps: [
            .init(
                id: mapID, label: "Stores", plan: plan,
                fields: [
                    .init(slug: "ext_id"), .init(slug: "city"), .init(slug: "score", type: "number"),
                    .init(slug: "kind", type: "single_select", options: ["shop", "depot"]),
                ], remoteField: "ext_id"),
            .init(id: otherMapID, label: "Not yours", account: "someone-else"),
        ])
        config.apiKeys = ["key-1": "sandbox", "key-2": "someone-else"]
        config.clients = [.init(id: "client", secret: "s3cret")]
        config.maxFeaturesPerRequest = maxFeatures
        config.maxBodyBytes = 200_000
        return config
    }

    func call(_ method: String, _ target: String, key: String? = "key-1", body: String = "") -> (
        status: Int, json: JSONValue?, reply: SandboxReply
    ) {
        var headers: [String: String] = [:]
        if let key { headers["authorization"] = "Bearer \(key)" }
        let reply = store.handle(
            SandboxRequest(method: method, target: target, headers: headers, body: Array(body.utf8)))
        return (reply.status, JSONValue.parse(reply.body), reply)
    }

    static func feature(_ id: String?, lon: Double = 13.4, lat: Double = 52.5, _ properties: String = "") -> String {
        let remote = id.map { "\"ext_id\":\"\($0)\"" } ?? ""
        let extra = properties.isEmpty ? "" : (remote.isEmpty ? properties : "," + properties)
        return
            #"{"type":"Feature","geometry":{"type":"Point","coordinates":[\#(lon),\#(lat)]},"properties":{\#(remote)\#(extra)}}"#
    }

    static func collection(_ features: [String], remoteField: String? = "ext_id") -> String {
        let remote = remoteField.map { "\"remoteField\":\"\($0)\"," } ?? ""
        return #"{"type":"FeatureCollection",\#(remote)"features":[\#(features.joined(separator: ","))]}"#
    }

    var path: String { "/api/v1/maps/\(Routes.mapID)/features" }
}

@Suite("Sandbox routes: the API contract")
struct SandboxRouteTests {
    @Test("authentication: 401 without or with a wrong key, 403 for another account's map, 404 for no map")
    func authentication() {
        let routes = Routes()
        #expect(routes.call("GET", "/api/v1/maps", key: nil).status == 401)
        #expect(routes.call("GET", "/api/v1/maps", key: "nope").status == 401)
        #expect(routes.call("GET", "/api/v1/maps/\(Routes.otherMapID)").status == 403)
        #expect(routes.call("GET", "/api/v1/maps/00000000-0000-4000-8000-000000000000").status == 404)
        #expect(
            routes.call("POST", "/api/v1/maps/\(Routes.otherMapID)/features", body: Routes.collection([])).status == 403
        )
    }

    @Test("maps: the account's maps as a bare array; one map with its fields and remote field")
    func maps() throws {
        let routes = Routes()
        let list = try #require(routes.call("GET", "/api/v1/maps").json?.array)
        #expect(list.count == 1)
        #expect(list[0]["id"]?.string == Routes.mapID)
        #expect(list[0]["slug"]?.string == "stores")
        let map = try #require(routes.call("GET", "/api/v1/maps/\(Routes.mapID)").json)
        #expect(map["config"]?["remoteField"]?.string == "ext_id")
        #expect(map["fields"]?.array?.compactMap { $0["slug"]?.string } == ["ext_id", "city", "score", "kind"])
        #expect(map["fields"]?.array?[3]["config"]?["options"]?.array?.count == 2)
    }

    @Test("POST creates; with remoteField an existing remote id comes back in failed with its index")
    func create() throws {
        let routes = Routes()
        let first = routes.call(
            "POST", routes.path, body: Routes.collection([Routes.feature("a"), Routes.feature("b")]))
        #expect(first.status == 200)
        #expect(first.json?["created"]?.number == 2)
        let second = routes.call(
            "POST", routes.path, body: Routes.collection([Routes.feature("c"), Routes.feature("a")]))
        #expect(second.json?["created"]?.number == 1)
        let failed = try #require(second.json?["failed"]?.array)
        #expect(failed.count == 1)
        #expect(failed[0]["code"]?.string == "duplicate_remote_id")
        #expect(failed[0]["index"]?.number == 1)
        #expect(routes.store.features(map: Routes.mapID).count == 3)
    }

    @Test("PATCH upserts by remote id: matched features are updated, the rest created; unknown slugs are dropped")
    func upsert() throws {
        let routes = Routes()
        _ = routes.call(
            "PATCH", routes.path, body: Routes.collection([Routes.feature("a", #""city":"Köln","score":1"#)]))
        let reply = routes.call(
            "PATCH", routes.path,
            body: Routes.collection([
                Routes.feature("a", lon: 7, lat: 51, #""score":2,"label":"A","nonsense":true"#), Routes.feature("b"),
            ]))
        #expect(reply.json?["created"]?.number == 1)
        #expect(reply.json?["updated"]?.number == 1)
        let stored = routes.store.features(map: Routes.mapID)
        #expect(stored.count == 2)
        #expect(stored[0]["city"]?.string == "Köln")
        #expect(stored[0]["score"]?.number == 2)
        #expect(stored[0]["label"]?.string == "A")
        #expect(stored[0]["nonsense"] == nil)
        #expect(stored[0].longitude == 7)
        #expect(
            routes.call("PATCH", routes.path, body: Routes.collection([Routes.feature("x")], remoteField: nil)).status
                == 422)
    }

    @Test("PUT reconciles: upserts the body and deletes every feature not in it")
    func replace() throws {
        let routes = Routes()
        _ = routes.call("PATCH", routes.path, body: Routes.collection(["a", "b", "c"].map { Routes.feature($0) }))
        let reply = routes.call(
            "PUT", routes.path, body: Routes.collection([Routes.feature("b"), Routes.feature("d")]))
        #expect(reply.json?["deleted"]?.number == 2)
        #expect(routes.store.features(map: Routes.mapID).compactMap { $0["ext_id"]?.string } == ["b", "d"])
    }

    @Test("DELETE by remote id answers 204; an unknown id is listed in failed")
    func delete() throws {
        let routes = Routes()
        _ = routes.call("PATCH", routes.path, body: Routes.collection(["a", "b"].map { Routes.feature($0) }))
        let gone = #"{"type":"Feature","geometry":null,"properties":{"ext_id":"a"}}"#
        #expect(routes.call("DELETE", routes.path, body: Routes.collection([gone])).status == 204)
        let missing = #"{"type":"Feature","geometry":null,"properties":{"ext_id":"zzz"}}"#
        let reply = routes.call("DELETE", routes.path, body: Routes.collection([missing]))
        #expect(reply.status == 200)
        #expect(reply.json?["failed"]?.array?.first?["index"]?.number == 0)
        #expect(routes.store.features(map: Routes.mapID).count == 1)
    }

    @Test("more than the per-request maximum is 400 naming the maximum; a body too large is 413")
    func limits() {
        let routes = Routes(Routes.config(maxFeatures: 3))
        let four = routes.call("PATCH", routes.path, body: Routes.collection((1...4).map { Routes.feature("f\($0)") }))
        #expect(four.status == 400)
        #expect(four.json?["error"]?.string?.contains("maximum number of features") == true)
        let big = Routes.collection([Routes.feature("a", #""city":"\#(String(repeating: "x", count: 250_000))""#)])
        #expect(routes.call("PATCH", routes.path, body: big).status == 413)
        #expect(routes.store.features(map: Routes.mapID).isEmpty)
    }

    @Test("invalid features: 422 with errors keyed by feature index, and nothing of the request is stored")
    func invalidFeatures() throws {
        let routes = Routes()
        let reply = routes.call(
            "PATCH", routes.path,
            body: Routes.collection([
                Routes.feature("a"), Routes.feature("b", lon: 200), Routes.feature("c", #""score":"high""#),
                Routes.feature("d", #""kind":"castle""#), Routes.feature(nil),
            ]))
        #expect(reply.status == 422)
        let errors = try #require(reply.json?["errors"]?.members?.map(\.0))
        #expect(
            Set(errors) == [
                "features[1].geometry", "features[2].properties.score", "features[3].properties.kind",
                "features[4].properties.ext_id",
            ])
        #expect(routes.store.features(map: Routes.mapID).isEmpty)
    }

    @Test("free plan: the map fills up to 100 features, then each refused one is in failed with limit and current")
    func planLimit() throws {
        let routes = Routes(Routes.config(plan: .free))
        let first = routes.call(
            "PATCH", routes.path, body: Routes.collection((1...90).map { Routes.feature("f\($0)") }))
        #expect(first.json?["created"]?.number == 90)
        let second = routes.call(
            "PATCH", routes.path, body: Routes.collection((91...120).map { Routes.feature("f\($0)") }))
        #expect(second.json?["created"]?.number == 10)
        let failed = try #require(second.json?["failed"]?.array)
        #expect(failed.count == 20)
        #expect(failed[0]["code"]?.string == "location_limit_reached")
        #expect(failed[0]["limit"]?.number == 100)
        #expect(failed[0]["current"]?.number == 100)
        #expect(failed[0]["index"]?.number == 10)
        // Updates still work on a full map.
        let update = routes.call("PATCH", routes.path, body: Routes.collection([Routes.feature("f1", #""city":"x""#)]))
        #expect(update.json?["updated"]?.number == 1)
    }

    @Test("GET pages through features: page and per_page (default 200, at most 500), wrapped, with the total")
    func listing() throws {
        let routes = Routes()
        for chunk in stride(from: 0, to: 1200, by: 400) {
            _ = routes.call(
                "PATCH", routes.path, body: Routes.collection((chunk..<chunk + 400).map { Routes.feature("f\($0)") }))
        }
        func page(_ query: String) -> (count: Int, total: Double?) {
            let collection = routes.call("GET", routes.path + query).json?["featureCollection"]
            return (collection?["features"]?.array?.count ?? -1, collection?["properties"]?["total"]?.number)
        }
        #expect(page("").count == 200)
        #expect(page("").total == 1200)
        #expect(page("?per_page=500&page=3").count == 200)
        #expect(page("?per_page=1000").count == 500)
        #expect(page("?page=7").count == 0)
        let first = routes.call("GET", routes.path + "?per_page=1").json?["featureCollection"]?["features"]?.array?
            .first
        #expect(first?["properties"]?["ext_id"]?.string == "f0")
        #expect(first?["id"]?.string?.count == 36)
    }

    @Test("POST /token trades client credentials for a bearer token that works like a key")
    func token() throws {
        let routes = Routes()
        let refused = routes.call(
            "POST", "/token", key: nil,
            body: "grant_type=client_credentials_with_user&client_id=client&client_secret=wrong")
        #expect(refused.status == 401)
        let granted = routes.call(
            "POST", "/token", key: nil,
            body: "grant_type=client_credentials_with_user&client_id=client&client_secret=s3cret")
        #expect(granted.json?["token_type"]?.string == "Bearer")
        #expect(granted.json?["expires_in"]?.number == 3600)
        let token = try #require(granted.json?["access_token"]?.string)
        #expect(routes.call("GET", "/api/v1/maps", key: token).status == 200)
    }

    @Test("GET /api/v1/schema needs no key and has the documented keys")
    func schema() throws {
        let schema = try #require(Routes().call("GET", "/api/v1/schema", key: nil).json?.members?.map(\.0))
        #expect(
            Set(schema) == [
                "fieldTypes", "filterTypes", "orderByTypes", "mapConfig", "fieldConfig", "filterConfig",
                "orderByConfig",
                "styleRuleConfig",
            ])
    }

    @Test("faults are drawn from the seed: the same seed gives the same fates")
    func seededFaults() {
        func fates(seed: UInt64) -> [Int] {
            var config = Routes.config()
            config.faults.seed = seed
            config.faults.rateLimited = 0.3
            config.faults.serverErrors = 0.3
            let routes = Routes(config)
            return (0..<40).map {
                routes.call("PATCH", routes.path, body: Routes.collection([Routes.feature("f\($0)")])).status
            }
        }
        #expect(fates(seed: 7) == fates(seed: 7))
        #expect(fates(seed: 7) != fates(seed: 8))
        #expect(Set(fates(seed: 7)).isSuperset(of: [200, 429]))
    }

    @Test("429 carries Retry-After; applied-then-dropped stores the features and sends no answer")
    func faultShapes() {
        var config = Routes.config()
        config.faults.rateLimited = 1
        config.faults.retryAfterSeconds = 7
        let limited = Routes(config).call("PATCH", Routes().path, body: Routes.collection([Routes.feature("a")]))
        #expect(limited.status == 429)
        #expect(limited.reply.headers.contains { $0.0 == "Retry-After" && $0.1 == "7" })
        config.faults = FaultPlan()
        config.faults.droppedAfterApply = 1
        let routes = Routes(config)
        let dropped = routes.call("PATCH", routes.path, body: Routes.collection([Routes.feature("a")]))
        #expect(dropped.reply.drop)
        #expect(routes.store.features(map: Routes.mapID).count == 1)
    }

    @Test("a share of 429s comes without Retry-After")
    func barePushback() {
        var config = Routes.config()
        config.faults.rateLimited = 1
        config.faults.retryAfterSeconds = 2
        config.faults.withoutRetryAfter = 0.5
        let routes = Routes(config)
        let answers = (0..<40).map {
            routes.call("PATCH", routes.path, body: Routes.collection([Routes.feature("f\($0)")])).reply
        }
        #expect(answers.allSatisfy { $0.status == 429 })
        let withHeader = answers.filter { $0.headers.contains { $0.0 == "Retry-After" && $0.1 == "2" } }.count
        #expect(withHeader > 5 && withHeader < 35, "\(withHeader) of 40 with Retry-After")
    }

    @Test("--write-log: one JSON line per write request, with its method, status, fate and remote ids")
    func writeLog() throws {
        let dir = TempDir()
        var config = Routes.config()
        config.writeLogPath = dir.path + "/writes.jsonl"
        config.faults.droppedAfterApply = 0.5
        config.faults.seed = 5
        let routes = Routes(config)
        var dropped: [Bool] = []
        for batch in 0..<6 {
            let features = (0..<3).map { Routes.feature("b\(batch)-\($0)") }
            dropped.append(routes.call("PATCH", routes.path, body: Routes.collection(features)).reply.drop)
        }
        _ = routes.call("DELETE", routes.path, body: Routes.collection([Routes.feature("b0-0")]))
        _ = routes.call("GET", routes.path)
        let lines = dir.read("writes.jsonl").split(separator: "\n").map { JSONValue.parse(Array($0.utf8)) }
        #expect(lines.count == 7, "the GET is not a write")
        #expect(lines.prefix(6).map { $0?["dropped"] == .bool(true) } == dropped)
        #expect(Set(dropped) == [true, false])
        #expect(lines[1]?["method"]?.string == "PATCH")
        #expect(lines[1]?["status"]?.integer == 200)
        #expect(lines[1]?["ids"] == .array(["b1-0", "b1-1", "b1-2"]))
        #expect(lines[6]?["method"]?.string == "DELETE")
        #expect(lines[6]?["ids"] == .array(["b0-0"]))
    }

    @Test("slow reads: the body of a write is read 4 kB at a time, with a pause between reads")
    func slowReads() async throws {
        var config = Routes.config()
        config.faults.slowReads = 1
        config.faults.slowReadMilliseconds = 40
        let server = try await SandboxServer(config: config)
        defer { Task { await server.stop() } }
        // About 160 kB: 40 reads of 4 kB and 39 pauses of 40 ms; the read that brings the head can
        // bring up to 14 kB more before the slow reading starts, so at least 30 pauses.
        let features = (0..<400).map { Routes.feature("s\($0)", #""city":"\#(String(repeating: "x", count: 300))""#) }
        let body = Array(Routes.collection(features).utf8)
        #expect(body.count > 160_000 && body.count < 200_000)
        let started = ContinuousClock.now
        let result = CurlEasy(abort: AbortFlag()).perform(
            HTTPRequest(
                method: "PATCH", url: server.url + Routes().path,
                headers: ["Authorization: Bearer key-1", "Content-Type: application/json"], body: body))
        let elapsed = ContinuousClock.now - started
        guard case .success(let response) = result else {
            Issue.record("the slow PATCH failed: \(result)")
            return
        }
        #expect(response.status == 200)
        #expect(server.store.features(map: Routes.mapID).count == 400)
        #expect(elapsed >= .milliseconds(30 * 40), "read in \(elapsed)")
        // The connection reads at full speed again for the next request.
        let listing = CurlEasy(abort: AbortFlag()).perform(
            HTTPRequest(method: "GET", url: server.url + Routes().path, headers: ["Authorization: Bearer key-1"]))
        if case .success(let answer) = listing { #expect(answer.status == 200) } else { Issue.record("\(listing)") }
    }
}

@Suite("Sandbox JSON parser")
struct SandboxJSONTests {
    @Test(
        "values, escapes and member order",
        arguments: [
            (#"{"b":1,"a":[true,false,null,-0.5e2,"x"]}"#, #"{"b":1,"a":[true,false,null,-50,"x"]}"#),
            (#" "tab\there \"q\" \\ \/ \u00e9 \ud83d\ude00" "#, "\"tab\\there \\\"q\\\" \\\\ / é 😀\""),
            ("[]", "[]"), ("{}", "{}"), ("12345678901", "12345678901"), (#""Köln""#, #""Köln""#),
        ])
    func parses(input: String, output: String) throws {
        let value = try #require(JSONValue.parse(Array(input.utf8)))
        #expect(value.text == output)
    }

    @Test(
        "invalid JSON is refused",
        arguments: [
            "", "{", #"{"a"}"#, "[1,]", "01", "1.", "-", #""\x""#, "tru", "[1] 2", "\"a\nb\"", #"{"a":1,}"#,
            String(repeating: "[", count: 300) + String(repeating: "]", count: 300),
        ])
    func refuses(input: String) {
        #expect(JSONValue.parse(Array(input.utf8)) == nil)
    }

    @Test("the parser agrees with Foundation on a feature collection")
    func agreesWithFoundation() throws {
        let body = Routes.collection(
            (0..<50).map {
                Routes.feature("f\($0)", lon: Double($0) / 7, lat: -Double($0) / 3, #""city":"Zürich \"\#($0)\"""#)
            })
        let ours = try #require(JSONValue.parse(Array(body.utf8)))
        let foundation = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
        let features = foundation["features"] as! [[String: Any]]
        #expect(ours["features"]?.array?.count == features.count)
        for (index, feature) in features.enumerated() {
            let coordinates = (feature["geometry"] as! [String: Any])["coordinates"] as! [Double]
            #expect(
                ours["features"]?.array?[index]["geometry"]?["coordinates"]?.array?.compactMap(\.number) == coordinates)
            #expect(
                ours["features"]?.array?[index]["properties"]?["city"]?.string
                    == (feature["properties"] as! [String: Any])["city"] as? String)
        }
    }
}
