import MapsembleJSON
import MapsembleMapView

extension SandboxStore {
    /// POST, PATCH, PUT and DELETE on a map's features, with the faults of the plan.
    func write(_ request: SandboxRequest, _ body: JSONValue?, _ mapID: String, _ state: inout State) -> SandboxReply {
        state.writeRequests += 1
        let limits = state.config
        if request.body.count > limits.maxBodyBytes { return .error(413, "The request body is too large.") }

        let fate = drawFate(&state)
        if let refusal = refusal(fate, &state) { return refusal }
        switch fate {
        case .stall:
            var reply = SandboxReply(status: 504)
            reply.drop = true
            reply.delaySeconds = limits.faults.stallSeconds
            return reply
        default:
            break
        }

        guard let body, body.members != nil else {
            return .error(400, "The request body is not valid JSON.")
        }
        guard let features = body["features"]?.array else {
            return SandboxReply(
                status: 422,
                json: [
                    "message": "The given data was invalid.",
                    "errors": ["features": ["The features field is required."]],
                ])
        }
        if features.count > limits.maxFeaturesPerRequest {
            return SandboxReply(
                status: 400,
                json: [
                    "error": .string(
                        "Too many features: the maximum number of features per request is \(limits.maxFeaturesPerRequest)."
                    )
                ])
        }
        let mapConfig = state.maps[mapID]!.config
        let remoteField = body["remoteField"]?.string
        if let remoteField, !mapConfig.fields.contains(where: { $0.slug == remoteField }) {
            return invalid([
                ("remoteField", .array([.string("The remote field \"\(remoteField)\" is not a field of this map.")]))
            ])
        }
        if request.method != "POST" && remoteField == nil
            && !(request.method == "DELETE" && features.allSatisfy { $0["id"]?.string != nil })
        {
            return invalid([("remoteField", ["The remoteField field is required."])])
        }

        if request.method != "DELETE" {
            let existing = state.maps[mapID]!.byRemoteID
            let errors = validate(
                features, remoteField: remoteField, map: mapConfig,
                keepsPoint: { request.method == "PATCH" && existing[$0] != nil })
            if !errors.isEmpty {
                if limits.faults.anonymousValidationErrors {
                    return invalid([("features", .array(errors.flatMap { $0.1.array ?? [] }))])
                }
                return invalid(errors)
            }
        }
        // Taken out of the dictionary while it changes, so its storage is not copied (a map can
        // hold millions of features).
        var map = state.maps.removeValue(forKey: mapID)!
        var reply: SandboxReply
        if request.method == "DELETE" {
            reply = delete(features, remoteField, &map)
        } else {
            reply = upsert(features, method: request.method, remoteField: remoteField, map: &map, state: &state)
        }
        state.maps[mapID] = map
        if fate == .dropAfterApply {
            reply.drop = true
        }
        if limits.faults.unindexedFailures, let failed = JSONParser.parse(reply.body)?["failed"]?.array, !failed.isEmpty
        {
            var object = JSONParser.parse(reply.body)?.members ?? []
            let stripped = failed.map { entry in JSONValue.object((entry.members ?? []).filter { $0.0 != "index" }) }
            object = object.map { $0.0 == "failed" ? ("failed", .array(stripped)) : $0 }
            reply.body = JSONValue.object(object).bytes
        }
        return reply
    }

    /// A geocoder request with the faults of the plan: refused, stalled (no answer until the
    /// client gives up), or nil to answer it.
    func geocoderFault(_ state: inout State) -> SandboxReply? {
        let fate = drawFate(&state)
        guard fate != .stall else {
            var reply = SandboxReply(status: 504)
            reply.drop = true
            reply.delaySeconds = state.config.faults.stallSeconds
            return reply
        }
        return refusal(fate, &state)
    }

    /// A listing page with the faults of the plan (`faultListings`): refused, or nil to answer it.
    func listingFault(_ state: inout State) -> SandboxReply? {
        guard state.config.faults.faultListings else { return nil }
        return refusal(drawFate(&state), &state)
    }

