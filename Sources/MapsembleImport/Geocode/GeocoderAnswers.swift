import MapsembleJSON

/// One place a geocoder offered for an address.
struct GeocodeCandidate: Sendable, Equatable {
    var place: GeocodeCache.Place
    /// ISO 3166-1 alpha-2, lower case, when the geocoder said it.
    var countryCode: String?
}

/// The geocoders' answers read into candidates, each with a confidence in 0…1 taken from the
/// provider's own score or match type (documented in docs/cli.md per provider). A body that is not
/// the provider's format is nil (the provider failed, not "not found"); an empty list is "not found".
enum GeocoderAnswers {
    /// Nominatim's `/search?format=jsonv2`: an array of places, `lat` and `lon` as strings. The
    /// confidence comes from `place_rank`, how precise the place is: a house or building (30) 1.0,
    /// a street or point of interest (26–29) 0.8, a suburb, village or postcode area (17–25) 0.6,
    /// a city (13–16) 0.5, anything coarser (a county, a state, a country) 0.2.
    static func nominatim(_ body: [UInt8]) -> [GeocodeCandidate]? {
        guard let places = JSONValue.parse(body)?.array else { return nil }
        return places.compactMap { place in
            guard let latitude = place["lat"]?.string.flatMap(Double.init),
                let longitude = place["lon"]?.string.flatMap(Double.init), abs(latitude) <= 90,
                abs(longitude) <= 180
            else { return nil }
            let rank = place["place_rank"]?.integer ?? 0
            let confidence =
                switch rank {
                case 30...: 1.0
                case 26..<30: 0.8
                case 17..<26: 0.6
                case 13..<17: 0.5
                default: 0.2
                }
            return GeocodeCandidate(
                place: .init(
                    longitude: longitude, latitude: latitude, confidence: confidence,
                    label: place["display_name"]?.string ?? ""),
                countryCode: place["address"]?["country_code"]?.string?.lowercased())
        }
    }

    /// Photon's `/api`: a GeoJSON FeatureCollection. The confidence comes from the feature's
    /// `type`: `house` 1.0, `street` 0.8, `locality` and `district` 0.6, `city` 0.5, `county`,
    /// `state` and `country` 0.2, anything else (`other`) 0.4.
    static func photon(_ body: [UInt8]) -> [GeocodeCandidate]? {
        guard let features = JSONValue.parse(body)?["features"]?.array else { return nil }
        return features.compactMap { feature in
            guard let (longitude, latitude) = point(feature) else { return nil }
            let properties = feature["properties"]
            let confidence =
                switch properties?["type"]?.string {
                case "house": 1.0
                case "street": 0.8
                case "locality", "district": 0.6
                case "city": 0.5
                case "county", "state", "country": 0.2
                default: 0.4
                }
            let label = ["name", "street", "housenumber", "postcode", "city", "country"].compactMap {
                properties?[$0]?.string
            }
            return GeocodeCandidate(
                place: .init(
                    longitude: longitude, latitude: latitude, confidence: confidence,
                    label: label.joined(separator: ", ")),
                countryCode: properties?["countrycode"]?.string?.lowercased())
        }
    }

    /// Pelias' `/v1/search` and `/v1/search/structured`: a GeoJSON FeatureCollection whose
    /// features carry their own `confidence` (0…1), used as it is; without one, from `match_type`:
    /// `exact` 1.0, `interpolated` 0.8, `fallback` 0.5, none 0.4.
    static func pelias(_ body: [UInt8]) -> [GeocodeCandidate]? {
        guard let features = JSONValue.parse(body)?["features"]?.array else { return nil }
        return features.compactMap { feature in
            guard let (longitude, latitude) = point(feature) else { return nil }
            let properties = feature["properties"]
            let matched: Double =
                switch properties?["match_type"]?.string {
                case "exact": 1.0
                case "interpolated": 0.8
                case "fallback": 0.5
                default: 0.4
                }
            let confidence = min(1, max(0, properties?["confidence"]?.number ?? matched))
            return GeocodeCandidate(
                place: .init(
                    longitude: longitude, latitude: latitude, confidence: confidence,
                    label: properties?["label"]?.string ?? ""),
                countryCode: (properties?["country_code"]?.string).map { $0.lowercased() })
        }
    }

    /// The best candidate: the most confident, the provider's order deciding between equals;
    /// with `countries`, only candidates in them (or of no stated country).
    static func best(_ candidates: [GeocodeCandidate], countries: [String] = []) -> GeocodeCandidate? {
        let allowed =
            countries.isEmpty
            ? candidates
            : candidates.filter { candidate in
                candidate.countryCode.map { countries.contains($0) } ?? true
            }
        return allowed.enumerated().max { a, b in
            (a.element.place.confidence, -a.offset) < (b.element.place.confidence, -b.offset)
        }?.element
    }

    /// A GeoJSON Point feature's `[lon, lat]`.
    private static func point(_ feature: JSONValue) -> (Double, Double)? {
        guard let coordinates = feature["geometry"]?["coordinates"]?.array, coordinates.count >= 2,
            let longitude = coordinates[0].number, let latitude = coordinates[1].number,
            abs(latitude) <= 90, abs(longitude) <= 180
        else { return nil }
        return (longitude, latitude)
    }
}
