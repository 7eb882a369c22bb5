import CGEOS
import Foundation
import MapsembleJSON
import Testing

@testable import MapsembleImport

/// Reads `text` as a geometry column's cell.
private func shape(_ text: String) throws -> Shape {
    var shape = Shape()
    let problem: ShapeProblem? = Array(text.utf8).withUnsafeBytes { cell in
        do throws(ShapeProblem) {
            try ShapeText.read(cell, into: &shape)
            return nil
        } catch { return error }
    }
    if let problem { throw problem }
    return shape
}

private func problem(_ text: String) -> ShapeProblem? {
    do {
        _ = try shape(text)
        return nil
    } catch { return error as? ShapeProblem }
}

/// The GeoJSON geometry a cell becomes, with the checks of a pipeline with these options.
private func geoJSON(_ text: String, _ validator: Validator = geometryValidator()) throws -> String {
    var shape = try shape(text)
    var counts = GeometryCounts()
    try validator.check(&shape, counts: &counts)
    var out: [UInt8] = []
    Array(text.utf8).withUnsafeBytes { shape.appendGeoJSON(cell: $0, to: &out) }
    return String(decoding: out, as: UTF8.self)
}

private func geometryValidator(makeValid: Bool = false, simplify: Double = 0, maxVertices: Int = 100_000)
    -> Validator
{
    var validator = Validator(longitudeColumn: 0, latitudeColumn: 0, header: ["shape"])
    validator.geometryColumn = 0
    validator.geometry = .init(makeValid: makeValid, simplifyMetres: simplify, maxVertices: maxVertices)
    validator.checker = ShapeChecker()
    validator.sridTransforms = SRIDTransforms()
    return validator
}

/// A random geometry made with GEOS's own API and written by GEOS's writers: what the parsers
/// must read back exactly.
private struct GEOSSample {
    let handle: GEOSContextHandle_t
    var kind: Shape.Kind
    var xy: [Double] = []
    var pathEnds: [Int] = []
    var polygonEnds: [Int] = []
    var hasZ: Bool
    var geometry: OpaquePointer!

    init(_ handle: GEOSContextHandle_t, _ random: inout SplitMix) {
        self.handle = handle
        kind = Shape.Kind.allCases[Int(random.next() % 6)]
        hasZ = random.next() % 3 == 0
        func number(_ limit: Double) -> Double {
            let decimals = Double(random.next() % 10)
            let scale = pow(10, decimals)
            return ((Double(random.next() % 1_000_000_000) / 1e9 * 2 - 1) * limit * scale).rounded() / scale
        }
        func sequence(_ count: Int, closed: Bool) -> OpaquePointer {
            let sequence = GEOSCoordSeq_create_r(handle, UInt32(count), hasZ ? 3 : 2)!
            let first = (number(180), number(90))
            for index in 0..<count {
                let (x, y) = closed && index == count - 1 ? first : index == 0 ? first : (number(180), number(90))
                xy += [x, y]
                _ = GEOSCoordSeq_setXYZ_r(handle, sequence, UInt32(index), x, y, hasZ ? number(1000) : 0)
            }
            pathEnds.append(xy.count / 2)
            return sequence
        }
        func polygon() -> OpaquePointer {
            let rings = 1 + Int(random.next() % 3)
            let shell = GEOSGeom_createLinearRing_r(handle, sequence(4 + Int(random.next() % 8), closed: true))!
            var holes: [OpaquePointer?] = (1..<rings).map { _ in
                GEOSGeom_createLinearRing_r(handle, sequence(4 + Int(random.next() % 5), closed: true))
            }
            polygonEnds.append(pathEnds.count)
            return holes.withUnsafeMutableBufferPointer {
                GEOSGeom_createPolygon_r(handle, shell, $0.baseAddress, UInt32($0.count))!
            }
        }
        func line() -> OpaquePointer {
            GEOSGeom_createLineString_r(handle, sequence(2 + Int(random.next() % 10), closed: false))!
        }
        func point() -> OpaquePointer { GEOSGeom_createPoint_r(handle, sequence(1, closed: false))! }
        func collection(_ type: GEOSGeomTypes, _ make: () -> OpaquePointer) -> OpaquePointer {
            var members: [OpaquePointer?] = (0..<(1 + Int(random.next() % 4))).map { _ in make() }
            return members.withUnsafeMutableBufferPointer {
                GEOSGeom_createCollection_r(handle, Int32(type.rawValue), $0.baseAddress, UInt32($0.count))!
            }
        }
        switch kind {
        case .point: geometry = point()
        case .lineString: geometry = line()
        case .polygon: geometry = polygon()
        case .multiPoint: geometry = collection(GEOS_MULTIPOINT, point)
        case .multiLineString: geometry = collection(GEOS_MULTILINESTRING, line)
        case .multiPolygon: geometry = collection(GEOS_MULTIPOLYGON, polygon)
        }
    }