    /// The answer of a request refused by its fate (429, 5xx), or nil when it is not.
    private func refusal(_ fate: FaultPlan.Fate, _ state: inout State) -> SandboxReply? {
        let faults = state.config.faults
        switch fate {
        case .rateLimited:
            var reply = SandboxReply.error(429, "Too Many Attempts.")
            let bare = faults.withoutRetryAfter > 0 && state.random.unit() < faults.withoutRetryAfter
            if let seconds = faults.retryAfterSeconds, !bare {
                reply.headers.append(("Retry-After", String(seconds)))
            }
            return reply
        case .serverError(let status):
            return .error(status, "Server Error")
        default:
            return nil
        }
    }

    private func drawFate(_ state: inout State) -> FaultPlan.Fate {
        let faults = state.config.faults
        guard faults.isActive else { return .normal }
        var draw = state.random.unit()
        if draw < faults.rateLimited { return .rateLimited }
        draw -= faults.rateLimited
        if draw < faults.serverErrors { return .serverError([500, 502, 503][Int(state.random.next() % 3)]) }
        draw -= faults.serverErrors
        if draw < faults.droppedAfterApply { return .dropAfterApply }
        draw -= faults.droppedAfterApply
        if draw < faults.stalls { return .stall }
        return .normal
    }

    private func invalid(_ errors: [(String, JSONValue)]) -> SandboxReply {
        SandboxReply(status: 422, json: ["message": "The given data was invalid.", "errors": .object(errors)])
    }

    /// Checks every feature; nothing is stored when one is invalid.
    /// A PATCH of a feature that exists may leave out its point (`"geometry": null`): it stays.
    private func validate(
        _ features: [JSONValue], remoteField: String?, map: SandboxConfig.Map, keepsPoint: (String) -> Bool
    ) -> [(String, JSONValue)] {
        var errors: [(String, JSONValue)] = []
        for (index, feature) in features.enumerated() {
            let key = "features[\(index)]"
            let remote = remoteField.flatMap { feature["properties"]?[$0]?.remoteKey }
            let pointless = feature["geometry"] == nil || feature["geometry"] == .null
            if pointless, let field = map.geocodeField, map.plan != .free,
                feature["properties"]?[field]?.string?.contains(where: { $0.isLetter || $0.isNumber }) == true
            {
                // The map geocodes the address (`upsert`).
            } else if !(pointless && remote.map(keepsPoint) == true),
                let problem = SandboxGeometry.problem(feature["geometry"])
            {
                errors.append(("\(key).geometry", [.string(problem)]))
                continue
            }
            guard let properties = feature["properties"]?.members else {
                errors.append(("\(key).properties", ["The properties must be an object."]))
                continue
            }
            if let remoteField, feature["properties"]?[remoteField]?.remoteKey == nil {
                errors.append(("\(key).properties.\(remoteField)", ["The remote id is required."]))
            }
            for (slug, value) in properties {
                guard let field = map.fields.first(where: { $0.slug == slug }) else { continue }
                if field.type == "number", value != .null, value.number == nil {
                    errors.append(("\(key).properties.\(slug)", [.string("The \(slug) field must be a number.")]))
                }
                // A select takes an option's key or label; a multi_select an array of them.
                let chosen = field.type == "single_select" ? value.string.map { [$0] } : value.array?.map { $0.string }
                if field.type.hasSuffix("_select"), !field.options.isEmpty, value != .null,
                    chosen?.allSatisfy({
                        $0.map { field.options.contains($0) || field.optionLabels.contains($0) } ?? false
                    })
                        != true
                {
                    errors.append(("\(key).properties.\(slug)", [.string("The selected \(slug) is invalid.")]))
                }
            }
        }
        return errors
    }

