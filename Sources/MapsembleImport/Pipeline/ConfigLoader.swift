import Foundation
import Yams

/// Reads pipeline.yml into a `PipelineConfig`.
///
/// Every key is checked before use: an unknown key or a value of the wrong type is an error that
/// names the key and its line. `${VAR}` and `${VAR:-default}` in values expand from the
/// environment (`$$` is a literal `$`). Relative paths are resolved against the file's folder.
public enum ConfigLoader {
    /// Loads and checks the pipeline file at `path`.
    public static func load(path: String, environment: [String: String]) throws -> PipelineConfig {
        let text: String
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > maxFileBytes {
            throw ImportError(
                .config,
                "the pipeline file is \(size) bytes, more than the \(maxFileBytes) a pipeline may have (they take a few kB)",
                file: path)
        }
        do {
            text = try String(contentsOfFile: path)
        } catch {
            throw ImportError(.config, "cannot read the pipeline file", file: path)
        }
        return try parse(yaml: text, file: path, environment: environment, baseDirectory: directory(of: path))
    }

    /// The largest pipeline file read: a pipeline takes a few kB, and YAML's aliases can make a
    /// small file stand for a huge document (the loader also stops at the first value of the
    /// wrong shape, so an expanded alias is never walked).
    static let maxFileBytes = 1 << 20

    /// Parses pipeline YAML text; `file` names it in errors.
    public static func parse(
        yaml: String, file: String, environment: [String: String], baseDirectory: String = ""
    ) throws -> PipelineConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw ImportError(.config, "is not valid YAML: \(describe(error))", file: file)
        } catch {
            throw ImportError(.config, "is not valid YAML", file: file)
        }
        var config = PipelineConfig()
        guard let root else { return config }
        let reader = NodeReader(file: file, environment: environment)
        try reader.read(root, into: &config)
        if !baseDirectory.isEmpty && baseDirectory != "." {
            if let path = config.source.path, path != "-", !path.hasPrefix("/"), !RemoteSource.isURL(path) {
                config.source.path = baseDirectory + "/" + path
            }
            if !config.report.dir.hasPrefix("/") { config.report.dir = baseDirectory + "/" + config.report.dir }
            if let path = config.source.caFile, !path.hasPrefix("/") {
                config.source.caFile = baseDirectory + "/" + path
            }
            for key in [\PipelineConfig.Geocode.gazetteer, \.cache] {
                if let path = config.geocode?[keyPath: key], !path.isEmpty, !path.hasPrefix("/") {
                    config.geocode?[keyPath: key] = baseDirectory + "/" + path
                }
            }
        }
        return config
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            return "line \(mark.line), column \(mark.column): \(problem)\(context.map { " \($0.text)" } ?? "")"
        default:
            return "\(error)".split(separator: "\n").first.map(String.init) ?? "syntax error"
        }
    }

    /// Expands `${VAR}`, `${VAR:-default}` and `$$` in `text`. Unset variables expand to "".
    public static func expand(_ text: String, environment: [String: String]) -> String? {
        guard text.contains("$") else { return text }
        var result = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            result += rest[..<dollar]
            let after = rest[rest.index(after: dollar)...]
            if after.hasPrefix("$") {
                result += "$"
                rest = after.dropFirst()
            } else if after.hasPrefix("{") {
                guard let close = after.firstIndex(of: "}") else { return nil }
                let body = after[after.index(after: after.startIndex)..<close]
                if let separator = body.range(of: ":-") {
                    let name = String(body[..<separator.lowerBound])
                    let value = environment[name] ?? ""
                    result += value.isEmpty ? String(body[separator.upperBound...]) : value
                } else {
                    result += environment[String(body)] ?? ""
                }
                rest = after[after.index(after: close)...]
            } else {
                result += "$"
                rest = after
            }
        }
        return result + rest
    }
}

/// Walks the YAML node tree, one method per section.
private struct NodeReader {
    let file: String
    let environment: [String: String]

    func error(_ node: Node, _ message: String) -> ImportError {
        ImportError(.config, message, file: file, line: node.mark?.line)
    }

    /// The entries of a mapping, each key checked against `allowed`.
    func entries(_ node: Node, _ path: String, allowed: [String]) throws -> [(String, Node)] {
        guard case .mapping(let mapping) = node else {
            throw error(node, "\(path.isEmpty ? "the file" : "key \"\(path)\"") must be a mapping of keys to values")
        }
        var result: [(String, Node)] = []
        var seen = Set<String>()
        for (keyNode, value) in mapping {
            guard case .scalar(let key) = keyNode else { throw error(keyNode, "keys must be plain words") }
            let name = key.string
            let full = path.isEmpty ? name : "\(path).\(name)"
            if !allowed.contains(name) {
                throw error(keyNode, "unknown key \"\(full)\"; expected one of: \(allowed.joined(separator: ", "))")
            }
            if !seen.insert(name).inserted { throw error(keyNode, "key \"\(full)\" is given twice") }
            result.append((name, value))
        }
        return result
    }

