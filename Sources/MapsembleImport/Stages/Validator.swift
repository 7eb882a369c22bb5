/// Records whose coordinates passed, each with its `[longitude, latitude]` as JSON text.
public struct ValidatedBlock: Sendable {
    public var records: RecordBlock
    /// Indexes (into `records`) of the records that passed, in order.
    public var accepted: [Int] = []
    /// `lon,lat` JSON text of each accepted record, back to back; `coordinateEnds` delimits them.
    public var coordinates: [UInt8] = []
    public var coordinateEnds: [Int] = []
    /// Accepted rows per notation of their coordinates, indexed by `CoordinateNotation.ordinal`.
    public var notations = [Int](repeating: 0, count: CoordinateNotation.allCases.count)
    /// Properties a stage adds to a record's feature (the geocoder's confidence, an address for the
    /// map to geocode), by record: `"slug":value` JSON, appended after the mapped fields.
    public var addedProperties: [Int: [UInt8]] = [:]
    /// Per accepted row, the confidence of the geocoder's point (NaN: the row's own point, or
    /// none); empty when the geocoder placed no row of the block.
    public var geocodedConfidence: [Double] = []
    /// With a geometry column: each slice of `coordinates` is a whole GeoJSON geometry object,
    /// not `lon,lat`.
    public var geometries = false
    /// What the geometry column's rows held and what was done to them.
    public var shapes = GeometryCounts()
}

/// Counts over a geometry column's accepted rows.
public struct GeometryCounts: Sendable, Equatable {
    /// Rows per geometry type, indexed by `Shape.Kind.rawValue`.
    public var kinds = [Int](repeating: 0, count: Shape.Kind.allCases.count)
    /// Rows whose Z or M values were dropped.
    public var droppedDimensions = 0
    /// Invalid polygons repaired (`make_valid: true`).
    public var repaired = 0
    /// Rows with a ring turned round to RFC 7946's winding.
    public var reoriented = 0
    /// Rows simplified (`simplify_m`).
    public var simplified = 0

    public init() {}

    public mutating func add(_ other: GeometryCounts) {
        for index in kinds.indices { kinds[index] += other.kinds[index] }
        droppedDimensions += other.droppedDimensions
        repaired += other.repaired
        reoriented += other.reoriented
        simplified += other.simplified
    }

    /// Rows per GeoJSON type name.
    public var byType: [String: Int] {
        var result: [String: Int] = [:]
        for kind in Shape.Kind.allCases where kinds[kind.rawValue] > 0 { result[kind.name] = kinds[kind.rawValue] }
        return result
    }
}

extension CoordinateNotation {
    /// Position in `allCases`, for counting without a dictionary per row.
    var ordinal: Int {
        switch self {
        case .decimal: 0
        case .decimalComma: 1
        case .dms: 2
        case .ddm: 3
        case .decimalHemisphere: 4
        case .iso6709: 5
        case .wkt: 6
        }
    }
}

