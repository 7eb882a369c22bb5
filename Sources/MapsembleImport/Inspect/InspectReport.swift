#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A sheet of a workbook, as `inspect` lists it.
public struct SheetSummary: Sendable {
    public var name: String
    /// The used range the sheet declares (`A1:K500001`), when it does.
    public var dimension: String?
    public var hidden: Bool
}

/// What `inspect` found in a file: everything a first pipeline.yml needs.
public struct InspectReport: Sendable {
    public var file: String
    public var sizeBytes: Int?
    /// `utf-8`, `utf-16le`, `utf-16be` or `windows-1252`, with ` (BOM)` when the file starts with one.
    public var encoding: String
    public var delimiter: UInt8
    public var hasHeader: Bool
    /// Data rows (the header is not one).
    public var rows: Int
    /// How `rows` was found: `counted lines`, `estimated from the sample`, or `parsed every row`.
    public var rowsMethod: String
    public var sampledRows: Int
    /// Rows of the sample (or of the whole file with `full`) libcsv could not parse.
    public var malformedRows: Int
    public var columns: [ColumnProfile]
    public var coordinates: CoordinateGuess?
    /// Columns that hold an address, for geocoding.
    public var address: AddressGuess?
    /// Column suggested as the feature label.
    public var label: Int?
    /// Column suggested as the remote id: named like an id and unique in what was read.
    public var remoteID: Int?
    /// Decimal separator of the number columns: `.` or `,`.
    public var decimalComma: Bool
    /// `"` is data, not a quote (TSV dumps such as GeoNames): reading with quotes breaks rows
    /// that reading without them does not.
    public var quoteNone: Bool
    /// Findings worth a line of their own (problems first).
    public var notes: [String]
    /// For a workbook: its sheets, and the one profiled.
    public var sheets: [SheetSummary] = []
    public var sheet: String?
    /// The workbook's format (`xlsx`, `ods`, `xls`) when the input is one.
    public var workbookFormat = "xlsx"
    /// The first records profiled, with the line each starts on (`InspectOptions.keepRecords`).
    public var records: [(line: Int, fields: [String])] = []
}

/// One column as the sample shows it.
public struct ColumnProfile: Sendable {
    public enum Kind: String, Sendable {
        case empty, integer, number, boolean, date, datetime, url, text
    }
    public var name: String
    public var kind: Kind
    /// Integers written with leading zeros (postcodes, ids): kept as text, never as numbers.
    public var leadingZeros: Bool
    /// Integers that read as codes rather than quantities: all of one length (postcodes, INSEE or
    /// station numbers), or a column named like a code or id. Sent as text.
    public var looksLikeCode: Bool
    public var values: Int
    public var nulls: Int
    public var examples: [String]
    public var minimum: Double?
    public var maximum: Double?
    /// The most digits after the decimal separator in a number (coordinates have several).
    public var fractionDigits: Int
    /// Every non-null value seen was different.
    public var unique: Bool
    /// Most values are coordinates in a notation other than a plain number (DMS, DDM, hemisphere).
    public var coordinateNotation: CoordinateNotation?
    /// Most values hold both coordinates: `lat, lon` and the like, or WKT, or ISO 6709
    /// (`pointNotation`: nil for the first).
    public var holdsPoints: Bool
    public var pointNotation: CoordinateNotation?
    /// Most values are geometries: WKT, EWKT, hex WKB or GeoJSON lines and polygons.
    public var holdsShapes = false
    public var nullShare: Double { values == 0 ? 0 : Double(nulls) / Double(values) }
}

/// Which columns hold the coordinates, and what their values say.
public struct CoordinateGuess: Sendable {
    public var longitude: Int
    public var latitude: Int
    /// One column holding both (then `longitude` and `latitude` name it too).
    public var point: Int?
    /// `name` (a conventional column name) or `values` (the ranges of numeric columns).
    public var foundBy: String
    /// `decimal degrees`, `decimal degrees with a decimal comma`, `degrees-minutes-seconds`, …
    public var notation: String
    public var looksSwapped: Bool
    /// Values in the thousands: a projected system (e.g. Lambert-93, UTM), not degrees.
    public var looksProjected: Bool
    public var evidence: String?
    /// A column of geometries (`coordinates.geometry`), instead of the columns above.
    public var geometry: Int? = nil
    /// For projected coordinates: the systems of PROJ's database that hold them, likeliest first.
    public var systems: [String] = []
}

/// Which columns hold an address (each an index into the columns).
public struct AddressGuess: Sendable, Equatable {
    public var street: Int?
    public var houseNumber: Int?
    public var postcode: Int?
    public var city: Int?
    public var state: Int?
    public var country: Int?
    /// One column holding the whole address.
    public var whole: Int?

    /// The `geocode:` settings that ask for it: `address:` (one column) or structured parts, each
    /// a column name or a template; in the order street, postcode, city, state, country.
    public func settings(_ columns: [ColumnProfile]) -> [(key: String, value: String)] {
        func name(_ index: Int) -> String { columns[index].name }
        if let whole, street == nil && city == nil { return [("address", name(whole))] }
        var parts: [(String, String)] = []
        if let street {
            parts.append(
                ("street", houseNumber.map { "{\(name(street))} {\(name($0))}" } ?? name(street)))
        }
        for (key, index) in [("postcode", postcode), ("city", city), ("state", state), ("country", country)] {
            if let index { parts.append((key, name(index))) }
        }
        return parts
    }

    /// The columns it uses.
    public var indices: [Int] { [street, houseNumber, postcode, city, state, country, whole].compactMap { $0 } }
}
