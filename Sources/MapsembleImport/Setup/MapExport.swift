import Foundation
import MapsembleJSON

/// `maps export`: every feature of a map, page by page through the listing, streamed to a GeoJSON
/// FeatureCollection or a CSV that re-imports with the pipeline `inspect --emit-config` makes for it.
/// Memory is one page whatever the map's size.
public enum MapExport {
    public enum Format: String, Sendable, CaseIterable {
        case geojson
        case csv
    }

    public struct Outcome: Sendable {
        public var features = 0
        public var pages = 0
    }

    /// The format an output path asks for: `.csv` is CSV, anything else GeoJSON.
    public static func format(for output: String) -> Format {
        output.lowercased().hasSuffix(".csv") ? .csv : .geojson
    }

    /// Exports map `mapID` to `output` (a path, or `-` for standard output); a file is written
    /// under a temporary name and renamed into place once complete.
    public static func export(
        mapID: String, config: PipelineConfig, format: Format, output: String,
        log: (@Sendable (RunEvent) -> Void)? = nil
    ) async throws -> Outcome {
        let client = try MapsembleAPI.client(config)
        let map = try await client.map(mapID)
        let writer = try ByteWriter(path: output)
        var outcome = Outcome()
        var csv = format == .csv ? CSVLayout(map: map) : nil
        if format == .geojson { try writer.write("{\"type\":\"FeatureCollection\",\"features\":[\n") }
        outcome.pages = try await client.forEachPage(mapID: mapID, log: log) { features, page in
            if csv != nil && page == 1 { try csv?.begin(features, writer) }
            for feature in features {
                if csv != nil {
                    try csv?.write(feature, writer, page: page)
                } else {
                    try writer.write((outcome.features > 0 ? ",\n" : "") + feature.text)
                }
                outcome.features += 1
            }
        }
        if format == .geojson { try writer.write("\n]}\n") }
        try writer.close()
        return outcome
    }

    /// The CSV's columns: `label`, the remote id (under its slug), each field under its label, then `lon` and
    /// `lat` for a map of points or `wkt` for one with other geometries (the first page decides).
    struct CSVLayout {
        var map: MapInfo
        var slugs: [String] = []
        var points = true
        var line: [UInt8] = []

        init(map: MapInfo) {
            self.map = map
            // The remote field first, then the others in the map's order.
            let remote = map.remoteField.flatMap { slug in map.fields.first { $0.slug == slug } }
            slugs = (remote.map { [$0.slug] } ?? []) + map.fields.map(\.slug).filter { $0 != map.remoteField }
        }

        mutating func begin(_ features: [JSONValue], _ writer: ByteWriter) throws {
            points = features.allSatisfy { feature in
                let type = feature["geometry"]?["type"]?.string
                return type == nil || type == "Point"
            }
            var header = ["label"]
            // The names the other columns take are no field's.
            var used: Set<String> = ["label", "lon", "lat", "wkt"]
            for slug in slugs {
                // The remote id under its slug (`remote_id`, `store_id`): a name `inspect` takes
                // for an id; the other fields under their labels.
                var name = slug == map.remoteField ? slug : map.fields.first { $0.slug == slug }?.label ?? slug
                if name.isEmpty { name = slug }
                let base = name
                var number = 2
                while !used.insert(name.lowercased()).inserted {
                    name = "\(base) (\(number))"
                    number += 1
                }
                header.append(name)
            }
            header += points ? ["lon", "lat"] : ["wkt"]
            try writer.write(RejectedRowsWriter.encode(header, delimiter: UInt8(ascii: ","), into: &line))
        }

        mutating func write(_ feature: JSONValue, _ writer: ByteWriter, page: Int) throws {
            let properties = feature["properties"]
            var cells = [Self.cell(properties?["label"])]
            for slug in slugs { cells.append(Self.cell(properties?[slug])) }
            let geometry = feature["geometry"].flatMap { $0 == .null ? nil : $0 }
            if points {
                guard geometry == nil || geometry?["type"]?.string == "Point" else {
                    throw ImportError(
                        .remote,
                        "map \(map.id) holds a \(geometry?["type"]?.string ?? "geometry") on page \(page) after a first page of points only, so the CSV has lon and lat columns: export it with --format geojson"
                    )
                }
                let position = geometry?["coordinates"]?.array
                cells += [Self.cell(position?.first), Self.cell(position.flatMap { $0.count > 1 ? $0[1] : nil })]
            } else {
                cells.append(geometry.map(WKTText.text) ?? "")
            }
            try writer.write(RejectedRowsWriter.encode(cells, delimiter: UInt8(ascii: ","), into: &line))
        }

        /// A property as a cell: text as it is, numbers as JSON writes them, a multi_select's
        /// values joined with `, `, anything else as JSON text, null empty.
        static func cell(_ value: JSONValue?) -> String {
            switch value {
            case nil, .null: ""
            case .string(let text): text
            case .array(let items) where items.allSatisfy({ $0.string != nil }):
                items.compactMap(\.string).joined(separator: ", ")
            case .some(let other): other.text
            }
        }
    }
}

/// GeoJSON geometries as WKT (`POINT (2.35 48.85)`), the numbers in their shortest exact form.
enum WKTText {
    static func text(_ geometry: JSONValue) -> String {
        var out: [UInt8] = []
        write(geometry, &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func write(_ geometry: JSONValue, _ out: inout [UInt8]) {
        let type = geometry["type"]?.string ?? ""
        let coordinates = geometry["coordinates"] ?? .null
        out += Array(type.uppercased().utf8)
        out += Array(" ".utf8)
        switch type {
        case "Point": list([coordinates], &out, position)
        case "LineString", "MultiPoint": list(coordinates.array ?? [], &out, position)
        case "Polygon", "MultiLineString":
            list(coordinates.array ?? [], &out) { ring, out in list(ring.array ?? [], &out, position) }
        case "MultiPolygon":
            list(coordinates.array ?? [], &out) { polygon, out in
                list(polygon.array ?? [], &out) { ring, out in list(ring.array ?? [], &out, position) }
            }
        default: out += Array("EMPTY".utf8)
        }
    }

    private static func list(_ items: [JSONValue], _ out: inout [UInt8], _ member: (JSONValue, inout [UInt8]) -> Void) {
        guard !items.isEmpty else {
            out += Array("EMPTY".utf8)
            return
        }
        out.append(UInt8(ascii: "("))
        for (index, item) in items.enumerated() {
            if index > 0 { out += Array(", ".utf8) }
            member(item, &out)
        }
        out.append(UInt8(ascii: ")"))
    }

    private static func position(_ value: JSONValue, _ out: inout [UInt8]) {
        let numbers = (value.array ?? []).prefix(2).map { $0.number ?? 0 }
        for (index, number) in numbers.enumerated() {
            if index > 0 { out.append(0x20) }
            CoordinateText.appendShortest(number, to: &out)
        }
    }
}
