import CPROJ
import Foundation
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
    /// Whether the system's authority puts the northing (or latitude) first, as EPSG does for
    /// EPSG:4258 and the Gauss-Krüger zones: the order of a pair written in one cell.
    let northingFirst: Bool
    /// The same operation in closed form, when PROJ's is a plain inverse LCC or transverse
    /// Mercator (`InverseProjection`); checked against PROJ on every block.
    private let fast: InverseProjection?
    /// PROJ's string of the operation it chose, when it is one operation (not several by area).
    let operation: String?
    var usesClosedForm: Bool { fast != nil }
    /// Set once a block's check found the closed form and PROJ apart: PROJ alone from then on.
    private let fastRefused = NIOLockedValueBox(false)
    /// How far apart (degrees) the closed form and PROJ may be: about a millimetre.
    static let fastTolerance = 1e-8
    /// Fewer points than this go to PROJ directly.
    static let fastMinimum = 16

    /// Degrees a point may lie outside the area of use (a neighbouring district, a coastline; a
    /// UTM zone used for a whole country: Berlin in zone 32 is 1.4° east of it).
    static let margin = 3.0

    /// - Throws: `ImportError` (`config`) naming the setting when PROJ does not know the system.
    ///   - closedForm: whether `InverseProjection` may stand in for PROJ's operation (checked on
    ///     every block); false for PROJ alone.
    init(from source: String, setting: String = "coordinates.crs", closedForm: Bool = true) throws {
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
        northingFirst = crs.map { Self.northingFirst(context, $0) } ?? false
        operation = proj_as_proj_string(context, normalised, PJ_PROJ_5, nil).map { String(cString: $0) }
        fast = closedForm ? operation.flatMap(InverseProjection.init(pipeline:)) : nil
    }

    private static func northingFirst(_ context: OpaquePointer, _ crs: OpaquePointer) -> Bool {
        // A bound system holds the one with the axes; a compound one (SWEREF99 TM + RH2000) its
        // horizontal part first.
        var horizontal = crs
        var held: OpaquePointer?
        defer { proj_destroy(held) }
        switch proj_get_type(crs) {
        case PJ_TYPE_BOUND_CRS: held = proj_get_source_crs(context, crs)
        case PJ_TYPE_COMPOUND_CRS: held = proj_crs_get_sub_crs(context, crs, 0)
        default: break
        }
        if let held { horizontal = held }
        guard let system = proj_crs_get_coordinate_system(context, horizontal) else { return false }
        defer { proj_destroy(system) }
        func direction(_ axis: Int32) -> String? {
            var direction: UnsafePointer<CChar>?
            guard proj_cs_get_axis_info(context, system, axis, nil, nil, &direction, nil, nil, nil, nil) != 0,
                let direction
            else { return nil }
            return String(cString: direction).lowercased()
        }
        // Northing first only when the second axis is the easting: polar systems point both
        // axes north or south (EPSG:3031, EPSG:3413) and put the easting first.
        return ["north", "south"].contains(direction(0) ?? "") && ["east", "west"].contains(direction(1) ?? "")
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
        // A block, checked on three points; a shape of a few vertices or one point goes to PROJ,
        // which costs less than the check would.
        if let fast, count >= Self.fastMinimum, fastAgrees(fast, x: x, y: y, step: step, count: count) {
            fast.toDegrees(x: x, y: y, step: step, count: count)
        } else {
            projTrans(x: x, y: y, step: step, count: count)
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

    private func projTrans(x: UnsafeMutablePointer<Double>, y: UnsafeMutablePointer<Double>, step: Int, count: Int) {
        let stride = MemoryLayout<Double>.stride * step
        lock.withLock {
            proj_errno_reset(transform)
            _ = proj_trans_generic(
                transform, PJ_FWD, x, stride, count, y, stride, count, nil, 0, 0, nil, 0, 0)
        }
    }

    /// Whether the closed form gives what PROJ gives for the block's first, middle and last points.
    private func fastAgrees(
        _ fast: InverseProjection, x: UnsafeMutablePointer<Double>, y: UnsafeMutablePointer<Double>, step: Int,
        count: Int
    ) -> Bool {
        guard !fastRefused.withLockedValue({ $0 }) else { return false }
        let samples = Set([0, count / 2, count - 1]).map { $0 * step }
        var ours = (samples.map { x[$0] }, samples.map { y[$0] })
        var proj = ours
        ours.0.withUnsafeMutableBufferPointer { xs in
            ours.1.withUnsafeMutableBufferPointer {
                fast.toDegrees(x: xs.baseAddress!, y: $0.baseAddress!, step: 1, count: samples.count)
            }
        }
        proj.0.withUnsafeMutableBufferPointer { xs in
            proj.1.withUnsafeMutableBufferPointer {
                projTrans(x: xs.baseAddress!, y: $0.baseAddress!, step: 1, count: samples.count)
            }
        }
        for index in samples.indices {
            let (projLongitude, projLatitude) = (proj.0[index], proj.1[index])
            // Outside PROJ's domain (HUGE_VAL): PROJ decides for this block.
            guard abs(projLongitude) < 1e300, abs(projLatitude) < 1e300 else { return false }
            // Longitudes compared round the circle: -180 and 180 are one meridian.
            let apart = max(
                abs(remainder(ours.0[index] - projLongitude, 360)), abs(ours.1[index] - projLatitude))
            guard apart <= Self.fastTolerance else {
                fastRefused.withLockedValue { $0 = true }
                return false
            }
        }
        return true
    }

    /// The other way, WGS 84 longitude and latitude to the system (PROJ), in place: for tests.
    func fromDegrees(x: UnsafeMutableBufferPointer<Double>, y: UnsafeMutableBufferPointer<Double>) {
        let stride = MemoryLayout<Double>.stride
        lock.withLock {
            _ = proj_trans_generic(
                transform, PJ_INV, x.baseAddress, stride, x.count, y.baseAddress, stride, y.count, nil, 0, 0, nil,
                0, 0)
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

extension CoordinateTransform {
    /// A reference system PROJ's database proposes for projected coordinates.
    struct Candidate: Sendable, Equatable {
        /// `EPSG:2154`.
        var code: String
        /// `RGF93 v1 / Lambert-93`.
        var name: String
        /// Where it is used: `France - onshore and offshore, mainland and Corsica`.
        var area: String
    }

    /// The projected systems of PROJ's database (EPSG, not deprecated) whose area of use holds
    /// every one of these points once they are read in that system, the most local first: what
    /// a file of eastings and northings is likely in. Each system's own projection is undone on
    /// the points (no datum shift: metres of difference, not kilometres), so the whole database
    /// takes about a second.
    static func likelySystems(x: [Double], y: [Double], limit: Int = 3) -> [Candidate] {
        guard !x.isEmpty, x.count == y.count, let context = proj_context_create() else { return [] }
        defer { proj_context_destroy(context) }
        proj_log_level(context, PJ_LOG_NONE)
        // The national grids most files are in first (in that list's order), then current datums, metres before feet
        // (the same points in metres and read as feet land 3.28 times farther out), then the
        // smallest area: any projected system maps eastings and northings of the right size near
        // its own origin, so the area alone cannot tell the grids apart.
        var found: [(rank: Int, size: Double, candidate: Candidate)] = []
        var xs = x
        var ys = y
        for system in projectedSystems(context) {
            let (west, east) = (system.west, system.east)
            guard let crs = proj_create_from_database(context, "EPSG", system.code, PJ_CATEGORY_CRS, 0, nil) else {
                continue
            }
            defer { proj_destroy(crs) }
            // The system's projection undone, from its PROJ string (units and axes as PROJ writes
            // them: easting first), to degrees.
            guard let text = proj_as_proj_string(context, crs, PJ_PROJ_5, nil).map({ String(cString: $0) }),
                text.hasPrefix("+proj=")
            else { continue }
            // The projection alone: datum shifts and markers of a CRS left out.
            let definition = text.split(separator: " ").filter { token in
                !["+towgs84=", "+nadgrids=", "+geoidgrids=", "+type=", "+no_defs", "+wktext"].contains {
                    token.hasPrefix($0)
                }
            }.joined(separator: " ")
            guard
                let conversion = proj_create(
                    context, "+proj=pipeline +step +inv \(definition) +step +proj=unitconvert +xy_in=rad +xy_out=deg")
            else { continue }
            defer { proj_destroy(conversion) }
            for point in xs.indices {
                xs[point] = x[point]
                ys[point] = y[point]
            }
            let stride = MemoryLayout<Double>.stride
            _ = xs.withUnsafeMutableBufferPointer { xs in
                ys.withUnsafeMutableBufferPointer { ys in
                    proj_trans_generic(
                        conversion, PJ_FWD, xs.baseAddress, stride, xs.count, ys.baseAddress, stride, ys.count, nil, 0,
                        0, nil, 0, 0)
                }
            }
            let across = west > east
            let inside = xs.indices.allSatisfy { point in
                let longitude = xs[point]
                let latitude = ys[point]
                guard longitude.isFinite, latitude.isFinite else { return false }
                let inLongitude =
                    across ? longitude >= west || longitude <= east : longitude >= west && longitude <= east
                return inLongitude && latitude >= system.south && latitude <= system.north
            }
            guard inside else { continue }
            let width = across ? east + 360 - west : east - west
            found.append(
                (
                    Self.wellKnown.firstIndex(of: system.code)
                        ?? Self.wellKnown.count
                        + (Self.currentDatums.contains { system.name.hasPrefix($0) } ? 0 : 2)
                        + (definition.contains("+units=") && !definition.contains("+units=m") ? 1 : 0),
                    width * (system.north - system.south),
                    Candidate(code: "EPSG:" + system.code, name: system.name, area: system.areaName)
                ))
        }
        return found.sorted { ($0.rank, $0.size) < ($1.rank, $1.size) }.prefix(limit).map(\.candidate)
    }

    /// An EPSG projected system of PROJ's database.
    struct DatabaseSystem: Sendable {
        /// `2154`.
        var code: String
        var name: String
        var areaName: String
        /// `Lambert Conic Conformal (2SP)`.
        var method: String
        /// The area of use, degrees (`west` > `east` across the antimeridian).
        var west: Double
        var south: Double
        var east: Double
        var north: Double
    }

    /// The EPSG projected systems of PROJ's database that are not deprecated and have an area of use.
    static func projectedSystems(_ context: OpaquePointer? = nil) -> [DatabaseSystem] {
        guard let parameters = proj_get_crs_list_parameters_create() else { return [] }
        defer { proj_get_crs_list_parameters_destroy(parameters) }
        var type = PJ_TYPE_PROJECTED_CRS
        var count: Int32 = 0
        let list = withUnsafePointer(to: &type) { type -> UnsafeMutablePointer<UnsafeMutablePointer<PROJ_CRS_INFO>?>? in
            parameters.pointee.types = type
            parameters.pointee.typesCount = 1
            return proj_get_crs_info_list_from_database(context, "EPSG", parameters, &count)
        }
        guard let list else { return [] }
        defer { proj_crs_info_list_destroy(list) }
        func text(_ pointer: UnsafePointer<CChar>?) -> String { pointer.map { String(cString: $0) } ?? "" }
        return (0..<Int(count)).compactMap { index in
            guard let info = list[index]?.pointee, info.bbox_valid != 0, info.deprecated == 0, info.code != nil else {
                return nil
            }
            return DatabaseSystem(
                code: text(info.code), name: text(info.name), areaName: text(info.area_name),
                method: text(info.projection_method_name), west: info.west_lon_degree, south: info.south_lat_degree,
                east: info.east_lon_degree, north: info.north_lat_degree)
        }
    }

    /// EPSG codes of the grids most files are in (national grids, the largest US State Plane
    /// zones, UTM, Web Mercator last as it holds everything): proposed first, in this order, when
    /// they hold the points.
    static let wellKnown = [
        "2154", "27700", "25832", "25833", "31467", "31468", "31469", "31466", "28992", "31370", "2056", "21781",
        "25830", "25831", "25829", "25834", "25835", "3035", "3067", "3006", "2180", "5514", "3794", "3765", "3003",
        "3004", "6707", "6708", "3763", "2100", "23030", "23031", "23032", "2263", "2229", "2227", "2264", "2272",
        "2249", "2276", "2278", "2868", "2881", "5070", "3338", "26917", "26918", "2193", "3112", "7855", "7856",
        "28355", "28356", "3414", "4547", "6677", "2326", "3826", "5179", "3116", "2039", "22275", "2062", "31983",
        "31984", "32617", "32618", "32610", "32611", "32630", "32631", "32632", "32633", "32634", "32650", "32718",
        "32719", "3857",
    ]

    /// The datums of the grids in use today (names of systems start with them): proposed before
    /// the historic and local ones, which a unit's scale can make hold the same points by chance
    /// (London and Edinburgh in metres fit Trinidad's 1903 grid in links).
    static let currentDatums = [
        "WGS 84", "ETRS89", "NAD83", "RGF93", "OSGB36", "GDA94", "GDA2020", "NZGD2000", "SIRGAS", "JGD2000",
        "JGD2011", "CGCS2000", "Amersfoort", "Belge 1972", "BD72", "CH1903", "DHDN", "MGI", "S-JTSK", "RDN2008",
        "IRENET95", "ETRF2000", "ED50", "Pulkovo 1942", "NAD27", "SWEREF99", "EUREF", "KKJ", "PRS92", "Hong Kong 1980",
        "HK1980", "KGD2002", "TWD97", "ISN2016", "RGFG95", "RGR92", "RGAF09", "REGCAN95", "LKS94", "LKS92", "EST97",
        "ETRS-", "ITRF",
    ]
}
