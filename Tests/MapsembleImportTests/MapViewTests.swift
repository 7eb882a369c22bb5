import Foundation
import MapsembleJSON
import Testing

@testable import MapsembleMapView

@Suite("Map projection")
struct MapProjectionTests {
    @Test("Web Mercator world coordinates: the antimeridian, the equator, the square's edges")
    func worldCoordinates() {
        #expect(MapProjection.worldX(-180) == 0)
        #expect(MapProjection.worldX(180) == 1)
        #expect(MapProjection.worldX(0) == 0.5)
        #expect(abs(MapProjection.worldY(0) - 0.5) < 1e-12)
        #expect(abs(MapProjection.worldY(MapProjection.maxLatitude)) < 1e-6)
        #expect(abs(MapProjection.worldY(-MapProjection.maxLatitude) - 1) < 1e-6)
        // Beyond the square's edge: drawn on the edge, not at infinity.
        #expect(MapProjection.worldY(90) == MapProjection.worldY(MapProjection.maxLatitude))
        // Mercator stretches the north: 60° N lies higher than twice 30° N's height above the equator.
        #expect(0.5 - MapProjection.worldY(60) > 2 * (0.5 - MapProjection.worldY(30)))
    }

    @Test("An extent fits the canvas inside the margin, touching it on one axis, aspect kept")
    func fitsExtent() {
        let germany = GeoExtent(minLongitude: 5.9, minLatitude: 47.3, maxLongitude: 15.0, maxLatitude: 55.1)
        let projection = MapProjection(fitting: germany, width: 960, height: 540, margin: 24)
        let northWest = projection.pixel(longitude: 5.9, latitude: 55.1)
        let southEast = projection.pixel(longitude: 15.0, latitude: 47.3)
        for pixel in [northWest, southEast] {
            #expect(pixel.x >= 24 - 1e-9 && pixel.x <= 936 + 1e-9)
            #expect(pixel.y >= 24 - 1e-9 && pixel.y <= 516 + 1e-9)
        }
        // Germany is taller than wide in Mercator: the height is what limits the zoom.
        #expect(abs(northWest.y - 24) < 1e-6 && abs(southEast.y - 516) < 1e-6)
        // Centred horizontally.
        #expect(abs((northWest.x + southEast.x) / 2 - 480) < 1e-6)
        // One scale for both axes: a degree east is as long in pixels as Mercator says.
        let east = projection.pixel(longitude: 6.9, latitude: 55.1).x - northWest.x
        #expect(abs(east - projection.scale / 360) < 1e-9)
    }

    @Test("One point is the centre, shown with its surroundings; no points is the whole world")
    func degenerateExtents() {
        var one = GeoExtent()
        one.include(longitude: 6.96, latitude: 50.94)
        let projection = MapProjection(fitting: one, width: 960, height: 540)
        let pixel = projection.pixel(longitude: 6.96, latitude: 50.94)
        #expect(abs(pixel.x - 480) < 1e-6 && abs(pixel.y - 270) < 1e-6)
        #expect(projection.scale <= 492 / MapProjection.minimumSpan + 1e-6)
        let world = MapProjection(fitting: GeoExtent(), width: 960, height: 540)
        #expect(world.scale == 540)
        let centre = world.pixel(longitude: 0, latitude: 0)
        #expect(abs(centre.x - 480) < 1e-9 && abs(centre.y - 270) < 1e-9)
        // Points all over the world never zoom out past the whole world.
        let everywhere = GeoExtent(minLongitude: -180, minLatitude: -85, maxLongitude: 180, maxLatitude: 85)
        #expect(MapProjection(fitting: everywhere, width: 960, height: 540).scale == 540)
    }

