import Foundation
import MapsembleJSON
import Testing

@testable import MapsembleImport

@Suite("The gazetteer provider: places from a GeoNames extract, offline")
struct GazetteerTests {
    static let cities = projectDirectory + "/Tests/Fixtures/geonames/cities-extract.txt"
    static let postcodes = projectDirectory + "/Tests/Fixtures/geonames/postcodes-extract.txt"

    /// A line of the extract, read here on its own (not through the index).
    struct Place {
        var names: Set<String>
        var name: String
        var country: String
        var latitude: Double
        var longitude: Double
        var population: Int
    }

    static func places() throws -> [Place] {
        try String(contentsOfFile: cities, encoding: .utf8).split(separator: "\n").map { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            #expect(fields.count == 19)
            let names = [fields[1], fields[2]] + fields[3].split(separator: ",").map(String.init)
            return Place(
                names: Set(names.map { $0.lowercased() }), name: fields[1], country: fields[8],
                latitude: Double(fields[4])!, longitude: Double(fields[5])!, population: Int(fields[14]) ?? 0)
        }
    }

    func config(_ input: String, in dir: TempDir, gazetteer: String = GazetteerTests.cities) -> PipelineConfig {
        var config = PipelineConfig()
        config.source.path = input
        config.report.dir = dir.path
        config.properties.label = "id"
        var geocode = PipelineConfig.Geocode()
        geocode.address = "place"
        geocode.provider = "gazetteer"
        geocode.gazetteer = gazetteer
        config.geocode = geocode
        return config
    }

    func run(_ config: PipelineConfig, in dir: TempDir) async throws -> (RunSummary, [String: (Double, Double)]) {
        var options = RunOptions()
        options.dryRun = true
        options.output = dir.path + "/out.geojson"
        options.stateDirectory = dir.path + "/state"
        let summary = try await Pipeline(config: config, options: options).run()
        var points: [String: (Double, Double)] = [:]
        for feature in JSONParser.parse(Array(dir.read("out.geojson").utf8))?["features"]?.array ?? [] {
            guard let id = feature["properties"]?["label"]?.string,
                let coordinates = feature["geometry"]?["coordinates"]?.array
            else { continue }
            points[id] = (coordinates[0].number!, coordinates[1].number!)
        }
        return (summary, points)
    }

    @Test(
        "a file of \"City, Country\" rows built from the extract lands within 1 km of the extract's points; unknown places are address_not_found"
    )
    func cityCountryFile() async throws {
        let dir = TempDir()
        let places = try Self.places()
        let english = Locale(identifier: "en")
        var csv = "id,place\n"
        var expected: [String: (Double, Double)] = [:]
        for (index, place) in places.enumerated() {
            guard let country = english.localizedString(forRegionCode: place.country) else { continue }
            // The most populous place of the country known by this name.
            let named = places.filter { $0.country == place.country && $0.names.contains(place.name.lowercased()) }
            let best = named.max { $0.population < $1.population }!
            csv += "r\(index),\"\(place.name), \(country)\"\n"
            expected["r\(index)"] = (best.longitude, best.latitude)
        }
        csv += "u1,\"Atlantis, Germany\"\nu2,Xyzzyville\nu3,\"Paris, Japan\"\n"
        let (summary, points) = try await run(config(dir.write("cities.csv", csv), in: dir), in: dir)
        #expect(expected.count > 1_500)
        #expect(summary.imported == expected.count)
        #expect(summary.rejectedByCode == [.addressNotFound: 3])
        var far: [String] = []
        for (id, point) in expected {
            guard let found = points[id], greatCircleMetres(found, point) <= 1_000 else {
                far.append(id)
                continue
            }
        }
        #expect(far.isEmpty, "rows placed more than 1 km from the extract's point: \(far.prefix(10))")
        #expect(dir.read("cities.rejected.csv").contains("\"Atlantis, Germany\""))
    }

    @Test("ambiguous names: the country in the address, then geocode.country_codes, then population decide")
    func ambiguousNames() async throws {
        let dir = TempDir()
        let input = dir.write(
            "ambiguous.csv",
            "id,place\nparis,Paris\nparis-us,\"Paris, USA\"\nparis-tx,\"Paris, Texas, United States\"\n"
                + "springfield,\"Springfield, IL, USA\"\nlondon-ca,\"London, Canada\"\n")
        var (summary, points) = try await run(config(input, in: dir), in: dir)
        #expect(summary.imported == 5)
        #expect(greatCircleMetres(points["paris"]!, (2.3488, 48.85341)) < 1_000, "the most populous Paris")
        #expect(greatCircleMetres(points["paris-us"]!, (-95.55551, 33.66094)) < 1_000)
        #expect(greatCircleMetres(points["paris-tx"]!, (-95.55551, 33.66094)) < 1_000)
        #expect(greatCircleMetres(points["springfield"]!, (-89.64371, 39.80172)) < 1_000, "IL names the division")
        #expect(points["london-ca"]!.1 < 43.5)

        var limited = config(input, in: dir)
        limited.geocode?.countryCodes = ["us"]
        (summary, points) = try await run(limited, in: dir)
        #expect(greatCircleMetres(points["paris"]!, (-95.55551, 33.66094)) < 1_000, "country_codes: [us]")
        #expect(summary.rejectedByCode == [.addressNotFound: 1], "London, Canada is outside country_codes")
    }

