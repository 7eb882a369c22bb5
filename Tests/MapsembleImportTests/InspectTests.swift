import Foundation
import MapsembleJSON
import Testing

@testable import MapsembleImport

@Suite("inspect: sniffing, profiles, coordinates, the starter pipeline")
struct InspectTests {
    /// A file of `rows` rows with an id, a name, lat and lon.
    static func places(_ rows: Int, notes: Bool = false) -> String {
        var text = "id,name,lat,lon" + (notes ? ",notes" : "") + "\n"
        for row in 1...rows {
            let lat = Double(row % 170) - 85 + 0.25
            let lon = Double(row % 350) - 175 + 0.5
            text += "\(row),Place \(row),\(lat),\(lon)"
            if notes { text += row % 10 == 0 ? ",\"two\nlines\"" : ",one" }
            text += "\n"
        }
        return text
    }

    @Test("the stores sample: header, delimiter, types, coordinates, label and remote id")
    func storesSample() throws {
        let report = try Inspector.inspect(path: projectDirectory + "/samples/stores/stores.csv")
        #expect(report.hasHeader)
        #expect(report.delimiter == UInt8(ascii: ","))
        #expect(report.encoding == "utf-8")
        #expect(report.rows == 15)
        #expect(report.rowsMethod == "parsed every row")
        let names = report.columns.map(\.name)
        #expect(report.coordinates.map { names[$0.longitude] } == "lon")
        #expect(report.coordinates.map { names[$0.latitude] } == "lat")
        #expect(report.coordinates?.looksSwapped == false)
        #expect(report.label.map { names[$0] } == "name")
        #expect(report.remoteID.map { names[$0] } == "store_id")
        let kinds = Dictionary(uniqueKeysWithValues: report.columns.map { ($0.name, $0.kind) })
        #expect(kinds["lat"] == .number)
        #expect(kinds["opened"] == .date)
        #expect(kinds["city"] == .text)
    }

    @Test("the fast path counts lines without parsing them; the sample stays small")
    func fastPathCountsLines() throws {
        let dir = TempDir()
        // Blank lines are not rows; the last line has no line end.
        var text = Self.places(3000)
        text += "\n\r\n3001,Last,1.5,2.5"
        let path = dir.write("places.csv", text)
        var options = InspectOptions()
        options.sampleRows = 100
        let report = try Inspector.inspect(path: path, options: options)
        #expect(report.sampledRows == 100)
        #expect(report.rows == 3001)
        #expect(report.rowsMethod == "counted lines")

        options.full = true
        let full = try Inspector.inspect(path: path, options: options)
        #expect(full.rows == 3001)
        #expect(full.sampledRows == 3001)
        #expect(full.rowsMethod == "parsed every row")
    }

    @Test("quoted fields spanning lines make the count an estimate from the sample, and say so")
    func multiLineEstimate() throws {
        let dir = TempDir()
        let path = dir.write("notes.csv", Self.places(5000, notes: true))
        var options = InspectOptions()
        options.sampleRows = 500
        let report = try Inspector.inspect(path: path, options: options)
        #expect(report.rowsMethod.hasPrefix("estimated"))
        #expect(abs(report.rows - 5000) <= 50)
    }

    @Test("no header row: found from numbers in the first row; coordinates found by their values")
    func noHeader() throws {
        let dir = TempDir()
        let path = dir.write(
            "bare.csv", "7,12.5,151.25,Sydney Opera\n8,-33.5,-70.75,Santiago Plaza\n9,48.25,2.5,Paris Nord\n")
        let report = try Inspector.inspect(path: path)
        #expect(!report.hasHeader)
        #expect(report.rows == 3)
        #expect(report.columns.map(\.name) == ["1", "2", "3", "4"])
        #expect(report.coordinates?.foundBy == "values")
        #expect(report.coordinates?.longitude == 2)
        #expect(report.coordinates?.latitude == 1)
    }

    @Test("a latitude column past ±90 beside a longitude column within ±90 looks swapped, with the evidence")
    func swapped() throws {
        let dir = TempDir()
        let path = dir.write("swapped.csv", "name,latitude,longitude\nSydney,151.21,-33.87\nPerth,115.86,-31.95\n")
        let report = try Inspector.inspect(path: path)
        #expect(report.coordinates?.looksSwapped == true)
        let evidence = try #require(report.coordinates?.evidence)
        #expect(evidence.contains("\"latitude\" runs to 151.21"))
        #expect(report.starterPipeline(path: path).contains("swapped: fix"))

        let straight = dir.write("straight.csv", "name,latitude,longitude\nSydney,-33.87,151.21\n")
        #expect(try Inspector.inspect(path: straight).coordinates?.looksSwapped == false)
    }

