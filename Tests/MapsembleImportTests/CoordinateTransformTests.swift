import Foundation
import MapsembleJSON
import Testing

@testable import MapsembleImport

@Suite("Coordinate systems through PROJ: a block of points to WGS 84 degrees")
struct CoordinateTransformTests {
    @Test("the SNCF stations in Lambert-93 (EPSG:2154) land within 1 m of the file's own WGS 84 columns")
    func lambert93() throws {
        let path = projectDirectory + "/../shared/corpus/sncf-liste-des-gares/liste-des-gares.csv"
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(whereSeparator: \.isNewline).dropFirst()
        var x: [Double] = []
        var y: [Double] = []
        var expected: [(Double, Double)] = []
        for line in lines {
            let fields = line.split(separator: ";", omittingEmptySubsequences: false)
            guard fields.count > 14, let easting = Double(fields[11]), let northing = Double(fields[12]),
                let longitude = Double(fields[13]), let latitude = Double(fields[14])
            else { continue }
            x.append(easting)
            y.append(northing)
            expected.append((longitude, latitude))
        }
        #expect(x.count > 2_500)
        let transform = try CoordinateTransform(from: "EPSG:2154")
        x.withUnsafeMutableBufferPointer { xs in y.withUnsafeMutableBufferPointer { transform.toDegrees(x: xs, y: $0) }
        }
        let far = expected.indices.filter { greatCircleMetres((x[$0], y[$0]), expected[$0]) > 1 }
        #expect(
            far.isEmpty, "\(far.count) stations more than 1 m away, the first at line \(far.first.map { $0 + 2 } ?? 0)")
    }

    @Test("EPSG:4326 (latitude first by its authority) is read longitude first; PROJ strings; unknown systems")
    func axisOrderAndErrors() throws {
        let wgs84 = try CoordinateTransform(from: "EPSG:4326")
        let paris = wgs84.toDegrees(x: 2.3522, y: 48.8566)
        #expect(abs(paris.longitude - 2.3522) < 1e-9 && abs(paris.latitude - 48.8566) < 1e-9)
        // Lambert-93 as a PROJ string gives what its EPSG code gives (the first SNCF station).
        let string = try CoordinateTransform(
            from:
                "+proj=lcc +lat_0=46.5 +lon_0=3 +lat_1=49 +lat_2=44 +x_0=700000 +y_0=6600000 +ellps=GRS80 +units=m +no_defs"
        )
        let chars = string.toDegrees(x: 622_461.2169, y: 6_896_394.0592)
        #expect(greatCircleMetres((chars.longitude, chars.latitude), (1.936959193648112, 49.162611630469804)) < 1)
        #expect {
            try CoordinateTransform(from: "EPSG:999999")
        } throws: { error in
            (error as? ImportError)?.message.hasPrefix(
                "coordinates.crs \"EPSG:999999\" is not a reference system PROJ knows") == true
        }
        // Outside the system's domain: NaN, for the caller to reject.
        let lambert = try CoordinateTransform(from: "EPSG:2154")
        #expect(lambert.toDegrees(x: .infinity, y: 1).longitude.isNaN)
    }

    @Test(
        "a pipeline with coordinates.crs: EPSG:2154 imports the SNCF file within 1 m of its WGS 84 columns; without it, one sentence"
    )
    func pipeline() async throws {
        let dir = TempDir()
        let path = projectDirectory + "/../shared/corpus/sncf-liste-des-gares/liste-des-gares.csv"
        var config = PipelineConfig()
        config.source.path = path
        config.report.dir = dir.path
        // Labelled by its projected point, to find the file's own degrees for it.
        config.properties.label = "{x_l93} {y_l93}"
        config.coordinates.longitude = "x_l93"
        config.coordinates.latitude = "y_l93"
        await #expect {
            try await Pipeline(config: config, options: RunOptions()).run()
        } throws: { error in
            // The likely systems from PROJ's database, Lambert-93 first, and the line to add.
            (error as? ImportError)?.message.contains(
                "they fit EPSG:2154 (RGF93 v1 / Lambert-93), ") == true
                && (error as? ImportError)?.message.contains("coordinates: { crs: EPSG:2154 }") == true
        }
        config.coordinates.crs = "EPSG:2154"
        var options = RunOptions()
        options.output = dir.path + "/out.geojson"
        let summary = try await Pipeline(config: config, options: options).run()
        #expect(summary.rowsRead == summary.imported + summary.rejected + summary.notSent)
        // The file's own degrees, by station.
        var expected: [String: (Double, Double)] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(whereSeparator: \.isNewline).dropFirst() {
            let fields = line.split(separator: ";", omittingEmptySubsequences: false)
            guard fields.count > 14, let longitude = Double(fields[13]), let latitude = Double(fields[14]) else {
                continue
            }
            expected["\(fields[11]) \(fields[12])"] = (longitude, latitude)
        }
        var compared = 0
        var far: [String] = []
        for feature in JSONParser.parse(Array(dir.read("out.geojson").utf8))?["features"]?.array ?? [] {
            guard let id = feature["properties"]?["label"]?.string, let want = expected[id],
                let coordinates = feature["geometry"]?["coordinates"]?.array
            else { continue }
            compared += 1
            if greatCircleMetres((coordinates[0].number!, coordinates[1].number!), want) > 1 { far.append(id) }
        }
        #expect(compared > 2_500 && compared == summary.imported, "\(compared) of \(summary.imported)")
        #expect(far.isEmpty, "\(far.count) stations more than 1 m away: \(far.prefix(5))")

        // A point PROJ cannot bring back is invalid_geometry, its row kept whole.
        config.source.path = dir.write(
            "far.csv", "code_uic;x_l93;y_l93\nA;622461.2169;6896394.0592\nB;99999999999999;99999999999999\n")
        config.source.delimiter = ";"
        config.properties.label = "code_uic"
        let farOff = try await Pipeline(config: config, options: options).run()
        #expect(farOff.imported == 1 && farOff.rejectedByCode == [.invalidGeometry: 1])
        let rejected = dir.read("far.rejected.csv")
        #expect(rejected.contains("the point (99999999999999, 99999999999999) cannot be reprojected from EPSG:2154"))
        #expect(rejected.hasSuffix(";B;99999999999999;99999999999999\n") || rejected.contains(",B,99999999999999"))
    }

    @Test(
        "a point column in another system: pairs in the system's axis order (easting first for EPSG:2154, northing first for EPSG:31467) and WKT, within 1 m; unreadable pairs rejected with the order expected"
    )
    func pointColumn() async throws {
        let dir = TempDir()
        // The SNCF stations as one "x, y" cell, as "x y", and as WKT, labelled by their own degrees.
        var rows = ["label;pair;spaced;wkt"]
        let sncf = projectDirectory + "/../shared/corpus/sncf-liste-des-gares/liste-des-gares.csv"
        for line in try String(contentsOfFile: sncf, encoding: .utf8).split(whereSeparator: \.isNewline).dropFirst() {
            let fields = line.split(separator: ";", omittingEmptySubsequences: false)
            guard fields.count > 14, Double(fields[11]) != nil, Double(fields[12]) != nil,
                Double(fields[13]) != nil, Double(fields[14]) != nil
            else { continue }
            rows.append(
                "\(fields[13]) \(fields[14]);\(fields[11]), \(fields[12]);\(fields[11]) \(fields[12]);POINT(\(fields[11]) \(fields[12]))"
            )
        }
        // Gauss-Krüger zone 3 (EPSG:31467), northing first by its authority: Frankfurt, Hamburg, Munich.
        let gaussKruger = dir.write(
            "gk.csv",
            "label;pair;spaced;wkt\n"
                + "8.6821 50.1109;5552790.871, 3477335.330;5552790.871 3477335.330;POINT(3477335.330 5552790.871)\n"
                + "9.9937 53.5511;5935973.212, 3565931.019;5935973.212 3565931.019;POINT(3565931.019 5935973.212)\n"
                + "11.5820 48.1351;5336235.927, 3692248.054;5336235.927 3692248.054;POINT(3692248.054 5336235.927)\n")
        let lambert = dir.write("l93.csv", rows.joined(separator: "\n") + "\n")
        for (path, crs, minimum) in [(lambert, "EPSG:2154", 2_500), (gaussKruger, "EPSG:31467", 3)] {
            for column in ["pair", "spaced", "wkt"] {
                var config = PipelineConfig()
                config.source.path = path
                config.source.delimiter = ";"
                config.report.dir = dir.path
                config.properties.label = "label"
                config.coordinates.point = column
                config.coordinates.crs = crs
                var options = RunOptions()
                options.output = dir.path + "/out.geojson"
                let summary = try await Pipeline(config: config, options: options).run()
                #expect(summary.imported >= minimum && summary.imported == summary.rowsRead, "\(crs) \(column)")
                var far: [String] = []
                for feature in JSONParser.parse(Array(dir.read("out.geojson").utf8))?["features"]?.array ?? [] {
                    let want = (feature["properties"]?["label"]?.string ?? "").split(separator: " ").compactMap {
                        Double($0)
                    }
                    let got = feature["geometry"]?["coordinates"]?.array?.compactMap(\.number) ?? []
                    if want.count != 2 || got.count != 2 || greatCircleMetres((got[0], got[1]), (want[0], want[1])) > 1
                    {
                        far.append("\(want) -> \(got)")
                    }
                }
                #expect(far.isEmpty, "\(crs) \(column): \(far.count) more than 1 m away: \(far.prefix(3))")
            }
        }
        // The authority's order: polar systems point both axes north or south and put the easting
        // first; a compound system's horizontal part decides.
        for (system, northing) in [
            ("EPSG:2154", false), ("EPSG:31467", true), ("EPSG:3031", false), ("EPSG:3413", false),
            ("EPSG:5845", true), ("EPSG:4258", true),
        ] {
            #expect(try CoordinateTransform(from: system).northingFirst == northing, "\(system)")
        }
        // What is not a pair, and ISO 6709 (degrees by definition), are rejected naming the order.
        var config = PipelineConfig()
        config.source.path = dir.write(
            "bad.csv", "label;pair\nA;622461.2169, 6896394.0592\nB;6,2,2\nC;+48.85+002.35/\n")
        config.source.delimiter = ";"
        config.report.dir = dir.path
        config.properties.label = "label"
        config.coordinates.point = "pair"
        config.coordinates.crs = "EPSG:2154"
        var options = RunOptions()
        options.dryRun = true
        let summary = try await Pipeline(config: config, options: options).run()
        #expect(summary.imported == 1 && summary.rejectedByCode == [.invalidNumber: 2])
        let rejected = dir.read("bad.rejected.csv")
        #expect(
            rejected.contains(
                "\"\"+48.85+002.35/\"\" is not a point in EPSG:2154, expected \"\"easting, northing\"\" (its axis order)"
            ),
            "\(rejected)")
        #expect(rejected.hasSuffix(";B;6,2,2\n") || rejected.contains("B;6,2,2"))
    }

    @Test(
        "NYC 311: the State Plane feet columns with EPSG:2263, and the WKT Location column as a geometry column, land within 1 m of the file's Latitude and Longitude"
    )
    func statePlane() async throws {
        let dir = TempDir()
        let path = projectDirectory + "/../shared/corpus/plotly-datasets/311_Animals_short.csv"
        func features(_ configure: (inout PipelineConfig) -> Void) async throws -> (RunSummary, [JSONValue]) {
            var config = PipelineConfig()
            config.source.path = path
            config.report.dir = dir.path
            // Labelled by the file's own degrees, to compare.
            config.properties.label = "{Longitude} {Latitude}"
            configure(&config)
            var options = RunOptions()
            options.output = dir.path + "/out.geojson"
            let summary = try await Pipeline(config: config, options: options).run()
            let parsed = JSONParser.parse(Array(dir.read("out.geojson").utf8))?["features"]?.array ?? []
            return (summary, parsed)
        }
        func far(_ features: [JSONValue]) -> [String] {
            features.compactMap { feature in
                guard let label = feature["properties"]?["label"]?.string,
                    let coordinates = feature["geometry"]?["coordinates"]?.array, coordinates.count == 2
                else { return "no point" }
                let want = label.split(separator: " ").compactMap { Double($0) }
                guard want.count == 2 else { return label }
                let distance = greatCircleMetres((coordinates[0].number!, coordinates[1].number!), (want[0], want[1]))
                return distance > 1 ? "\(label): \(distance) m" : nil
            }
        }
        let (projected, stations) = try await features {
            $0.coordinates.longitude = "X Coordinate (State Plane)"
            $0.coordinates.latitude = "Y Coordinate (State Plane)"
            $0.coordinates.crs = "EPSG:2263"
        }
        // The corpus expects 62 rows without a location (their X and Y are blank too).
        #expect(projected.imported == 4_907 && projected.rejectedByCode == [.missingCoordinate: 62])
        #expect(stations.count == 4_907)
        let projectedFar = far(stations)
        #expect(projectedFar.isEmpty, "\(projectedFar.count) more than 1 m away: \(projectedFar.prefix(3))")

        let (wkt, points) = try await features { $0.coordinates.geometry = "Location" }
        #expect(wkt.imported == 4_907 && wkt.rejectedByCode == [.missingCoordinate: 62])
        #expect(wkt.shapes?.byType == ["Point": 4_907])
        let wktFar = far(points)
        #expect(wktFar.isEmpty, "\(wktFar.count) more than 1 m away: \(wktFar.prefix(3))")
    }

    @Test(
        "PROJ's database names the likely systems of projected points: Lambert-93, New York Long Island feet, British National Grid"
    )
    func likelySystems() throws {
        // SNCF stations (Lambert-93), NYC 311 (State Plane feet), London and Edinburgh (BNG).
        let cases: [([Double], [Double], String)] = [
            ([622_461.2169, 652_469.02, 843_742.0], [6_896_394.0592, 6_862_035.26, 6_519_000.0], "EPSG:2154"),
            ([1_017_039, 1_048_718, 987_000], [178_484, 195_665, 210_000], "EPSG:2263"),
            ([530_000, 325_000], [180_000, 673_000], "EPSG:27700"),
        ]
        for (x, y, expected) in cases {
            let started = ContinuousClock.now
            let candidates = CoordinateTransform.likelySystems(x: x, y: y)
            #expect(candidates.map(\.code).contains(expected), "\(expected): \(candidates)")
            #expect(ContinuousClock.now - started < .seconds(underSanitizer ? 60 : 15))
        }
        // Degrees are no projected system's eastings.
        #expect(CoordinateTransform.likelySystems(x: [2.35], y: [48.85]).allSatisfy { $0.code != "EPSG:2154" })
    }
}
