#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The guesses of `inspect`: which columns hold the coordinates (and whether they look swapped or
/// projected), which one holds the label, which one the remote id.
extension Inspector {
    static let longitudeNames = [
        "lon", "lng", "long", "longitude", "x", "lon_dd", "longitud", "längengrad", "laengengrad",
    ]
    static let latitudeNames = ["lat", "latitude", "y", "lat_dd", "latitud", "breitengrad"]

    static func guessCoordinates(_ columns: [ColumnProfile], decimalComma: Bool, notes: inout [String])
        -> CoordinateGuess?
    {
        func named(_ names: [String]) -> Int? {
            for candidate in names {
                if let index = columns.firstIndex(where: { $0.name.trimmingSpaces.lowercased() == candidate }) {
                    return index
                }
            }
            return nil
        }
        // Conventional names first, then names that contain one (ARPLongitude, x_wgs84, Laenge).
        func containing(_ words: [String], prefix: String, axis: String) -> Int? {
            columns.firstIndex { (column) in
                let name = column.name.lowercased()
                return words.contains { name.contains($0) } || name.hasPrefix(prefix)
                    || (name.contains("wgs84") && name.hasPrefix(axis))
            }
        }
        var longitude =
            named(longitudeNames)
            ?? containing(["longitude", "longitud", "laenge", "länge", "lng"], prefix: "lon", axis: "x")
        var latitude =
            named(latitudeNames) ?? containing(["latitude", "latitud", "breite"], prefix: "lat", axis: "y")
        var foundBy = "name"
        if longitude == nil || latitude == nil, let geometry = columns.firstIndex(where: \.holdsShapes) {
            return CoordinateGuess(
                longitude: geometry, latitude: geometry, point: nil, foundBy: "values",
                notation: "geometries (WKT, EWKT, hex WKB or GeoJSON)", looksSwapped: false, looksProjected: false,
                evidence: nil, geometry: geometry)
        }
        if longitude == nil || latitude == nil,
            let point = columns.firstIndex(where: \.holdsPoints)
        {
            let notation = columns[point].pointNotation
            return CoordinateGuess(
                longitude: point, latitude: point, point: point, foundBy: "values",
                notation: notation == .wkt
                    ? "WKT POINT(lon lat)" : notation == .iso6709 ? "ISO 6709" : "\"lat, lon\" in one column",
                looksSwapped: false, looksProjected: false, evidence: nil)
        }
        if longitude == nil || latitude == nil {
            // By values: two number columns within ±180, one of them within ±90; first among those
            // with several fractional digits (time zones, altitudes and counts have few or none).
            func pair(minimumDigits: Int) -> (longitude: Int, latitude: Int)? {
                let numeric = columns.indices.filter { (index) in
                    let column = columns[index]
                    guard column.kind == .number, column.fractionDigits >= minimumDigits, let low = column.minimum,
                        let high = column.maximum
                    else { return false }
                    return low >= -180 && high <= 180
                }
                let latitudes = numeric.filter { columns[$0].minimum! >= -90 && columns[$0].maximum! <= 90 }
                guard numeric.count == 2 && latitudes.count == 1 else { return nil }
                return (numeric.first { $0 != latitudes[0] }!, latitudes[0])
            }
            if let found = pair(minimumDigits: 3) ?? pair(minimumDigits: 0) {
                longitude = found.longitude
                latitude = found.latitude
                foundBy = "values"
            } else {
                // Two candidates both within ±90 (e.g. all of Europe): the values cannot tell which is which.
                let both = columns.indices.filter { (index) in
                    let column = columns[index]
                    guard column.kind == .number, column.fractionDigits >= 3, let low = column.minimum,
                        let high = column.maximum
                    else { return false }
                    return low >= -90 && high <= 90
                }
                if both.count == 2 {
                    notes.append(
                        "no coordinate columns found by name; \"\(columns[both[0]].name)\" and \"\(columns[both[1]].name)\" hold degrees, but their values (all within ±90) do not tell which is the latitude: name them in coordinates.longitude and coordinates.latitude"
                    )
                } else {
                    notes.append(
                        "no coordinate columns found: name them in coordinates.longitude and coordinates.latitude")
                }
                return nil
            }
        }
        guard let longitude, let latitude, longitude != latitude else {
            notes.append("no coordinate columns found: name them in coordinates.longitude and coordinates.latitude")
            return nil
        }
        let lon = columns[longitude]
        let lat = columns[latitude]
        func extent(_ column: ColumnProfile) -> Double {
            max(abs(column.minimum ?? 0), abs(column.maximum ?? 0))
        }
        let sexagesimal = lat.coordinateNotation ?? lon.coordinateNotation
        var guess = CoordinateGuess(
            longitude: longitude, latitude: latitude, point: nil, foundBy: foundBy,
            notation: sexagesimal.map(Self.describe)
                ?? (decimalComma ? "decimal degrees with a decimal comma" : "decimal degrees"),
            looksSwapped: false, looksProjected: false, evidence: nil)
        func readable(_ column: ColumnProfile) -> Bool {
            column.kind == .number || column.kind == .integer || column.coordinateNotation != nil
        }
        if !readable(lon) || !readable(lat) {
            notes.append(
                "the coordinate columns \"\(lon.name)\" and \"\(lat.name)\" do not hold coordinates this version reads (e.g. \(lat.examples.first ?? ""))"
            )
            return guess
        }
        if extent(lon) > 1000 && extent(lat) > 1000 {
            guess.looksProjected = true
            guess.evidence =
                "values run to \(Self.number(extent(lon))) and \(Self.number(extent(lat))): projected coordinates (metres, e.g. Lambert-93 or UTM), not degrees"
            notes.append("\"\(lon.name)\"/\"\(lat.name)\": \(guess.evidence!); reproject them to WGS 84 first")
        } else if extent(lat) > 90 && extent(lon) <= 90 {
            guess.looksSwapped = true
            guess.evidence =
                "\"\(lat.name)\" runs to \(Self.number(extent(lat))), past ±90, while \"\(lon.name)\" stays within ±90 (\(Self.number(extent(lon))))"
            notes.append("the coordinate columns look swapped: \(guess.evidence!)")
        }
        return guess
    }

