import MapsembleJSON
import MapsembleMapView

/// The API's rules for a feature's geometry (spec/mapsemble-api.md, "Geometry"): `Point`,
/// `LineString`, `Polygon` and their `Multi` forms; positions `[longitude, latitude]` in range;
/// lines of 2 positions or more; rings closed, of 4 positions or more. `GeometryCollection` is
/// not taken.
enum SandboxGeometry {
    /// Why the geometry is refused, as the `422` says it; nil when it is taken.
    static func problem(_ geometry: JSONValue?) -> String? {
        guard let geometry, case .object = geometry else { return "The geometry must be a GeoJSON geometry object." }
        guard let type = geometry["type"]?.string else { return "The geometry must have a type." }
        if type == "GeometryCollection" { return "The geometry type GeometryCollection is not supported." }
        guard let coordinates = geometry["coordinates"] else { return "The geometry must have coordinates." }
        switch type {
        case "Point": return position(coordinates)
        case "MultiPoint": return each(coordinates, position)
        case "LineString": return line(coordinates)
        case "MultiLineString": return each(coordinates, line)
        case "Polygon": return polygon(coordinates)
        case "MultiPolygon": return each(coordinates, polygon)
        default: return "The geometry type \(type) is invalid."
        }
    }

    /// A line's or polygon's paths, for the viewer; nil for points.
    static func outline(_ geometry: JSONValue) -> MapOutline? {
        func path(_ value: JSONValue) -> [Double] {
            (value.array ?? []).flatMap { position in
                let numbers = position.array ?? []
                return numbers.count >= 2 ? [numbers[0].number ?? 0, numbers[1].number ?? 0] : []
            }
        }
        let coordinates = geometry["coordinates"] ?? .null
        switch geometry["type"]?.string {
        case "LineString": return MapOutline(paths: [path(coordinates)], filled: false)
        case "MultiLineString": return MapOutline(paths: (coordinates.array ?? []).map(path), filled: false)
        case "Polygon": return MapOutline(paths: (coordinates.array ?? []).map(path), filled: true)
        case "MultiPolygon":
            return MapOutline(paths: (coordinates.array ?? []).flatMap { ($0.array ?? []).map(path) }, filled: true)
        default: return nil
        }
    }

    /// The first position of a geometry the API takes.
    static func firstPosition(_ geometry: JSONValue) -> (Double, Double)? {
        var value = geometry["coordinates"]
        while let array = value?.array {
            if let x = array.first?.number, array.count >= 2, let y = array[1].number { return (x, y) }
            value = array.first
        }
        return nil
    }

    private static func each(_ value: JSONValue, _ check: (JSONValue) -> String?) -> String? {
        guard let items = value.array, !items.isEmpty else {
            return "The geometry's coordinates must be a non-empty array."
        }
        for item in items {
            if let problem = check(item) { return problem }
        }
        return nil
    }

    private static func position(_ value: JSONValue) -> String? {
        guard let numbers = value.array, numbers.count == 2 || numbers.count == 3,
            let longitude = numbers[0].number, let latitude = numbers[1].number
        else { return "Each position must be [longitude, latitude]." }
        guard abs(longitude) <= 180, abs(latitude) <= 90 else {
            return "The position [\(longitude), \(latitude)] is out of range."
        }
        return nil
    }

    private static func line(_ value: JSONValue) -> String? {
        guard let positions = value.array, positions.count >= 2 else {
            return "A line must have at least 2 positions."
        }
        return each(value, position)
    }

    private static func polygon(_ value: JSONValue) -> String? {
        each(value) { ring in
            guard let positions = ring.array, positions.count >= 4 else {
                return "A polygon ring must have at least 4 positions."
            }
            if let problem = each(ring, position) { return problem }
            guard positions.first == positions.last else { return "A polygon ring must be closed." }
            return nil
        }
    }
}