    @Test("Lines and polygons are drawn as pixel paths; one smaller than a pixel is its dot; long paths are thinned")
    func shapes() throws {
        let square = MapOutline(paths: [[0, 0, 10, 0, 10, 10, 0, 10, 0, 0]], filled: true)
        let speck = MapOutline(paths: [[5, 5, 5.000001, 5, 5, 5.000001, 5, 5]], filled: true)
        let line = MapOutline(paths: [[0, 0, 10, 10]], filled: false)
        let picture = MapPicture(
            layers: [
                MapLayer(
                    key: "passed", label: "imported", color: "#2563eb", total: 3,
                    points: [
                        MapPoint(longitude: 0, latitude: 0, line: 2, outline: square),
                        MapPoint(longitude: 5, latitude: 5, line: 3, outline: speck),
                        MapPoint(longitude: 0, latitude: 0, line: 4, outline: line),
                    ])
            ], width: 200, height: 200)
        let json = try #require(JSONParser.parse(Array(picture.json().utf8)))
        let shapes = try #require(json["layers"]?.array?.first?["shapes"]?.array)
        #expect(shapes.count == 2, "the speck is left to its dot")
        #expect(shapes[0].array?.first?.number == 1 && shapes[1].array?.first?.number == 0)
        // The square's ring: 5 positions, closed, the extent fitted inside the canvas.
        let ring = (shapes[0].array?[1].array ?? []).compactMap { $0.number }
        #expect(ring.count == 10 && ring[0] == ring[8] && ring[1] == ring[9])
        #expect(ring.allSatisfy { $0 >= 0 && $0 <= 200 })
        // A path of 10,000 positions keeps 128, its ends among them.
        let long = MapOutline(paths: [(0..<10_000).flatMap { [Double($0) / 1000, 0] }], filled: false)
        #expect(long.paths[0].count == 256 && long.paths[0].suffix(2) == [9.999, 0])
    }

    @Test("An extent ignores points off the Earth")
    func extentIgnoresOffEarth() {
        var extent = GeoExtent()
        extent.include(longitude: 10, latitude: 50)
        extent.include(longitude: 50, latitude: 122)
        extent.include(longitude: .nan, latitude: 1)
        #expect(extent == GeoExtent(minLongitude: 10, minLatitude: 50, maxLongitude: 10, maxLatitude: 50))
    }

    @Test("The scale bar is a round distance about a fifth of the width")
    func scaleBar() throws {
        let germany = GeoExtent(minLongitude: 5.9, minLatitude: 47.3, maxLongitude: 15.0, maxLatitude: 55.1)
        let projection = MapProjection(fitting: germany, width: 960, height: 540)
        let bar = try #require(MapPicture.scaleBar(projection))
        #expect(["100 km", "200 km", "500 km"].contains(bar.label))
        let metres = Double(bar.label.split(separator: " ")[0])! * 1000
        #expect(abs(Double(bar.pixels) / 960 * projection.metresAcross - metres) < metres * 0.01)
        #expect(bar.pixels > 960 / 12 && bar.pixels <= 960 / 5 + 1)
    }
}

@Suite("Point sampling")
struct PointSampleTests {
    @Test("Fewer points than the capacity are all kept, in order")
    func keepsAllWhenFew() {
        var sample = PointReservoir(capacity: 100)
        for line in 1...40 { sample.offer { MapPoint(longitude: 0, latitude: 0, line: line) } }
        #expect(sample.points.map(\.line) == Array(1...40))
        #expect(sample.seen == 40)
    }

    @Test("Every point has the same chance: the sample of 200,000 is spread evenly over the stream")
    func uniform() {
        var sample = PointReservoir(capacity: 2000, seed: 42)
        var built = 0
        for line in 0..<200_000 {
            sample.offer {
                built += 1
                return MapPoint(longitude: 0, latitude: 0, line: line)
            }
        }
        #expect(sample.points.count == 2000)
        #expect(Set(sample.points.map(\.line)).count == 2000)
        // Ten equal stretches of the stream: each should hold about 200 of the 2000.
        var deciles = [Int](repeating: 0, count: 10)
        for point in sample.points { deciles[point.line / 20_000] += 1 }
        #expect(deciles.allSatisfy { (140...260).contains($0) }, "\(deciles)")
        // Chi-square over the ten stretches stays well under its 0.1 % critical value (27.9).
        let chiSquare = deciles.reduce(0.0) { $0 + pow(Double($1) - 200, 2) / 200 }
        #expect(chiSquare < 27.9)
        // Points are built only when kept: about capacity × (1 + ln(n / capacity)), not n.
        #expect(built < 2000 * (1 + Int(log(100.0).rounded(.up))) * 2)
        #expect(built >= 2000)
    }