    @Test("projected coordinates (metres) are named as such")
    func projected() throws {
        let dir = TempDir()
        let path = dir.write("l93.csv", "nom;x;y\nGare A;652469,4;6862035,3\nGare B;843012,2;6519876,1\n")
        let report = try Inspector.inspect(path: path)
        #expect(report.delimiter == UInt8(ascii: ";"))
        #expect(report.decimalComma)
        #expect(report.coordinates?.looksProjected == true)
        #expect(report.notes.contains { $0.contains("projected coordinates") })
        // PROJ's database proposes Lambert-93 first; the starter pipeline sets it.
        #expect(report.coordinates?.systems.first == "EPSG:2154")
        #expect(report.notes.contains { $0.contains("they fit EPSG:2154 (RGF93 v1 / Lambert-93)") })
        #expect(report.starterPipeline(path: path).contains("  crs: EPSG:2154 "))
    }

    @Test("a column of WKT, GeoJSON or hex WKB geometries is found by its values, and --emit-config maps it")
    func geometryColumn() async throws {
        let dir = TempDir()
        let path = dir.write(
            "zones.csv",
            """
            id,name,shape
            1,paris,"POLYGON ((2.25 48.81, 2.42 48.81, 2.42 48.90, 2.25 48.81))"
            2,route,"{""type"":""LineString"",""coordinates"":[[2.2,48.7],[2.5,48.95]]}"
            3,stop,POINT (2.35 48.6)
            4,pier,0101000020E6100000A4703D0AD7A3F03FCDCCCCCCCC4C4740

            """)
        let report = try Inspector.inspect(path: path)
        #expect(report.coordinates?.geometry == 2)
        #expect(report.columns[2].holdsShapes)
        // inspect --html draws the polygon and the line whole.
        var kept = InspectOptions()
        kept.keepRecords = 100
        let page = try Inspector.inspect(path: path, options: kept).html
        #expect(page.contains(#""shapes":[[1,["#) && page.contains(#"],[0,["#))
        let yaml = report.starterPipeline(path: path)
        #expect(yaml.contains("  geometry: \"shape\""))
        // The emitted pipeline imports every row.
        let pipeline = dir.write("pipeline.yml", yaml)
        var config = try ConfigLoader.load(path: pipeline, environment: [:])
        config.report.dir = dir.path
        var options = RunOptions()
        options.dryRun = true
        let summary = try await Pipeline(config: config, options: options).run()
        #expect(summary.imported == 4 && summary.rejected == 0)
    }

    @Test("leading zeros keep a column as text; nulls are counted; ids must be unique")
    func profiles() throws {
        let dir = TempDir()
        let path = dir.write(
            "codes.csv", "code,zip,score,flag,site\nA1,01234,1.5,true,https://a.example\nA1,75001,NA,false,\n")
        let report = try Inspector.inspect(path: path)
        let columns = Dictionary(uniqueKeysWithValues: report.columns.map { ($0.name, $0) })
        #expect(columns["zip"]?.kind == .text)
        #expect(columns["zip"]?.leadingZeros == true)
        #expect(columns["score"]?.kind == .number)
        #expect(columns["score"]?.nulls == 1)
        #expect(columns["flag"]?.kind == .boolean)
        #expect(columns["site"]?.kind == .url)
        #expect(columns["code"]?.unique == false)
        #expect(report.remoteID == nil)
    }

