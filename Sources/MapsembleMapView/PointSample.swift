import Foundation

/// A small, fast, seedable random generator (SplitMix64): a report drawn twice from the same
/// file picks the same points.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A point of a map layer: where it is and the input line it came from.
public struct MapPoint: Sendable, Equatable {
    public var longitude: Double
    public var latitude: Double
    public var line: Int
    /// Where the point would be with its coordinates read the other way round (a
    /// `coordinates_swapped` row), when that is on Earth.
    public var swapped: (longitude: Double, latitude: Double)?
    /// A line's or a polygon's shape, drawn besides the point (which stands at its first
    /// position).
    public var outline: MapOutline?

    public init(
        longitude: Double, latitude: Double, line: Int, swapped: (longitude: Double, latitude: Double)? = nil,
        outline: MapOutline? = nil
    ) {
        self.longitude = longitude
        self.latitude = latitude
        self.line = line
        self.swapped = swapped
        self.outline = outline
    }

    public static func == (lhs: MapPoint, rhs: MapPoint) -> Bool {
        lhs.longitude == rhs.longitude && lhs.latitude == rhs.latitude && lhs.line == rhs.line
            && lhs.swapped?.longitude == rhs.swapped?.longitude && lhs.swapped?.latitude == rhs.swapped?.latitude
            && lhs.outline == rhs.outline
    }
}

/// The paths of a line or a polygon, in degrees, thinned for drawing.
public struct MapOutline: Sendable, Equatable {
    /// Each path's positions as longitude, latitude, longitude, …
    public var paths: [[Double]]
    /// Rings of a polygon (filled), or lines (stroked).
    public var filled: Bool

    /// At most `perPath` positions of each path are kept (evenly spaced, the ends kept): a shape
    /// on a page is a few hundred pixels at most.
    public init(paths: [[Double]], filled: Bool, perPath: Int = 128) {
        self.filled = filled
        self.paths = paths.map { path in
            let count = path.count / 2
            guard count > perPath else { return path }
            var thinned: [Double] = []
            thinned.reserveCapacity(2 * perPath)
            for step in 0..<perPath {
                let index = step == perPath - 1 ? count - 1 : step * (count - 1) / (perPath - 1)
                thinned += [path[2 * index], path[2 * index + 1]]
            }
            return thinned
        }
    }
}

/// A uniform random sample of at most `capacity` points of a stream of unknown length
/// (reservoir sampling, Li's algorithm L): every point offered has the same chance of being kept.
/// It skips ahead by a random count instead of drawing a number for every point, and asks for a
/// point's coordinates only when it keeps it (`offer` returns a slot), so the cost for the rows
/// passed over is one comparison.
public struct PointReservoir: Sendable {
    public let capacity: Int
    public private(set) var points: [MapPoint] = []
    /// Position in `points` by input line: built by the first `remove` (most runs never remove
    /// a point, and keeping it up to date costs a hash per point kept), kept up to date after.
    private var positions: [Int: Int]?
    /// Points offered so far.
    public private(set) var seen = 0
    private var random: SplitMix64
    private var weight = 1.0
    /// The index (in `seen`) of the next point to keep, once the reservoir is full.
    private var nextKept = 0

    public init(capacity: Int, seed: UInt64 = 0x6D61_7073) {
        self.capacity = capacity
        random = SplitMix64(seed: seed)
        points.reserveCapacity(min(capacity, 4096))
    }

    /// Whether the next point offered is kept: call `keep` with it when it is, else `pass`.
    /// Cheaper than building the point first.
    @inline(__always)
    public var wantsNext: Bool { seen < capacity || seen == nextKept }

    /// Counts one point that `wantsNext` said is not kept.
    @inline(__always)
    public mutating func pass(_ count: Int = 1) { seen += count }

    /// How many of the next points offered will be passed over (each to be counted by `pass`).
    public var passesBeforeNext: Int { seen < capacity ? 0 : nextKept - seen }

    /// Keeps a point that `wantsNext` asked for.
    public mutating func keep(_ point: MapPoint) {
        if seen < capacity {
            positions?[point.line] = points.count
            points.append(point)
            seen += 1
            if seen == capacity {
                weight = exp(log(unit()) / Double(capacity))
                advance()
            }
            return
        }
        if points.count < capacity {
            // Some were removed.
            positions?[point.line] = points.count
            points.append(point)
        } else {
            let position = Int(random.next() % UInt64(capacity))
            if positions != nil {
                positions!.removeValue(forKey: points[position].line)
                positions![point.line] = position
            }
            points[position] = point
        }
        seen += 1
        weight *= exp(log(unit()) / Double(capacity))
        advance()
    }

    /// Offers a point built only when it is kept.
    public mutating func offer(_ point: () -> MapPoint?) {
        if wantsNext, let point = point() {
            keep(point)
        } else {
            pass()
        }
    }

    /// Removes the point of an input line, if kept (a row found bad after it was sampled).
    public mutating func remove(line: Int) {
        if positions == nil {
            positions = Dictionary(points.enumerated().map { ($1.line, $0) }, uniquingKeysWith: { $1 })
        }
        guard let position = positions!.removeValue(forKey: line) else { return }
        let last = points.removeLast()
        if position < points.count {
            points[position] = last
            positions![last.line] = position
        }
    }

    private mutating func advance() {
        let skip = floor(log(unit()) / log(1 - weight))
        nextKept = seen + (skip.isFinite && skip < Double(Int.max / 2) ? Int(skip) : Int.max / 2)
    }

    /// A uniform number in (0, 1).
    private mutating func unit() -> Double {
        (Double(random.next() >> 11) + 0.5) / Double(1 << 53)
    }
}
