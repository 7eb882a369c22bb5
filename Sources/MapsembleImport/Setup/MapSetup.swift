import Foundation

/// From a file to a ready map: `maps create` (a map whose fields, remote field and geocode field
/// come from a pipeline or from `inspect` of a file) and `fields add` / `run --create-fields` (the
/// mapped fields a map lacks). Nothing is ever removed or retyped.
public enum MapSetup {
    /// A pipeline and its text: the file's own, or the one `inspect --emit-config` writes for a
    /// data file (its whole file profiled).
    public struct Source: Sendable {
        public var config: PipelineConfig
        public var text: String
        /// Where the text came from (a pipeline file), nil for one made by `inspect`.
        public var pipelinePath: String?
    }

    /// Reads `path`: a pipeline (`.yml`, `.yaml`), else a data file `inspect` makes one for.
    /// - Parameter readFrom: where a data file at a URL or in a `.zip` was copied to (`LocalCopy`).
    public static func source(_ path: String, environment: [String: String], readFrom: String? = nil) throws -> Source {
        let lower = path.lowercased()
        if lower.hasSuffix(".yml") || lower.hasSuffix(".yaml") {
            let config = try ConfigLoader.load(path: path, environment: environment)
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            return Source(config: config, text: text, pipelinePath: path)
        }
        var options = InspectOptions()
        options.full = true
        options.displayName = readFrom == nil ? nil : RemoteSource.isURL(path) ? RemoteSource.displayName(path) : path
        let report = try Inspector.inspect(path: readFrom ?? path, options: options)
        let text = report.starterPipeline(path: path)
        let config = try ConfigLoader.parse(yaml: text, file: "the pipeline inspect made", environment: environment)
        return Source(config: config, text: text, pipelinePath: nil)
    }

    /// What `maps create` sends and what came back.
    public struct Creation: Sendable {
        /// The request body, pretty-printed JSON.
        public var body: String
        public var fields: [PlannedField]
        public var remoteField: String?
        public var geocodeField: String?
        /// The new map's id and the server's answer (nil for `--dry-run`).
        public var mapID: String?
        public var answer: String?
    }

