import Foundation

/// One kind of point on a map: the imported rows, or the rows of one reject code.
public struct MapLayer: Sendable {
    public var key: String
    public var label: String
    /// A CSS colour.
    public var color: String
    /// Rows of this kind in all (the layer may show a sample of them).
    public var total: Int
    public var points: [MapPoint]
    /// Drawn as a density of pixels (many points, no lines to point at) rather than as dots one
    /// can hover.
    public var density: Bool
    /// Lines and polygons drawn besides the points (a sample of their own), with the outlines
    /// the points carry.
    public var shapes: [MapOutline]

    public init(
        key: String, label: String, color: String, total: Int, points: [MapPoint], density: Bool = false,
        shapes: [MapOutline] = []
    ) {
        self.key = key
        self.label = label
        self.color = color
        self.total = total
        self.points = points
        self.density = density
        self.shapes = shapes
    }

    /// Every outline of the layer.
    var outlines: [MapOutline] { points.compactMap(\.outline) + shapes }
}

/// The layers of a map, projected onto a canvas and written as the JSON the page's script draws:
/// the land outline as an SVG path, density layers as pixel cells with counts, point layers as
/// dots with their input lines (and, for swapped rows, a line to where they would land).
public struct MapPicture: Sendable {
    public var layers: [MapLayer]
    public var width: Int
    public var height: Int
    /// A line under the map (what is shown of how much).
    public var caption: String

    public init(layers: [MapLayer], width: Int = 960, height: Int = 540, caption: String = "") {
        self.layers = layers
        self.width = width
        self.height = height
        self.caption = caption
    }

    /// Every point drawn, swapped positions included.
    public var extent: GeoExtent {
        var extent = GeoExtent()
        for layer in layers {
            for point in layer.points {
                extent.include(longitude: point.longitude, latitude: point.latitude)
                if let swapped = point.swapped {
                    extent.include(longitude: swapped.longitude, latitude: swapped.latitude)
                }
            }
            for outline in layer.outlines {
                for path in outline.paths {
                    var index = 0
                    while index + 1 < path.count {
                        extent.include(longitude: path[index], latitude: path[index + 1])
                        index += 2
                    }
                }
            }
        }
        return extent
    }

    public var projection: MapProjection { MapProjection(fitting: extent, width: width, height: height) }

    /// The picture as JSON: `{"w", "h", "caption", "land", "scale": {"px", "label"}, "layers": [...]}`.
    public func json() -> String {
        let projection = projection
        var out = "{\"w\":\(width),\"h\":\(height),\"caption\":\(Self.quoted(caption)),\"land\":\""
        out += Self.landPath(projection)
        out += "\""
        if let bar = Self.scaleBar(projection) {
            out += ",\"scale\":{\"px\":\(bar.pixels),\"label\":\(Self.quoted(bar.label))}"
        }
        out += ",\"layers\":["
        for (number, layer) in layers.enumerated() {
            if number > 0 { out += "," }
            out += "{\"key\":\(Self.quoted(layer.key)),\"label\":\(Self.quoted(layer.label))"
            out += ",\"color\":\(Self.quoted(layer.color)),\"total\":\(layer.total),\"shown\":\(layer.points.count)"
            let shapes = Self.shapes(layer.outlines, projection)
            if !shapes.isEmpty { out += ",\"shapes\":[" + shapes.joined(separator: ",") + "]" }
            if layer.density {
                out += ",\"cells\":["
                out.appendJoined(Self.cells(layer.points, projection))
                out += "]"
            } else {
                var dots: [Int] = []
                var pairs: [Int] = []
                for point in layer.points {
                    let pixel = projection.pixel(longitude: point.longitude, latitude: point.latitude)
                    let onEarth = abs(point.latitude) <= 90 && abs(point.longitude) <= 180
                    if onEarth && projection.contains(x: pixel.x, y: pixel.y, slack: 4) {
                        dots += [Int(pixel.x.rounded()), Int(pixel.y.rounded()), point.line]
                    }
                    if let swapped = point.swapped {
                        // From where the row says to where it would be read the other way round
                        // (a line of no length when where it says is not on Earth).
                        let other = projection.pixel(longitude: swapped.longitude, latitude: swapped.latitude)
                        let from = onEarth ? pixel : other
                        pairs += [
                            Int(from.x.rounded()), Int(from.y.rounded()), Int(other.x.rounded()),
                            Int(other.y.rounded()),
                        ]
                    }
                }
                out += ",\"points\":["
                out.appendJoined(dots)
                out += "]"
                if !pairs.isEmpty {
                    out += ",\"pairs\":["
                    out.appendJoined(pairs)
                    out += "]"
                }
            }
            out += "}"
        }
        out += "]}"
        return out
    }

    /// Pixels a page's shapes may hold in all; shapes past it are drawn as their points only.
    static let shapePixels = 200_000

