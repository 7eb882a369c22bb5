import Foundation
import MapsembleJSON
import Testing

@testable import MapsembleImport

/// What a dry run made of a GeoJSON file: the summary and the first rejected feature's code and
/// message, or the sentence that refused the file.
private struct Outcome {
    var summary: RunSummary?
    var refusal: String?
    var firstReject: (code: String, message: String)?

    var imported: Int { summary?.imported ?? 0 }
    var rejected: Int { summary?.rejected ?? 0 }
    /// The reason, whichever way the file was turned down.
    var reason: String { refusal ?? firstReject.map { "\($0.code): \($0.message)" } ?? "" }
}

private func outcome(of path: String, in dir: TempDir, format: String = "geojson") async -> Outcome {
    var config = PipelineConfig()
    config.source.path = path
    config.source.format = format
    config.report.dir = dir.path
    // The fixtures put many points at (0, 0): a GeoJSON question, not an unknown location.
    config.coordinates.allowNullIsland = true
    var options = RunOptions()
    options.output = dir.path + "/out.geojson"
    do {
        let summary = try await Pipeline(config: config, options: options).run()
        #expect(summary.rowsRead == summary.imported + summary.rejected + summary.notSent, "\(path)")
        var outcome = Outcome(summary: summary)
        let name = Pipeline.reportName(of: path)
        if let line = dir.read("\(name).rejected.geojsonl").split(separator: "\n").first {
            let properties = JSONParser.parse(Array(line.utf8))?["properties"]
            #expect(properties != nil, "each rejected line is a GeoJSON feature: \(line)")
            outcome.firstReject = (
                properties?["_error_code"]?.string ?? "", properties?["_error_message"]?.string ?? ""
            )
        }
        return outcome
    } catch {
        return Outcome(refusal: (error as? ImportError)?.message ?? "\(error)")
    }
}

private let corpus = projectDirectory + "/../shared/corpus/"

private func fixtures(_ folder: String) -> [String] {
    let root = corpus + folder
    let names = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []
    return names.filter { $0.hasSuffix(".geojson") || $0.hasSuffix(".json") }.sorted().map { root + "/" + $0 }
}

@Suite("GeoJSON inputs: the corpus fixtures give their expected outcomes", .serialized)
struct GeoJSONInputTests {
    /// Valid GeoJSON the map cannot take as it is: the reject code it gets instead.
    static let validDeviations: [String: String] = [
        // A GeometryCollection is valid GeoJSON; the API takes no collections.
        "GeometryCollection": "unsupported_geometry",
        // A Feature without a location: nothing to put on the map.
        "null": "missing_coordinate",
    ]

