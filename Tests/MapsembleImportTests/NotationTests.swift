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