    @Test("encodings: a BOM, bytes that are not UTF-8, and UTF-16, each read as text")
    func encodings() throws {
        let dir = TempDir()
        let bom = dir.write("bom.csv", [0xEF, 0xBB, 0xBF] + Array("name,lat,lon\nA,1,2\n".utf8))
        #expect(try Inspector.inspect(path: bom).encoding == "utf-8 (BOM)")
        #expect(try Inspector.inspect(path: bom).columns.first?.name == "name")
        let latin1 = dir.write("latin1.csv", Array("name,lat,lon\nK".utf8) + [0xF6] + Array("ln,50.9,6.9\n".utf8))
        let latinReport = try Inspector.inspect(path: latin1)
        #expect(latinReport.encoding == "windows-1252")
        #expect(latinReport.columns.first?.examples == ["Köln"])
        #expect(latinReport.starterPipeline(path: latin1).contains("encoding: windows-1252"))
        let text = "name,lat,lon\r\nZürich,47.37,8.54\r\n"
        let utf16 = dir.write(
            "utf16.csv", [0xFF, 0xFE] + Array(text.utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
        let report = try Inspector.inspect(path: utf16)
        #expect(report.encoding == "utf-16le (BOM)")
        #expect(report.columns.map(\.name) == ["name", "lat", "lon"])
        #expect(report.columns.first?.examples == ["Zürich"])
        #expect(report.coordinates?.latitude == 1)
    }

    @Test("the starter pipeline loads and maps every column it found")
    func starterPipeline() throws {
        let dir = TempDir()
        let path = dir.write("places.csv", Self.places(20))
        let yaml = try Inspector.inspect(path: path).starterPipeline(path: path)
        let configPath = dir.write("pipeline.yml", yaml)
        let config = try ConfigLoader.load(path: configPath, environment: [:])
        #expect(config.source.path == path)
        #expect(config.coordinates.longitude == "lon")
        #expect(config.coordinates.latitude == "lat")
        #expect(config.properties.remoteID == "id")
        #expect(config.properties.label == "{name}")
        #expect(config.mode == .upsert)
        #expect(config.properties.fields.map(\.slug) == ["name"])
        #expect(InspectReport.slug("Revenue (EUR)") == "revenue_eur")
        #expect(InspectReport.quoted("a \"b\" $x") == #""a \"b\" $$x""#)
    }

    @Test("address columns are recognised; without coordinates the starter pipeline geocodes, and it runs")
    func addresses() async throws {
        let dir = TempDir()
        let path = dir.write(
            "filialen.csv",
            "Filiale;Straße;Hausnummer;PLZ;Ort;Land\nF1;Marienplatz;1;80331;München;DE\nF2;Unter den Linden;5;10117;Berlin;DE\n"
                + "F3;Stephansplatz;3;1010;Wien;AT\n")
        let report = try Inspector.inspect(path: path)
        #expect(report.coordinates == nil)
        let address = try #require(report.address)
        #expect(
            address.settings(report.columns).map { "\($0.key)=\($0.value)" } == [
                "street={Straße} {Hausnummer}", "postcode=PLZ", "city=Ort", "country=Land",
            ])
        #expect(report.notes.contains { $0.hasPrefix("no coordinates, but an address") })
        let yaml = report.starterPipeline(path: path)
        let config = try ConfigLoader.load(path: dir.write("pipeline.yml", yaml), environment: [:])
        let geocode = try #require(config.geocode)
        #expect(
            geocode.parts == ["street": "{Straße} {Hausnummer}", "postcode": "PLZ", "city": "Ort", "country": "Land"])
        #expect(geocode.provider == "nominatim")
        // The proposal geocodes: offline, against the gazetteer.
        var offline = config
        offline.geocode?.provider = "gazetteer"
        offline.geocode?.gazetteer = GazetteerTests.cities
        offline.report.dir = dir.path
        var options = RunOptions()
        options.stateDirectory = dir.path + "/state"
        let summary = try await Pipeline(config: offline, options: options).run()
        #expect(summary.imported == 3 && summary.geocoding?.geocoded == 3)

        // One column with the whole address; a file with coordinates and none missing gets no geocode section.
        let whole = dir.write("whole.csv", "name,Address\nA,\"Marienplatz 1, München\"\n")
        let wholeReport = try Inspector.inspect(path: whole)
        #expect(wholeReport.address.map { $0.settings(wholeReport.columns).map(\.key) } == ["address"])
        let placed = dir.write("placed.csv", "name,city,lat,lon\nA,Berlin,52.5,13.4\nB,Wien,48.2,16.4\n")
        #expect(!(try Inspector.inspect(path: placed).starterPipeline(path: placed).contains("geocode:")))
        let district = dir.write("kreis.csv", "name,City Name,Landkreis,Landline\nA,Köln,Rhein-Erft,0221 1\n")
        let districtReport = try Inspector.inspect(path: district)
        #expect(
            districtReport.address.map { $0.settings(districtReport.columns).map { "\($0.key)=\($0.value)" } } == [
                "city=City Name"
            ])
        let noAddress = dir.write("plain.csv", "name,kind\nA,x\n")
        #expect(try Inspector.inspect(path: noAddress).address == nil)
    }

    @Test("a point column, DMS columns, codes kept as text, slugs without accents")
    func notationsAndCodes() throws {
        let dir = TempDir()
        let points = dir.write(
            "points.csv",
            "Libellé;Code_postal;where\nA;50590;(50.94, 6.96)\nB;50410;(50.93, 6.95)\nC;75001;(48.86, 2.35)\n")
        let report = try Inspector.inspect(path: points)
        #expect(report.coordinates?.point == 2)
        #expect(report.columns[1].looksLikeCode)
        let yaml = report.starterPipeline(path: points)
        #expect(yaml.contains("point: \"where\""))
        #expect(yaml.contains("code_postal: { column: \"Code_postal\", type: text }   # a code, not a quantity"))
        #expect(yaml.contains("libelle: \"Libellé\""))

        let dms = dir.write(
            "dms.csv", "id,lat,lon\nX1,51-53-00.8954N,176-38-32.9277W\nX2,56-56-19.2870N,154-10-57.2000W\n")
        let dmsReport = try Inspector.inspect(path: dms)
        #expect(dmsReport.coordinates?.notation == "degrees-minutes-seconds")
        #expect(dmsReport.notes.isEmpty, "\(dmsReport.notes)")
    }

    @Test("a TSV where \" is data: reading it as a quote breaks rows, so inspect says quote: none")
    func quoteAsData() throws {
        let dir = TempDir()
        let path = dir.write(
            "places.tsv", "name\tlat\tlon\nHotel \"Zum Adler\t50.1\t8.2\n12\" Pizza\t50.2\t8.3\nBonn\t50.7\t7.1\n")
        let report = try Inspector.inspect(path: path)
        #expect(report.quoteNone)
        #expect(report.malformedRows == 0)
        #expect(report.rows == 3)
        #expect(report.starterPipeline(path: path).contains("quote: none"))
        let plain = try Inspector.inspect(path: dir.write("plain.tsv", "name\tlat\tlon\nBonn\t50.7\t7.1\n"))
        #expect(!plain.quoteNone)
    }
}