    @Test(
        "valid fixtures import every feature, but for collections, null and empty geometries and out-of-range positions"
    )
    func validFixtures() async throws {
        let dir = TempDir()
        var checked = 0
        for path in fixtures("geojson-invalid-geometry/valid") + fixtures("geojson-schema-fixtures/valid")
            + fixtures("geojsonhint-fixtures/good")
        {
            let outcome = await outcome(of: path, in: dir)
            #expect(outcome.refusal == nil, "\(path): \(outcome.reason)")
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            if outcome.rejected > 0 {
                // Each deviation, named: a collection, a null or empty geometry, positions outside
                // -180..180 / -90..90 (issue82.geojson: geojsonhint checks no ranges).
                let code = outcome.firstReject?.code ?? ""
                let allowed =
                    (code == "unsupported_geometry" && text.contains("GeometryCollection"))
                    || (code == "missing_coordinate" && (text.contains("null") || text.contains("[]")))
                    || (code.hasSuffix("_out_of_range") && path.hasSuffix("issue82.geojson"))
                #expect(allowed, "\(path): \(outcome.reason)")
            } else {
                #expect(
                    outcome.imported > 0 || text.contains("\"features\": []") || text.contains("\"features\":[]"),
                    "\(path)")
            }
            checked += 1
        }
        #expect(checked == 22 + 30 + 18)
    }

    @Test("invalid fixtures: each file is refused in one sentence or its bad features rejected, never imported whole")
    func invalidFixtures() async throws {
        let dir = TempDir()
        // Valid by RFC 7946's own rule (parsers SHOULD NOT reject a polygon for its winding): its
        // rings are turned round instead.
        let turned = ["invalid_exterior_not_ccw.geojson", "invalid_interior_not_cw.geojson"]
        var checked = 0
        for path in fixtures("geojson-invalid-geometry/invalid_geometries")
            + fixtures("geojson-invalid-geometry/invalid_structure") + fixtures("geojson-schema-fixtures/invalid")
        {
            let outcome = await outcome(of: path, in: dir)
            if turned.contains(where: path.hasSuffix) {
                #expect(outcome.imported == 1 && (outcome.summary?.shapes?.reoriented ?? 0) == 1, "\(path)")
            } else {
                #expect(outcome.refusal != nil || outcome.rejected > 0, "\(path) was imported: \(outcome.reason)")
            }
            checked += 1
        }
        #expect(checked == 5 + 28 + 36)
    }

    /// geojsonhint's message themes, each with what our reason says for it.
    static let themes: [(theirs: String, ours: [String])] = [
        ("nested more deeply", ["must be a", "must be an array"]),
        ("each element in a position must be a number", ["must be a number", "numbers where"]),
        ("position should be an array", ["must be a position"]),
        ("position must have 2 or more", ["a position needs 2"]),
        ("bbox", ["bbox"]),
        ("first and last positions", ["is not closed", "numbers where the positions before it have"]),
        ("four or more positions", ["a ring needs at least 4"]),
        ("two or more coordinates", ["a line needs at least 2"]),
        ("type=feature", ["expected \"Feature\""]),
        ("\"id\" member", ["id is not a string or a number"]),
        ("\"properties\" member should be object", ["properties are not an object"]),
        ("Every feature must be an object", ["not an object"]),
        ("\"coordinates\" member required", ["no \"coordinates\""]),
        ("GeometryCollection", ["GeometryCollection is not a geometry the map takes"]),
        ("cannot contain", ["expected \"FeatureCollection\"", "cannot have a"]),
        ("\"features\" member", ["\"features\""]),
        ("case sensitive", ["\"featurecollection\", expected \"FeatureCollection\""]),
        ("is unknown", ["is \"FooBar\""]),
        ("\"type\" member", ["\"type\""]),
        ("root of a GeoJSON object", ["does not start with {"]),
        ("Parse error", ["not JSON"]),
        // Two "type" members: the last one read names the object.
        ("duplicate members", ["\"type\""]),
    ]

    @Test("geojsonhint's bad files: refused or rejected with a reason on the theme of geojsonhint's own message")
    func geojsonhintMessages() async throws {
        let dir = TempDir()
        // Only warnings in geojsonhint (`level: message`), or none: imported, the rings turned
        // round, the fourth number dropped, the digits kept.
        let warningsOnly = [
            "bad-polygon-interiorring-rhr", "polygon_winding_order", "point-toomany", "excessive_precision_truncated",
        ]
        var checked = 0
        for path in fixtures("geojsonhint-fixtures/bad") {
            let name = (path as NSString).lastPathComponent.replacingOccurrences(of: ".geojson", with: "")
            let expected =
                (try? String(
                    contentsOfFile: path.replacingOccurrences(of: ".geojson", with: ".result"), encoding: .utf8)) ?? ""
            let theirs = JSONParser.parse(Array(expected.utf8))?.array?.first?["message"]?.string ?? ""
            let outcome = await outcome(of: path, in: dir)
            checked += 1
            if warningsOnly.contains(name) {
                #expect(
                    outcome.refusal == nil && outcome.rejected == 0 && outcome.imported > 0,
                    "\(name): \(outcome.reason)")
                continue
            }
            #expect(outcome.refusal != nil || outcome.rejected > 0, "\(name) was imported")
            guard let theme = Self.themes.first(where: { theirs.contains($0.theirs) }) else {
                Issue.record("\(name): no theme for geojsonhint's \"\(theirs)\"")
                continue
            }
            #expect(
                theme.ours.contains { outcome.reason.contains($0) },
                "\(name): geojsonhint \"\(theirs)\", ours \"\(outcome.reason)\"")
        }
        #expect(checked == 44)
    }

    @Test(
        "problematic fixtures: out of range and self-intersecting shapes rejected, a legacy crs member reprojected, 3D and 4D positions flattened"
    )
    func problematicFixtures() async throws {
        let dir = TempDir()
        let base = "geojson-invalid-geometry/problematic_"
        let expectations: [(String, String?)] = [
            ("geometries/problematic_outside_lat_lon_boundaries.geojson", "longitude_out_of_range"),
            ("geometries/problematic_self_intersection_small.geojson", "invalid_geometry"),
            ("geometries/problematic_self_intersection_large.geojson", "invalid_geometry"),
            ("geometries/problematic_inner_and_exterior_ring_intersect.geojson", "invalid_geometry"),
            ("geometries/problematic_zero_length_linestring.geojson", "invalid_geometry"),
            ("geometries/problematic_feature_null_geometry.geojson", "missing_coordinate"),
            ("geometries/problematic_3d_coordinates.geojson", nil),
            ("geometries/problematic_4d_coordinates.geojson", nil),
            ("geometries/problematic_excessive_coordinate_precision.geojson", nil),
            ("geometries/problematic_excessive_vertices.geojson", nil),
            ("structure/problematic_geometry_not_wrapped.geojson", nil),
            ("structure/problematic_geometrycollection_single.geojson", "unsupported_geometry"),
        ]
        for (file, code) in expectations {
            let outcome = await outcome(of: corpus + base + file, in: dir)
            if let code {
                #expect(outcome.firstReject?.code == code, "\(file): \(outcome.reason)")
            } else {
                #expect(outcome.imported == 1 && outcome.rejected == 0, "\(file): \(outcome.reason)")
            }
        }
        // A crs member (GeoJSON 2008) in UTM 32N: reprojected, the polygon lands in Berlin.
        let crs = await outcome(of: corpus + base + "structure/problematic_crs_defined.geojson", in: dir)
        #expect(crs.imported == 1, "\(crs.reason)")
        let features = JSONParser.parse(Array(dir.read("out.geojson").utf8))?["features"]?.array
        let first = features?.first?["geometry"]?["coordinates"]?.array?.first?.array?.first?.array?.compactMap(
            \.number)
        #expect(
            first.map { greatCircleMetres(($0[0], $0[1]), (13.385, 52.515)) < 200 } == true,
            "\(String(describing: first))")
    }

    @Test(
        "GeoJSONSeq: record separators or newlines; properties are columns (nested ones as JSON); a bad line is one rejected row, written back with its error members"
    )
    func sequence() async throws {
        let dir = TempDir()
        let rs = "\u{1E}"
        let lines = [
            #"\#(rs){"type":"Feature","id":"a1","properties":{"name":"Depot","kind":"depot","tags":["x",1],"size":12.50},"geometry":{"type":"Point","coordinates":[13.4,52.5]}}"#,
            #"{"type":"Feature","id":"a2","properties":{"name":"Zone","kind":"shop"},"geometry":{"type":"Polygon","coordinates":[[[2,48],[3,48],[3,49],[2,48]]]}}"#,
            #"{"type":"Feature","id":"a3","properties":{"name":"Broken"},"geometry":{"type":"Polygon","coordinates":[[[2,48],[3,48],[3,49]]]}}"#,
            #"{"type":"Feature","id":"a4" "properties":{}}"#,
            #"{"type":"Feature","id":"a5","properties":{"name":"Route","kind":"shop"},"geometry":{"type":"LineString","coordinates":[[0,51],[1,52]]}}"#,
        ]
        let path = dir.write("sites.geojsonl", lines.joined(separator: "\n") + "\n")
        var config = PipelineConfig()
        config.source.path = path
        config.report.dir = dir.path
        config.properties.label = "{name} ({kind})"
        config.properties.remoteID = "id"
        config.properties.fields = [
            .init(slug: "tags", column: "tags"), .init(slug: "size", column: "size", type: "number"),
        ]
        var options = RunOptions()
        options.output = dir.path + "/out.geojson"
        let summary = try await Pipeline(config: config, options: options).run()
        #expect(summary.rowsRead == 5 && summary.imported == 3)
        #expect(summary.rejectedByCode == [.invalidGeometry: 1, .malformedRow: 1])
        let features = JSONParser.parse(Array(dir.read("out.geojson").utf8))?["features"]?.array ?? []
        #expect(features.first?["properties"]?["label"]?.string == "Depot (depot)")
        #expect(features.first?["properties"]?["tags"]?.string == #"["x",1]"#)
        #expect(features.first?["properties"]?["size"]?.number == 12.5)
        #expect(features.map { $0["geometry"]?["type"]?.string ?? "" } == ["Point", "Polygon", "LineString"])
        // The rejected features as they were, their errors first among the properties.
        let rejected = dir.read("sites.rejected.geojsonl").split(separator: "\n").map(String.init)
        #expect(rejected.count == 2)
        #expect(
            rejected.first
                == #"{"type":"Feature","id":"a3","properties":{"_error_line":3,"_error_code":"invalid_geometry","_error_column":"geometry","_error_message":"the exterior ring has 3 positions; a ring needs at least 4, the last equal to the first","name":"Broken"},"geometry":{"type":"Polygon","coordinates":[[[2,48],[3,48],[3,49]]]}}"#
        )
        let broken = JSONParser.parse(Array((rejected.last ?? "").utf8))?["properties"]
        #expect(broken?["_error_line"]?.number == 4 && broken?["_error_code"]?.string == "malformed_row")
        #expect(broken?["_error_text"]?.string == lines[3])
    }
}
