import CGEOS
import NIOConcurrencyHelpers

/// What needs geometry rather than syntax, through GEOS (Debian libgeos-dev, its reentrant C
/// API): the validity of polygons with the reason and where (`isValidDetail`), their repair
/// (`makeValid`, the structure method: polygons stay polygons, collapsed parts dropped), and
/// simplification that keeps the topology.
///
/// One GEOS context per checker; a context is not safe to use from two threads at once, so the
/// calls hold a lock (a checker per worker when blocks are checked in parallel).
final class ShapeChecker: @unchecked Sendable {  // `handle` is used under `lock` only
    private let lock = NIOLock()
    private let handle: GEOSContextHandle_t

    init() {
        handle = GEOS_init_r()
    }

    deinit { GEOS_finish_r(handle) }

    /// Why a polygonal or linear shape is not valid, and where; nil when it is valid.
    func invalidity(_ shape: Shape) -> (reason: String, x: Double, y: Double)? {
        lock.withLock {
            guard let geometry = makeGeometry(shape) else {
                return ("a ring GEOS cannot build", shape.xy[0], shape.xy[1])
            }
            defer { GEOSGeom_destroy_r(handle, geometry) }
            var reason: UnsafeMutablePointer<CChar>?
            var location: OpaquePointer?
            let valid = GEOSisValidDetail_r(handle, geometry, 0, &reason, &location)
            defer {
                if let reason { GEOSFree_r(handle, reason) }
                if let location { GEOSGeom_destroy_r(handle, location) }
            }
            guard valid == 0 else { return nil }
            var x = shape.xy[0]
            var y = shape.xy[1]
            if let location {
                _ = GEOSGeomGetX_r(handle, location, &x)
                _ = GEOSGeomGetY_r(handle, location, &y)
            }
            let text = reason.map { String(cString: $0) } ?? "invalid"
            return (text.prefix(1).lowercased() + text.dropFirst(), x, y)
        }
    }

    /// Repairs a polygonal shape in place; false when nothing polygonal is left of it.
    func makeValid(_ shape: inout Shape) -> Bool {
        lock.withLock {
            guard let geometry = makeGeometry(shape) else { return false }
            defer { GEOSGeom_destroy_r(handle, geometry) }
            guard let parameters = GEOSMakeValidParams_create_r(handle) else { return false }
            defer { GEOSMakeValidParams_destroy_r(handle, parameters) }
            _ = GEOSMakeValidParams_setMethod_r(handle, parameters, GEOS_MAKE_VALID_STRUCTURE)
            _ = GEOSMakeValidParams_setKeepCollapsed_r(handle, parameters, 0)
            guard let repaired = GEOSMakeValidWithParams_r(handle, geometry, parameters) else { return false }
            defer { GEOSGeom_destroy_r(handle, repaired) }
            return read(repaired, into: &shape)
        }
    }

    /// Simplifies lines and polygons in place to `tolerance` (in the shape's units), keeping
    /// rings valid and apart.
    func simplify(_ shape: inout Shape, tolerance: Double) {
        lock.withLock {
            guard let geometry = makeGeometry(shape) else { return }
            defer { GEOSGeom_destroy_r(handle, geometry) }
            guard let simplified = GEOSTopologyPreserveSimplify_r(handle, geometry, tolerance) else { return }
            defer { GEOSGeom_destroy_r(handle, simplified) }
            var copy = shape
            if read(simplified, into: &copy) {
                // The vertices kept are the file's own: their digits stay as the file wrote them.
                let computed = shape.computed
                shape = copy
                shape.computed = computed
            }
        }
    }

    // MARK: Between Shape and GEOS

    private func sequence(_ shape: Shape, _ path: Int) -> OpaquePointer? {
        let range = shape.pathRange(path)
        return shape.xy.withUnsafeBufferPointer {
            GEOSCoordSeq_copyFromBuffer_r(handle, $0.baseAddress! + 2 * range.lowerBound, UInt32(range.count), 0, 0)
        }
    }

    private func polygon(_ shape: Shape, _ polygon: Int) -> OpaquePointer? {
        let rings = shape.polygonRange(polygon)
        var made: [OpaquePointer?] = []
        for path in rings {
            guard let sequence = sequence(shape, path),
                let ring = GEOSGeom_createLinearRing_r(handle, sequence)
            else {
                for ring in made { GEOSGeom_destroy_r(handle, ring) }
                return nil
            }
            made.append(ring)
        }
        var holes = Array(made.dropFirst())
        return holes.withUnsafeMutableBufferPointer {
            GEOSGeom_createPolygon_r(handle, made[0], $0.baseAddress, UInt32($0.count))
        }
    }

