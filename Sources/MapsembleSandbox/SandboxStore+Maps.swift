import Foundation
import MapsembleJSON

/// Maps made and changed through the API: `POST /api/v1/maps` and `PATCH /api/v1/maps/{id}`,
/// as mapsemble-api.md ("Creating and changing maps") has them.
extension SandboxStore {
    static let fieldTypes: Set<String> = [
        "text", "multiline_text", "number", "date", "image", "single_select", "multi_select",
    ]

    /// `POST /api/v1/maps`: `{"label", "published"?, "config"?, "fields"?}`; `201` with the map.
    func createMap(_ body: JSONValue?, account: String, _ state: inout State) -> SandboxReply {
        guard let body, body.members != nil else { return .error(400, "The body must be a JSON object.") }
        var map = SandboxConfig.Map(id: uuid(&state), label: "", account: account)
        if let refusal = change(&map, with: body, creating: true) { return refusal }
        state.maps[map.id] = MapState(config: map)
        return SandboxReply(status: 201, json: detail(map, withOptions: true))
    }

    /// `PATCH /api/v1/maps/{id}`: `label`, `config` (partial) and `fields` (the whole list).
    func changeMap(_ id: String, _ body: JSONValue?, _ state: inout State) -> SandboxReply {
        guard let body, body.members != nil else { return .error(400, "The body must be a JSON object.") }
        guard var map = state.maps[id] else { return .error(404, "Map not found") }
        if let refusal = change(&map.config, with: body, creating: false) { return refusal }
        state.maps[id] = map
        return SandboxReply(status: 200, json: detail(map.config, withOptions: true))
    }

    /// Applies a body to a map, or the `422` naming every invalid member (nothing applied then).
    private func change(_ map: inout SandboxConfig.Map, with body: JSONValue, creating: Bool) -> SandboxReply? {
        var errors: [(String, JSONValue)] = []
        var changed = map
        if let label = body["label"] {
            if let text = label.string, !text.trimmingCharacters(in: .whitespaces).isEmpty, text.count <= 255 {
                changed.label = text
            } else {
                errors.append(("label", ["The label must be a text of 1 to 255 characters."]))
            }
        } else if creating {
            errors.append(("label", ["The label field is required."]))
        }
        if let fields = body["fields"] {
            switch Self.fields(fields) {
            case .success(let list): changed.fields = list
            case .failure(let problems): errors += problems.errors
            }
        }
        if let config = body["config"] {
            for (key, value) in config.members ?? [] where key == "remoteField" || key == "geocodeField" {
                guard value == .null || value.string != nil else {
                    errors.append(("config.\(key)", [.string("The \(key) must be a field slug or null.")]))
                    continue
                }
                if key == "remoteField" {
                    changed.remoteField = value.string
                } else {
                    changed.geocodeField = value.string
                }
            }
        }
        // The remote and geocode fields name text fields of the map.
        for (key, slug) in [("remoteField", changed.remoteField), ("geocodeField", changed.geocodeField)] {
            guard let slug else { continue }
            guard let field = changed.fields.first(where: { $0.slug == slug }) else {
                errors.append(("config.\(key)", [.string("The \(key) \"\(slug)\" is not a field of the map.")]))
                continue
            }
            if !["text", "multiline_text"].contains(field.type) {
                errors.append(("config.\(key)", [.string("The \(key) must be a text field.")]))
            }
        }
        guard errors.isEmpty else {
            return SandboxReply(
                status: 422, json: ["message": "The given data was invalid.", "errors": .object(errors)])
        }
        map = changed
        return nil
    }

    struct FieldProblems: Error {
        var errors: [(String, JSONValue)]
    }

    /// A map's field list as sent: slugs of `[a-z0-9_-]`, unique; a known type; select options
    /// with unique keys.
    static func fields(_ value: JSONValue) -> Result<[SandboxConfig.Field], FieldProblems> {
        guard let list = value.array else {
            return .failure(FieldProblems(errors: [("fields", ["The fields must be an array."])]))
        }
        var errors: [(String, JSONValue)] = []
        var fields: [SandboxConfig.Field] = []
        var slugs = Set<String>()
        for (index, item) in list.enumerated() {
            let key = "fields.\(index)"
            guard let slug = item["slug"]?.string, !slug.isEmpty, slug.count <= 64,
                slug.unicodeScalars.allSatisfy({
                    ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
                })
            else {
                errors.append(
                    ("\(key).slug", ["The slug may only contain lower case letters, digits, dashes and underscores."]))
                continue
            }
            guard slugs.insert(slug).inserted, slug != "label" else {
                errors.append(("\(key).slug", [.string("The slug \"\(slug)\" is taken.")]))
                continue
            }
            let type = item["type"]?.string ?? ""
            guard fieldTypes.contains(type) else {
                errors.append(("\(key).type", [.string("The type \"\(type)\" is not a field type.")]))
                continue
            }
            var field = SandboxConfig.Field(
                slug: slug, type: type, label: item["label"]?.string ?? slug, required: item["required"] == .bool(true))
            if type.hasSuffix("_select") {
                let options = item["config"]?["options"]?.array ?? []
                var keys = Set<String>()
                for (position, option) in options.enumerated() {
                    guard let optionKey = option["key"]?.string, !optionKey.isEmpty, keys.insert(optionKey).inserted
                    else {
                        errors.append(
                            ("\(key).config.options.\(position).key", ["Each option needs a key of its own."]))
                        continue
                    }
                    field.options.append(optionKey)
                    field.optionLabels.append(option["label"]?.string ?? optionKey)
                }
            }
            fields.append(field)
        }
        return errors.isEmpty ? .success(fields) : .failure(FieldProblems(errors: errors))
    }
}