/// Stage 2: checks coordinates. `RecordBlock` → `ValidatedBlock`.
///
/// Numbers are read strictly (`NumberText`): empty, text, NaN and Inf are rejected, each with its
/// own code. Besides decimal degrees, degrees-minutes-seconds and decimal minutes with hemisphere
/// letters are read (`CoordinateText`), and with `pointColumn` one field holding both coordinates
/// (`lat, lon`, `(lat, lon)`, `lat lon`, WKT `POINT(lon lat)`, ISO 6709). Latitude must be in
/// [-90, 90] and longitude in [-180, 180]; a row whose latitude is out of range while its
/// longitude would be a valid latitude (or whose hemisphere letters are on the wrong axes) is
/// `coordinates_swapped` (or fixed, with `swapped: fix`). Output is always `[longitude, latitude]`
/// whatever the column order. Pure and synchronous; never throws for row errors.
public struct Validator: Sendable {
    public var longitudeColumn: Int
    public var latitudeColumn: Int
    /// One column holding both coordinates, instead of the two columns.
    public var pointColumn: Int?
    public var header: [String]
    public var swapped: PipelineConfig.SwappedPolicy
    /// `[min_lon, min_lat, max_lon, max_lat]`.
    public var bounds: [Double]?
    public var decimalSeparator: UInt8
    /// A second decimal separator also accepted (`source.decimal: auto` in a file not delimited by
    /// commas reads both `50.9` and `50,9`).
    public var alternateSeparator: UInt8?
    /// False for deletes by remote id: every record passes, with no coordinates.
    public var requireCoordinates: Bool
    /// A point at exactly (0, 0) passes instead of being `null_island` (a placeholder for "unknown"
    /// in most exports).
    public var allowNullIsland = false
    /// `update`: a row whose coordinates are all empty passes without a point (the feature keeps
    /// its location).
    public var optionalCoordinates = false
    /// `coordinates.crs` other than WGS 84 degrees: the two columns are easting and northing in
    /// that system, reprojected a block at a time before they are judged.
    var transform: CoordinateTransform?
    /// `coordinates.geometry`: one column holding a whole geometry (WKT, EWKT, hex WKB or a
    /// GeoJSON geometry or Feature), checked by `validateGeometries`.
    public var geometryColumn: Int?
    var geometry = GeometryOptions()
    /// GEOS, for the validity of lines and polygons.
    var checker: ShapeChecker?
    /// Transforms for EWKT's and EWKB's `SRID=`, by code.
    var sridTransforms: SRIDTransforms?

    /// `coordinates.make_valid`, `simplify_m` and `max_vertices`.
    struct GeometryOptions: Sendable {
        var makeValid = false
        /// Metres; 0: no simplification.
        var simplifyMetres = 0.0
        var maxVertices = 100_000
    }

    public init(
        longitudeColumn: Int, latitudeColumn: Int, pointColumn: Int? = nil, header: [String],
        swapped: PipelineConfig.SwappedPolicy = .reject, bounds: [Double]? = nil,
        decimalSeparator: UInt8 = UInt8(ascii: "."), alternateSeparator: UInt8? = nil,
        requireCoordinates: Bool = true
    ) {
        self.requireCoordinates = requireCoordinates
        self.longitudeColumn = longitudeColumn
        self.latitudeColumn = latitudeColumn
        self.pointColumn = pointColumn
        self.header = header
        self.swapped = swapped
        self.bounds = bounds
        self.decimalSeparator = decimalSeparator
        self.alternateSeparator = alternateSeparator
    }

    /// The outcome for one record.
    enum Outcome {
        case accepted(longitude: Coordinate, latitude: Coordinate, swap: Bool)
        case rejected(code: RejectCode, column: Int, message: String)
    }

