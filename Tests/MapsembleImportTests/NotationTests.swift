import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import MapsembleImport

@Suite("Coordinate notations: DMS, DDM, hemispheres, points in one field, ISO 6709, WKT")
struct NotationTests {
    static func sexagesimal(_ text: String, separator: Character = ".") -> Coordinate? {
        var text = text
        return text.withUTF8 {
            CoordinateText.sexagesimal(UnsafeRawBufferPointer($0), separator: separator.asciiValue!)
        }
    }

    @Test(
        "degrees, minutes, seconds and hemisphere letters in the forms people write them",
        arguments: [
            ("51°53'00.9\"N", 51.883583, CoordinateNotation.dms),
            ("51-53-00.8954N", 51.883582, .dms),
            ("0-07-39.4W", -0.127611, .dms),
            ("51 53 00.9 N", 51.883583, .dms),
            ("-33°52′04″", -33.867778, .dms),
            ("51d 53m 00s", 51.883333, .dms),
            ("N 51° 53.015'", 51.883583, .ddm),
            ("51°53.015′S", -51.883583, .ddm),
            ("51.88N", 51.88, .decimalHemisphere),
            ("W 0.5", -0.5, .decimalHemisphere),
            ("51°", 51, .decimal),
            ("6°57,5'E", 6.958333, .ddm),
        ])
    func reads(_ text: String, _ expected: Double, _ notation: CoordinateNotation) throws {
        let coordinate = try #require(Self.sexagesimal(text, separator: ","))
        #expect(abs(coordinate.value - expected) < 0.000001, "\(coordinate.value)")
        #expect(coordinate.notation == notation)
    }

    @Test(
        "garbage and plain numbers are not sexagesimal",
        arguments: ["", "N", "abc", "12", "51-75-00N", "51.5.3N", "51°53'x", "51 53 00 12", "5°4.5'3\""])
    func rejects(_ text: String) {
        #expect(Self.sexagesimal(text) == nil)
    }

    static func point(_ text: String) -> (latitude: String, longitude: String, notation: CoordinateNotation?)? {
        var text = text
        return text.withUTF8 { bytes in
            CoordinateText.splitPoint(UnsafeRawBufferPointer(bytes)).map {
                (
                    String(decoding: $0.latitude, as: UTF8.self), String(decoding: $0.longitude, as: UTF8.self),
                    $0.notation
                )
            }
        }
    }

    @Test("a field holding both coordinates: latitude first, WKT longitude first, ISO 6709 packed")
    func points() throws {
        for text in ["48.8566, 2.3522", "(48.8566, 2.3522)", "48.8566 2.3522", "[48.8566;2.3522]"] {
            let parts = try #require(Self.point(text), "\(text)")
            #expect(parts.latitude == "48.8566" && parts.longitude == "2.3522" && parts.notation == nil, "\(text)")
        }
        for text in ["POINT(2.3522 48.8566)", "point (2.3522 48.8566)"] {
            let parts = try #require(Self.point(text))
            #expect(parts.latitude == "48.8566" && parts.longitude == "2.3522" && parts.notation == .wkt)
        }
        let iso = try #require(Self.point("+48.8566+002.3522/"))
        #expect(iso.latitude == "+48.8566" && iso.longitude == "+002.3522" && iso.notation == .iso6709)
        #expect(Self.point("hello") == nil)
        #expect(Self.point("48.85") == nil)
    }