    static func describe(_ notation: CoordinateNotation) -> String {
        switch notation {
        case .dms: "degrees-minutes-seconds"
        case .ddm: "degrees and decimal minutes"
        case .decimalHemisphere: "decimal degrees with hemisphere letters"
        case .decimalComma: "decimal degrees with a decimal comma"
        case .iso6709: "ISO 6709"
        case .wkt: "WKT POINT(lon lat)"
        case .decimal: "decimal degrees"
        }
    }

    static func guessLabel(_ columns: [ColumnProfile], excluding coordinates: CoordinateGuess?) -> Int? {
        if let named = columns.firstIndex(where: { ["label", "name", "title"].contains($0.name.lowercased()) }) {
            return named
        }
        if let named = columns.firstIndex(where: { $0.name.lowercased().contains("name") && $0.kind == .text }) {
            return named
        }
        // Else the first text column whose values are all different (and not an id).
        return columns.indices.first { (index) in
            let column = columns[index]
            return column.kind == .text && column.unique && !column.leadingZeros
                && index != coordinates?.longitude && index != coordinates?.latitude
                && column.examples.contains { $0.contains(" ") || $0.count > 12 }
        }
    }

    static func guessRemoteID(_ columns: [ColumnProfile], sampled: Int) -> Int? {
        guard sampled > 0 else { return nil }
        return columns.firstIndex { (column) in
            let name = column.name.lowercased()
            let idLike =
                name == "id" || name.hasSuffix("_id") || name.hasSuffix(" id") || name.hasSuffix("-id")
                || column.name.hasSuffix("Id") || column.name.hasSuffix("ID")
                || ["ref", "code", "key", "uuid", "guid"].contains(name)
            return idLike && column.unique && column.nulls == 0 && column.kind != .number
        }
    }

    /// Address columns, by their names (English, German, French, Spanish, Italian, Dutch): a
    /// street (with a house number column beside it, when there is one), a postcode, a city, a
    /// state and a country; or one column holding the whole address. Nil when none is found or
    /// only a country or state (too coarse to place a row).
    static func guessAddress(_ columns: [ColumnProfile]) -> AddressGuess? {
        // Folded and run together: "Straße" → strasse, "Code postal" → codepostal.
        let names = columns.map { GazetteerText.fold($0.name).replacingOccurrences(of: " ", with: "") }
        let usable = columns.indices.filter { columns[$0].kind != .empty }
        func find(_ candidates: [String]) -> Int? {
            // Exact names first, then names that start with one of five letters or more
            // (street_name, postcode_1; not "land" in Landkreis).
            usable.first { candidates.contains(names[$0]) }
                ?? usable.first { index in candidates.contains { $0.count >= 5 && names[index].hasPrefix($0) } }
        }
        var guess = AddressGuess()
        guess.street = find([
            "street", "streetaddress", "address1", "addressline1", "strasse", "str", "rue", "calle", "via",
            "straat", "adresse1",
        ])
        guess.houseNumber = find(["housenumber", "houseno", "hausnummer", "hausnr", "nr", "no", "number", "numero"])
        guess.postcode = find([
            "postcode", "postalcode", "zip", "zipcode", "plz", "cp", "codepostal", "cap", "codigopostal",
        ])
        guess.city = find([
            "city", "cityname", "town", "townname", "ort", "ortsname", "stadt", "ville", "commune", "ciudad",
            "localidad", "citta", "plaats",
            "municipality", "locality", "gemeinde",
        ])
        guess.state = find(["state", "region", "province", "bundesland", "county", "departement", "provincia"])
        guess.country = find(["country", "countrycode", "land", "pays", "pais", "paese"])
        guess.whole = find(["address", "fulladdress", "adresse", "anschrift", "direccion", "indirizzo", "adres"])
        if guess.street != nil && guess.street == guess.whole { guess.whole = nil }
        guard guess.street != nil || guess.postcode != nil || guess.city != nil || guess.whole != nil else {
            return nil
        }
        if guess.houseNumber != nil && guess.street == nil { guess.houseNumber = nil }
        return guess
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