    /// The map `config` imports into: a field per mapped column (typed from `type:` or from
    /// every value in the file), the remote field (text) when it maps a remote id, the geocode
    /// field with `geocode.provider: mapsemble`, and `geocode.quality_field` (a number).
    public static func create(label: String, config: PipelineConfig, dryRun: Bool) async throws -> Creation {
        let trimmed = label.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw ImportError(.usage, "--label: a map needs a label") }
        try requirePath(config, for: "maps create")
        let plan = try PipelinePlan(config: config)
        let header = plan.reader.header
        var fields = try plannedFields(config.properties.fields, config: config, header: header)
        var slugs = SlugSet(taken: Set(fields.map(\.slug)))
        var remoteField: String?
        if let column = config.properties.remoteID {
            let slug = config.properties.remoteFieldSlug
            guard !slugs.taken.contains(slug) else {
                throw ImportError(
                    .config,
                    "properties.fields.\(slug) uses the remote field's slug; the remote id is sent under it already")
            }
            slugs.taken.insert(slug)
            fields.append(PlannedField(slug: slug, type: "text", label: column, reason: "the remote field"))
            remoteField = slug
        }
        var geocodeField: String?
        if let geocode = config.geocode {
            if geocode.provider == "mapsemble" {
                let slug = slugs.unique("address")
                fields.append(PlannedField(slug: slug, type: "text", label: "Address", reason: "the geocode field"))
                geocodeField = slug
            }
            if let quality = geocode.qualityField, !slugs.taken.contains(quality) {
                slugs.taken.insert(quality)
                fields.append(
                    PlannedField(
                        slug: quality, type: "number", label: "Geocode confidence", reason: "geocode.quality_field"))
            }
        }
        var mapConfig: [String: Any] = [:]
        if let remoteField { mapConfig["remoteField"] = remoteField }
        if let geocodeField { mapConfig["geocodeField"] = geocodeField }
        var body: [String: Any] = [
            "label": trimmed, "published": false,
            "fields": fields.enumerated().map { $1.json(weight: $0) },
        ]
        if !mapConfig.isEmpty { body["config"] = mapConfig }
        var creation = Creation(
            body: prettyJSON(body), fields: fields, remoteField: remoteField, geocodeField: geocodeField)
        guard !dryRun else { return creation }
        let client = try MapsembleAPI.client(config)
        let (map, object) = try await client.writeMap(nil, body: body)
        creation.mapID = map.id
        creation.answer = prettyJSON(object)
        return creation
    }

    /// Types are read from every value, in a pass of their own before the import: standard
    /// input cannot be read twice.
    static func requirePath(_ config: PipelineConfig, for what: String) throws {
        guard config.source.path != "-" else {
            throw ImportError(
                .usage, "\(what) reads the file once to type the fields, before the import: give its path, not -")
        }
    }

    /// The fields for `mapped`, the values of the columns whose type is not stated (and of
    /// stated selects, for their options) read from the whole file.
    static func plannedFields(
        _ mapped: [PipelineConfig.Field], config: PipelineConfig, header: [String]
    ) throws -> [PlannedField] {
        var columns: [Int] = []
        var separators: [Int: String] = [:]
        for field in mapped where !field.typeStated || field.type.hasSuffix("_select") {
            guard let column = header.firstIndex(of: field.column) else {
                throw ImportError(
                    .config,
                    "properties.fields.\(field.slug) names the column \"\(field.column)\", which the header does not have"
                )
            }
            columns.append(column)
            separators[column] = field.separator
        }
        let evidence =
            columns.isEmpty ? [:] : try FieldPlanner.evidence(config: config, columns: columns, separators: separators)
        return FieldPlanner.plan(mapped, header: header, evidence: evidence)
    }

    /// JSON as `--dry-run` and `--json` print it: keys sorted, indented.
    static func prettyJSON(_ object: Any) -> String {
        let data =
            (try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// `--write-pipeline FILE`: the pipeline's text with `target.map_id` set to the new map and
    /// `source.path` naming the input from FILE's folder (kept as written when it uses
    /// `${VAR}`, or when FILE sits beside the pipeline it came from).
    public static func pipelineText(_ source: Source, mapID: String, to path: String) throws -> String {
        var text = try YAMLLines.set("target", "map_id", to: InspectReport.quoted(mapID), in: source.text)
        let sameFolder =
            source.pipelinePath.map {
                URL(fileURLWithPath: $0).standardizedFileURL.deletingLastPathComponent()
                    == URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent()
            } ?? false
        if let input = source.config.source.path, input != "-", !RemoteSource.isURL(input), !sameFolder,
            !source.text.contains("${")
        {
            text = try YAMLLines.set("source", "path", to: InspectReport.quoted(relative(input, from: path)), in: text)
        }
        return text
    }

    /// Writes `pipelineText`.
    public static func writePipeline(_ source: Source, mapID: String, to path: String) throws {
        let text = try pipelineText(source, mapID: mapID, to: path)
        do {
            // Owner-only, as a pipeline may hold a key written out.
            let data = Data(text.utf8)
            guard
                FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600])
            else { throw CocoaError(.fileWriteUnknown) }
        } catch {
            throw ImportError(.output, "cannot write the pipeline: \(error.localizedDescription)", file: path)
        }
    }

    /// `input` as a path from the folder of `file`: relative when it lies in that folder or
    /// below, else absolute.
    static func relative(_ input: String, from file: String) -> String {
        let current = FileManager.default.currentDirectoryPath
        func absolute(_ path: String) -> String {
            URL(fileURLWithPath: path.hasPrefix("/") ? path : current + "/" + path).standardizedFileURL.path
        }
        let folder = URL(fileURLWithPath: absolute(file)).deletingLastPathComponent().path
        let full = absolute(input)
        return full.hasPrefix(folder + "/") ? String(full.dropFirst(folder.count + 1)) : full
    }
}

