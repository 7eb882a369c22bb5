import Foundation

/// A longitude/latitude box, grown point by point.
public struct GeoExtent: Sendable, Equatable {
    public var minLongitude = Double.infinity
    public var minLatitude = Double.infinity
    public var maxLongitude = -Double.infinity
    public var maxLatitude = -Double.infinity

    public init() {}

    public init(minLongitude: Double, minLatitude: Double, maxLongitude: Double, maxLatitude: Double) {
        self.minLongitude = minLongitude
        self.minLatitude = minLatitude
        self.maxLongitude = maxLongitude
        self.maxLatitude = maxLatitude
    }

    public var isEmpty: Bool { minLongitude > maxLongitude }

    /// Takes in a point; one outside the Earth's ranges (or NaN) is ignored.
    @inline(__always)
    public mutating func include(longitude: Double, latitude: Double) {
        guard abs(longitude) <= 180, abs(latitude) <= 90 else { return }
        minLongitude = min(minLongitude, longitude)
        maxLongitude = max(maxLongitude, longitude)
        minLatitude = min(minLatitude, latitude)
        maxLatitude = max(maxLatitude, latitude)
    }
}

/// Web Mercator onto a canvas of `width` × `height` pixels, zoomed to fit an extent.
///
/// World coordinates run from 0 to 1 on both axes (x east from the antimeridian, y south from
/// 85.05° N, the latitude where the Mercator square ends); latitudes beyond ±85.05° are drawn
/// on that edge. The fit keeps the aspect ratio, leaves `margin` pixels around the extent, never
/// zooms out past the whole world, and never in past `minimumSpan` of the world (so that one
/// point, or a town's worth, still shows its surroundings).
public struct MapProjection: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// Pixels per world unit.
    public let scale: Double
    /// The world coordinates at pixel (0, 0).
    public let originX: Double
    public let originY: Double

    /// About 40 km at the equator: the smallest part of the world a map shows.
    public static let minimumSpan = 0.001
    public static let maxLatitude = 85.051_128_78

    public init(fitting extent: GeoExtent, width: Int, height: Int, margin: Int = 24) {
        self.width = width
        self.height = height
        let box: (x0: Double, y0: Double, x1: Double, y1: Double)
        if extent.isEmpty {
            box = (0, 0, 1, 1)
        } else {
            box = (
                Self.worldX(extent.minLongitude), Self.worldY(extent.maxLatitude),
                Self.worldX(extent.maxLongitude), Self.worldY(extent.minLatitude)
            )
        }
        let spanX = max(box.x1 - box.x0, Self.minimumSpan)
        let spanY = max(box.y1 - box.y0, Self.minimumSpan)
        let usableWidth = Double(max(width - 2 * margin, 1))
        let usableHeight = Double(max(height - 2 * margin, 1))
        // Never smaller than the whole world fitting the canvas.
        let wholeWorld = min(Double(width), Double(height))
        scale = max(min(usableWidth / spanX, usableHeight / spanY), wholeWorld)
        originX = (box.x0 + box.x1) / 2 - Double(width) / 2 / scale
        originY = (box.y0 + box.y1) / 2 - Double(height) / 2 / scale
    }

    @inline(__always)
    public static func worldX(_ longitude: Double) -> Double { (longitude + 180) / 360 }

    @inline(__always)
    public static func worldY(_ latitude: Double) -> Double {
        let clamped = min(max(latitude, -maxLatitude), maxLatitude) * .pi / 180
        return (1 - log(tan(clamped) + 1 / cos(clamped)) / .pi) / 2
    }

    /// The pixel of a point (x right, y down; may lie outside the canvas).
    @inline(__always)
    public func pixel(longitude: Double, latitude: Double) -> (x: Double, y: Double) {
        ((Self.worldX(longitude) - originX) * scale, (Self.worldY(latitude) - originY) * scale)
    }

    /// Whether a pixel lies on the canvas, with `slack` pixels of room around it.
    @inline(__always)
    public func contains(x: Double, y: Double, slack: Double = 0) -> Bool {
        x >= -slack && y >= -slack && x < Double(width) + slack && y < Double(height) + slack
    }

    /// The ground distance across the canvas' middle row, in metres (for a scale bar).
    public var metresAcross: Double {
        let middle = originY + Double(height) / 2 / scale
        let latitude = atan(sinh(.pi * (1 - 2 * middle)))
        return Double(width) / scale * 40_075_016.686 * cos(latitude)
    }
}
