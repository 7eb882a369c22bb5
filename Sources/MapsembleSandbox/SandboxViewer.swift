import MapsembleJSON
import MapsembleMapView
import NIOConcurrencyHelpers

/// The sandbox's pages for people: `GET /` lists the maps, `GET /maps/{id}` draws a map's stored
/// features (the page fetches `/maps/{id}/picture.json` every two seconds, so the points of an
/// import running into it appear as they land). No key is needed: the sandbox listens on
/// loopback and holds test data. Not counted in `requestCounts`.
extension SandboxStore {
    /// Points drawn of a map, at most (spread evenly over its features in creation order).
    static let viewerPoints = 30_000

    func viewer(_ request: SandboxRequest) -> SandboxReply? {
        guard request.method == "GET" else { return nil }
        let parts = request.path.split(separator: "/").map(String.init)
        if parts.isEmpty { return html(index) }
        guard parts.first == "maps", parts.count == 2 || (parts.count == 3 && parts[2] == "picture.json") else {
            return nil
        }
        guard let (map, points) = snapshot(parts[1]) else {
            return SandboxReply(status: 404, json: ["message": "Map not found"])
        }
        let picture = MapPicture(
            layers: [
                MapLayer(
                    key: "stored", label: "features on the map", color: "#2563eb", total: map.count, points: points,
                    density: true)
            ],
            caption: points.count < map.count
                ? "Web Mercator. \(MapPage.grouped(points.count)) of the \(MapPage.grouped(map.count)) features are drawn, spread evenly over them. Refreshed every 2 s."
                : "Web Mercator. Refreshed every 2 s.")
        if parts.count == 3 {
            var reply = SandboxReply(status: 200, headers: [("Content-Type", "application/json")])
            reply.body = Array(picture.json().utf8)
            return reply
        }
        let header = """
            <h1>\(MapPage.escape(map.label))</h1>
            <p class="sub"><a href="/">all maps</a> · map <code>\(MapPage.escape(map.id))</code> · remote field \
            \(MapPage.escape(map.remoteField ?? "none")) · plan \(MapPage.escape(map.plan))</p>
            """
        return html(
            MapPage.document(
                title: "\(map.label): sandbox", header: header, picture: picture, sections: "",
                live: "/maps/\(map.id)/picture.json"))
    }

    private struct MapFacts {
        var id: String
        var label: String
        var remoteField: String?
        var plan: String
        var count: Int
    }

    /// A map's facts and up to `viewerPoints` of its points, taken under the lock (a stride
    /// through the features, not all of them, so that an import into the map is not held up).
    private func snapshot(_ id: String) -> (MapFacts, [MapPoint])? {
        state.withLockedValue { state in
            guard var map = state.maps[id] else { return nil }
            map.compact()
            state.maps[id] = map
            let step = max(1, (map.order.count + Self.viewerPoints - 1) / Self.viewerPoints)
            var points: [MapPoint] = []
            points.reserveCapacity(min(map.order.count, Self.viewerPoints))
            for (line, position) in stride(from: 0, to: map.order.count, by: step).enumerated() {
                guard let feature = map.features[map.order[position]] else { continue }
                points.append(
                    MapPoint(
                        longitude: feature.longitude, latitude: feature.latitude, line: line,
                        outline: feature.shape.flatMap(SandboxGeometry.outline)))
            }
            let facts = MapFacts(
                id: id, label: map.config.label, remoteField: map.config.remoteField, plan: map.config.plan.rawValue,
                count: map.features.count)
            return (facts, points)
        }
    }

    private var index: String {
        let maps = state.withLockedValue { state in
            state.maps.values.sorted { $0.config.id < $1.config.id }.map {
                ($0.config.id, $0.config.label, $0.features.count, $0.config.remoteField)
            }
        }
        var rows = ""
        for (id, label, count, remote) in maps {
            rows += "<tr><td><a href=\"/maps/\(MapPage.escape(id))\">\(MapPage.escape(label))</a></td>"
            rows += "<td><code>\(MapPage.escape(id))</code></td><td>\(MapPage.grouped(count))</td>"
            rows += "<td>\(MapPage.escape(remote ?? ""))</td></tr>"
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>mapsemble-import sandbox</title>
            <style>\(MapPage.style)</style></head>
            <body><main><h1>Sandbox maps</h1>
            <p class="sub">A local Mapsemble-compatible server. Import into it with \
            <code>--api-url</code> set to this address and any key it was started with.</p>
            <div class="scroll"><table><tr><th>map</th><th>id</th><th>features</th><th>remote field</th></tr>
            \(rows)</table></div></main></body></html>

            """
    }

    private func html(_ page: String) -> SandboxReply {
        var reply = SandboxReply(status: 200, headers: [("Content-Type", "text/html; charset=utf-8")])
        reply.body = Array(page.utf8)
        return reply
    }
}