    @Test(
        "ISO 6709 degrees, degrees-minutes and degrees-minutes-seconds, packed",
        arguments: [
            ("+48.8566", 2, 48.8566), ("+4851", 2, 48.85), ("-485124", 2, -48.856667), ("+002.3522", 3, 2.3522),
            ("+00221", 3, 2.35), ("-0022108", 3, -2.352222),
        ])
    func iso6709(_ text: String, _ degreeDigits: Int, _ expected: Double) throws {
        var text = text
        let coordinate = try #require(
            text.withUTF8 { CoordinateText.iso6709(UnsafeRawBufferPointer($0), degreeDigits: degreeDigits) })
        #expect(abs(coordinate.value - expected) < 0.000001)
    }

    @Test("degrees computed from other notations are written with seven decimals at most")
    func writing() {
        func written(_ value: Double) -> String {
            var out: [UInt8] = []
            CoordinateText.appendDegrees(value, to: &out)
            return String(decoding: out, as: UTF8.self)
        }
        #expect(written(51.883583333) == "51.8835833")
        #expect(written(-0.5) == "-0.5")
        #expect(written(2) == "2")
        #expect(written(-0.00000001) == "0")
        #expect(written(0.0000012) == "0.0000012")
        #expect(written(1e12) == "1000000000000")
        // Against plain text building, on generated values; a pair is the two values and a comma.
        var random = SystemRandomNumberGenerator()
        for round in 0..<20_000 {
            let magnitude = pow(10, Double.random(in: -9...(round % 2 == 0 ? 3 : 10), using: &random))
            let value = Bool.random(using: &random) ? magnitude : -magnitude
            let scaled = UInt64((abs(value) * 10_000_000).rounded())
            var fraction = String(scaled % 10_000_000)
            fraction = String(repeating: "0", count: 7 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            let expected =
                (value < 0 && scaled != 0 ? "-" : "") + String(scaled / 10_000_000)
                + (fraction.isEmpty ? "" : "." + fraction)
            #expect(written(value) == expected, "\(value)")
            var pair: [UInt8] = []
            CoordinateText.appendDegrees(value, -value / 3, to: &pair)
            #expect(String(decoding: pair, as: UTF8.self) == expected + "," + written(-value / 3), "\(value)")
        }
    }

    @Test("end to end: a point column in three forms, DMS columns, hemisphere letters on the wrong axes")
    func pipeline() async throws {
        let dir = TempDir()
        var config = PipelineConfig()
        config.report.dir = dir.path
        var options = RunOptions()
        options.output = dir.path + "/out.geojson"

        config.source.path = dir.write(
            "points.csv",
            "name;where\nA;(50.94, 6.96)\nB;POINT(6.95 50.93)\nC;+5056+00657/\nD;somewhere\nE;\n")
        config.coordinates.point = "where"
        let points = try await Pipeline(config: config, options: options).run()
        #expect(points.imported == 3)
        #expect(points.rejectedByCode == [.invalidNumber: 1, .missingCoordinate: 1])
        #expect(points.notations == [.decimal: 1, .wkt: 1, .iso6709: 1])
        let output = dir.read("out.geojson")
        #expect(output.contains("[6.96,50.94]"))
        #expect(output.contains("[6.95,50.93]"))
        #expect(output.contains("[6.95,50.9333333]"))

        config.coordinates.point = nil
        config.source.path = dir.write(
            "dms.csv",
            "name,lat,lon\nA,50°56'N,6°57'E\nB,6°57'E,50°56'N\nC,50.5,7.25\n")
        let dms = try await Pipeline(config: config, options: options).run()
        #expect(dms.imported == 2)
        #expect(dms.rejectedByCode == [.coordinatesSwapped: 1])
        #expect(dms.notations == [.ddm: 1, .decimal: 1])
        #expect(dir.read("dms.rejected.csv").contains("east/west letter"))
        config.coordinates.swapped = .fix
        let fixed = try await Pipeline(config: config, options: options).run()
        #expect(fixed.imported == 3)
        #expect(dir.read("out.geojson").components(separatedBy: "[6.95,50.9333333]").count == 3)
    }

    @Test("decimal auto: a semicolon file reads 50,94 and 50.94 alike; a comma file only the point")
    func decimalAuto() async throws {
        let dir = TempDir()
        var config = PipelineConfig()
        config.report.dir = dir.path
        config.source.path = dir.write("mixed.csv", "name;lat;lon\nA;50,94;6,96\nB;50.5;7.25\n")
        let summary = try await Pipeline(config: config, options: RunOptions()).run()
        #expect(summary.imported == 2)
        #expect(summary.notations == [.decimalComma: 1, .decimal: 1])
        config.source.decimal = "point"
        let strict = try await Pipeline(config: config, options: RunOptions()).run()
        #expect(strict.rejectedByCode == [.invalidNumber: 1])
    }

    @Test("columns swapped in the whole file: reject stops before sending with the evidence, fix swaps and says so")
    func swappedFile() async throws {
        let dir = TempDir()
        var config = PipelineConfig()
        config.report.dir = dir.path
        config.source.path = dir.write(
            "swapped.csv", "name,lat,lon\nSydney,151.21,-33.87\nPerth,115.86,-31.95\nHobart,147.33,-42.88\n")
        await #expect {
            try await Pipeline(config: config, options: RunOptions()).run()
        } throws: { error in
            let text = (error as? ImportError)?.description ?? ""
            return text.contains("look swapped") && text.contains("\"lat\" runs to 151.21")
        }
        config.coordinates.swapped = .fix
        let notices = NIOLockedValueBox<[String]>([])
        var options = RunOptions()
        options.output = dir.path + "/out.geojson"
        let fixed = try await Pipeline(config: config, options: options).run(log: { event in
            if event.level == .notice { notices.withLockedValue { $0.append(event.message) } }
        })
        #expect(fixed.imported == 3)
        #expect(dir.read("out.geojson").contains("[151.21,-33.87]"))
        #expect(notices.withLockedValue { $0 }.contains { $0.contains("columns are swapped") })
        config.coordinates.swapped = .off
        let off = try await Pipeline(config: config, options: RunOptions()).run()
        #expect(off.rejectedByCode == [.latitudeOutOfRange: 3])
    }
}

@Suite("Points in one field: every sign, separator and decimal mark, read from the whole value's shape")
struct PointFieldTests {
    /// A point column in a file whose delimiter is not a comma (`decimal: auto` reads both marks).
    let validator = Validator(
        longitudeColumn: 0, latitudeColumn: 0, pointColumn: 0, header: ["point"],
        alternateSeparator: UInt8(ascii: ","))