    public func validate(_ block: RecordBlock) -> ValidatedBlock {
        var result = ValidatedBlock(records: block)
        guard requireCoordinates else {
            result.accepted = Array(0..<block.count)
            result.coordinateEnds = Array(repeating: 0, count: block.count)
            return result
        }
        if let geometryColumn { return validateGeometries(block, geometryColumn) }
        if let transform { return validateProjected(block, transform) }
        result.accepted.reserveCapacity(block.count)
        result.coordinateEnds.reserveCapacity(block.count)
        result.coordinates.reserveCapacity(block.count * 24)
        block.bytes.withUnsafeBytes { bytes in
            let plainNotation = decimalSeparator == UInt8(ascii: ",") ? CoordinateNotation.decimalComma : .decimal
            for record in 0..<block.count {
                if pointColumn == nil && bounds == nil {
                    // The common case first, without building `Coordinate`s: two plain decimals in range.
                    let lonBytes = UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, longitudeColumn)])
                    let latBytes = UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, latitudeColumn)])
                    if case .success(let lon) = NumberText.parse(lonBytes, separator: decimalSeparator),
                        case .success(let lat) = NumberText.parse(latBytes, separator: decimalSeparator),
                        abs(lat.value) <= 90 && abs(lon.value) <= 180, lat.value != 0 || lon.value != 0
                    {
                        lon.appendJSON(from: lonBytes, to: &result.coordinates)
                        result.coordinates.append(UInt8(ascii: ","))
                        lat.appendJSON(from: latBytes, to: &result.coordinates)
                        result.coordinateEnds.append(result.coordinates.count)
                        result.accepted.append(record)
                        result.notations[lat.fraction.isEmpty ? 0 : plainNotation.ordinal] += 1
                        continue
                    }
                }
                if optionalCoordinates && coordinatesBlank(record, of: block, bytes) {
                    result.coordinateEnds.append(result.coordinates.count)
                    result.accepted.append(record)
                    continue
                }
                let outcome: Outcome
                if let pointColumn {
                    outcome = checkPoint(UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, pointColumn)]))
                } else {
                    outcome = check(
                        longitude: UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, longitudeColumn)]),
                        latitude: UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, latitudeColumn)]))
                }
                switch outcome {
                case .accepted(let lon, let lat, let swap):
                    (swap ? lat : lon).appendJSON(to: &result.coordinates)
                    result.coordinates.append(UInt8(ascii: ","))
                    (swap ? lon : lat).appendJSON(to: &result.coordinates)
                    result.coordinateEnds.append(result.coordinates.count)
                    result.accepted.append(record)
                    result.notations[lat.notation.ordinal] += 1
                case .rejected(let code, let column, let message):
                    result.records.rejections.append(
                        Rejection(
                            line: block.lines[record], code: code, column: header[column], message: message,
                            fields: block.originalCells(record)))
                }
            }
        }
        return result
    }

    /// `validate` for coordinates in another reference system: every row's easting and northing
    /// read as numbers, the block's points reprojected in one call, then each judged as degrees
    /// (ranges, `null_island`, bounds; columns of metres cannot be told swapped by their ranges).
    private func validateProjected(_ block: RecordBlock, _ transform: CoordinateTransform) -> ValidatedBlock {
        var result = ValidatedBlock(records: block)
        result.accepted.reserveCapacity(block.count)
        result.coordinateEnds.reserveCapacity(block.count)
        result.coordinates.reserveCapacity(block.count * 24)
        // Per record: an index into `xs`/`ys`, `blank` (passes without a point) or `rejected`.
        let blank = -1
        let rejected = -2
        var slots: [Int] = []
        slots.reserveCapacity(block.count)
        var xs: [Double] = []
        var ys: [Double] = []
        func refuse(_ record: Int, _ rejection: CoordinateRejection) {
            slots.append(rejected)
            if case .rejected(let code, let column, let message) = rejection.outcome {
                result.records.rejections.append(
                    Rejection(
                        line: block.lines[record], code: code, column: header[column], message: message,
                        fields: block.originalCells(record)))
            }
        }
        block.bytes.withUnsafeBytes { bytes in
            for record in 0..<block.count {
                if optionalCoordinates && coordinatesBlank(record, of: block, bytes) {
                    slots.append(blank)
                    continue
                }
                let xBytes: UnsafeRawBufferPointer
                let yBytes: UnsafeRawBufferPointer
                if let pointColumn {
                    switch projectedParts(
                        UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, pointColumn)]), transform)
                    {
                    case .success(let parts): (xBytes, yBytes) = parts
                    case .failure(let rejection):
                        refuse(record, rejection)
                        continue
                    }
                } else {
                    xBytes = UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, longitudeColumn)])
                    yBytes = UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, latitudeColumn)])
                }
                // Plain numbers first, without building `Coordinate`s.
                if case .success(let x) = NumberText.parse(xBytes, separator: decimalSeparator),
                    case .success(let y) = NumberText.parse(yBytes, separator: decimalSeparator)
                {
                    slots.append(xs.count)
                    xs.append(x.value)
                    ys.append(y.value)
                    continue
                }
                let x = coordinate(xBytes, column: longitudeColumn, axis: "easting")
                let y = coordinate(yBytes, column: latitudeColumn, axis: "northing")
                switch (x, y) {
                case (.success(let x), .success(let y)):
                    slots.append(xs.count)
                    xs.append(x.value)
                    ys.append(y.value)
                case (.failure(let rejection), _), (_, .failure(let rejection)):
                    refuse(record, rejection)
                }
            }
        }
        // In place: a point that fails is read again from its row for the message.
        var longitudes = xs
        var latitudes = ys
        xs = []
        ys = []
        longitudes.withUnsafeMutableBufferPointer { x in
            latitudes.withUnsafeMutableBufferPointer { transform.toDegrees(x: x, y: $0) }
        }
        var judge = self
        judge.swapped = .off
        for (record, slot) in slots.enumerated() where slot != rejected {
            guard slot != blank else {
                result.coordinateEnds.append(result.coordinates.count)
                result.accepted.append(record)
                continue
            }
            func reject(_ code: RejectCode, _ column: Int, _ message: String) {
                result.records.rejections.append(
                    Rejection(
                        line: block.lines[record], code: code, column: header[column], message: message,
                        fields: block.originalCells(record)))
            }
            let (longitude, latitude) = (longitudes[slot], latitudes[slot])
            func accept() {
                CoordinateText.appendDegrees(longitude, latitude, to: &result.coordinates)
                result.coordinateEnds.append(result.coordinates.count)
                result.accepted.append(record)
                result.notations[CoordinateNotation.decimal.ordinal] += 1
            }
            // The common case first, without building `Coordinate`s: in range, no bounds, not (0, 0).
            if bounds == nil, abs(latitude) <= 90, abs(longitude) <= 180, latitude != 0 || longitude != 0 {
                accept()
                continue
            }
            guard !longitude.isNaN else {
                let stated =
                    pointColumn.map { block.string(record, $0) }
                    ?? [longitudeColumn, latitudeColumn].map { block.string(record, $0) }.joined(separator: ", ")
                reject(
                    .invalidGeometry, latitudeColumn,
                    "the point (\(stated)) cannot be reprojected from \(transform.source) to WGS 84: it lies outside that system's area of use"
                )
                continue
            }
            let empty = UnsafeRawBufferPointer(start: nil, count: 0)
            let outcome = judge.judge(
                longitude: Coordinate(value: longitude, notation: .decimal, bytes: empty),
                latitude: Coordinate(value: latitude, notation: .decimal, bytes: empty))
            switch outcome {
            case .accepted: accept()
            case .rejected(let code, let column, let message):
                reject(code, column, message)
            }
        }
        if result.records.rejections.count > 1 { result.records.rejections.sort { $0.line < $1.line } }
        return result
    }

    private func coordinatesBlank(_ record: Int, of block: RecordBlock, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let columns = pointColumn.map { [$0] } ?? [longitudeColumn, latitudeColumn]
        return columns.allSatisfy {
            CoordinateText.trimmed(UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, $0)])).isEmpty
        }
    }

    /// Checks one pair of coordinate fields.
    @inline(__always)
    func check(longitude lonBytes: UnsafeRawBufferPointer, latitude latBytes: UnsafeRawBufferPointer) -> Outcome {
        let lon: Coordinate
        switch coordinate(lonBytes, column: longitudeColumn, axis: "longitude") {
        case .success(let value): lon = value
        case .failure(let rejection): return rejection.outcome
        }
        let lat: Coordinate
        switch coordinate(latBytes, column: latitudeColumn, axis: "latitude") {
        case .success(let value): lat = value
        case .failure(let rejection): return rejection.outcome
        }
        return judge(longitude: lon, latitude: lat)
    }

    /// Checks a field holding both coordinates.
    func checkPoint(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        switch point(bytes) {
        case .success(let (lon, lat)): judge(longitude: lon, latitude: lat)
        case .failure(let rejection): rejection.outcome
        }
    }

    /// Reads a field holding both coordinates (`CoordinateText.splitPoint`), not judged.
    func point(_ bytes: UnsafeRawBufferPointer) -> Result<(Coordinate, Coordinate), CoordinateRejection> {
        let column = pointColumn ?? latitudeColumn
        func rejection(_ code: RejectCode, _ message: String) -> Result<(Coordinate, Coordinate), CoordinateRejection> {
            .failure(CoordinateRejection(outcome: .rejected(code: code, column: column, message: message)))
        }
        if CoordinateText.trimmed(bytes).isEmpty { return rejection(.missingCoordinate, "the point is empty") }
        guard let parts = CoordinateText.splitPoint(bytes) else {
            return rejection(
                .invalidNumber,
                "\"\(String(decoding: bytes, as: UTF8.self))\" is not a point, expected \"lat, lon\", \"(lat, lon)\", \"lat lon\", POINT(lon lat) or ISO 6709 (+DD.dd+DDD.dd/)"
            )
        }
        if parts.notation == .iso6709 {
            guard let latitude = CoordinateText.iso6709(parts.latitude, degreeDigits: 2),
                let longitude = CoordinateText.iso6709(parts.longitude, degreeDigits: 3)
            else {
                return rejection(
                    .invalidNumber,
                    "\"\(String(decoding: bytes, as: UTF8.self))\" is not ISO 6709, expected ±DD[MM[SS]][.f]±DDD[MM[SS]][.f]/"
                )
            }
            return .success((longitude, latitude))
        }
        var lon: Coordinate
        var lat: Coordinate
        switch coordinate(parts.longitude, column: column, axis: "longitude") {
        case .success(let value): lon = value
        case .failure(let rejection): return .failure(rejection)
        }
        switch coordinate(parts.latitude, column: column, axis: "latitude") {
        case .success(let value): lat = value
        case .failure(let rejection): return .failure(rejection)
        }
        if let notation = parts.notation {
            lon.notation = notation
            lat.notation = notation
        }
        return .success((lon, lat))
    }

    /// The easting and northing texts of a field holding a point in another reference system:
    /// WKT `POINT(x y)` (easting first, as GIS writes it), else two numbers in the system's own
    /// axis order (`CoordinateTransform.northingFirst`: `easting, northing` for EPSG:2154).
    func projectedParts(_ bytes: UnsafeRawBufferPointer, _ transform: CoordinateTransform) -> Result<
        (x: UnsafeRawBufferPointer, y: UnsafeRawBufferPointer), CoordinateRejection
    > {
        let column = pointColumn ?? latitudeColumn
        func rejection(_ code: RejectCode, _ message: String) -> Result<
            (x: UnsafeRawBufferPointer, y: UnsafeRawBufferPointer), CoordinateRejection
        > {
            .failure(CoordinateRejection(outcome: .rejected(code: code, column: column, message: message)))
        }
        if CoordinateText.trimmed(bytes).isEmpty { return rejection(.missingCoordinate, "the point is empty") }
        guard let parts = CoordinateText.splitPoint(bytes), parts.notation != .iso6709 else {
            let order = transform.northingFirst ? "northing, easting" : "easting, northing"
            return rejection(
                .invalidNumber,
                "\"\(String(decoding: bytes, as: UTF8.self))\" is not a point in \(transform.source), expected \"\(order)\" (its axis order), \"\(order.replacingOccurrences(of: ",", with: ""))\" or POINT(easting northing)"
            )
        }
        // `splitPoint` names a pair's first value the latitude.
        if parts.notation == .wkt || transform.northingFirst { return .success((parts.longitude, parts.latitude)) }
        return .success((parts.latitude, parts.longitude))
    }

    struct CoordinateRejection: Error {
        var outcome: Outcome
    }

    /// One coordinate: a decimal number (with the alternate separator too), else a sexagesimal
    /// or hemisphere notation.
    @inline(__always)
    func coordinate(_ bytes: UnsafeRawBufferPointer, column: Int, axis: String) -> Result<
        Coordinate, CoordinateRejection
    > {
        switch NumberText.parse(bytes, separator: decimalSeparator) {
        case .success(let number):
            return .success(
                Coordinate(
                    value: number.value,
                    notation: decimalSeparator == UInt8(ascii: ",") && !number.fraction.isEmpty
                        ? .decimalComma : .decimal,
                    number: number, bytes: bytes))
        case .failure(.invalid):
            if let alternate = alternateSeparator,
                case .success(let number) = NumberText.parse(bytes, separator: alternate)
            {
                return .success(
                    Coordinate(
                        value: number.value, notation: alternate == UInt8(ascii: ",") ? .decimalComma : .decimal,
                        number: number, bytes: bytes))
            }
            // A hemisphere letter of the other axis is judged with the pair (`judge`).
            if let value = CoordinateText.sexagesimal(bytes, separator: alternateSeparator ?? decimalSeparator) {
                return .success(value)
            }
            return .failure(CoordinateRejection(outcome: numberRejection(.invalid, column: column, axis: axis, bytes)))
        case .failure(let failure):
            return .failure(CoordinateRejection(outcome: numberRejection(failure, column: column, axis: axis, bytes)))
        }
    }

    private func fits(_ hemisphere: UInt8, axis: String) -> Bool {
        axis == "latitude"
            ? hemisphere == UInt8(ascii: "N") || hemisphere == UInt8(ascii: "S")
            : hemisphere == UInt8(ascii: "E") || hemisphere == UInt8(ascii: "W")
    }

    /// Ranges, bounds and swapped columns, on values.
    @inline(__always)
    func judge(longitude lon: Coordinate, latitude lat: Coordinate) -> Outcome {
        let x = lon.value
        let y = lat.value
        if let latHemisphere = lat.hemisphere, let lonHemisphere = lon.hemisphere,
            !fits(latHemisphere, axis: "latitude") && !fits(lonHemisphere, axis: "longitude")
        {
            // 8°E in the latitude column and 50°N in the longitude column.
            if swapped != .off { return swappedOutcome(lon, lat, x, y, why: "hemisphere letters") }
        }
        if x == 0 && y == 0 && !allowNullIsland {
            return .rejected(
                code: .nullIsland, column: pointColumn ?? latitudeColumn,
                message:
                    "the point is (0, 0), which exports use for an unknown location; set coordinates.allow_null_island: true to import it"
            )
        }
        let inRange = abs(y) <= 90 && abs(x) <= 180
        let swappedInRange = abs(x) <= 90 && abs(y) <= 180
        if inRange {
            if let bounds, !contains(bounds, x, y) {
                if swapped != .off && contains(bounds, y, x) {
                    return swappedOutcome(lon, lat, x, y, why: "outside bounds")
                }
                return .rejected(
                    code: .outsideBounds, column: pointColumn ?? latitudeColumn,
                    message:
                        "point (\(text(x)), \(text(y))) is outside the bounds [\(bounds.map(text).joined(separator: ", "))]"
                )
            }
            return .accepted(longitude: lon, latitude: lat, swap: false)
        }
        if swapped != .off && swappedInRange && (bounds.map { contains($0, y, x) } ?? true) {
            return swappedOutcome(lon, lat, x, y, why: "out of range")
        }
        if abs(y) > 90 {
            return .rejected(
                code: .latitudeOutOfRange, column: pointColumn ?? latitudeColumn,
                message: "latitude \(text(y)) is outside -90..90")
        }
        return .rejected(
            code: .longitudeOutOfRange, column: pointColumn ?? longitudeColumn,
            message: "longitude \(text(x)) is outside -180..180")
    }

    private func swappedOutcome(_ lon: Coordinate, _ lat: Coordinate, _ x: Double, _ y: Double, why: String)
        -> Outcome
    {
        if swapped == .fix { return .accepted(longitude: lon, latitude: lat, swap: true) }
        let problem =
            switch why {
            case "out of range": "latitude \(text(y)) is outside -90..90"
            case "hemisphere letters": "the latitude carries an east/west letter and the longitude a north/south one"
            default: "the point is outside coordinates.bounds"
            }
        return .rejected(
            code: .coordinatesSwapped, column: pointColumn ?? latitudeColumn,
            message:
                "\(problem) but reads well as longitude \(text(y)), latitude \(text(x)): the columns look swapped (coordinates.swapped: fix swaps them)"
        )
    }

    private func contains(_ bounds: [Double], _ x: Double, _ y: Double) -> Bool {
        x >= bounds[0] && y >= bounds[1] && x <= bounds[2] && y <= bounds[3]
    }

    private func numberRejection(
        _ failure: NumberText.Failure, column: Int, axis: String, _ bytes: UnsafeRawBufferPointer
    ) -> Outcome {
        let value = String(decoding: bytes, as: UTF8.self)
        switch failure {
        case .empty:
            return .rejected(code: .missingCoordinate, column: column, message: "the \(axis) is empty")
        case .invalid:
            let separator =
                alternateSeparator != nil
                ? "decimal point or comma" : decimalSeparator == UInt8(ascii: ",") ? "decimal comma" : "decimal point"
            return .rejected(
                code: .invalidNumber, column: column,
                message:
                    "\"\(value)\" is not a number, expected the \(axis) in decimal degrees with a \(separator), or degrees-minutes-seconds"
            )
        case .nonFinite:
            return .rejected(
                code: .nonFiniteNumber, column: column,
                message: "\"\(value)\" is not a finite number, expected the \(axis) in decimal degrees")
        }
    }

    private func text(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

extension Validator {
    /// The point a row's coordinate fields say, read as the validator reads them but not judged
    /// (out of range, outside bounds or swapped as it may be): for drawing rejected rows. Nil when
    /// the fields are not numbers.
    func statedPoint(_ fields: [String]) -> (longitude: Double, latitude: Double)? {
        guard let (x, y) = statedPosition(fields) else { return nil }
        guard let transform else { return (x, y) }
        let degrees = transform.toDegrees(x: x, y: y)
        return degrees.longitude.isNaN ? nil : degrees
    }

    /// The first position a row states, in the file's own reference system.
    private func statedPosition(_ fields: [String]) -> (Double, Double)? {
        guard requireCoordinates else { return nil }
        func field(_ column: Int) -> [UInt8]? { column < fields.count ? Array(fields[column].utf8) : nil }
        if let geometryColumn {
            // A geometry's first position stands for it.
            guard let bytes = field(geometryColumn) else { return nil }
            var shape = Shape()
            return bytes.withUnsafeBytes { cell in
                do throws(ShapeProblem) {
                    try ShapeText.read(cell, into: &shape)
                    return (shape.xy[0], shape.xy[1])
                } catch { return nil }
            }
        }
        if let pointColumn {
            guard let bytes = field(pointColumn) else { return nil }
            return bytes.withUnsafeBytes { bytes in
                if let transform {
                    guard case .success(let (x, y)) = projectedParts(bytes, transform),
                        case .success(let easting) = coordinate(x, column: pointColumn, axis: "easting"),
                        case .success(let northing) = coordinate(y, column: pointColumn, axis: "northing")
                    else { return nil }
                    return (easting.value, northing.value)
                }
                guard case .success(let (longitude, latitude)) = point(bytes) else { return nil }
                return (longitude.value, latitude.value)
            }
        }
        guard let longitudeBytes = field(longitudeColumn), let latitudeBytes = field(latitudeColumn) else { return nil }
        return longitudeBytes.withUnsafeBytes { longitudeBytes in
            latitudeBytes.withUnsafeBytes { latitudeBytes in
                guard
                    case .success(let longitude) = coordinate(
                        longitudeBytes, column: longitudeColumn, axis: "longitude"),
                    case .success(let latitude) = coordinate(latitudeBytes, column: latitudeColumn, axis: "latitude")
                else { return nil }
                return (longitude.value, latitude.value)
            }
        }
    }
}
