import Foundation
import Testing

@testable import MapsembleImport

@Suite("Geocoders' answers: Nominatim, Photon and Pelias bodies to candidates with a confidence")
struct GeocoderAnswerTests {
    static let nominatim = #"""
        [{"place_id":1,"licence":"Data © OpenStreetMap contributors, ODbL 1.0.","osm_type":"way","osm_id":2,
          "lat":"52.5170365","lon":"13.3888599","category":"building","type":"yes","place_rank":30,
          "importance":0.2,"addresstype":"building","name":"","display_name":"Unter den Linden 5, 10117 Berlin, Deutschland",
          "address":{"road":"Unter den Linden","city":"Berlin","country_code":"de"},"boundingbox":["52.5","52.6","13.3","13.4"]},
         {"place_id":3,"lat":"-33.8688197","lon":"151.2092955","place_rank":16,"display_name":"Sydney, NSW, Australia",
          "address":{"country_code":"au"}},
         {"place_id":4,"lat":"not a number","lon":"1","place_rank":30,"display_name":"broken"}]
        """#
    static let photon = #"""
        {"type":"FeatureCollection","features":[
          {"type":"Feature","geometry":{"type":"Point","coordinates":[-43.1729,-22.9068]},
           "properties":{"osm_type":"R","type":"city","name":"Rio de Janeiro","country":"Brasil","countrycode":"BR"}},
          {"type":"Feature","geometry":{"type":"Point","coordinates":[2.2945,48.8584]},
           "properties":{"type":"house","name":"Tour Eiffel","street":"Avenue Anatole France","housenumber":"5",
                         "postcode":"75007","city":"Paris","country":"France","countrycode":"FR"}}]}
        """#
    static let pelias = #"""
        {"geocoding":{"version":"0.2","query":{"text":"Innsbruck"}},"type":"FeatureCollection","features":[
          {"type":"Feature","geometry":{"type":"Point","coordinates":[11.407851,47.272308]},
           "properties":{"layer":"locality","label":"Innsbruck, TR, Austria","confidence":1,"match_type":"exact",
                         "accuracy":"centroid","country_code":"AT"}},
          {"type":"Feature","geometry":{"type":"Point","coordinates":[-75.1,39.9]},
           "properties":{"label":"Somewhere, PA, USA","match_type":"interpolated","country_code":"US"}}],
         "bbox":[-75.1,39.9,11.4,47.3]}
        """#

    @Test("Nominatim jsonv2: strings to numbers, place_rank to confidence, a broken place skipped")
    func nominatimBody() throws {
        let candidates = try #require(GeocoderAnswers.nominatim(Array(Self.nominatim.utf8)))
        #expect(candidates.count == 2)
        #expect(candidates[0].place.longitude == 13.3888599 && candidates[0].place.latitude == 52.5170365)
        #expect(candidates[0].place.confidence == 1 && candidates[0].countryCode == "de")
        #expect(candidates[0].place.label == "Unter den Linden 5, 10117 Berlin, Deutschland")
        #expect(candidates[1].place.latitude == -33.8688197 && candidates[1].place.confidence == 0.5)
        #expect(GeocoderAnswers.nominatim(Array("[]".utf8)) == [])
        #expect(GeocoderAnswers.nominatim(Array("<html>busy</html>".utf8)) == nil)
        #expect(GeocoderAnswers.nominatim(Array(#"{"error":"x"}"#.utf8)) == nil)
    }

    @Test("Photon: GeoJSON [lon, lat], the type to confidence, a label from the address parts")
    func photonBody() throws {
        let candidates = try #require(GeocoderAnswers.photon(Array(Self.photon.utf8)))
        #expect(candidates.map(\.place.confidence) == [0.5, 1])
        #expect(candidates[0].place.longitude == -43.1729 && candidates[0].place.latitude == -22.9068)
        #expect(candidates[1].place.label == "Tour Eiffel, Avenue Anatole France, 5, 75007, Paris, France")
        #expect(candidates.map(\.countryCode) == ["br", "fr"])
        #expect(GeocoderAnswers.best(candidates)?.place.label.hasPrefix("Tour Eiffel") == true)
        #expect(GeocoderAnswers.best(candidates, countries: ["br"])?.place.label == "Rio de Janeiro, Brasil")
        #expect(GeocoderAnswers.best(candidates, countries: ["de"]) == nil)
    }

    @Test("Pelias: its own confidence, else the match type; the first of equals is the best")
    func peliasBody() throws {
        let candidates = try #require(GeocoderAnswers.pelias(Array(Self.pelias.utf8)))
        #expect(candidates.map(\.place.confidence) == [1, 0.8])
        #expect(candidates[0].countryCode == "at" && candidates[0].place.label == "Innsbruck, TR, Austria")
        let twins = [candidates[1], candidates[1]].enumerated().map { index, candidate in
            var candidate = candidate
            candidate.place.label = "twin \(index)"
            return candidate
        }
        #expect(GeocoderAnswers.best(twins)?.place.label == "twin 0")
    }

    @Test("round trip: generated places written as each provider writes them read back exactly")
    func roundTrip() throws {
        var generator = SplitMix(seed: 7946)
        for _ in 0..<500 {
            let latitude = (Double.random(in: -90...90, using: &generator) * 1e7).rounded() / 1e7
            let longitude = (Double.random(in: -180...180, using: &generator) * 1e7).rounded() / 1e7
            let nominatim = #"[{"lat":"\#(latitude)","lon":"\#(longitude)","place_rank":26,"display_name":"x"}]"#
            let geojson =
                #"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[\#(longitude),\#(latitude)]},"properties":{"type":"street","confidence":0.75}}]}"#
            for candidates in [
                GeocoderAnswers.nominatim(Array(nominatim.utf8)), GeocoderAnswers.photon(Array(geojson.utf8)),
                GeocoderAnswers.pelias(Array(geojson.utf8)),
            ] {
                let place = try #require(candidates?.first?.place)
                #expect(place.latitude == latitude && place.longitude == longitude, "\(latitude) \(longitude)")
            }
            #expect(GeocoderAnswers.pelias(Array(geojson.utf8))?.first?.place.confidence == 0.75)
            #expect(GeocoderAnswers.photon(Array(geojson.utf8))?.first?.place.confidence == 0.8)
        }
    }
}
