import CPROJ
import NIOConcurrencyHelpers

/// Coordinates in a reference system (`coordinates.crs`: an EPSG code such as `EPSG:2154`, or a
/// PROJ string) to WGS 84 longitude and latitude in degrees, through PROJ. The axis order is
/// normalised for GIS use (`proj_normalize_for_visualization`): x is easting or longitude, y
/// northing or latitude, whatever order the authority defines (EPSG:4326 is latitude first).
/// Points are transformed a whole block at a time (`proj_trans_generic`), not one call per row.
///
/// A PROJ object is not safe to share between threads: one lock around it.
final class CoordinateTransform: @unchecked Sendable {  // `context` and `transform` are used under `lock` only
    /// The system as configured.
    let source: String
    private let lock = NIOLock()
    private let context: OpaquePointer
    private let transform: OpaquePointer
    /// The source system's area of use from PROJ's database (west, south, east, north in degrees),
    /// widened by `margin`; nil for a PROJ string, which has none. A point reprojected outside it
    /// was not in that system (PROJ's inverse projections answer for any number).
    let area: (west: Double, south: Double, east: Double, north: Double)?
    /// Degrees a point may lie outside the area of use (a neighbouring district, a coastline; a
    /// UTM zone used for a whole country: Berlin in zone 32 is 1.4° east of it).
    static let margin = 3.0

    /// - Throws: `ImportError` (`config`) naming the setting when PROJ does not know the system.
    init(from source: String, setting: String = "coordinates.crs") throws {
        self.source = source
        guard let context = proj_context_create() else {
            throw ImportError(.config, "\(setting): PROJ could not start (no memory)")
        }
        proj_log_level(context, PJ_LOG_NONE)
        func failure() -> ImportError {
            let reason = proj_context_errno_string(context, proj_context_errno(context)).map { String(cString: $0) }
            return ImportError(
                .config,
                "\(setting) \"\(source)\" is not a reference system PROJ knows\(reason.map { " (\($0))" } ?? ""): give an EPSG code such as EPSG:2154, or a PROJ string"
            )
        }
        guard let raw = proj_create_crs_to_crs(context, source, "EPSG:4326", nil) else {
            let error = failure()
            proj_context_destroy(context)
            throw error
        }
        guard let normalised = proj_normalize_for_visualization(context, raw) else {
            let error = failure()
            proj_destroy(raw)
            proj_context_destroy(context)
            throw error
        }
        proj_destroy(raw)
        self.context = context
        transform = normalised
        var west = 0.0
        var south = 0.0
        var east = 0.0
        var north = 0.0
        let crs = proj_create(context, source)
        defer { proj_destroy(crs) }
        if let crs, proj_get_area_of_use(context, crs, &west, &south, &east, &north, nil) != 0, west > -1000 {
            area = (west - Self.margin, south - Self.margin, east + Self.margin, north + Self.margin)
        } else {
            area = nil
        }
    }

    deinit {
        proj_destroy(transform)
        proj_context_destroy(context)
    }

    /// Transforms points in place: `x`, `y` in the source system become longitude and latitude
    /// in degrees. A point PROJ cannot transform (outside the system's domain) becomes NaN, for
    /// the caller to reject.
    func toDegrees(x: UnsafeMutableBufferPointer<Double>, y: UnsafeMutableBufferPointer<Double>) {
        precondition(x.count == y.count)
        guard let xs = x.baseAddress, let ys = y.baseAddress else { return }
        toDegrees(x: xs, y: ys, step: 1, count: x.count)
    }

    /// The same for x and y back to back (`Shape.xy`).
    func toDegrees(interleaved xy: UnsafeMutableBufferPointer<Double>) {
        guard let base = xy.baseAddress else { return }
        toDegrees(x: base, y: base + 1, step: 2, count: xy.count / 2)
    }

    /// `count` points, `step` Doubles apart.
    private func toDegrees(
        x: UnsafeMutablePointer<Double>, y: UnsafeMutablePointer<Double>, step: Int, count: Int
    ) {
        guard count > 0 else { return }
        let stride = MemoryLayout<Double>.stride * step
        lock.withLock {
            proj_errno_reset(transform)
            _ = proj_trans_generic(
                transform, PJ_FWD, x, stride, count, y, stride, count, nil, 0, 0, nil, 0, 0)
        }
        // An area across the antimeridian has its west east of its east.
        let across = area.map { $0.west > $0.east } ?? false
        for point in 0..<count {
            let index = point * step
            let (longitude, latitude) = (x[index], y[index])
            var inside = longitude.isFinite && latitude.isFinite && abs(longitude) <= 1e300
            if inside, let area {
                let inLongitude =
                    across
                    ? longitude >= area.west || longitude <= area.east
                    : longitude >= area.west && longitude <= area.east
                inside = inLongitude && latitude >= area.south && latitude <= area.north
            }
            if !inside {
                x[index] = .nan
                y[index] = .nan
            }
        }
    }

    /// One point, for messages and tests.
    func toDegrees(x: Double, y: Double) -> (longitude: Double, latitude: Double) {
        var xs = [x]
        var ys = [y]
        xs.withUnsafeMutableBufferPointer { xs in ys.withUnsafeMutableBufferPointer { toDegrees(x: xs, y: $0) } }
        return (xs[0], ys[0])
    }
}