    /// A scalar as text after `${VAR}` expansion; nil for YAML null.
    func string(_ node: Node, _ path: String) throws -> String? {
        guard case .scalar(let scalar) = node else { throw error(node, "key \"\(path)\" must be a single value") }
        if scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string) { return nil }
        guard let expanded = ConfigLoader.expand(scalar.string, environment: environment) else {
            throw error(node, "key \"\(path)\" has a \"${\" without its closing \"}\"")
        }
        return expanded
    }

    func requiredString(_ node: Node, _ path: String) throws -> String {
        guard let value = try string(node, path) else { throw error(node, "key \"\(path)\" must not be empty") }
        return value
    }

    func int(_ node: Node, _ path: String, in range: ClosedRange<Int>) throws -> Int {
        let text = try requiredString(node, path)
        guard let value = Int(text.trimmingSpaces), range.contains(value) else {
            throw error(
                node,
                "key \"\(path)\" must be a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(text)\""
            )
        }
        return value
    }

    func double(_ node: Node, _ path: String) throws -> Double {
        let text = try requiredString(node, path)
        guard let value = Double(text.trimmingSpaces), value.isFinite else {
            throw error(node, "key \"\(path)\" must be a number, got \"\(text)\"")
        }
        return value
    }

    func choice<T: RawRepresentable & CaseIterable>(_ node: Node, _ path: String, _: T.Type) throws -> T
    where T.RawValue == String {
        let text = try requiredString(node, path)
        guard let value = T(rawValue: text) else {
            let names = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw error(node, "key \"\(path)\" must be one of \(names), got \"\(text)\"")
        }
        return value
    }

    func oneOf(_ node: Node, _ path: String, _ allowed: [String]) throws -> String {
        let text = try requiredString(node, path)
        guard allowed.contains(text) else {
            throw error(node, "key \"\(path)\" must be one of \(allowed.joined(separator: ", ")), got \"\(text)\"")
        }
        return text
    }

    func threshold(_ node: Node, _ path: String) throws -> PipelineConfig.Threshold {
        let text = try requiredString(node, path)
        guard let value = PipelineConfig.Threshold(parsing: text) else {
            throw error(node, "key \"\(path)\" must be a count such as 100 or a share such as \"5%\", got \"\(text)\"")
        }
        return value
    }

    func read(_ root: Node, into config: inout PipelineConfig) throws {
        let sections = [
            "version", "source", "target", "coordinates", "properties", "upload", "report", "sync", "geocode",
            "notify",
        ]
        for (key, value) in try entries(root, "", allowed: sections) {
            switch key {
            case "version": config.version = try int(value, key, in: 1...1)
            case "source": try readSource(value, &config.source)
            case "target": try readTarget(value, &config.target)
            case "coordinates": try readCoordinates(value, &config.coordinates)
            case "properties": try readProperties(value, &config.properties)
            case "upload": try readUpload(value, &config.upload)
            case "report": try readReport(value, &config.report)
            case "geocode":
                var geocode = PipelineConfig.Geocode()
                try readGeocode(value, &geocode)
                config.geocode = geocode
            case "notify": config.notify = try readNotify(value)
            default: try readSync(value, &config.sync)
            }
        }
    }

    func readSource(_ node: Node, _ source: inout PipelineConfig.Source) throws {
        let keys = [
            "path", "format", "delimiter", "encoding", "header", "quote", "decimal", "sheet", "max_record_bytes",
            "max_columns", "headers", "ca_file", "member",
        ]
        for (key, value) in try entries(node, "source", allowed: keys) {
            let path = "source.\(key)"
            switch key {
            case "path": source.path = try string(value, path)
            case "format":
                source.format = try oneOf(value, path, ["auto", "csv", "xlsx", "ods", "xls", "geojson", "geojsonseq"])
            case "headers":
                // Any header name: the values come from the environment and are never shown.
                guard case .mapping(let mapping) = value else {
                    throw error(value, "key \"\(path)\" must be a mapping of header names to values")
                }
                for (nameNode, headerValue) in mapping {
                    guard case .scalar(let name) = nameNode else { throw error(nameNode, "keys must be plain words") }
                    source.headers[name.string] = try string(headerValue, "\(path).\(name.string)") ?? ""
                }
            case "ca_file": source.caFile = try string(value, path)
            case "member": source.member = try string(value, path)
            case "delimiter":
                let text = try requiredString(value, path)
                let named = ["tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"][text] ?? text
                guard ["auto", ",", ";", "\t", "|"].contains(named) else {
                    throw error(value, "key \"\(path)\" must be auto, \",\", \";\", tab or \"|\", got \"\(text)\"")
                }
                source.delimiter = named
            case "encoding": source.encoding = try requiredString(value, path)
            case "header":
                let text = try requiredString(value, path).lowercased()
                let normalised = ["yes": "true", "no": "false", "on": "true", "off": "false"][text] ?? text
                guard ["auto", "true", "false"].contains(normalised) || (Int(normalised) ?? 0) >= 1 else {
                    throw error(
                        value,
                        "key \"\(path)\" must be auto, true, false, or for a workbook the row number of its header, got \"\(text)\""
                    )
                }
                source.header = normalised
            case "quote":
                let text = try string(value, path) ?? "none"
                guard text == "none" || (text.utf8.count == 1 && text.utf8.first! < 0x80) else {
                    throw error(value, "key \"\(path)\" must be one ASCII character or none, got \"\(text)\"")
                }
                source.quote = text
            case "decimal": source.decimal = try oneOf(value, path, ["auto", "point", "comma"])
            case "max_record_bytes": source.maxRecordBytes = try int(value, path, in: 1024...(1 << 30))
            case "max_columns": source.maxColumns = try int(value, path, in: 1...1_000_000)
            default: source.sheet = try string(value, path)
            }
        }
    }

    func readTarget(_ node: Node, _ target: inout PipelineConfig.Target) throws {
        for (key, value) in try entries(node, "target", allowed: ["api_url", "api_key", "map_id", "mode"]) {
            let path = "target.\(key)"
            switch key {
            case "api_url": target.apiURL = try requiredString(value, path)
            case "api_key": target.apiKey = try string(value, path).flatMap { $0.isEmpty ? nil : $0 }
            case "map_id": target.mapID = try string(value, path).flatMap { $0.isEmpty ? nil : $0 }
            default: target.mode = try choice(value, path, PipelineConfig.Mode.self)
            }
        }
    }

    func readCoordinates(_ node: Node, _ coordinates: inout PipelineConfig.Coordinates) throws {
        let keys = [
            "longitude", "latitude", "point", "swapped", "bounds", "allow_null_island", "crs", "geometry", "make_valid",
            "simplify_m", "max_vertices",
        ]
        for (key, value) in try entries(node, "coordinates", allowed: keys) {
            let path = "coordinates.\(key)"
            switch key {
            case "longitude": coordinates.longitude = try string(value, path)
            case "latitude": coordinates.latitude = try string(value, path)
            case "point": coordinates.point = try string(value, path)
            case "swapped": coordinates.swapped = try choice(value, path, PipelineConfig.SwappedPolicy.self)
            case "allow_null_island": coordinates.allowNullIsland = try oneOf(value, path, ["true", "false"]) == "true"
            case "crs": coordinates.crs = try string(value, path).flatMap { $0.isEmpty ? nil : $0 }
            case "geometry": coordinates.geometry = try string(value, path).flatMap { $0.isEmpty ? nil : $0 }
            case "make_valid": coordinates.makeValid = try oneOf(value, path, ["true", "false"]) == "true"
            case "simplify_m":
                let metres = try double(value, path)
                guard metres >= 0 else { throw error(value, "key \"\(path)\" must be 0 or more metres") }
                coordinates.simplifyMetres = metres
            case "max_vertices": coordinates.maxVertices = try int(value, path, in: 1...100_000_000)
            default:
                if case .scalar = value, try string(value, path) == nil {
                    coordinates.bounds = nil
                    continue
                }
                guard case .sequence(let items) = value, items.count == 4 else {
                    throw error(value, "key \"\(path)\" must be [min_lon, min_lat, max_lon, max_lat]")
                }
                var bounds: [Double] = []
                for item in items { bounds.append(try double(item, path)) }
                guard bounds[0] <= bounds[2], bounds[1] <= bounds[3], bounds[0] >= -180, bounds[2] <= 180,
                    bounds[1] >= -90, bounds[3] <= 90
                else {
                    throw error(
                        value,
                        "key \"\(path)\" must be [min_lon, min_lat, max_lon, max_lat] within -180..180 and -90..90")
                }
                coordinates.bounds = bounds
            }
        }
    }

    func readProperties(_ node: Node, _ properties: inout PipelineConfig.Properties) throws {
        let keys = ["label", "remote_id", "remote_field", "fields"]
        for (key, value) in try entries(node, "properties", allowed: keys) {
            let path = "properties.\(key)"
            switch key {
            case "label": properties.label = try string(value, path)
            case "remote_id": properties.remoteID = try string(value, path)
            case "remote_field":
                let slug = try requiredString(value, path)
                guard isSlug(slug) else {
                    throw error(
                        value, "key \"\(path)\" must be a field slug made of a-z, 0-9, _ and -, got \"\(slug)\"")
                }
                properties.remoteField = slug
            default:
                if case .scalar = value, try string(value, path) == nil { continue }
                properties.fields = try readFields(value)
            }
        }
    }

    func readFields(_ node: Node) throws -> [PipelineConfig.Field] {
        guard case .mapping(let mapping) = node else {
            throw error(node, "key \"properties.fields\" must map field slugs to columns")
        }
        var fields: [PipelineConfig.Field] = []
        for (keyNode, value) in mapping {
            guard case .scalar(let key) = keyNode, isSlug(key.string) else {
                throw error(
                    keyNode,
                    "field slug \"\(keyNode.string ?? "")\" under \"properties.fields\" must be made of a-z, 0-9, _ and -"
                )
            }
            let slug = key.string
            let path = "properties.fields.\(slug)"
            if fields.contains(where: { $0.slug == slug }) { throw error(keyNode, "key \"\(path)\" is given twice") }
            if slug == "label" {
                throw error(keyNode, "\"label\" is built in: set it with \"properties.label\", not as a field")
            }
            var field = PipelineConfig.Field(slug: slug, column: slug)
            if case .mapping = value {
                var column: String?
                for (entry, entryValue) in try entries(
                    value, path, allowed: ["column", "type", "formats", "separator"])
                {
                    switch entry {
                    case "column": column = try requiredString(entryValue, "\(path).column")
                    case "type":
                        field.type = try oneOf(entryValue, "\(path).type", fieldTypes)
                        field.typeStated = true
                    case "separator": field.separator = try requiredString(entryValue, "\(path).separator")
                    default:
                        if case .sequence(let items) = entryValue {
                            field.formats = try items.map { try requiredString($0, "\(path).formats") }
                        } else {
                            field.formats = [try requiredString(entryValue, "\(path).formats")]
                        }
                    }
                }
                field.column = column ?? slug
            } else {
                field.column = try requiredString(value, path)
            }
            fields.append(field)
        }
        return fields
    }

    func readGeocode(_ node: Node, _ geocode: inout PipelineConfig.Geocode) throws {
        let parts = ["street", "postcode", "city", "state", "country"]
        let keys =
            ["address", "provider", "url", "api_key", "user_agent", "when", "country_codes", "min_confidence"]
            + ["rate_limit", "concurrency", "timeout_s", "max_retries", "cache", "max_age_days", "gazetteer"]
            + ["quality_field"] + parts
        for (key, value) in try entries(node, "geocode", allowed: keys) {
            let path = "geocode.\(key)"
            switch key {
            case "address": geocode.address = try string(value, path)
            case "provider":
                geocode.provider = try oneOf(
                    value, path, ["mapsemble", "nominatim", "photon", "pelias", "gazetteer"])
            case "url": geocode.url = try string(value, path)
            case "api_key": geocode.apiKey = try string(value, path).flatMap { $0.isEmpty ? nil : $0 }
            case "user_agent": geocode.userAgent = try string(value, path)
            case "when": geocode.when = try choice(value, path, PipelineConfig.Geocode.When.self)
            case "country_codes":
                guard case .sequence(let items) = value else {
                    throw error(value, "key \"\(path)\" must be a list of two-letter country codes such as [de, at]")
                }
                geocode.countryCodes = try items.map { item in
                    let code = try requiredString(item, path).lowercased()
                    guard code.count == 2, code.allSatisfy({ $0 >= "a" && $0 <= "z" }) else {
                        throw error(item, "key \"\(path)\" holds \"\(code)\", not a two-letter country code such as de")
                    }
                    return code
                }
            case "min_confidence":
                let share = try double(value, path)
                guard (0...1).contains(share) else { throw error(value, "key \"\(path)\" must be between 0 and 1") }
                geocode.minConfidence = share
            case "rate_limit":
                let rate = try double(value, path)
                guard rate > 0 else { throw error(value, "key \"\(path)\" must be more than 0 requests per second") }
                geocode.rateLimit = rate
            case "concurrency": geocode.concurrency = try int(value, path, in: 1...64)
            case "timeout_s":
                let seconds = try double(value, path)
                guard seconds > 0 else { throw error(value, "key \"\(path)\" must be more than 0 seconds") }
                geocode.timeoutSeconds = seconds
            case "max_retries": geocode.maxRetries = try int(value, path, in: 0...100)
            case "cache": geocode.cache = try string(value, path)
            case "gazetteer": geocode.gazetteer = try string(value, path)
            case "quality_field": geocode.qualityField = try string(value, path)
            case "max_age_days":
                let days = try double(value, path)
                guard days >= 0 else { throw error(value, "key \"\(path)\" must be 0 or more days") }
                geocode.maxAgeDays = days
            default: geocode.parts[key] = try requiredString(value, path)
            }
        }
    }

    func readUpload(_ node: Node, _ upload: inout PipelineConfig.Upload) throws {
        let keys = ["batch_size", "concurrency", "max_retries", "timeout_s", "max_body_bytes"]
        for (key, value) in try entries(node, "upload", allowed: keys) {
            let path = "upload.\(key)"
            switch key {
            case "batch_size": upload.batchSize = try int(value, path, in: 1...1000)
            case "concurrency": upload.concurrency = try int(value, path, in: 1...64)
            case "max_retries": upload.maxRetries = try int(value, path, in: 0...100)
            case "timeout_s":
                let seconds = try double(value, path)
                guard seconds > 0 else { throw error(value, "key \"\(path)\" must be more than 0 seconds") }
                upload.timeoutSeconds = seconds
            default: upload.maxBodyBytes = try int(value, path, in: 1024...(256 << 20))
            }
        }
    }

    func readReport(_ node: Node, _ report: inout PipelineConfig.Report) throws {
        let keys = ["dir", "max_rejects", "html", "spreadsheet_safe", "undo"]
        for (key, value) in try entries(node, "report", allowed: keys) {
            if key == "undo" {
                report.undo = try oneOf(value, "report.undo", ["true", "false"]) == "true"
            } else if key == "dir" {
                report.dir = try requiredString(value, "report.dir")
            } else if key == "spreadsheet_safe" {
                report.spreadsheetSafe = try oneOf(value, "report.spreadsheet_safe", ["true", "false"]) == "true"
            } else if key == "html" {
                report.html = try oneOf(value, "report.html", ["true", "false"]) == "true"
            } else if try string(value, "report.max_rejects") != nil {
                report.maxRejects = try threshold(value, "report.max_rejects")
            }
        }
    }

    func readNotify(_ node: Node) throws -> PipelineConfig.Notify {
        var notify = PipelineConfig.Notify(webhook: "")
        for (key, value) in try entries(
            node, "notify", allowed: ["webhook", "on", "format", "timeout_s", "max_retries"])
        {
            let path = "notify.\(key)"
            switch key {
            case "webhook":
                notify.webhook = try requiredString(value, path)
                guard !notify.webhook.isEmpty else {
                    throw error(value, "key \"\(path)\" is empty: is the environment variable it names set?")
                }
                guard notify.webhook.hasPrefix("https://") || notify.webhook.hasPrefix("http://") else {
                    // The value may be a secret: not quoted back.
                    throw error(value, "key \"\(path)\" must be an http:// or https:// URL")
                }
            case "on": notify.on = try choice(value, path, PipelineConfig.Notify.When.self)
            case "format": notify.format = try choice(value, path, PipelineConfig.Notify.Format.self)
            case "timeout_s":
                let seconds = try double(value, path)
                guard seconds > 0 else { throw error(value, "key \"\(path)\" must be more than 0 seconds") }
                notify.timeoutSeconds = seconds
            default: notify.maxRetries = try int(value, path, in: 0...20)
            }
        }
        guard !notify.webhook.isEmpty else {
            throw error(node, "key \"notify.webhook\" is missing: the URL to POST to")
        }
        return notify
    }

    func readSync(_ node: Node, _ sync: inout PipelineConfig.Sync) throws {
        for (_, value) in try entries(node, "sync", allowed: ["max_delete"]) {
            sync.maxDelete = try threshold(value, "sync.max_delete")
        }
    }
}

/// The Mapsemble field types a mapping may name.
let fieldTypes = ["text", "multiline_text", "number", "date", "image", "single_select", "multi_select"]

/// Whether `text` is a Mapsemble field slug: `[a-z0-9_-]+`.
func isSlug(_ text: String) -> Bool {
    !text.isEmpty
        && text.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2D }
}