/// Sets one value in a pipeline's YAML text, keeping every other line (and its comments, line
/// endings and indentation) as it is.
enum YAMLLines {
    /// `section:` then `  key: value` (block style), or `section: { …, key: value }` on one line:
    /// the key's value replaced, or the key added to the section, or the section added at the end.
    static func set(_ section: String, _ key: String, to value: String, in text: String) throws -> String {
        // Split on the scalar: in a String, "\r\n" is one character.
        var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map {
            String(String.UnicodeScalarView($0))
        }
        let crlf = lines.first?.unicodeScalars.last == "\r"
        let ending = crlf ? "\r" : ""
        func content(_ line: String) -> String {
            line.unicodeScalars.last == "\r" ? String(String.UnicodeScalarView(line.unicodeScalars.dropLast())) : line
        }
        guard let start = lines.firstIndex(where: { content($0).hasPrefix(section + ":") }) else {
            if lines.last.map(content) == "" { lines.removeLast() }
            lines += [section + ":" + ending, "  \(key): \(value)" + ending, ""]
            return lines.joined(separator: "\n")
        }
        let rest = content(lines[start]).dropFirst(section.count + 1).trimmingCharacters(in: .whitespaces)
        if rest.hasPrefix("{") {
            guard let flow = setFlow(String(rest), key: key, value: value) else {
                throw ImportError(
                    .config,
                    "cannot set \(section).\(key) in the pipeline: its \(section) section is a flow mapping over several lines; write it as a block (\(section): then one key per line)"
                )
            }
            lines[start] = section + ": " + flow + ending
            return lines.joined(separator: "\n")
        }
        guard rest.isEmpty || rest.hasPrefix("#") else {
            throw ImportError(.config, "cannot set \(section).\(key) in the pipeline: \(section) is not a mapping")
        }
        // The section's lines: indented, blank or comments; the keys at the first child's indent.
        var indent: String?
        var index = start + 1
        while index < lines.count {
            let line = content(lines[index])
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if !trimmed.isEmpty && !line.hasPrefix(" ") && !trimmed.hasPrefix("#") { break }
            if !trimmed.isEmpty && !trimmed.hasPrefix("#") {
                let own = String(line.prefix { $0 == " " })
                if indent == nil { indent = own }
                if own == indent && trimmed.hasPrefix(key + ":") {
                    lines[index] = "\(own)\(key): \(value)" + ending
                    return lines.joined(separator: "\n")
                }
            }
            index += 1
        }
        lines.insert("\(indent ?? "  ")\(key): \(value)" + ending, at: start + 1)
        return lines.joined(separator: "\n")
    }

    /// `{ a: 1, key: old }` with `key` set, or nil when the braces do not close on this line.
    private static func setFlow(_ text: String, key: String, value: String) -> String? {
        // Up to the brace that closes the first; a comment may follow.
        var depth = 0
        var quote: Character?
        var close: String.Index?
        for index in text.indices {
            let character = text[index]
            if let open = quote {
                if character == open { quote = nil }
                continue
            }
            switch character {
            case "\"", "'": quote = character
            case "{", "[": depth += 1
            case "}", "]":
                depth -= 1
                if depth == 0 { close = index }
            default: break
            }
            if close != nil { break }
        }
        guard let close else { return nil }
        let inner = text[text.index(after: text.startIndex)..<close]
        let after = text[text.index(after: close)...]
        // The items, split at the commas between them.
        var items: [String] = []
        var current = ""
        depth = 0
        quote = nil
        for character in inner {
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "{" || character == "[" {
                depth += 1
            } else if character == "}" || character == "]" {
                depth -= 1
            } else if character == "," && depth == 0 {
                items.append(current)
                current = ""
                continue
            }
            current.append(character)
        }
        if !current.trimmingCharacters(in: .whitespaces).isEmpty { items.append(current) }
        let entry = "\(key): \(value)"
        if let found = items.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(key + ":") }) {
            items[found] = " " + entry
        } else {
            items.append(" " + entry)
        }
        let joined = items.map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")
        return "{ " + joined + " }" + after
    }
}

