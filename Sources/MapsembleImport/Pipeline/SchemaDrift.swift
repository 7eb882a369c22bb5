/// How the input's header differs from what the pipeline maps: columns the pipeline names that
/// the header lacks (the run stops, naming every one), and columns it uses nowhere (a notice, or
/// new fields with `--create-fields`).
enum SchemaDrift {
    /// Every column pipeline.yml names, with the setting that names it.
    static func references(_ config: PipelineConfig) -> [(key: String, column: String)] {
        var found: [(String, String)] = []
        func add(_ key: String, _ setting: String?, template: Bool = false) {
            guard let setting, !setting.isEmpty else { return }
            if template && setting.contains("{") {
                for name in templateColumns(setting) { found.append((key, name)) }
            } else {
                found.append((key, setting))
            }
        }
        add("properties.label", config.properties.label, template: true)
        add("properties.remote_id", config.properties.remoteID)
        for field in config.properties.fields { add("properties.fields.\(field.slug)", field.column) }
        add("coordinates.longitude", config.coordinates.longitude)
        add("coordinates.latitude", config.coordinates.latitude)
        add("coordinates.point", config.coordinates.point)
        add("coordinates.geometry", config.coordinates.geometry)
        if let geocode = config.geocode {
            add("geocode.address", geocode.address, template: true)
            for (part, setting) in geocode.parts.sorted(by: { $0.key < $1.key }) {
                add("geocode.\(part)", setting, template: true)
            }
        }
        return found
    }

    /// The `{column}` names of a template (`{{` and `}}` are literal braces).
    static func templateColumns(_ template: String) -> [String] {
        var names: [String] = []
        var rest = Substring(template)
        while let character = rest.first {
            rest = rest.dropFirst()
            if (character == "{" || character == "}") && rest.first == character {
                rest = rest.dropFirst()
            } else if character == "{", let close = rest.firstIndex(of: "}") {
                names.append(String(rest[..<close]))
                rest = rest[rest.index(after: close)...]
            }
        }
        return names
    }

    /// The one error for settings naming a column the header names more than once (its columns
    /// are read as `NAME`, `NAME_2`, …), listing the choices; or nil. A pipeline that names one of
    /// the renamed columns (`NAME_2`) knows of them: its `NAME` is the first.
    static func ambiguousColumns(
        _ config: PipelineConfig, duplicates: [String: [String]], file: String, line: Int = 1
    ) -> ImportError? {
        guard !duplicates.isEmpty else { return nil }
        let named = Set(references(config).map(\.column))
        var found: [(column: String, keys: [String])] = []
        for reference in references(config) {
            guard let choices = duplicates[reference.column], !choices.dropFirst().contains(where: named.contains)
            else { continue }
            if let index = found.firstIndex(where: { $0.column == reference.column }) {
                if !found[index].keys.contains(reference.key) { found[index].keys.append(reference.key) }
            } else {
                found.append((reference.column, [reference.key]))
            }
        }
        guard !found.isEmpty else { return nil }
        let each = found.map { entry in
            let choices = duplicates[entry.column]!
            return
                "\(entry.keys.joined(separator: " and ")) name\(entry.keys.count == 1 ? "s" : "") the column \"\(entry.column)\", which the header has \(choices.count) times, read as "
                + choices.map { "\"\($0)\"" }.joined(separator: ", ")
                + "; name the one meant (\"\(entry.column)\" is the first once the pipeline names \(choices.dropFirst().map { "\"\($0)\"" }.joined(separator: " or ")) too)"
        }
        return ImportError(.config, each.joined(separator: "; "), file: file, line: line)
    }

    /// The one error for settings naming columns the header lacks, or nil.
    static func missingColumns(_ config: PipelineConfig, header: [String], file: String, line: Int = 1)
        -> ImportError?
    {
        let present = Set(header)
        // Each missing column once, with every setting that names it.
        var missing: [(column: String, keys: [String])] = []
        for reference in references(config) where !present.contains(reference.column) {
            if let index = missing.firstIndex(where: { $0.column == reference.column }) {
                if !missing[index].keys.contains(reference.key) { missing[index].keys.append(reference.key) }
            } else {
                missing.append((reference.column, [reference.key]))
            }
        }
        guard !missing.isEmpty else { return nil }
        // The columns a renamed one may be among: when the pipeline maps fields, those it uses
        // nowhere (not those found by name when a setting is left out: lon, lat, name).
        let named = Set(references(config).map(\.column))
        var found: Set<String> = []
        if config.coordinates.longitude == nil && config.coordinates.point == nil && config.coordinates.geometry == nil
        {
            found.formUnion(Inspector.longitudeNames + Inspector.latitudeNames)
        }
        if config.properties.label == nil { found.formUnion(["label", "name", "title"]) }
        let unused =
            config.properties.fields.isEmpty
            ? []
            : header.filter {
                !named.contains($0) && !$0.hasPrefix("_error_") && !found.contains($0.trimmingSpaces.lowercased())
            }
        let what =
            missing.count == 1
            ? "\(missing[0].keys.joined(separator: " and ")) name\(missing[0].keys.count == 1 ? "s" : "") the column \"\(missing[0].column)\", which the header does not have"
            : "the header does not have \(missing.count) of the columns the pipeline maps: "
                + missing.map { "\"\($0.column)\" (\($0.keys.joined(separator: ", ")))" }.joined(separator: ", ")
        return ImportError(
            .config,
            what + "; its columns are: \(PipelinePlan.listing(header))"
                + (unused.isEmpty ? "" : "; not mapped: \(PipelinePlan.listing(unused)) (a column renamed?)"),
            file: file, line: line)
    }

    /// Header columns no setting uses: not mapped, not the label, remote id, coordinates or
    /// address, not `_error_` columns of a rejected file fed back, not made up by the reader.
    static func newColumns(_ plan: PipelinePlan, config: PipelineConfig) -> [String] {
        let header = plan.reader.header
        var used = Set(references(config).map(\.column))
        let validator = plan.validator
        if validator.requireCoordinates {
            for column in [validator.longitudeColumn, validator.latitudeColumn]
                + [
                    validator.pointColumn, validator.geometryColumn,
                ].compactMap({ $0 }) where column < header.count
            {
                used.insert(header[column])
            }
        }
        if let label = plan.mapping.label {
            for case .column(let column) in label { used.insert(header[column]) }
        }
        if let reader = plan.reader as? GeoJSONReader, let id = reader.idColumn { used.insert(header[id]) }
        return header.filter { !used.contains($0) && !$0.hasPrefix("_error_") && !$0.isEmpty }
    }
}
