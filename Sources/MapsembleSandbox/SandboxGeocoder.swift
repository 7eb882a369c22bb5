import Foundation
import MapsembleJSON

/// The sandbox's geocoder: Nominatim- (`/search`), Photon- (`/api`) and Pelias-compatible
/// (`/v1/search`, `/v1/search/structured`) endpoints over a small gazetteer, so that geocoding can
/// be tried and tested offline. A query matches the places whose name (or an alternate name) it
/// holds as whole words, within the countries asked for, the most populous first. Requests meet
/// the faults of the sandbox's plan when `faults` is set, and a rate limit when `rateLimit` is:
/// a request past it in the same second is refused with 429, as public geocoders do.
public struct SandboxGeocoder: Sendable {
    public struct Place: Sendable, Equatable {
        public var name: String
        public var alternateNames: [String] = []
        /// ISO 3166-1 alpha-2, upper case.
        public var countryCode: String
        public var latitude: Double
        public var longitude: Double
        public var population: Int

        public init(
            name: String, alternateNames: [String] = [], countryCode: String, latitude: Double, longitude: Double,
            population: Int
        ) {
            self.name = name
            self.alternateNames = alternateNames
            self.countryCode = countryCode
            self.latitude = latitude
            self.longitude = longitude
            self.population = population
        }
    }

    public var places: [Place]
    /// Requests per second at most; past it, 429 (with `Retry-After: 1`).
    public var rateLimit: Double?
    /// The sandbox's fault plan applies to geocoder requests too (429s, 5xx).
    public var faults = false

    public init(places: [Place] = SandboxGeocoder.builtIn, rateLimit: Double? = nil) {
        self.places = places
        self.rateLimit = rateLimit
    }

    /// A few cities, some sharing a name (Paris, Frankfurt, Springfield), from GeoNames (CC BY 4.0).
    public static let builtIn: [Place] = [
        Place(name: "Berlin", countryCode: "DE", latitude: 52.52437, longitude: 13.41053, population: 3_426_354),
        Place(
            name: "München", alternateNames: ["Muenchen", "Munich"], countryCode: "DE", latitude: 48.13743,
            longitude: 11.57549, population: 1_260_391),
        Place(
            name: "Frankfurt am Main", alternateNames: ["Frankfurt"], countryCode: "DE", latitude: 50.11552,
            longitude: 8.68417, population: 650_000),
        Place(
            name: "Frankfurt (Oder)", alternateNames: ["Frankfurt"], countryCode: "DE", latitude: 52.34714,
            longitude: 14.55062, population: 60_625),
        Place(
            name: "Wien", alternateNames: ["Vienna"], countryCode: "AT", latitude: 48.20849, longitude: 16.37208,
            population: 1_691_468),
        Place(name: "Paris", countryCode: "FR", latitude: 48.85341, longitude: 2.3488, population: 2_138_551),
        Place(name: "Paris", countryCode: "US", latitude: 33.66094, longitude: -95.55551, population: 24_171),
        Place(name: "Springfield", countryCode: "US", latitude: 39.80172, longitude: -89.64371, population: 116_565),
        Place(
            name: "Melbourne", countryCode: "AU", latitude: -37.814, longitude: 144.96332, population: 4_917_750),
        Place(
            name: "Rio de Janeiro", countryCode: "BR", latitude: -22.90642, longitude: -43.18223,
            population: 6_747_815),
        Place(name: "Cape Town", countryCode: "ZA", latitude: -33.92584, longitude: 18.42322, population: 3_433_441),
    ]

    /// The places a query names, the most populous first.
    func matches(_ text: String, countries: [String]) -> [Place] {
        let words = " " + Self.words(text) + " "
        let wanted = Set(countries.map { $0.uppercased() })
        return places.filter { place in
            (wanted.isEmpty || wanted.contains(place.countryCode))
                && ([place.name] + place.alternateNames).contains { words.contains(" " + Self.words($0) + " ") }
        }.sorted { $0.population > $1.population }
    }

    /// Lower-case words joined by one space.
    static func words(_ text: String) -> String {
        text.lowercased().split { !($0.isLetter || $0.isNumber) }.joined(separator: " ")
    }

    /// The answer to a geocoder request, or nil when the path is not a geocoder's.
    func answer(_ request: SandboxRequest) -> SandboxReply? {
        let query = request.query
        let countries = (query["countrycodes"] ?? query["boundary.country"] ?? "").split(separator: ",").map(
            String.init)
        switch request.path {
        case "/search":
            let text =
                query["q"]
                ?? [query["street"], query["city"], query["postalcode"], query["country"]]
                .compactMap { $0 }.joined(separator: " ")
            let found = matches(text, countries: countries)
            return SandboxReply(
                status: 200,
                json: .array(
                    found.map { place in
                        [
                            "lat": .string(String(place.latitude)), "lon": .string(String(place.longitude)),
                            "place_rank": 16, "display_name": .string("\(place.name), \(place.countryCode)"),
                            "address": ["country_code": .string(place.countryCode.lowercased())],
                        ]
                    }))
        case "/api":
            return featureCollection(matches(query["q"] ?? "", countries: countries)) { place in
                [
                    "type": "city", "name": .string(place.name), "countrycode": .string(place.countryCode),
                ]
            }
        case "/v1/search", "/v1/search/structured":
            let text =
                query["text"]
                ?? [query["address"], query["locality"], query["postalcode"], query["country"]]
                .compactMap { $0 }.joined(separator: " ")
            return featureCollection(matches(text, countries: countries)) { place in
                [
                    "label": .string("\(place.name), \(place.countryCode)"), "layer": "locality",
                    "confidence": 1, "match_type": "exact", "country_code": .string(place.countryCode),
                ]
            }
        default:
            return nil
        }
    }

    private func featureCollection(_ places: [Place], properties: (Place) -> JSONValue) -> SandboxReply {
        SandboxReply(
            status: 200,
            json: [
                "type": "FeatureCollection",
                "features": .array(
                    places.map { place in
                        [
                            "type": "Feature",
                            "geometry": [
                                "type": "Point",
                                "coordinates": [.number(place.longitude), .number(place.latitude)],
                            ],
                            "properties": properties(place),
                        ]
                    }),
            ])
    }
}