extension MapSetup {
    /// What `fields add` and `run --create-fields` did (or, with `--dry-run`, would do).
    public struct FieldChange: Sendable {
        /// The fields added.
        public var added: [PlannedField] = []
        /// Options added to select fields, by slug (`--add-options`).
        public var options: [String: [String]] = [:]
        /// The `PATCH` body, pretty-printed; empty when nothing was to change.
        public var body = ""
        /// The map as it stands afterwards (as read, for a dry run or when nothing changed).
        public var map: MapInfo
        public var changed: Bool { !added.isEmpty || !options.isEmpty }
    }

    /// The pipeline with its new columns (`SchemaDrift.newColumns`) mapped to fields, slugs made
    /// from their names (unique among the pipeline's slugs and the remote field's).
    public static func mappingNewColumns(_ config: PipelineConfig) throws -> PipelineConfig {
        let plan = try PipelinePlan(config: config)
        var config = config
        var slugs = SlugSet(
            taken: Set(config.properties.fields.map(\.slug) + [config.properties.remoteFieldSlug, "label"]))
        for name in plan.newColumns {
            config.properties.fields.append(
                PipelineConfig.Field(slug: slugs.unique(InspectReport.slug(name)), column: name))
        }
        return config
    }

    /// `fields add MAP_ID --from PIPELINE.yml`: the pipeline's new columns mapped, then the fields
    /// the map lacks added.
    public static func addFields(
        mapID: String, config: PipelineConfig, addOptions: Bool, dryRun: Bool
    ) async throws -> FieldChange {
        let config = try mappingNewColumns(config)
        let client = try MapsembleAPI.client(config)
        return try await ensureFields(
            client: client, mapID: mapID, config: config, addOptions: addOptions, dryRun: dryRun)
    }