    func read(_ text: String) -> (longitude: Double, latitude: Double)? {
        var text = text
        return text.withUTF8 { bytes in
            guard case .accepted(let lon, let lat, false) = validator.checkPoint(UnsafeRawBufferPointer(bytes))
            else { return nil }
            return (lon.value, lat.value)
        }
    }

    /// Every way a pair of `latitude`, `longitude` texts is written in one field.
    static func forms(_ lat: String, _ lon: String) -> [String] {
        [
            "\(lat), \(lon)", "\(lat),\(lon)", "\(lat) \(lon)", "(\(lat), \(lon))", "[\(lat);\(lon)]",
            " \(lat) ;  \(lon) ",
        ]
    }

    @Test(
        "\"lat, lon\", \"lat lon\", (lat, lon) and [lat;lon] with all four sign combinations",
        arguments: [(-38.183646, -16.774028), (-38.183646, 16.774028), (38.183646, -16.774028), (38.183646, 16.774028)])
    func signs(_ latitude: Double, _ longitude: Double) throws {
        for plus in [false, true] {
            func text(_ value: Double) -> String { (plus && value > 0 ? "+" : "") + String(value) }
            for form in Self.forms(text(latitude), text(longitude)) {
                let point = try #require(read(form), "\(form)")
                #expect(point.latitude == latitude && point.longitude == longitude, "\(form)")
            }
        }
        // Decimal commas: in the forms whose separator is not a bare comma.
        let lat = String(latitude).replacingOccurrences(of: ".", with: ",")
        let lon = String(longitude).replacingOccurrences(of: ".", with: ",")
        for form in ["\(lat), \(lon)", "\(lat) \(lon)", "(\(lat) ; \(lon))", "[\(lat);\(lon)]", "\(lat),\(lon)"] {
            let point = try #require(read(form), "\(form)")
            #expect(point.latitude == latitude && point.longitude == longitude, "\(form)")
        }
    }

    @Test(
        "ISO 6709 beside them: packed, signed, with or without the slash and an altitude",
        arguments: [
            ("-38.183646-016.774028/", -38.183646, -16.774028), ("+38.183646+016.774028/", 38.183646, 16.774028),
            ("-3811+01646/", -38.183333, 16.766667), ("+381101-0164627", 38.183611, -16.774167),
            ("-33.8688+151.2093+58/", -33.8688, 151.2093),
        ])
    func iso(_ text: String, _ latitude: Double, _ longitude: Double) throws {
        let point = try #require(read(text), "\(text)")
        #expect(abs(point.latitude - latitude) < 1e-6 && abs(point.longitude - longitude) < 1e-6, "\(text)")
        var bytes = Array(text.utf8)
        let notation = bytes.withUnsafeMutableBytes { CoordinateText.splitPoint(UnsafeRawBufferPointer($0))?.notation }
        #expect(notation == .iso6709)
    }

    @Test("a pair with spaces or a comma is never ISO 6709, whatever its signs")
    func pairsAreNotISO() {
        for text in ["-38.18, -16.77", "-38.18 -16.77", "+38.18,+16.77", "-38.18;-16.77"] {
            var bytes = Array(text.utf8)
            let parts = bytes.withUnsafeMutableBytes { CoordinateText.splitPoint(UnsafeRawBufferPointer($0)) }
            #expect(parts != nil && parts?.notation == nil, "\(text)")
        }
    }

    /// Generated points (seeded), every form, sign and decimal mark: each reads back as written.
    @Test("round trip: generated points written in every form read back to the same value")
    func roundTrip() throws {
        var generator = SplitMix(seed: 6709)
        for _ in 0..<2000 {
            let decimals = Int.random(in: 0...7, using: &generator)
            func value(_ limit: Double) -> Double {
                let scale = pow(10, Double(decimals))
                return (Double.random(in: -limit...limit, using: &generator) * scale).rounded() / scale
            }
            let latitude = value(90)
            let longitude = value(180)
            guard latitude != 0 || longitude != 0 else { continue }
            func text(_ value: Double, comma: Bool, plus: Bool) -> String {
                var text = String(format: "%.\(decimals)f", value)
                if plus && !text.hasPrefix("-") { text = "+" + text }
                return comma ? text.replacingOccurrences(of: ".", with: ",") : text
            }
            let plus = Bool.random(using: &generator)
            var forms = Self.forms(
                text(latitude, comma: false, plus: plus), text(longitude, comma: false, plus: plus))
            let lat = text(latitude, comma: true, plus: plus)
            let lon = text(longitude, comma: true, plus: plus)
            forms += ["\(lat); \(lon)", "\(lat) \(lon)", "(\(lat), \(lon))"]
            for form in forms {
                let point = try #require(read(form), "\(form)")
                #expect(abs(point.latitude - latitude) < 1e-9 && abs(point.longitude - longitude) < 1e-9, "\(form)")
            }
        }
    }
}

/// A small seeded generator, so that a failing generated case is the same on every run.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
