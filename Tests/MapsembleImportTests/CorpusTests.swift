import Foundation
import MapsembleSandbox
import Testing

@testable import MapsembleImport

/// One file of `../shared/corpus` with the outcome its README expects.
struct CorpusCase: CustomTestStringConvertible, Sendable {
    var file: String
    var variant: String?
    var latitude: String
    var longitude: String
    /// One column holding both coordinates (`mode: pair`).
    var point: String?
    var delimiter: String
    var decimalComma: Bool
    var header: Bool
    var quoteNone: Bool
    var records: Int
    var expectedRejected: Int
    /// No row has valid coordinates (e.g. Lambert-93 metres mapped as degrees).
    var noneValid = false

    var testDescription: String { variant.map { "\(file) (\($0))" } ?? file }
}

/// The corpus entries this version reads: coordinates in two columns or one, decimal or
/// degrees-minutes-seconds, in any encoding the reader detects. Left out: fixed-width text (the
/// DWD station list, which is not CSV).
let corpusCases: [CorpusCase] = {
    guard let shared = sharedDirectory,
        let data = FileManager.default.contents(atPath: shared + "/corpus/expected-outcomes.json"),
        let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
        let files = root["files"] as? [[String: Any]]
    else { return [] }
    return files.compactMap { entry in
        let config = entry["parse_config_used"] as? [String: Any] ?? [:]
        // Encodings are found by the reader itself (the UTF-16 file has a byte-order mark).
        // Rows short of fields are read with empty trailing fields, as the counts expect.
        // "pair": one column holding both; "faa": degrees-minutes-seconds columns.
        let mode = config["mode"] as? String
        guard mode == nil || mode == "pair" || mode == "faa", config["fixed_width"] == nil else { return nil }
        let header = config["header"] as? Bool ?? true
        func column(_ key: String) -> String? {
            if let index = config[key] as? Int { return String(index + 1) }
            return config[key] as? String
        }
        let point = mode == "pair" ? config["col"] as? String : nil
        guard let latitude = column("lat") ?? point, let longitude = column("lon") ?? point else { return nil }
        return CorpusCase(
            file: entry["file"] as! String, variant: entry["variant"] as? String, latitude: latitude,
            longitude: longitude, point: point, delimiter: config["delim"] as? String ?? ",",
            decimalComma: config["dec_comma"] as? Bool ?? false, header: header,
            quoteNone: config["quote"] as? String == "\u{0}", records: entry["data_records"] as! Int,
            // A point at (0, 0) is null_island by default.
            expectedRejected: entry["expected_rejected_if_0_0_rejected"] as? Int ?? entry["expected_rejected_min"]
                as! Int,
            noneValid: entry["coord_valid"] as? Int == 0)
    }
}()

@Suite("Corpus: real-world files give the expected counts", .enabled(if: sharedDirectory != nil))
struct CorpusTests {
    @Test("rows read and rows rejected match the corpus's independent count", arguments: corpusCases)
    func expectedOutcome(_ entry: CorpusCase) async throws {
        let dir = TempDir()
        var config = PipelineConfig()
        config.source.path = sharedDirectory! + "/corpus/" + entry.file
        config.source.delimiter = entry.delimiter
        config.source.decimal = entry.decimalComma ? "comma" : "point"
        config.source.header = entry.header ? "true" : "false"
        if entry.quoteNone { config.source.quote = "none" }
        if let point = entry.point {
            config.coordinates.point = point
        } else {
            config.coordinates.latitude = entry.latitude
            config.coordinates.longitude = entry.longitude
        }
        config.report.dir = dir.path
        var options = RunOptions()
        options.output = dir.path + "/out.geojson"
        let summary: RunSummary
        do {
            summary = try await Pipeline(config: config, options: options).run()
        } catch let error as ImportError where entry.noneValid && error.description.contains("projected coordinates") {
            // Deviation from the count, on purpose: metres mapped as degrees stop the run before a
            // row is sent, with what they are, instead of rejecting every row as out of range.
            return
        }
        #expect(summary.rowsRead == entry.records)
        #expect(summary.rejected == entry.expectedRejected, "\(summary.rejectedByCode)")
        #expect(summary.rowsRead == summary.imported + summary.rejected + summary.notSent)
        let output =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: options.output!)))
            as? [String: Any]
        #expect((output?["features"] as? [Any])?.count == summary.imported)
    }

    @Test("the corpus is there and most of it is covered")
    func coverage() {
        #expect(corpusCases.count >= 40)
    }
}

