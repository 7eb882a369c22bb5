import NIOConcurrencyHelpers

/// PROJ transforms for the `SRID=` of EWKT and EWKB cells, made once per code.
final class SRIDTransforms: Sendable {
    private let made = NIOLockedValueBox([Int: Result<CoordinateTransform, ImportError>]())

    func transform(_ srid: Int) -> Result<CoordinateTransform, ImportError> {
        made.withLockedValue { made in
            if let known = made[srid] { return known }
            let result: Result<CoordinateTransform, ImportError>
            do {
                result = .success(try CoordinateTransform(from: "EPSG:\(srid)", setting: "SRID=\(srid)"))
            } catch let error as ImportError {
                result = .failure(error)
            } catch {
                result = .failure(ImportError(.config, "SRID=\(srid): \(error)"))
            }
            made[srid] = result
            return result
        }
    }
}

extension Validator {
    /// `validate` for a geometry column: each cell read (`ShapeText`), reprojected when it is in
    /// another system (its own `SRID=` first, else `coordinates.crs`), every vertex judged for
    /// range, bounds and swapped axes, lines and polygons checked for validity with GEOS
    /// (repaired with `make_valid`), simplified with `simplify_m`, rings turned to RFC 7946's
    /// winding, and written as a GeoJSON geometry.
    func validateGeometries(_ block: RecordBlock, _ column: Int) -> ValidatedBlock {
        var result = ValidatedBlock(records: block)
        result.geometries = true
        result.accepted.reserveCapacity(block.count)
        result.coordinateEnds.reserveCapacity(block.count)
        var shape = Shape()
        block.bytes.withUnsafeBytes { bytes in
            for record in 0..<block.count {
                let cell = UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, column)])
                func reject(_ code: RejectCode, _ message: String) {
                    result.records.rejections.append(
                        Rejection(
                            line: block.lines[record], code: code, column: header[column], message: message,
                            fields: block.originalCells(record)))
                }
                if CoordinateText.trimmed(cell).isEmpty {
                    if optionalCoordinates {
                        result.coordinateEnds.append(result.coordinates.count)
                        result.accepted.append(record)
                    } else {
                        reject(.missingCoordinate, "the geometry is empty")
                    }
                    continue
                }
                do throws(ShapeProblem) {
                    try ShapeText.read(cell, into: &shape)
                    try check(&shape, counts: &result.shapes)
                } catch {
                    reject(error.code, error.message)
                    continue
                }
                shape.appendGeoJSON(cell: cell, to: &result.coordinates)
                result.coordinateEnds.append(result.coordinates.count)
                result.accepted.append(record)
                result.shapes.kinds[shape.kind.rawValue] += 1
                if shape.droppedDimensions { result.shapes.droppedDimensions += 1 }
            }
        }
        return result
    }

    /// Everything after reading: size, reference system, ranges, validity, simplification,
    /// winding.
    func check(_ shape: inout Shape, counts: inout GeometryCounts) throws(ShapeProblem) {
        if shape.vertexCount > geometry.maxVertices {
            throw ShapeProblem(
                code: .tooManyVertices,
                message:
                    "the \(shape.kind.name) has \(shape.vertexCount) vertices, more than coordinates.max_vertices (\(geometry.maxVertices)); simplify it (coordinates.simplify_m) or raise the limit"
            )
        }
        try reproject(&shape)
        try judgeVertices(&shape)
        if shape.kind.isLinear {
            for path in shape.pathEnds.indices {
                let range = shape.pathRange(path)
                let first = 2 * range.lowerBound
                let distinct = range.dropFirst().contains {
                    shape.xy[2 * $0] != shape.xy[first] || shape.xy[2 * $0 + 1] != shape.xy[first + 1]
                }
                if !distinct {
                    throw .invalid(
                        "\(shape.pathEnds.count > 1 ? "line \(path + 1)" : "the line") has all its positions at \(ShapeText.pointText(shape.xy[first], shape.xy[first + 1])); a line needs two distinct positions"
                    )
                }
            }
        }
        if shape.kind.isPolygonal, let checker {
            if let problem = checker.invalidity(shape) {
                guard geometry.makeValid else {
                    throw .invalid(
                        "\(problem.reason) at \(degreesText(problem.x)) \(degreesText(problem.y)) (coordinates.make_valid: true repairs it)"
                    )
                }
                guard checker.makeValid(&shape) else {
                    throw .invalid(
                        "\(problem.reason) at \(degreesText(problem.x)) \(degreesText(problem.y)), and nothing of the polygon is left once repaired"
                    )
                }
                counts.repaired += 1
            }
        }
        if geometry.simplifyMetres > 0, !shape.kind.isPuntal, let checker {
            let before = shape.vertexCount
            // Metres as degrees of latitude (111,320 m each): east-west, a degree of longitude
            // is shorter away from the equator, so the tolerance is finer there.
            checker.simplify(&shape, tolerance: geometry.simplifyMetres / 111_320)
            if shape.vertexCount < before { counts.simplified += 1 }
        }
        if shape.orientRings() > 0 { counts.reoriented += 1 }
    }

    /// `SRID=` of the cell, else `coordinates.crs`: the vertices become degrees.
    private func reproject(_ shape: inout Shape) throws(ShapeProblem) {
        var system = transform
        if let srid = shape.srid {
            if srid == 4326 || srid == 0 {
                system = nil
            } else {
                switch (sridTransforms ?? SRIDTransforms()).transform(srid) {
                case .success(let made): system = made
                case .failure(let error): throw .invalid(error.message)
                }
            }
        }
        guard let system else { return }
        // In place, every vertex in one call.
        shape.xy.withUnsafeMutableBufferPointer { system.toDegrees(interleaved: $0) }
        for vertex in 0..<shape.vertexCount where shape.xy[2 * vertex].isNaN {
            throw .invalid(
                "vertex \(vertex + 1) cannot be reprojected from \(system.source) to WGS 84: it lies outside that system's area of use"
            )
        }
        shape.computed = true
    }

    /// Ranges, `null_island`, bounds and swapped axes over every vertex: a shape is in range
    /// when all its vertices are, and swapped when all of them fit only once swapped.
    private func judgeVertices(_ shape: inout Shape) throws(ShapeProblem) {
        if shape.kind == .point {
            // A point is judged as the point columns are.
            let empty = UnsafeRawBufferPointer(start: nil, count: 0)
            switch judge(
                longitude: Coordinate(value: shape.xy[0], notation: .wkt, bytes: empty),
                latitude: Coordinate(value: shape.xy[1], notation: .wkt, bytes: empty))
            {
            case .accepted(_, _, let swap):
                if swap { shape.swapAxes() }
                return
            case .rejected(let code, _, let message):
                throw ShapeProblem(code: code, message: message)
            }
        }
        let extent = shape.extent
        let inRange = extent.minY >= -90 && extent.maxY <= 90 && extent.minX >= -180 && extent.maxX <= 180
        let swappedInRange = extent.minX >= -90 && extent.maxX <= 90 && extent.minY >= -180 && extent.maxY <= 180
        func within(_ bounds: [Double], swap: Bool) -> Bool {
            swap
                ? extent.minY >= bounds[0] && extent.minX >= bounds[1] && extent.maxY <= bounds[2]
                    && extent.maxX <= bounds[3]
                : extent.minX >= bounds[0] && extent.minY >= bounds[1] && extent.maxX <= bounds[2]
                    && extent.maxY <= bounds[3]
        }
        func swappedShape(_ problem: String) throws(ShapeProblem) {
            if swapped == .fix {
                shape.swapAxes()
                return
            }
            throw ShapeProblem(
                code: .coordinatesSwapped,
                message:
                    "\(problem) but every vertex reads well with x and y swapped: the coordinates look swapped (coordinates.swapped: fix swaps them)"
            )
        }
        if inRange {
            guard let bounds, !within(bounds, swap: false) else { return }
            if swapped != .off && within(bounds, swap: true) {
                return try swappedShape("the \(shape.kind.name) is outside coordinates.bounds")
            }
            throw ShapeProblem(
                code: .outsideBounds,
                message:
                    "the \(shape.kind.name) reaches outside the bounds [\(bounds.map(degreesText).joined(separator: ", "))] (its extent is \(degreesText(extent.minX)) \(degreesText(extent.minY)) to \(degreesText(extent.maxX)) \(degreesText(extent.maxY)))"
            )
        }
        if swapped != .off && swappedInRange && (bounds.map { within($0, swap: true) } ?? true) {
            return try swappedShape("a latitude is outside -90..90")
        }
        for vertex in 0..<shape.vertexCount {
            let x = shape.xy[2 * vertex]
            let y = shape.xy[2 * vertex + 1]
            if abs(y) > 90 {
                throw ShapeProblem(
                    code: .latitudeOutOfRange,
                    message: "vertex \(vertex + 1) (\(ShapeText.pointText(x, y))) has a latitude outside -90..90")
            }
            if abs(x) > 180 {
                throw ShapeProblem(
                    code: .longitudeOutOfRange,
                    message: "vertex \(vertex + 1) (\(ShapeText.pointText(x, y))) has a longitude outside -180..180")
            }
        }
    }

    /// Degrees as a message shows them: seven decimals at most.
    func degreesText(_ value: Double) -> String {
        var out: [UInt8] = []
        CoordinateText.appendDegrees(value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