    /// The fields `config` maps that map `mapID` lacks, added in one `PATCH` (the map's fields
    /// sent back unchanged, the new ones after them, as the API takes a whole list); with
    /// `addOptions`, the values of select columns that are no option of their field added as
    /// options. A mapped field whose type contradicts the map's (a `number` field for a column of
    /// text) stops before anything is written, naming both.
    static func ensureFields(
        client: MapsembleClient, mapID: String, config: PipelineConfig, addOptions: Bool, dryRun: Bool
    ) async throws -> FieldChange {
        try requirePath(config, for: "--create-fields and fields add")
        let object = try await client.mapObject(mapID)
        let map = MapsembleClient.mapInfo(object, id: mapID)
        var change = FieldChange(map: map)
        let plan = try PipelinePlan(config: config)
        let header = plan.reader.header
        let existing = Dictionary(map.fields.map { ($0.slug, $0) }, uniquingKeysWith: { first, _ in first })
        let missing = config.properties.fields.filter { existing[$0.slug] == nil }
        let selects = config.properties.fields.filter { existing[$0.slug]?.type.hasSuffix("_select") == true }
        // One pass over the file for every mapped column: types, conflicts and options.
        var columns: [Int] = []
        var separators: [Int: String] = [:]
        for field in config.properties.fields {
            guard let column = header.firstIndex(of: field.column) else { continue }
            columns.append(column)
            separators[column] = field.separator
        }
        let evidence = try FieldPlanner.evidence(config: config, columns: columns, separators: separators)
        try checkTypes(config.properties.fields, map: map, header: header, evidence: evidence)
        change.added = FieldPlanner.plan(missing, header: header, evidence: evidence)
        var fields = object["fields"] as? [[String: Any]] ?? []
        if addOptions {
            for field in selects {
                guard let index = fields.firstIndex(where: { $0["slug"] as? String == field.slug }),
                    let known = existing[field.slug], let column = header.firstIndex(of: field.column)
                else { continue }
                let values =
                    (known.type == "single_select" ? evidence[column]?.distinct : evidence[column]?.parts) ?? []
                let taken = Set(known.options.flatMap { [$0.key.lowercased(), $0.label.lowercased()] })
                let fresh = values.filter { !taken.contains($0.lowercased()) }
                guard !fresh.isEmpty else { continue }
                var config = fields[index]["config"] as? [String: Any] ?? [:]
                var options = config["options"] as? [[String: Any]] ?? []
                let keys = FieldPlanner.options(known.options.map(\.key) + fresh).dropFirst(known.options.count)
                for option in keys {
                    options.append(["key": option.key, "label": option.label, "weight": options.count])
                }
                config["options"] = options
                fields[index]["config"] = config
                change.options[field.slug] = fresh
            }
        }
        guard change.changed else { return change }
        // The list goes back whole: a select whose options the answer left out would lose them.
        if let blind = fields.first(where: {
            ($0["type"] as? String)?.hasSuffix("_select") == true
                && ($0["config"] as? [String: Any])?["options"] == nil
        }) {
            throw ImportError(
                .remote,
                "map \(mapID)'s select field \"\(blind["slug"] as? String ?? "")\" came without its options, and fields are sent back as a whole list: adding fields now could drop them; add the fields in Mapsemble's editor"
            )
        }
        let start = fields.count
        fields += change.added.enumerated().map { $1.json(weight: start + $0) }
        let body: [String: Any] = ["fields": fields]
        change.body = prettyJSON(body)
        guard !dryRun else { return change }
        _ = try await client.writeMap(mapID, body: body)
        // The map as it stands now, read again rather than taken from the answer.
        change.map = try await client.map(mapID)
        return change
    }

    /// A mapped field against the map's field of that slug: a stated type must be the map's
    /// (`text` and `multiline_text` go together), and a `number` or `date` field's column must
    /// hold mostly numbers or dates.
    static func checkTypes(
        _ mapped: [PipelineConfig.Field], map: MapInfo, header: [String], evidence: [Int: ColumnEvidence]
    ) throws {
        let texts: Set<String> = ["text", "multiline_text"]
        for field in mapped {
            guard let existing = map.fields.first(where: { $0.slug == field.slug }) else { continue }
            if field.typeStated && field.type != existing.type
                && !(texts.contains(field.type) && texts.contains(existing.type))
            {
                throw ImportError(
                    .config,
                    "properties.fields.\(field.slug) has type: \(field.type), but map \(map.id)'s field \"\(field.slug)\" is a \(existing.type) field; fields are never retyped: change the type in pipeline.yml, or map the column to another slug"
                )
            }
            guard let column = header.firstIndex(of: field.column), let found = evidence[column], found.filled > 0
            else {
                continue
            }
            // What the import would read as the field's type, by its own rules (date formats
            // stated in pipeline.yml are left to the import).
            let fitting: Int
            switch existing.type {
            case "number": fitting = found.numbers + found.otherNumbers
            case "date" where field.formats.isEmpty: fitting = found.dates
            default: continue
            }
            guard fitting * 2 < found.filled else { continue }
            throw ImportError(
                .config,
                "properties.fields.\(field.slug): map \(map.id)'s field \"\(field.slug)\" is a \(existing.type) field, but \(found.filled - fitting) of the \(found.filled) values of the column \"\(field.column)\" are not \(existing.type == "number" ? "numbers" : "ISO 8601 dates"); fields are never retyped: map the column to another slug"
            )
        }
    }
}