    func wkt() -> String {
        let writer = GEOSWKTWriter_create_r(handle)!
        defer { GEOSWKTWriter_destroy_r(handle, writer) }
        GEOSWKTWriter_setTrim_r(handle, writer, 1)
        GEOSWKTWriter_setOutputDimension_r(handle, writer, hasZ ? 3 : 2)
        let text = GEOSWKTWriter_write_r(handle, writer, geometry)!
        defer { GEOSFree_r(handle, text) }
        return String(cString: text)
    }

    func hexWKB(bigEndian: Bool, srid: Int32?) -> String {
        let writer = GEOSWKBWriter_create_r(handle)!
        defer { GEOSWKBWriter_destroy_r(handle, writer) }
        GEOSWKBWriter_setOutputDimension_r(handle, writer, hasZ ? 3 : 2)
        GEOSWKBWriter_setByteOrder_r(
            handle, writer, bigEndian ? Int32(GEOS_WKB_XDR.rawValue) : Int32(GEOS_WKB_NDR.rawValue))
        if let srid {
            GEOSSetSRID_r(handle, geometry, srid)
            GEOSWKBWriter_setIncludeSRID_r(handle, writer, 1)
        }
        var size = 0
        let bytes = GEOSWKBWriter_writeHEX_r(handle, writer, geometry, &size)!
        defer { GEOSFree_r(handle, bytes) }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: size), as: UTF8.self)
    }

    func geoJSON() -> String {
        let writer = GEOSGeoJSONWriter_create_r(handle)!
        defer { GEOSGeoJSONWriter_destroy_r(handle, writer) }
        let text = GEOSGeoJSONWriter_writeGeometry_r(handle, writer, geometry, -1)!
        defer { GEOSFree_r(handle, text) }
        return String(cString: text)
    }
}

@Suite("Geometry columns: WKT, EWKT, hex WKB and GeoJSON, checked with GEOS")
struct GeometryTests {
    @Test("the notations of WKT: dimensions, MULTIPOINT's two forms, EWKT's SRID, case, spaces")
    func wktForms() throws {
        let forms: [(String, Shape.Kind, [Double], Bool)] = [
            ("POINT (1 2)", .point, [1, 2], false),
            ("point(1 2)", .point, [1, 2], false),
            ("POINT Z (1 2 3)", .point, [1, 2], true),
            ("POINTZ(1 2 3)", .point, [1, 2], true),
            ("POINT M (1 2 3)", .point, [1, 2], true),
            ("POINT ZM (1 2 3 4)", .point, [1, 2], true),
            ("POINT (1 2 3)", .point, [1, 2], true),
            ("  LINESTRING(-1.5 2e1,\n3 +4)  ", .lineString, [-1.5, 20, 3, 4], false),
            ("MULTIPOINT (1 2, 3 4)", .multiPoint, [1, 2, 3, 4], false),
            ("MULTIPOINT ((1 2), (3 4))", .multiPoint, [1, 2, 3, 4], false),
            ("SRID=4326;POINT(5 6)", .point, [5, 6], false),
        ]
        for (text, kind, xy, dropped) in forms {
            let read = try shape(text)
            #expect(read.kind == kind && read.xy == xy && read.droppedDimensions == dropped, "\(text)")
        }
        #expect(try shape("SRID=2154;POINT(652000 6862000)").srid == 2154)
        let multi = try shape(
            "MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5), (5.2 5.1, 5.8 5.1, 5.8 5.7, 5.2 5.1)))")
        #expect(multi.kind == .multiPolygon && multi.pathEnds == [4, 8, 12] && multi.polygonEnds == [1, 3])
        // The file's digits are written as they are; a number that is not JSON as written is rewritten.
        #expect(
            try geoJSON("LINESTRING (2.350000 48.8566, +3 4e1)")
                == #"{"type":"LineString","coordinates":[[2.350000,48.8566],[3,40]]}"#)
    }

