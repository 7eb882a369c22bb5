import Foundation
import MapsembleSandbox
import Testing

@testable import MapsembleImport

/// The closed-form inverses differentially against PROJ, over the EPSG systems of PROJ's database
/// they stand in for, on points generated across each system's area of use.
@Suite("Closed-form inverse LCC and transverse Mercator against PROJ")
struct InverseProjectionTests {
    /// EPSG projected systems of the given methods, with their area of use.
    static func systems(_ methods: [String]) -> [(code: String, area: (Double, Double, Double, Double))] {
        CoordinateTransform.projectedSystems().filter { methods.contains($0.method) }.map {
            ("EPSG:" + $0.code, ($0.west, $0.south, $0.east, $0.north))
        }
    }

    @Test(
        "every sampled EPSG LCC and TM system PROJ runs as a plain inverse projection gives PROJ's degrees within a millimetre across its area of use"
    )
    func differential() throws {
        let conic = Self.systems(["Lambert Conic Conformal (2SP)", "Lambert Conic Conformal (1SP)"])
        let transverse = Self.systems(["Transverse Mercator", "Transverse Mercator (South Orientated)"])
        #expect(conic.count > 100 && transverse.count > 500, "\(conic.count) LCC, \(transverse.count) TM")
        // Every LCC system, every seventh TM one (the UTM zones of each datum are alike), and
        // the grids files are most often in.
        let must = ["EPSG:2154", "EPSG:3946", "EPSG:2263", "EPSG:32632", "EPSG:25832", "EPSG:2193", "EPSG:32718"]
        var sampled = conic + transverse.enumerated().filter { $0.offset % 7 == 0 }.map(\.element)
        sampled += Self.systems(["Transverse Mercator"]).filter { must.contains($0.code) }
        var random = SeededGenerator(state: 21)
        var tested: Set<String> = []
        var worst = (0.0, "")
        for (code, area) in sampled {
            guard let transform = try? CoordinateTransform(from: code, closedForm: false),
                let operation = transform.operation, let closed = InverseProjection(pipeline: operation)
            else { continue }
            tested.insert(code)
            // Points across the area of use (an area across the antimeridian goes east past 180).
            let (west, south, east, north) = area
            let width = east >= west ? east - west : east + 360 - west
            var x = (0..<60).map { _ in west + Double.random(in: 0...1, using: &random) * width }
            x = x.map { $0 > 180 ? $0 - 360 : $0 }
            var y = (0..<60).map { _ in Double.random(in: south...north, using: &random) }
            let degrees = (x, y)
            x.withUnsafeMutableBufferPointer { xs in
                y.withUnsafeMutableBufferPointer { transform.fromDegrees(x: xs, y: $0) }
            }
            var (px, py) = (x, y)
            px.withUnsafeMutableBufferPointer { xs in
                py.withUnsafeMutableBufferPointer { transform.toDegrees(x: xs, y: $0) }
            }
            x.withUnsafeMutableBufferPointer { xs in
                y.withUnsafeMutableBufferPointer {
                    closed.toDegrees(x: xs.baseAddress!, y: $0.baseAddress!, step: 1, count: xs.count)
                }
            }
            for point in x.indices where px[point].isFinite && py[point].isFinite && abs(px[point]) < 1e300 {
                // PROJ's own round trip first: where it does not come back, neither side is a reference.
                guard abs(px[point] - degrees.0[point]) < 1e-7, abs(py[point] - degrees.1[point]) < 1e-7 else {
                    continue
                }
                let apart = max(abs(x[point] - px[point]), abs(y[point] - py[point]))
                if apart > worst.0 { worst = (apart, "\(code) at \(degrees.0[point]), \(degrees.1[point])") }
            }
        }
        #expect(Set(must).isSubset(of: tested), "not in closed form: \(Set(must).subtracting(tested))")
        #expect(tested.count > 300, "\(tested.count) systems in closed form")
        #expect(worst.0 <= CoordinateTransform.fastTolerance, "worst \(worst.0)° apart: \(worst.1)")
    }

    @Test("PROJ strings the closed form does not read stay with PROJ: datum shifts, grids, other projections")
    func declines() throws {
        for source in [
            "EPSG:27700", "EPSG:2056", "EPSG:28992", "EPSG:3035",
            "+proj=lcc +lat_1=49 +lat_2=44 +lat_0=46.5 +lon_0=3 +x_0=700000 +y_0=6600000 +ellps=GRS80 +towgs84=1,2,3 +units=m",
        ] {
            let transform = try CoordinateTransform(from: source)
            #expect(!transform.usesClosedForm, "\(source): \(transform.operation ?? "several operations")")
        }
        #expect(
            InverseProjection(
                pipeline:
                    "+proj=pipeline +step +inv +proj=lcc +lat_1=49 +ellps=GRS80 +pm=paris +step +proj=unitconvert +xy_in=rad +xy_out=deg"
            ) == nil)
        #expect(
            InverseProjection(
                pipeline:
                    "+proj=pipeline +step +inv +proj=tmerc +ellps=GRS80 +step +proj=axisswap +order=2,1 +step +proj=unitconvert +xy_in=rad +xy_out=deg"
            ) == nil)
        #expect(
            InverseProjection(
                pipeline:
                    "+proj=pipeline +step +inv +proj=lcc +lat_1=49 +ellps=GRS80 +step +proj=unitconvert +xy_in=rad +xy_out=deg"
            ) != nil)
    }

    @Test(
        "a point outside the transverse Mercator's domain is no point wherever it lies in its block, as with PROJ; a block whose checked points PROJ refuses goes to PROJ"
    )
    func outsideDomain() throws {
        // A PROJ string has no area of use to catch it afterwards.
        let utm = try CoordinateTransform(from: "+proj=utm +zone=31 +ellps=GRS80 +units=m +no_defs")
        #expect(utm.usesClosedForm)
        for position in [0, 7, 20, 39] {
            var x = (0..<40).map { 400_000 + Double($0) * 1000 }
            var y = (0..<40).map { 5_000_000 + Double($0) * 1000 }
            x[position] = 17_500_000
            x.withUnsafeMutableBufferPointer { xs in y.withUnsafeMutableBufferPointer { utm.toDegrees(x: xs, y: $0) } }
            #expect(x[position].isNaN && y[position].isNaN, "at \(position): \(x[position]), \(y[position])")
            let others = x.indices.filter { $0 != position }
            #expect(others.allSatisfy { abs(x[$0] - 1.7) < 1.5 && abs(y[$0] - 45.3) < 0.5 }, "at \(position)")
        }
    }
}