@Suite("Corpus: inspect --emit-config imports each file unedited", .enabled(if: sharedDirectory != nil))
struct CorpusStarterPipelineTests {
    /// Each file once (variants differ in the columns mapped, not in the file), with the outcome
    /// of its first entry: the one for the columns a reader would pick.
    static let files: [(file: String, records: Int, rejected: Int)] = {
        guard let shared = sharedDirectory,
            let data = FileManager.default.contents(atPath: shared + "/corpus/expected-outcomes.json"),
            let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let files = root["files"] as? [[String: Any]]
        else { return [] }
        var seen = Set<String>()
        return files.compactMap { entry in
            let file = entry["file"] as! String
            guard seen.insert(file).inserted else { return nil }
            return (
                file, entry["data_records"] as! Int,
                entry["expected_rejected_if_0_0_rejected"] as? Int ?? entry["expected_rejected_min"] as! Int
            )
        }
    }()

    /// Not CSV (fixed-width text), and a headerless file of places in Luxembourg (latitude and
    /// longitude both within ±90): the starter pipeline names the coordinate columns as what it
    /// could not decide.
    static let undecidable: Set<String> = [
        "dwd-stations-latin1/KL_Tageswerte_Beschreibung_Stationen.txt", "opengeodb/LU.tab",
    ]

    @Test("the starter pipeline gives the expected rows and rejects", arguments: files.map(\.file))
    func starter(_ file: String) async throws {
        let expected = try #require(Self.files.first { $0.file == file })
        let dir = TempDir()
        let path = sharedDirectory! + "/corpus/" + file
        let yaml = try Inspector.inspect(path: path).starterPipeline(path: path)
        var config = try ConfigLoader.load(path: dir.write("pipeline.yml", yaml), environment: [:])
        config.report.dir = dir.path
        if Self.undecidable.contains(file) {
            #expect(yaml.contains("no coordinate columns found"))
            await #expect(throws: ImportError.self) { try await Pipeline(config: config, options: RunOptions()).run() }
            return
        }
        let summary = try await Pipeline(config: config, options: RunOptions()).run()
        #expect(summary.rowsRead == expected.records)
        #expect(summary.rejected == expected.rejected, "\(summary.rejectedByCode)")
    }

    @Test(
        "maps create --from the file makes a map it imports into (over HTTP) with the corpus's rejects and no others",
        .serialized, arguments: files.map(\.file).filter { !undecidable.contains($0) })
    func createdMap(_ file: String) async throws {
        let expected = try #require(Self.files.first { $0.file == file })
        _ = ignoreSIGPIPE
        var sandbox = SandboxConfig()
        sandbox.apiKeys = ["corpus-key": "sandbox"]
        let server = try await SandboxServer(config: sandbox)
        let dir = TempDir()
        var config = try MapSetup.source(sharedDirectory! + "/corpus/" + file, environment: [:]).config
        config.report.dir = dir.path
        config.target.apiURL = server.url
        config.target.apiKey = "corpus-key"
        let creation = try await MapSetup.create(label: file, config: config, dryRun: false)
        config.target.mapID = try #require(creation.mapID)
        var options = RunOptions()
        options.dryRun = false
        options.journal = false
        let summary = try await Pipeline(config: config, options: options).run()
        #expect(summary.rowsRead == expected.records)
        #expect(summary.rejected == expected.rejected, "\(summary.rejectedByCode)")
        #expect(summary.rejectedByCode[.invalidFieldValue] == nil)
        #expect(server.store.features(map: config.target.mapID!).count == summary.imported)
    }
}
