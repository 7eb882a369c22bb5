/// Records whose coordinates passed, each with its `[longitude, latitude]` as JSON text.
public struct ValidatedBlock: Sendable {
    public var records: RecordBlock
    /// Indexes (into `records`) of the records that passed, in order.
    public var accepted: [Int] = []
    /// `lon,lat` JSON text of each accepted record, back to back; `coordinateEnds` delimits them.
    public var coordinates: [UInt8] = []
    public var coordinateEnds: [Int] = []
}

/// Stage 2: checks coordinates. `RecordBlock` → `ValidatedBlock`.
///
/// Numbers are read strictly (`NumberText`): empty, text, NaN and Inf are rejected, each with its
/// own code. Latitude must be in [-90, 90] and longitude in [-180, 180]; a row whose latitude is
/// out of range while its longitude would be a valid latitude is `coordinates_swapped` (or fixed,
/// with `swapped: fix`). Output is always `[longitude, latitude]` whatever the column order.
/// Pure and synchronous; never throws for row errors.
public struct Validator: Sendable {
    public var longitudeColumn: Int
    public var latitudeColumn: Int
    public var header: [String]
    public var swapped: PipelineConfig.SwappedPolicy
    /// `[min_lon, min_lat, max_lon, max_lat]`.
    public var bounds: [Double]?
    public var decimalSeparator: UInt8
    /// False for deletes by remote id: every record passes, with no coordinates.
    public var requireCoordinates: Bool

    public init(
        longitudeColumn: Int, latitudeColumn: Int, header: [String],
        swapped: PipelineConfig.SwappedPolicy = .reject, bounds: [Double]? = nil,
        decimalSeparator: UInt8 = UInt8(ascii: "."), requireCoordinates: Bool = true
    ) {
        self.requireCoordinates = requireCoordinates
        self.longitudeColumn = longitudeColumn
        self.latitudeColumn = latitudeColumn
        self.header = header
        self.swapped = swapped
        self.bounds = bounds
        self.decimalSeparator = decimalSeparator
    }

    /// The outcome for one record.
    enum Outcome {
        case accepted(longitude: NumberText, latitude: NumberText, swap: Bool)
        case rejected(code: RejectCode, column: Int, message: String)
    }

    public func validate(_ block: RecordBlock) -> ValidatedBlock {
        var result = ValidatedBlock(records: block)
        guard requireCoordinates else {
            result.accepted = Array(0..<block.count)
            result.coordinateEnds = Array(repeating: 0, count: block.count)
            return result
        }
        result.accepted.reserveCapacity(block.count)
        result.coordinateEnds.reserveCapacity(block.count)
        result.coordinates.reserveCapacity(block.count * 24)
        block.bytes.withUnsafeBytes { bytes in
            for record in 0..<block.count {
                let lonBytes = UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, longitudeColumn)])
                let latBytes = UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, latitudeColumn)])
                switch check(longitude: lonBytes, latitude: latBytes) {
                case .accepted(let lon, let lat, let swap):
                    if swap {
                        lat.appendJSON(from: latBytes, to: &result.coordinates)
                        result.coordinates.append(UInt8(ascii: ","))
                        lon.appendJSON(from: lonBytes, to: &result.coordinates)
                    } else {
                        lon.appendJSON(from: lonBytes, to: &result.coordinates)
                        result.coordinates.append(UInt8(ascii: ","))
                        lat.appendJSON(from: latBytes, to: &result.coordinates)
                    }
                    result.coordinateEnds.append(result.coordinates.count)
                    result.accepted.append(record)
                case .rejected(let code, let column, let message):
                    result.records.rejections.append(
                        Rejection(
                            line: block.lines[record], code: code, column: header[column], message: message,
                            fields: block.strings(record)))
                }
            }
        }
        return result
    }

    /// Checks one pair of coordinate fields.
    @inline(__always)
    func check(longitude lonBytes: UnsafeRawBufferPointer, latitude latBytes: UnsafeRawBufferPointer) -> Outcome {
        let lon: NumberText
        switch NumberText.parse(lonBytes, separator: decimalSeparator) {
        case .success(let value): lon = value
        case .failure(let failure):
            return numberRejection(failure, column: longitudeColumn, axis: "longitude", lonBytes)
        }
        let lat: NumberText
        switch NumberText.parse(latBytes, separator: decimalSeparator) {
        case .success(let value): lat = value
        case .failure(let failure): return numberRejection(failure, column: latitudeColumn, axis: "latitude", latBytes)
        }
        let x = lon.value
        let y = lat.value
        let inRange = abs(y) <= 90 && abs(x) <= 180
        let swappedInRange = abs(x) <= 90 && abs(y) <= 180
        if inRange {
            if let bounds, !contains(bounds, x, y) {
                if swapped != .off && contains(bounds, y, x) {
                    return swappedOutcome(lon, lat, x, y, why: "outside bounds")
                }
                return .rejected(
                    code: .outsideBounds, column: latitudeColumn,
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
                code: .latitudeOutOfRange, column: latitudeColumn,
                message: "latitude \(text(y)) is outside -90..90")
        }
        return .rejected(
            code: .longitudeOutOfRange, column: longitudeColumn,
            message: "longitude \(text(x)) is outside -180..180")
    }

    private func swappedOutcome(_ lon: NumberText, _ lat: NumberText, _ x: Double, _ y: Double, why: String) -> Outcome
    {
        if swapped == .fix { return .accepted(longitude: lon, latitude: lat, swap: true) }
        let problem =
            why == "out of range" ? "latitude \(text(y)) is outside -90..90" : "the point is outside coordinates.bounds"
        return .rejected(
            code: .coordinatesSwapped, column: latitudeColumn,
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
            let separator = decimalSeparator == UInt8(ascii: ",") ? "decimal comma" : "decimal point"
            return .rejected(
                code: .invalidNumber, column: column,
                message: "\"\(value)\" is not a number, expected the \(axis) in decimal degrees with a \(separator)")
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