    @Test("bad cells: one sentence saying where and what was expected, with the reject code")
    func wktProblems() {
        let cases: [(String, RejectCode, String)] = [
            (
                "POLYGON ((2 48, 3 x48))", .invalidGeometry,
                "not WKT: expected a number at character 19, found \"x48))\""
            ),
            (
                "POLYGON ((2 48, 3 48, 3 49, 2 49))", .invalidGeometry,
                "the exterior ring is not closed: it starts at 2 48 and ends at 2 49"
            ),
            (
                "POLYGON ((0 0, 1 1, 0 0))", .invalidGeometry,
                "the exterior ring has 3 positions; a ring needs at least 4"
            ),
            ("LINESTRING (1 2)", .invalidGeometry, "the line has 1 position; a line needs at least 2"),
            ("LINESTRING (1 2, 3 4 5)", .invalidGeometry, "has 3 numbers where the others have 2"),
            ("POINT (1 2) x", .invalidGeometry, "unexpected text after the geometry at character 13"),
            ("POINT (1 2", .invalidGeometry, "expected \")\" at character 11, found the end of the text"),
            ("POINT (NaN 2)", .nonFiniteNumber, "\"NaN\" at character 8 is not a finite number"),
            (
                "GEOMETRYCOLLECTION (POINT (1 2))", .unsupportedGeometry,
                "a GEOMETRYCOLLECTION is not a geometry the map takes"
            ),
            ("CIRCULARSTRING (0 0, 1 1, 2 0)", .unsupportedGeometry, "a CIRCULARSTRING is not"),
            ("POLYGON EMPTY", .missingCoordinate, "the geometry is empty (POLYGON EMPTY)"),
            ("Paris", .invalidGeometry, "not WKT: \"PARIS\" is not a geometry type"),
            ("12.5", .invalidGeometry, "not a geometry: expected WKT"),
            ("SRID=x;POINT(1 2)", .invalidGeometry, "expected an SRID number after SRID="),
            (
                #"{"type":"Polygon","coordinates":[[1,2],[3,4]]}"#, .invalidGeometry,
                "coordinates[0][0] of the Polygon must be a position ([longitude, latitude]), found a number"
            ),
            (
                #"{"type":"Point","coordinates":[1]}"#, .invalidGeometry,
                "coordinates of the Point has 1 number; a position needs 2"
            ),
            (#"{"type":"point","coordinates":[1,2]}"#, .invalidGeometry, "\"point\" is not a GeoJSON geometry type"),
            (
                #"{"type":"Feature","geometry":null,"properties":{}}"#, .missingCoordinate,
                "the Feature's geometry is null"
            ),
            (#"{"type":"GeometryCollection","geometries":[]}"#, .unsupportedGeometry, "a GeometryCollection is not"),
            (#"{"type":"Point","coordinates":[1,2]"#, .invalidGeometry, "the cell starts with { but is not JSON"),
            (
                "0101000000000000000000F03F", .invalidGeometry,
                "not WKB: the text ends at byte 13 where an 8-byte number was expected"
            ),
            ("010700000000000000", .unsupportedGeometry, "WKB type 7 (GeometryCollection)"),
            ("0101000000000000000000F87F000000000000F87F", .missingCoordinate, "the geometry is empty (POINT EMPTY)"),
        ]
        for (text, code, message) in cases {
            let found = problem(text)
            #expect(
                found?.code == code && found?.message.contains(message) == true, "\(text): \(String(describing: found))"
            )
        }
    }

    @Test(
        "differential: 600 geometries made and written by GEOS (WKT, hex WKB and EWKB in both byte orders, GeoJSON) read back exactly"
    )
    func differential() throws {
        let handle = GEOS_init_r()!
        defer { GEOS_finish_r(handle) }
        var random = SplitMix(seed: 7946)
        for round in 0..<600 {
            let sample = GEOSSample(handle, &random)
            defer { GEOSGeom_destroy_r(handle, sample.geometry) }
            let srid: Int32? = round % 3 == 0 ? 2154 : nil
            for text in [sample.wkt(), sample.hexWKB(bigEndian: round % 2 == 0, srid: srid), sample.geoJSON()] {
                let read = try shape(text)
                #expect(read.kind == sample.kind, "\(text)")
                #expect(read.xy == sample.xy, "\(text)")
                #expect(read.pathEnds == sample.pathEnds && read.polygonEnds == sample.polygonEnds, "\(text)")
                // GEOS 3.11's GeoJSON writer leaves Z out.
                #expect(read.droppedDimensions == (sample.hasZ && text.first != "{"), "\(text)")
                if text.first == "0" { #expect(read.srid == srid.map(Int.init), "\(text)") }
                if text.first == "{" {
                    // The bytes path and the JSON tree path give the same shape.
                    var tree = Shape()
                    try ShapeText.readGeoJSON(try #require(JSONParser.parse(Array(text.utf8))), into: &tree)
                    #expect(tree.xy == read.xy && tree.kind == read.kind && tree.pathEnds == read.pathEnds, "\(text)")
                    #expect(tree.polygonEnds == read.polygonEnds && tree.droppedDimensions == read.droppedDimensions)
                    #expect(!read.texts.isEmpty, "read from its bytes: \(text)")
                }
                // What we write reads back as the same positions.
                var out: [UInt8] = []
                Array(text.utf8).withUnsafeBytes { read.appendGeoJSON(cell: $0, to: &out) }
                let again = try shape(String(decoding: out, as: UTF8.self))
                #expect(again.xy == read.xy && again.kind == read.kind && again.pathEnds == read.pathEnds, "\(text)")
            }
        }
    }

    @Test("validity through GEOS: the reason and where; make_valid repairs; RFC 7946 winding; simplify_m; max_vertices")
    func checks() throws {
        // A bow tie crosses itself at its middle.
        #expect(throws: ShapeProblem.invalid("self-intersection at 0.5 0.5 (coordinates.make_valid: true repairs it)"))
        {
            try geoJSON("POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))")
        }
        let repaired = try geoJSON("POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))", geometryValidator(makeValid: true))
        let repairedJSON = try #require(JSONParser.parse(Array(repaired.utf8)))
        #expect(repairedJSON["type"]?.string == "MultiPolygon")
        #expect(repairedJSON["coordinates"]?.array?.count == 2)
        // A hole outside its shell.
        expect(problem: "hole lies outside shell") {
            try geoJSON("POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0), (5 5, 6 5, 6 6, 5 5))")
        }
        // Clockwise exterior, counter-clockwise hole: both turned round.
        #expect(
            try geoJSON("POLYGON ((0 0, 0 10, 10 10, 10 0, 0 0), (2 2, 4 2, 4 4, 2 2))")
                == #"{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[2,2],[4,4],[4,2],[2,2]]]}"#)
        // A line whose positions are all one point.
        expect(problem: "the line has all its positions at 1 2") { try geoJSON("LINESTRING (1 2, 1 2)") }
        // simplify_m: a wiggle of a few centimetres on a 1 km line goes at 10 m.
        let wiggly = "LINESTRING (0 0, 0.001 0.0000001, 0.002 0, 0.003 0.0000002, 0.01 0)"
        #expect(
            try geoJSON(wiggly, geometryValidator(simplify: 10))
                == #"{"type":"LineString","coordinates":[[0,0],[0.01,0]]}"#)
        #expect(try geoJSON(wiggly).contains("0.0000001"))
        expect(problem: "the LineString has 5 vertices, more than coordinates.max_vertices (4)", code: .tooManyVertices)
        {
            try geoJSON(wiggly, geometryValidator(maxVertices: 4))
        }
        // Every vertex is judged: one latitude out of range; all of them fitting only when swapped.
        expect(problem: "vertex 2 (1 95) has a latitude outside -90..90", code: .latitudeOutOfRange) {
            try geoJSON("LINESTRING (100 0, 1 95)")
        }
        expect(problem: "the coordinates look swapped", code: .coordinatesSwapped) {
            try geoJSON("POLYGON ((48 100, 48 101, 49 101, 48 100))")
        }
        var fixing = geometryValidator()
        fixing.swapped = .fix
        #expect(
            try geoJSON("LINESTRING (48 100, 49 101)", fixing)
                == #"{"type":"LineString","coordinates":[[100,48],[101,49]]}"#)
        var bounded = geometryValidator()
        bounded.bounds = [-5, 41, 10, 52]
        expect(problem: "reaches outside the bounds", code: .outsideBounds) {
            try geoJSON("LINESTRING (2 48, 12 48)", bounded)
        }
        // EWKT's SRID is reprojected for its row: Lambert-93 to degrees, written with 7 decimals.
        let paris = try geoJSON("SRID=2154;POINT(652469.02 6862035.26)")
        let coordinates = JSONParser.parse(Array(paris.utf8))?["coordinates"]?.array ?? []
        let position = coordinates.compactMap { $0.number }
        try #require(position.count == 2)
        #expect(greatCircleMetres((position[0], position[1]), (2.3522, 48.8566)) < 50)
        expect(problem: "SRID=999999", code: .invalidGeometry) { try geoJSON("SRID=999999;POINT(1 2)") }
    }
}

/// Expects `body` to throw a `ShapeProblem` whose message contains `text`.
private func expect(
    problem text: String, code: RejectCode = .invalidGeometry, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Any
) {
    do {
        let value = try body()
        Issue.record("expected \(code.rawValue) \"\(text)\", got \(value)", sourceLocation: sourceLocation)
    } catch {
        let problem = error as? ShapeProblem
        #expect(
            problem?.code == code && problem?.message.contains(text) == true, "\(error)", sourceLocation: sourceLocation
        )
    }
}

/// A file of every geometry type, in every notation a geometry column takes.
private let shapesCSV = """
    id,name,kind,score,shape
    Z1,zone with a hole,shop,1,"POLYGON ((2.30 48.80, 2.40 48.80, 2.40 48.90, 2.30 48.90, 2.30 48.80), (2.33 48.83, 2.36 48.83, 2.36 48.86, 2.33 48.83))"
    Z2,two islands,shop,2,"MULTIPOLYGON (((-4.5 48.3, -4.4 48.3, -4.4 48.4, -4.5 48.3)), ((-4.2 48.3, -4.1 48.3, -4.1 48.4, -4.2 48.3)))"
    R1,route,depot,3,"LINESTRING Z (13.38 52.51 34, 13.40 52.52 35, 13.41 52.50 36)"
    R2,two routes,depot,4,"MULTILINESTRING ((0.1 51.5, 0.2 51.6), (0.3 51.5, 0.4 51.4, 0.5 51.5))"
    P1,depot,depot,5,"SRID=4326;POINT (4.8952 52.3702)"
    P2,three stops,shop,6,"{""type"":""MultiPoint"",""coordinates"":[[9.18,48.77],[9.19,48.78],[9.2,48.79]]}"
    P3,from PostGIS,shop,7,0101000020E6100000A4703D0AD7A3F03FCDCCCCCCCC4C4740

    """

extension UploadHarness {
    /// The shapes file, its pipeline in `mode`.
    func shapesConfig(_ mode: PipelineConfig.Mode, file: String = "shapes.csv") -> PipelineConfig {
        var config = config(mode: mode)
        config.source.path = dir.path + "/" + file
        config.coordinates.geometry = "shape"
        return config
    }

    /// Each stored feature's geometry by remote id, as the API lists it.
    var storedGeometries: [String: JSONValue] {
        stored.reduce(into: [:]) { $0[$1["ext_id"]?.string ?? "?"] = $1.geometry }
    }

    /// What a dry run would send, by remote id.
    func sentGeometries(_ config: PipelineConfig) async throws -> [String: JSONValue] {
        var options = RunOptions()
        options.dryRun = true
        options.output = dir.path + "/sent.geojson"
        _ = try await Pipeline(config: config, options: options).run()
        let sent = JSONParser.parse(Array(dir.read("sent.geojson").utf8))?["features"]?.array ?? []
        return sent.reduce(into: [:]) {
            // A dry run does not read the map: remote ids go under `remote_id`.
            $0[$1["properties"]?["remote_id"]?.string ?? "?"] = $1["geometry"]
        }
    }
}

@Suite("Geometries through the sandbox: every type round-trips in every mode", .serialized)
struct GeometryRunTests {
    @Test("create, upsert, replace and sync store what was sent; GET gives it back; a second sync sends nothing")
    func roundTrip() async throws {
        for mode: PipelineConfig.Mode in [.create, .upsert, .replace, .sync] {
            let harness = try await UploadHarness(rows: 0)
            _ = harness.dir.write("shapes.csv", shapesCSV)
            let config = harness.shapesConfig(mode)
            let sent = try await harness.sentGeometries(config)
            #expect(sent.count == 7)
            #expect(Set(sent.values.compactMap { $0["type"]?.string }).count == 6)
            let summary = try await harness.run(config)
            #expect(summary.exitCode == 0 && summary.imported == 7, "\(mode)")
            #expect(harness.storedGeometries == sent, "\(mode)")
            #expect(
                summary.shapes?.byType == [
                    "Polygon": 1, "MultiPolygon": 1, "LineString": 1, "MultiLineString": 1, "Point": 2, "MultiPoint": 1,
                ])
            #expect(summary.shapes?.droppedDimensions == 1 && summary.shapes?.reoriented == 1)
            if mode == .sync {
                let again = try await harness.run(config)
                #expect(again.unchanged == 7 && again.requests == 0, "an unchanged sync of shapes sends nothing")
            }
        }
    }

    @Test("sync and update: a changed polygon, line or point is sent again, the rest is unchanged; delete by remote id")
    func changes() async throws {
        let harness = try await UploadHarness(rows: 0)
        _ = harness.dir.write("shapes.csv", shapesCSV)
        #expect(try await harness.run(harness.shapesConfig(.sync)).exitCode == 0)
        // One vertex of the hole moved, the route one stop longer.
        let changed = shapesCSV.replacingOccurrences(of: "2.36 48.86, 2.33 48.83))", with: "2.37 48.86, 2.33 48.83))")
            .replacingOccurrences(of: "13.41 52.50 36)", with: "13.41 52.50 36, 13.42 52.49 37)")
        _ = harness.dir.write("changed.csv", changed)
        let sync = harness.shapesConfig(.sync, file: "changed.csv")
        let summary = try await harness.run(sync)
        #expect(summary.updated == 2 && summary.unchanged == 5 && summary.created == 0)
        #expect(harness.storedGeometries == (try await harness.sentGeometries(sync)))
        let route = harness.storedGeometries["R1"]?["coordinates"]?.array
        #expect(route?.count == 4)

        // update: only the rows whose geometry differs from the map's are sent.
        _ = harness.dir.write("update.csv", shapesCSV)
        let update = try await harness.run(harness.shapesConfig(.update, file: "update.csv"))
        #expect(update.updated == 2 && update.unchanged == 5)
        #expect(harness.storedGeometries == (try await harness.sentGeometries(harness.shapesConfig(.sync))))

        let deletion = try await harness.run(harness.shapesConfig(.delete))
        #expect(deletion.deleted == 7 && harness.stored.isEmpty)
    }

    @Test(
        "a feature larger than one request body can carry is rejected, not sent; the others go in bodies under the limit"
    )
    func oversizedFeature() async throws {
        // The sandbox answers 413 to a body over 2,048 bytes, as the client's limit says.
        let harness = try await UploadHarness(rows: 0, configure: { $0.maxBodyBytes = 2048 })
        let ring = (0...200).map { index in
            let angle = 2 * Double.pi * Double(index % 200) / 200
            return "\(2 + 0.01 * cos(angle)) \(48 + 0.01 * sin(angle))"
        }
        var text = "id,name,kind,score,shape\n"
        for row in 1...12 { text += "S\(row),small \(row),shop,\(row),\"POLYGON ((2 48, 3 48, 3 49, 2 48))\"\n" }
        text += "BIG,big,shop,7,\"POLYGON ((\(ring.joined(separator: ", "))))\"\n"
        _ = harness.dir.write("shapes.csv", text)
        var config = harness.shapesConfig(.upsert)
        config.upload.maxBodyBytes = 2048
        let summary = try await harness.run(config)
        #expect(summary.imported == 12 && summary.rejectedByCode == [.tooManyVertices: 1])
        #expect(harness.storedGeometries.count == 12 && harness.storedGeometries["BIG"] == nil)
        #expect(
            harness.dir.read("shapes.rejected.csv").contains("more than one request of upload.max_body_bytes can carry")
        )
        // Several requests, none refused as too large.
        #expect(summary.requests > 1 && summary.retries == 0)
    }

    @Test("the sandbox refuses an invalid geometry with a 422 naming the feature, and stores nothing of the request")
    func sandboxRefuses() {
        let routes = Routes()
        func polygon(_ ring: String) -> String {
            #"{"type":"Feature","geometry":{"type":"Polygon","coordinates":[\#(ring)]},"properties":{"ext_id":"A"}}"#
        }
        let good = polygon("[[0,0],[1,0],[1,1],[0,0]]")
        let cases: [(String, String)] = [
            (polygon("[[0,0],[1,0],[1,1],[0,1]]"), "A polygon ring must be closed."),
            (polygon("[[0,0],[1,0],[0,0]]"), "A polygon ring must have at least 4 positions."),
            (
                #"{"type":"Feature","geometry":{"type":"LineString","coordinates":[[0,0]]},"properties":{"ext_id":"A"}}"#,
                "A line must have at least 2 positions."
            ),
            (
                #"{"type":"Feature","geometry":{"type":"GeometryCollection","geometries":[]},"properties":{"ext_id":"A"}}"#,
                "The geometry type GeometryCollection is not supported."
            ),
            (polygon("[[0,0],[1,0],[1,91],[0,0]]"), "The position [1.0, 91.0] is out of range."),
        ]
        for (feature, message) in cases {
            let reply = routes.call("POST", routes.path, body: Routes.collection([good, feature]))
            #expect(reply.status == 422)
            #expect(reply.json?["errors"]?["features[1].geometry"]?.array?.first?.string == message, "\(feature)")
        }
        #expect(routes.store.features(map: Routes.mapID).isEmpty)
        #expect(routes.call("POST", routes.path, body: Routes.collection([good])).status == 200)
        #expect(routes.store.features(map: Routes.mapID).first?.geometry["type"]?.string == "Polygon")
    }
}
