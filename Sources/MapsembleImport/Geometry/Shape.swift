/// A geometry read from a cell (WKT, EWKT, hex WKB or GeoJSON), as flat arrays: what the checks
/// and the GeoJSON writer work on. One value is reused row after row (`reset`), so reading a
/// geometry allocates nothing once the arrays have grown.
///
/// Vertices are `xy` (x, y back to back). Paths are runs of vertices: a point or a member of a
/// multipoint is a path of one vertex, a line a path, a polygon's rings are paths (exterior
/// first). `polygonEnds` groups rings into polygons.
struct Shape {
    enum Kind: Int, CaseIterable, Sendable {
        case point, lineString, polygon, multiPoint, multiLineString, multiPolygon

        /// The GeoJSON `type`.
        var name: String {
            switch self {
            case .point: "Point"
            case .lineString: "LineString"
            case .polygon: "Polygon"
            case .multiPoint: "MultiPoint"
            case .multiLineString: "MultiLineString"
            case .multiPolygon: "MultiPolygon"
            }
        }

        var isPolygonal: Bool { self == .polygon || self == .multiPolygon }
        var isLinear: Bool { self == .lineString || self == .multiLineString }
        var isPuntal: Bool { self == .point || self == .multiPoint }
    }

    var kind = Kind.point
    /// x and y of every vertex, back to back (longitude and latitude once in degrees).
    var xy: [Double] = []
    /// Per number of `xy`: the start and end of its text in the cell when that text is already
    /// JSON (written as it is, keeping the file's digits); start -1 when it is not, or when the
    /// geometry was read from binary or computed.
    var texts: [Int32] = []
    /// End (a vertex index) of each path.
    var pathEnds: [Int] = []
    /// End (a path index) of each polygon; empty unless `kind.isPolygonal`.
    var polygonEnds: [Int] = []
    /// EWKT's `SRID=` or EWKB's SRID, when the cell gives one.
    var srid: Int?
    /// Z or M values were present and dropped.
    var droppedDimensions = false
    /// Numbers no longer those of the file (reprojected, repaired): written with 7 decimals.
    var computed = false

    var vertexCount: Int { xy.count / 2 }

    mutating func reset() {
        kind = .point
        xy.removeAll(keepingCapacity: true)
        texts.removeAll(keepingCapacity: true)
        pathEnds.removeAll(keepingCapacity: true)
        polygonEnds.removeAll(keepingCapacity: true)
        srid = nil
        droppedDimensions = false
        computed = false
    }

    func pathRange(_ path: Int) -> Range<Int> { (path == 0 ? 0 : pathEnds[path - 1])..<pathEnds[path] }

    func polygonRange(_ polygon: Int) -> Range<Int> {
        (polygon == 0 ? 0 : polygonEnds[polygon - 1])..<polygonEnds[polygon]
    }

    /// Ends the current path at the last vertex added.
    mutating func endPath() { pathEnds.append(vertexCount) }

    /// Twice the signed area of a ring (positive: counter-clockwise with x east and y north).
    func signedArea(_ path: Int) -> Double {
        let range = pathRange(path)
        guard range.count >= 3 else { return 0 }
        var sum = 0.0
        xy.withUnsafeBufferPointer { xy in
            let x0 = xy[2 * range.lowerBound]
            let y0 = xy[2 * range.lowerBound + 1]
            for vertex in range.dropFirst().dropLast() {
                // Relative to the first vertex: the same area with less rounding.
                let ax = xy[2 * vertex] - x0
                let ay = xy[2 * vertex + 1] - y0
                let bx = xy[2 * vertex + 2] - x0
                let by = xy[2 * vertex + 3] - y0
                sum += ax * by - bx * ay
            }
        }
        return sum
    }

    /// RFC 7946's right-hand rule: exterior rings counter-clockwise, holes clockwise. Rings the
    /// other way round are reversed; returns how many were.
    @discardableResult
    mutating func orientRings() -> Int {
        guard kind.isPolygonal else { return 0 }
        var reversed = 0
        for polygon in polygonEnds.indices {
            for path in polygonRange(polygon) {
                let area = signedArea(path)
                let exterior = path == polygonRange(polygon).lowerBound
                if (exterior && area < 0) || (!exterior && area > 0) {
                    reversePath(path)
                    reversed += 1
                }
            }
        }
        return reversed
    }