    /// The layer's lines and polygons in pixels: `[filled, [x, y, …], …]` per shape spanning
    /// more than a pixel (a smaller one is its dot); positions rounding to the pixel before
    /// them are left out.
    static func shapes(_ outlines: [MapOutline], _ projection: MapProjection) -> [String] {
        var shapes: [String] = []
        var budget = shapePixels
        for outline in outlines {
            guard budget > 0 else { break }
            var paths: [[Int]] = []
            var spans = false
            for path in outline.paths {
                var pixels: [Int] = []
                var index = 0
                while index + 1 < path.count {
                    let pixel = projection.pixel(longitude: path[index], latitude: path[index + 1])
                    let x = Int(pixel.x.rounded())
                    let y = Int(pixel.y.rounded())
                    if pixels.count < 2 || pixels[pixels.count - 2] != x || pixels[pixels.count - 1] != y {
                        pixels += [x, y]
                    }
                    index += 2
                }
                if pixels.count > 2 { spans = true }
                paths.append(pixels)
            }
            guard spans else { continue }
            budget -= paths.reduce(0) { $0 + $1.count / 2 }
            var text = outline.filled ? "[1" : "[0"
            for path in paths {
                text += ",["
                text.appendJoined(path)
                text += "]"
            }
            shapes.append(text + "]")
        }
        return shapes
    }

    /// Points binned to pixels: `x, y, count` per pixel holding any, in row order.
    static func cells(_ points: [MapPoint], _ projection: MapProjection) -> [Int] {
        // A count per pixel of the canvas (2 MB at most): already in row order, unlike a dictionary.
        var counts = [Int32](repeating: 0, count: projection.width * projection.height)
        var occupied = 0
        for point in points {
            let pixel = projection.pixel(longitude: point.longitude, latitude: point.latitude)
            guard projection.contains(x: pixel.x, y: pixel.y) else { continue }
            let key = Int(pixel.y) * projection.width + Int(pixel.x)
            if counts[key] == 0 { occupied += 1 }
            counts[key] += 1
        }
        var cells: [Int] = []
        cells.reserveCapacity(occupied * 3)
        for key in counts.indices where counts[key] > 0 {
            cells.append(key % projection.width)
            cells.append(key / projection.width)
            cells.append(Int(counts[key]))
        }
        return cells
    }

    /// The world outline as an SVG path in the canvas' pixels: rings wholly off the canvas are
    /// left out, points that round to the pixel before them too.
    static func landPath(_ projection: MapProjection) -> String {
        var path = ""
        for ring in WorldOutline.rings {
            var pixels: [(Int, Int)] = []
            var minX = Double.infinity
            var minY = Double.infinity
            var maxX = -Double.infinity
            var maxY = -Double.infinity
            for (longitude, latitude) in ring {
                let pixel = projection.pixel(longitude: longitude, latitude: latitude)
                minX = min(minX, pixel.x)
                maxX = max(maxX, pixel.x)
                minY = min(minY, pixel.y)
                maxY = max(maxY, pixel.y)
                let rounded = (Int(pixel.x.rounded()), Int(pixel.y.rounded()))
                if pixels.last.map({ $0 != rounded }) ?? true { pixels.append(rounded) }
            }
            guard maxX >= 0, maxY >= 0, minX <= Double(projection.width), minY <= Double(projection.height),
                pixels.count >= 3
            else { continue }
            for (index, (x, y)) in pixels.enumerated() { path += "\(index == 0 ? "M" : "L")\(x) \(y)" }
            path += "Z"
        }
        return path
    }

    /// A round distance about a fifth of the map's width, and its length in pixels.
    static func scaleBar(_ projection: MapProjection) -> (pixels: Int, label: String)? {
        let across = projection.metresAcross
        guard across.isFinite, across > 0 else { return nil }
        let target = across / 5
        let magnitude = pow(10, floor(log10(target)))
        let step = [5.0, 2, 1].map { $0 * magnitude }.first { $0 <= target } ?? magnitude
        let pixels = Int((step / across * Double(projection.width)).rounded())
        let label = step >= 1000 ? "\(Int(step / 1000)) km" : "\(Int(step)) m"
        return (pixels, label)
    }

    /// A JSON string, safe inside an HTML `<script>` element too.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

extension WorldOutline {
    /// The rings as longitude/latitude pairs in degrees: `x,y` pairs in tenths of a degree,
    /// separated by spaces, rings by `|` (read byte by byte: splitting the text as `Character`s
    /// took 11 ms of every report).
    public static let rings: [[(Double, Double)]] = {
        var rings: [[(Double, Double)]] = []
        var ring: [(Double, Double)] = []
        var x: Int?
        var value = 0
        var negative = false
        var digits = 0
        func number() -> Int? {
            defer { (value, negative, digits) = (0, false, 0) }
            return digits > 0 ? (negative ? -value : value) : nil
        }
        func endPair() {
            if let longitude = x, let latitude = number() {
                ring.append((Double(longitude) / 10, Double(latitude) / 10))
            }
            x = nil
        }
        for byte in encoded.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
            case UInt8(ascii: "-"): negative = true
            case UInt8(ascii: ","): x = number()
            case UInt8(ascii: " "): endPair()
            case UInt8(ascii: "|"):
                endPair()
                if !ring.isEmpty { rings.append(ring) }
                ring = []
            default: break
            }
        }
        endPair()
        if !ring.isEmpty { rings.append(ring) }
        return rings
    }()
}

extension String {
    /// Appends the numbers separated by commas, through one byte buffer (a number's text is a
    /// small string: no allocation each).
    mutating func appendJoined(_ numbers: [Int]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(numbers.count * 5)
        for (index, number) in numbers.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(contentsOf: String(number).utf8)
        }
        append(String(decoding: bytes, as: UTF8.self))
    }
}