    @Test("alternate names and ASCII folding: München, Muenchen, MÜNCHEN and Munich are one place")
    func folding() throws {
        let dir = TempDir()
        let gazetteer = try Gazetteer(file: Self.cities, directory: dir.path)
        for name in ["München", "Muenchen", "MÜNCHEN", "munich", "Munchen, Deutschland", "Munich, Germany"] {
            let best = try gazetteer.candidates(for: Address(freeForm: name), countries: []).first
            #expect(best?.place.latitude == 48.13743, "\(name)")
            #expect(best?.countryCode == "de")
        }
        for (name, country) in [("Zürich", "ch"), ("Zurich", "ch"), ("Krakow", "pl"), ("Sao Paulo", "br")] {
            #expect(try gazetteer.candidates(for: Address(freeForm: name), countries: []).first?.countryCode == country)
        }
        #expect(GazetteerText.keys("Straße") == ["strasse"])
        #expect(GazetteerText.keys("Düsseldorf") == ["dusseldorf", "duesseldorf"])
        #expect(CountryNames.code("Deutschland") == "DE" && CountryNames.code("de") == "DE")
        #expect(CountryNames.code("Atlantis") == nil)
    }

    @Test("structured parts: city and country; postal codes from the postal-code export")
    func partsAndPostcodes() throws {
        let dir = TempDir()
        let cities = try Gazetteer(file: Self.cities, directory: dir.path)
        let parts = Address(parts: [.city: "Frankfurt", .country: "Deutschland"])
        #expect(try cities.candidates(for: parts, countries: []).first?.place.latitude == 50.11552)
        #expect(try cities.candidates(for: Address(parts: [.city: "Paris", .country: "XX"]), countries: []).isEmpty)
        // Two letters after a place: its division when it has one of that code, else a country.
        for (text, latitude) in [
            ("Springfield, IL", 39.80172), ("Springfield, MA", 42.10148), ("Springfield", 37.21533),
        ] {
            #expect(
                try cities.candidates(for: Address(freeForm: text), countries: []).first?.place.latitude == latitude)
        }
        #expect(try cities.candidates(for: Address(freeForm: "Paris, FR"), countries: []).first?.countryCode == "fr")
        let stated = Address(parts: [.city: "Springfield", .state: "OR", .country: "US"])
        #expect(try cities.candidates(for: stated, countries: []).first?.place.latitude == 44.04624, "the state part")

        let postal = try Gazetteer(file: Self.postcodes, directory: dir.path)
        let lines = try String(contentsOfFile: Self.postcodes, encoding: .utf8).split(separator: "\n")
        let frankfurt = lines.first { $0.contains("\tFrankfurt am Main\t") }!.split(
            separator: "\t", omittingEmptySubsequences: false)
        let (code, latitude) = (String(frankfurt[1]), Double(frankfurt[9])!)
        let agreed = try postal.candidates(for: Address(freeForm: "Zeil 1, \(code) Frankfurt am Main"), countries: [])
        #expect(agreed.first?.place.latitude == latitude)
        #expect(agreed.first?.place.confidence == 0.8, "the code and the place agree")
        let codeOnly = try postal.candidates(for: Address(freeForm: "\(code), Germany"), countries: [])
        #expect(codeOnly.first?.place.latitude == latitude)
        #expect(codeOnly.first?.place.confidence == 0.6)
        let structured = Address(parts: [.street: "Zeil 1", .postcode: code, .city: "Frankfurt am Main"])
        #expect(try postal.candidates(for: structured, countries: []).first?.place.confidence == 0.8)
    }

    @Test("the index is built once and reused while the file is unchanged; a .zip is read directly")
    func indexReuse() throws {
        let dir = TempDir()
        let copy = dir.path + "/cities.txt"
        try FileManager.default.copyItem(atPath: Self.cities, toPath: copy)
        _ = try Gazetteer(file: copy, directory: dir.path)
        let index = try FileManager.default.contentsOfDirectory(atPath: dir.path).first { $0.hasPrefix("gazetteer-") }!
        let built = try FileManager.default.attributesOfItem(atPath: dir.path + "/" + index)[.modificationDate] as! Date
        Thread.sleep(forTimeInterval: 0.05)
        _ = try Gazetteer(file: copy, directory: dir.path)
        #expect(
            try FileManager.default.attributesOfItem(atPath: dir.path + "/" + index)[.modificationDate] as! Date
                == built)
        // A changed file is indexed again: a place added is found.
        let handle = FileHandle(forWritingAtPath: copy)!
        handle.seekToEndOfFile()
        handle.write(
            Data(
                "9999999\tNeuort\tNeuort\t\t50.5\t10.5\tP\tPPL\tDE\t\t\t\t\t\t100\t\t\tEurope/Berlin\t2026-01-01\n".utf8
            ))
        handle.closeFile()
        let rebuilt = try Gazetteer(file: copy, directory: dir.path)
        #expect(try rebuilt.candidates(for: Address(freeForm: "Neuort"), countries: []).first?.place.latitude == 50.5)

        let zipped = try Gazetteer(
            file: projectDirectory + "/Tests/Fixtures/geonames/cities-extract.zip", directory: dir.path)
        #expect(try zipped.candidates(for: Address(freeForm: "Reykjavik"), countries: []).first?.countryCode == "is")
    }

    @Test("a line that is not a GeoNames record: one sentence naming the file and line")
    func badLine() throws {
        let dir = TempDir()
        let file = dir.write(
            "broken.txt", "1\tA\tA\t\t1\t2\tP\tPPL\tDE\t\t\t\t\t\t0\t\t\tX\t2020-01-01\nnot a record\n")
        #expect {
            try Gazetteer(file: file, directory: dir.path)
        } throws: { error in
            let message = (error as? ImportError)?.description ?? ""
            return message.hasSuffix(
                "broken.txt:2: the line has 1 tab-separated field, expected 19 (a GeoNames place) or 12 (a GeoNames postal code)"
            )
        }
    }
}
