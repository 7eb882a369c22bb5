import Foundation
import MapsembleMapView

extension InspectReport {
    /// Records `inspect --html` keeps to draw (of those it profiles).
    public static let drawnRecords = 20_000

    /// `inspect --html`: a page for a file before it is imported. The map shows where the
    /// coordinate columns `inspect` found would put the rows it read and, when they look swapped,
    /// where the rows would land read the other way round; below it, the columns' profile.
    public var html: String {
        var layers: [MapLayer] = []
        var caption = "Web Mercator. "
        var headline = ""
        if let guess = coordinates {
            var validator = Validator(
                longitudeColumn: guess.longitude, latitudeColumn: guess.latitude, pointColumn: guess.point,
                header: columns.map(\.name), decimalSeparator: decimalComma ? UInt8(ascii: ",") : UInt8(ascii: "."),
                alternateSeparator: decimalComma ? nil : UInt8(ascii: ","))
            validator.geometryColumn = guess.geometry
            // A geometry column's lines and polygons, drawn whole.
            var outlines: [MapOutline] = []
            var stated: [MapPoint] = []
            var other: [MapPoint] = []
            var unreadable = 0
            var offEarth = 0
            for record in records {
                guard let point = validator.statedPoint(record.fields) else {
                    unreadable += 1
                    continue
                }
                if let geometry = guess.geometry, geometry < record.fields.count,
                    let outline = ReportCollector.outline(Array(record.fields[geometry].utf8)[...])
                {
                    outlines.append(outline)
                }
                if abs(point.longitude) <= 180 && abs(point.latitude) <= 90 {
                    stated.append(MapPoint(longitude: point.longitude, latitude: point.latitude, line: record.line))
                } else {
                    offEarth += 1
                }
                if guess.looksSwapped && abs(point.longitude) <= 90 && abs(point.latitude) <= 180 {
                    other.append(MapPoint(longitude: point.latitude, latitude: point.longitude, line: record.line))
                }
            }
            let names =
                (guess.point ?? guess.geometry).map { "\"\(columns[$0].name)\"" }
                ?? "longitude \"\(columns[guess.longitude].name)\", latitude \"\(columns[guess.latitude].name)\""
            layers.append(
                MapLayer(
                    key: "stated", label: "as the columns say (\(names))", color: "#2563eb", total: stated.count,
                    points: stated, density: true, shapes: outlines))
            if guess.looksSwapped {
                layers.append(
                    MapLayer(
                        key: "swapped", label: "read the other way round", color: "#16a34a", total: other.count,
                        points: other, density: true))
                headline =
                    "<p class=\"pill warn\">The coordinate columns look swapped: \(MapPage.escape(guess.evidence ?? ""))</p>"
            }
            caption += "\(MapPage.grouped(records.count)) rows read of \(MapPage.grouped(rows))."
            if offEarth > 0 { caption += " \(MapPage.grouped(offEarth)) of them are not on Earth as the columns say." }
            if unreadable > 0 { caption += " \(MapPage.grouped(unreadable)) have coordinates that are not numbers." }
        } else {
            headline = "<p class=\"pill bad\">No coordinate columns found: nothing to draw.</p>"
        }
        var header = "<h1>\(MapPage.escape(file))<span class=\"pill ok\">before import</span></h1>"
        header += "<p class=\"sub\">encoding \(MapPage.escape(encoding))"
        if let sheet { header += " · sheet \(MapPage.escape(sheet))" }
        header += " · \(rowsMethod.hasPrefix("estimated") ? "about " : "")\(MapPage.grouped(rows)) rows</p>"
        header += headline
        var sections = "<h2>Columns</h2><div class=\"scroll\"><table><tr><th>column</th><th>type</th>"
        sections += "<th>empty</th><th>examples</th></tr>"
        for column in columns {
            sections += "<tr><td>\(MapPage.escape(column.name))</td><td>\(column.kind.rawValue)</td>"
            sections += "<td>\(String(format: "%.0f", column.nullShare * 100)) %</td>"
            sections +=
                "<td>\(MapPage.escape(column.examples.prefix(3).map { String($0.prefix(40)) }.joined(separator: " · ")))</td></tr>"
        }
        sections += "</table></div>"
        if !notes.isEmpty {
            sections += "<h2>Notes</h2><ul>" + notes.map { "<li>\(MapPage.escape($0))</li>" }.joined() + "</ul>"
        }
        return MapPage.document(
            title: "\(file): before import", header: header, picture: MapPicture(layers: layers, caption: caption),
            sections: sections)
    }
}