    /// The shape as a GEOS geometry (the caller destroys it); nil when GEOS refuses a part.
    private func makeGeometry(_ shape: Shape) -> OpaquePointer? {
        func collection(_ type: GEOSGeomTypes, _ parts: [OpaquePointer?]) -> OpaquePointer? {
            if parts.contains(where: { $0 == nil }) {
                for part in parts where part != nil { GEOSGeom_destroy_r(handle, part) }
                return nil
            }
            var parts = parts
            return parts.withUnsafeMutableBufferPointer {
                GEOSGeom_createCollection_r(handle, Int32(type.rawValue), $0.baseAddress, UInt32($0.count))
            }
        }
        switch shape.kind {
        case .polygon:
            return polygon(shape, 0)
        case .multiPolygon:
            return collection(GEOS_MULTIPOLYGON, shape.polygonEnds.indices.map { polygon(shape, $0) })
        case .lineString:
            return sequence(shape, 0).flatMap { GEOSGeom_createLineString_r(handle, $0) }
        case .multiLineString:
            return collection(
                GEOS_MULTILINESTRING,
                shape.pathEnds.indices.map { sequence(shape, $0).flatMap { GEOSGeom_createLineString_r(handle, $0) } })
        case .point:
            return GEOSGeom_createPointFromXY_r(handle, shape.xy[0], shape.xy[1])
        case .multiPoint:
            return collection(
                GEOS_MULTIPOINT,
                (0..<shape.vertexCount).map {
                    GEOSGeom_createPointFromXY_r(handle, shape.xy[2 * $0], shape.xy[2 * $0 + 1])
                })
        }
    }

    /// Reads a polygonal or linear GEOS geometry back into `shape`; false for anything else or
    /// an empty one.
    private func read(_ geometry: OpaquePointer, into shape: inout Shape) -> Bool {
        let type = GEOSGeomTypeId_r(handle, geometry)
        var members: [OpaquePointer] = []
        func collect(_ geometry: OpaquePointer) -> Bool {
            let type = GEOSGeomTypeId_r(handle, geometry)
            switch Int32(type) {
            case Int32(GEOS_POLYGON.rawValue), Int32(GEOS_LINESTRING.rawValue):
                if GEOSisEmpty_r(handle, geometry) == 0 { members.append(geometry) }
                return true
            case Int32(GEOS_MULTIPOLYGON.rawValue), Int32(GEOS_MULTILINESTRING.rawValue),
                Int32(GEOS_GEOMETRYCOLLECTION.rawValue):
                for index in 0..<GEOSGetNumGeometries_r(handle, geometry) {
                    guard let member = GEOSGetGeometryN_r(handle, geometry, index) else { return false }
                    if !collect(member) { return false }
                }
                return true
            default:
                // Points and collapsed parts are dropped from a repaired polygon.
                return true
            }
        }
        guard collect(geometry), !members.isEmpty else { return false }
        let polygonal = members.allSatisfy { GEOSGeomTypeId_r(handle, $0) == Int32(GEOS_POLYGON.rawValue) }
        let linear = members.allSatisfy { GEOSGeomTypeId_r(handle, $0) == Int32(GEOS_LINESTRING.rawValue) }
        guard polygonal || linear else { return false }
        var result = Shape()
        result.srid = shape.srid
        result.droppedDimensions = shape.droppedDimensions
        result.computed = true
        func append(_ sequence: OpaquePointer?) {
            guard let sequence else { return }
            var size: UInt32 = 0
            _ = GEOSCoordSeq_getSize_r(handle, sequence, &size)
            let start = result.xy.count
            result.xy.append(contentsOf: repeatElement(0, count: 2 * Int(size)))
            result.xy.withUnsafeMutableBufferPointer {
                _ = GEOSCoordSeq_copyToBuffer_r(handle, sequence, $0.baseAddress! + start, 0, 0)
            }
            result.endPath()
        }
        for member in members {
            if polygonal {
                append(GEOSGeom_getCoordSeq_r(handle, GEOSGetExteriorRing_r(handle, member)))
                for hole in 0..<GEOSGetNumInteriorRings_r(handle, member) {
                    append(GEOSGeom_getCoordSeq_r(handle, GEOSGetInteriorRingN_r(handle, member, hole)))
                }
                result.polygonEnds.append(result.pathEnds.count)
            } else {
                append(GEOSGeom_getCoordSeq_r(handle, member))
            }
        }
        result.kind =
            polygonal
            ? (members.count == 1 && type == Int32(GEOS_POLYGON.rawValue) ? .polygon : .multiPolygon)
            : (members.count == 1 && type == Int32(GEOS_LINESTRING.rawValue) ? .lineString : .multiLineString)
        shape = result
        return true
    }
}
