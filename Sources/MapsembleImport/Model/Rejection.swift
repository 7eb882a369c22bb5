/// Why a row was not imported. The raw values are stable snake_case words: users grep for them
/// and scripts count them in `summary.json`.
public enum RejectCode: String, Sendable, CaseIterable, Comparable {
    case malformedRow = "malformed_row"
    case invalidEncoding = "invalid_encoding"
    case missingCoordinate = "missing_coordinate"
    case invalidNumber = "invalid_number"
    case nonFiniteNumber = "non_finite_number"
    case latitudeOutOfRange = "latitude_out_of_range"
    case longitudeOutOfRange = "longitude_out_of_range"
    case coordinatesSwapped = "coordinates_swapped"
    case outsideBounds = "outside_bounds"
    case nullIsland = "null_island"
    case missingRemoteId = "missing_remote_id"
    case duplicateRemoteId = "duplicate_remote_id"
    case invalidFieldValue = "invalid_field_value"
    case serverRejected = "server_rejected"
    case planLimit = "plan_limit"
    case unknownRemoteId = "unknown_remote_id"
    case invalidCell = "invalid_cell"
    case missingAddress = "missing_address"
    case addressNotFound = "address_not_found"
    case geocodeLowConfidence = "geocode_low_confidence"
    case geocodeFailed = "geocode_failed"
    case invalidGeometry = "invalid_geometry"
    case unsupportedGeometry = "unsupported_geometry"
    case tooManyVertices = "too_many_vertices"

    public static func < (lhs: RejectCode, rhs: RejectCode) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One input row that was not imported: a value, never an exception.
///
/// `fields` is the original record, unchanged, so the rejected-rows report can be fixed and fed
/// back as input. For a row the CSV parser could not split, it holds the raw physical line.
public struct Rejection: Sendable, Equatable {
    /// Physical line (1-based, header included) where the record starts.
    public var line: Int
    public var code: RejectCode
    /// The column the problem is in, by its header name; empty when it concerns the whole row.
    public var column: String
    /// One sentence saying what was expected.
    public var message: String
    public var fields: [String]

    public init(line: Int, code: RejectCode, column: String, message: String, fields: [String]) {
        self.line = line
        self.code = code
        self.column = column
        self.message = message
        self.fields = fields
    }
}