    private mutating func reversePath(_ path: Int) {
        let range = pathRange(path)
        var low = range.lowerBound
        var high = range.upperBound - 1
        let hasTexts = !texts.isEmpty
        while low < high {
            xy.swapAt(2 * low, 2 * high)
            xy.swapAt(2 * low + 1, 2 * high + 1)
            if hasTexts {
                for offset in 0..<4 { texts.swapAt(4 * low + offset, 4 * high + offset) }
            }
            low += 1
            high -= 1
        }
    }

    /// Swaps x and y of every vertex (`swapped: fix`).
    mutating func swapAxes() {
        for vertex in 0..<vertexCount { xy.swapAt(2 * vertex, 2 * vertex + 1) }
        if !texts.isEmpty {
            for vertex in 0..<vertexCount {
                texts.swapAt(4 * vertex, 4 * vertex + 2)
                texts.swapAt(4 * vertex + 1, 4 * vertex + 3)
            }
        }
    }

    /// `[min x, min y, max x, max y]` over every vertex.
    var extent: (minX: Double, minY: Double, maxX: Double, maxY: Double) {
        var minX = Double.infinity
        var minY = Double.infinity
        var maxX = -Double.infinity
        var maxY = -Double.infinity
        xy.withUnsafeBufferPointer { xy in
            var index = 0
            while index < xy.count {
                minX = min(minX, xy[index])
                maxX = max(maxX, xy[index])
                minY = min(minY, xy[index + 1])
                maxY = max(maxY, xy[index + 1])
                index += 2
            }
        }
        return (minX, minY, maxX, maxY)
    }

    /// The geometry as a GeoJSON geometry object. `cell` is the text the shape was read from
    /// (for `texts`).
    func appendGeoJSON(cell: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        JSONBytes.appendRaw(#"{"type":""#, to: &out)
        out.append(contentsOf: kind.name.utf8)
        JSONBytes.appendRaw(#"","coordinates":"#, to: &out)
        switch kind {
        case .point:
            appendPosition(0, cell, &out)
        case .lineString:
            appendPath(0, cell, &out)
        case .multiPoint:
            appendArray(pathEnds.indices, &out) { appendPosition(pathRange($0).lowerBound, cell, &$1) }
        case .multiLineString:
            appendArray(pathEnds.indices, &out) { appendPath($0, cell, &$1) }
        case .polygon:
            appendPolygon(0, cell, &out)
        case .multiPolygon:
            appendArray(polygonEnds.indices, &out) { appendPolygon($0, cell, &$1) }
        }
        out.append(UInt8(ascii: "}"))
    }

    /// `[` the members `items` make, separated by commas `]`.
    @inline(__always)
    private func appendArray(_ items: Range<Int>, _ out: inout [UInt8], _ member: (Int, inout [UInt8]) -> Void) {
        out.append(UInt8(ascii: "["))
        for item in items {
            if item > items.lowerBound { out.append(UInt8(ascii: ",")) }
            member(item, &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    private func appendPolygon(_ polygon: Int, _ cell: UnsafeRawBufferPointer, _ out: inout [UInt8]) {
        appendArray(polygonRange(polygon), &out) { appendPath($0, cell, &$1) }
    }

    private func appendPath(_ path: Int, _ cell: UnsafeRawBufferPointer, _ out: inout [UInt8]) {
        appendArray(pathRange(path), &out) { appendPosition($0, cell, &$1) }
    }

    @inline(__always)
    private func appendPosition(_ vertex: Int, _ cell: UnsafeRawBufferPointer, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        appendNumber(2 * vertex, cell, &out)
        out.append(UInt8(ascii: ","))
        appendNumber(2 * vertex + 1, cell, &out)
        out.append(UInt8(ascii: "]"))
    }

    @inline(__always)
    private func appendNumber(_ index: Int, _ cell: UnsafeRawBufferPointer, _ out: inout [UInt8]) {
        if !computed && !texts.isEmpty {
            let start = Int(texts[2 * index])
            if start >= 0 {
                out.appendBytes(UnsafeRawBufferPointer(rebasing: cell[start..<Int(texts[2 * index + 1])]))
                return
            }
        }
        if computed {
            CoordinateText.appendDegrees(xy[index], to: &out)
        } else {
            CoordinateText.appendShortest(xy[index], to: &out)
        }
    }
}