    private func upsert(
        _ features: [JSONValue], method: String, remoteField: String?, map: inout MapState, state: inout State
    ) -> SandboxReply {
        var created = 0
        var updated = 0
        var deleted = 0
        var failed: [JSONValue] = []
        var seen = Set<String>()
        let limit = map.config.plan == .free ? state.config.freePlanLimit : Int.max
        for (index, feature) in features.enumerated() {
            var geometry = feature["geometry"].flatMap { $0 == .null ? nil : $0 }
            // An existing feature keeps its point unless its address changed.
            let storedAddress = remoteField.flatMap { feature["properties"]?[$0]?.remoteKey }
                .flatMap { map.byRemoteID[$0] }.map { id in
                    map.config.geocodeField.flatMap { map.features[id]?[$0]?.string } ?? ""
                }
            if geometry == nil, let field = map.config.geocodeField,
                let address = feature["properties"]?[field]?.string, storedAddress != address
            {
                // Server-side geocoding: the address under the map's geocode field.
                state.serverGeocodes += 1
                guard let place = (state.config.geocoder ?? SandboxGeocoder()).matches(address, countries: []).first
                else {
                    failed.append([
                        "code": "geocoding_failed",
                        "message": .string("The address \"\(address)\" could not be geocoded."),
                        "index": .number(Double(index)),
                    ])
                    continue
                }
                geometry = ["type": "Point", "coordinates": [.number(place.longitude), .number(place.latitude)]]
            }
            let remote = remoteField.flatMap { feature["properties"]?[$0]?.remoteKey }
            let properties = (feature["properties"]?.members ?? []).filter { slug, _ in
                slug == "label" || map.config.fields.contains { $0.slug == slug }
            }
            if let remote { seen.insert(remote) }
            if let remote, let existing = map.byRemoteID[remote] {
                if method == "POST" {
                    failed.append([
                        "code": "duplicate_remote_id",
                        "message": .string("A feature with remote id \"\(remote)\" exists already."),
                        "index": .number(Double(index)),
                    ])
                    continue
                }
                var stored = map.features[existing]!
                if let geometry { stored.move(to: geometry) }
                for (slug, value) in properties {
                    if let position = stored.properties.firstIndex(where: { $0.0 == slug }) {
                        stored.properties[position].1 = value
                    } else {
                        stored.properties.append((slug, value))
                    }
                }
                map.features[existing] = stored
                updated += 1
                continue
            }
            if map.features.count >= limit {
                failed.append([
                    "code": "location_limit_reached", "message": "The location limit of your plan has been reached.",
                    "limit": .number(Double(limit)), "current": .number(Double(map.features.count)),
                    "index": .number(Double(index)),
                ])
                continue
            }
            let id = uuid(&state)
            map.insert(
                StoredFeature(id: id, geometry: geometry!, properties: properties),
                remoteID: remote)
            created += 1
        }
        if method == "PUT", let remoteField {
            for feature in map.listed {
                let remote = feature[remoteField]?.remoteKey
                if remote == nil || !seen.contains(remote!) {
                    map.remove(id: feature.id)
                    deleted += 1
                }
            }
        }
        return SandboxReply(
            status: 200,
            json: [
                "created": .number(Double(created)), "updated": .number(Double(updated)),
                "deleted": .number(Double(deleted)),
                "failed": .array(failed),
            ])
    }

    private func delete(_ features: [JSONValue], _ remoteField: String?, _ map: inout MapState) -> SandboxReply {
        var deleted = 0
        var failed: [JSONValue] = []
        for (index, feature) in features.enumerated() {
            let id =
                feature["id"]?.string
                ?? remoteField.flatMap { feature["properties"]?[$0]?.remoteKey }.flatMap { map.byRemoteID[$0] }
            guard let id, map.features[id] != nil else {
                failed.append(["code": "not_found", "message": "No such feature.", "index": .number(Double(index))])
                continue
            }
            map.remove(id: id)
            deleted += 1
        }
        if failed.isEmpty { return SandboxReply(status: 204) }
        return SandboxReply(
            status: 200,
            json: ["created": 0, "updated": 0, "deleted": .number(Double(deleted)), "failed": .array(failed)])
    }

    func uuid(_ state: inout State) -> String {
        let a = state.random.next()
        let b = state.nextID
        state.nextID += 1
        func hex(_ value: UInt64, _ digits: Int) -> String {
            let text = String(value, radix: 16)
            return String(repeating: "0", count: max(0, digits - text.count)) + text.suffix(digits)
        }
        return
            "\(hex(a >> 32, 8))-\(hex((a >> 16) & 0xFFFF, 4))-4\(hex(a & 0xFFF, 3))-a\(hex(b >> 48, 3))-\(hex(b, 12))"
    }
}