    @Test("A removed point leaves the sample, and the sample fills up again")
    func removal() {
        var sample = PointReservoir(capacity: 10)
        for line in 1...10 { sample.offer { MapPoint(longitude: 0, latitude: 0, line: line) } }
        sample.remove(line: 3)
        sample.remove(line: 99)
        #expect(sample.points.count == 9)
        #expect(!sample.points.contains { $0.line == 3 })
        for line in 11...5000 { sample.offer { MapPoint(longitude: 0, latitude: 0, line: line) } }
        #expect(sample.points.count == 10)
        #expect(Set(sample.points.map(\.line)).count == 10)
    }
}

@Suite("Map picture")
struct MapPictureTests {
    @Test("Density cells add up to the points on the canvas, one cell per pixel")
    func cells() {
        let projection = MapProjection(
            fitting: GeoExtent(minLongitude: 0, minLatitude: 0, maxLongitude: 10, maxLatitude: 10), width: 200,
            height: 100)
        var points = (0..<500).map { MapPoint(longitude: Double($0 % 10), latitude: Double($0 % 7), line: $0) }
        points.append(MapPoint(longitude: 150, latitude: -60, line: 999))  // off the canvas
        let cells = MapPicture.cells(points, projection)
        #expect(cells.count % 3 == 0)
        var total = 0
        var pixels: [Int] = []
        for index in stride(from: 0, to: cells.count, by: 3) {
            total += cells[index + 2]
            pixels.append(cells[index + 1] * 200 + cells[index])
        }
        #expect(total == 500)
        #expect(Set(pixels).count == pixels.count)
        #expect(pixels == pixels.sorted())
    }

    @Test("The picture's JSON parses, holds the land outline, and puts a swapped row's line between its two places")
    func json() throws {
        let swapped = MapPoint(longitude: 50.9, latitude: 6.9, line: 7, swapped: (6.9, 50.9))
        let picture = MapPicture(
            layers: [
                MapLayer(
                    key: "imported", label: "imported", color: "#2563eb", total: 2,
                    points: [
                        MapPoint(longitude: 7, latitude: 51, line: 2), MapPoint(longitude: 9, latitude: 53, line: 3),
                    ], density: true),
                MapLayer(
                    key: "coordinates_swapped", label: "swapped </script>", color: "#dc2626", total: 1,
                    points: [swapped]),
            ], caption: "a \"caption\"")
        let text = picture.json()
        #expect(!text.contains("</script>"))
        let object = try #require(JSONValue.parse(Array(text.utf8)))
        #expect(object["caption"]?.string == "a \"caption\"")
        let land = try #require(object["land"]?.string)
        #expect(land.hasPrefix("M") && land.contains("Z"))
        let layers = try #require(object["layers"]?.array)
        #expect(layers.count == 2)
        #expect(layers[1]["label"]?.string == "swapped </script>")
        let dots = layers[1]["points"]?.array?.compactMap { $0.integer } ?? []
        let pairs = layers[1]["pairs"]?.array?.compactMap { $0.integer } ?? []
        #expect(dots.count == 3 && dots[2] == 7)
        #expect(pairs.count == 4)
        let projection = picture.projection
        let stated = projection.pixel(longitude: 50.9, latitude: 6.9)
        let fixed = projection.pixel(longitude: 6.9, latitude: 50.9)
        #expect(pairs == [stated.x, stated.y, fixed.x, fixed.y].map { Int($0.rounded()) })
        // The Horn of Africa is south-east of Germany on the canvas.
        #expect(pairs[0] > pairs[2] && pairs[1] > pairs[3])
    }

    @Test("The world outline decodes to the 1:110m land rings")
    func outline() {
        #expect(WorldOutline.rings.count > 100)
        let points = WorldOutline.rings.reduce(0) { $0 + $1.count }
        #expect(points > 4000)
        #expect(WorldOutline.rings.allSatisfy { ring in ring.allSatisfy { abs($0.0) <= 180 && abs($0.1) <= 90 } })
    }
}
