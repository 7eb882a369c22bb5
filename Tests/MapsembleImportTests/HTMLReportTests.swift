import Foundation
import MapsembleJSON
import MapsembleSandbox
import Testing

@testable import MapsembleImport

/// The picture JSON a page embeds.
func pictureOf(_ html: String) throws -> JSONValue {
    let start = try #require(html.range(of: "<script type=\"application/json\" id=\"picture\">"))
    let end = try #require(html.range(of: "</script>", range: start.upperBound..<html.endIndex))
    return try #require(JSONValue.parse(Array(html[start.upperBound..<end.lowerBound].utf8)))
}

/// A layer of a picture by key.
func layer(_ picture: JSONValue, _ key: String) -> JSONValue? {
    picture["layers"]?.array?.first { $0["key"]?.string == key }
}

/// Rows in a density layer (the cells' counts added up).
func densityRows(_ layer: JSONValue?) -> Int {
    let cells = layer?["cells"]?.array?.compactMap(\.integer) ?? []
    return stride(from: 2, to: cells.count, by: 3).reduce(0) { $0 + cells[$1] }
}

@Suite("HTML report")
struct HTMLReportTests {
    static let mapID = "5a9db0c0-0000-4000-8000-0000000000a1"

    /// A sandbox with one map shaped like the swapped sample's pipeline.
    static func sandbox(key: String) async throws -> SandboxServer {
        var config = SandboxConfig(maps: [
            .init(
                id: mapID, label: "Parcel lockers", plan: .pro,
                fields: [.init(slug: "locker_id"), .init(slug: "city"), .init(slug: "compartments", type: "number")],
                remoteField: "locker_id")
        ])
        config.apiKeys = [key: "sandbox"]
        return try await SandboxServer(config: config)
    }

    @Test(
        "The swapped sample's report draws the 400 swapped rows where they say, each with a line to where they belong")
    func swappedSample() async throws {
        let key = "report-secret-key-4711"
        let server = try await Self.sandbox(key: key)
        defer { Task { await server.stop() } }
        let dir = TempDir()
        let result = try runCLI(
            [
                "run", projectDirectory + "/samples/swapped/pipeline.yml", "--api-url", server.url, "--map", Self.mapID,
                "--report-dir", dir.path,
            ], environment: ["MAPSEMBLE_API_KEY": key])
        #expect(result.status == 1, "\(result.stderr)")
        let html = dir.read("parcel-lockers.report.html")
        #expect(!html.contains(key))
        let picture = try pictureOf(html)
        #expect(densityRows(layer(picture, "imported")) == 1600)
        #expect(layer(picture, "imported")?["total"]?.integer == 1600)
        let swapped = try #require(layer(picture, "coordinates_swapped"))
        #expect(swapped["total"]?.integer == 400)
        let points = swapped["points"]?.array?.compactMap(\.integer) ?? []
        let pairs = swapped["pairs"]?.array?.compactMap(\.integer) ?? []
        #expect(points.count == 400 * 3)
        #expect(pairs.count == 400 * 4)
        // Each swapped row is drawn where its columns put it (south-east, near the Horn of Africa),
        // and its line ends where it belongs, among the imported rows.
        for index in stride(from: 0, to: pairs.count, by: 4) {
            #expect(pairs[index] > pairs[index + 2] + 100 && pairs[index + 1] > pairs[index + 3] + 100)
        }
        let rejected = dir.read("parcel-lockers.rejected.csv").split(separator: "\n").dropFirst()
        let firstLines = rejected.prefix(10).map { String($0.split(separator: ",")[0]) }
        #expect(firstLines.count == 10)
        for line in firstLines { #expect(html.contains("<tr id=\"line-\(line)\">")) }
        #expect(html.contains("coordinates_swapped · 400"))
        #expect(html.contains("href=\"parcel-lockers.rejected.csv\""))
        // One sample per 1,600 and 400: all shown, so the caption says nothing of sampling.
        let caption = picture["caption"]?.string ?? ""
        #expect(caption.hasPrefix("Web Mercator") && caption.contains("sample") == false)
    }

    @Test("A row rejected after the validator (a duplicate remote id) leaves the imported layer for its own")
    func lateRejectionsLeaveTheSample() async throws {
        let dir = TempDir()
        var text = "id,name,lat,lon\n"
        for row in 1...50 { text += "S\(row % 45),Site \(row),\(50 + Double(row) / 100),\(7 + Double(row) / 100)\n" }
        let input = dir.write("sites.csv", text)
        var config = PipelineConfig()
        config.source.path = input
        config.report.dir = dir.path
        config.properties.remoteID = "id"
        config.properties.label = "name"
        let summary = try await Pipeline(config: config, options: RunOptions()).run()
        #expect(summary.rejectedByCode == [.duplicateRemoteId: 5])
        let picture = try pictureOf(dir.read("sites.report.html"))
        #expect(densityRows(layer(picture, "imported")) == 45)
        let duplicates = layer(picture, "duplicate_remote_id")?["points"]?.array?.compactMap(\.integer) ?? []
        #expect(stride(from: 2, to: duplicates.count, by: 3).map { duplicates[$0] } == [47, 48, 49, 50, 51])
    }

    @Test("A large import is sampled: the page stays small and says how much it shows")
    func sampled() async throws {
        let dir = TempDir()
        var text = "name,lat,lon\n"
        for row in 0..<120_000 {
            text += "P\(row),\(Double(row % 1700) / 100 + 40),\(Double(row % 2300) / 100 - 5)\n"
        }
        let summary = try await dryRun(dir.write("many.csv", text), in: dir)
        #expect(summary.imported == 120_000)
        let html = dir.read("many.report.html")
        #expect(html.utf8.count < 1_500_000)
        let picture = try pictureOf(html)
        #expect(densityRows(layer(picture, "imported")) == ReportCollector.passedSample)
        #expect(layer(picture, "imported")?["total"]?.integer == 120_000)
        #expect((picture["caption"]?.string ?? "").contains("uniform sample of 30,000"))
    }

    @Test("report.html: false and --no-html-report write no page")
    func off() throws {
        let dir = TempDir()
        let input = dir.write("a.csv", "name,lat,lon\nA,50.1,7.1\n")
        var result = try runCLI(["run", "--dry-run", "--input", input, "--report-dir", dir.path, "--no-html-report"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.path + "/a.summary.json"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/a.report.html"))
        dir.write("p.yml", "source: { path: a.csv }\nreport: { dir: out, html: false }\n")
        result = try runCLI(["run", "--dry-run", dir.path + "/p.yml"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.path + "/out/a.summary.json"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/out/a.report.html"))
        result = try runCLI(["run", "--dry-run", "--input", input, "--report-dir", dir.path])
        #expect(FileManager.default.fileExists(atPath: dir.path + "/a.report.html"))
    }

    @Test("inspect --html draws where the columns put the rows and where they land swapped")
    func inspectPage() throws {
        let dir = TempDir()
        var text = "name,lat,lon\n"
        for row in 0..<300 { text += "S\(row),\(-122.4 + Double(row % 30) / 10),\(37.2 + Double(row % 20) / 10)\n" }
        let input = dir.write("swapped.csv", text)
        let result = try runCLI(["inspect", "--html", input], in: dir.path)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("wrote swapped.inspect.html"))
        let html = dir.read("swapped.inspect.html")
        #expect(html.contains("The coordinate columns look swapped"))
        let picture = try pictureOf(html)
        // As the columns say, latitude -122 is not on Earth: nothing drawn; swapped, all 300 are.
        #expect(densityRows(layer(picture, "stated")) == 0)
        #expect(densityRows(layer(picture, "swapped")) == 300)
        #expect((picture["caption"]?.string ?? "").contains("300 of them are not on Earth"))
    }
}

@Suite("Sandbox viewer")
struct SandboxViewerTests {
    func get(_ url: String) -> HTTPResponse? {
        if case .success(let response) = CurlEasy(abort: AbortFlag()).perform(HTTPRequest(method: "GET", url: url)) {
            return response
        }
        return nil
    }

    @Test("GET / lists the maps, /maps/{id} draws the stored features and refreshes from picture.json")
    func viewer() async throws {
        let server = try await HTMLReportTests.sandbox(key: "viewer-key")
        defer { Task { await server.stop() } }
        let dir = TempDir()
        let result = try runCLI(
            [
                "run", projectDirectory + "/samples/swapped/pipeline.yml", "--api-url", server.url, "--map",
                HTMLReportTests.mapID, "--report-dir", dir.path, "--no-html-report",
            ], environment: ["MAPSEMBLE_API_KEY": "viewer-key"])
        #expect(result.status == 1)
        let before = server.store.requestCounts
        let index = try #require(get(server.url + "/"))
        #expect(index.status == 200)
        let indexText = String(decoding: index.body, as: UTF8.self)
        #expect(indexText.contains("<a href=\"/maps/\(HTMLReportTests.mapID)\">Parcel lockers</a>"))
        #expect(indexText.contains("1,600"))
        let page = try #require(get(server.url + "/maps/\(HTMLReportTests.mapID)"))
        #expect(page.status == 200)
        let html = String(decoding: page.body, as: UTF8.self)
        #expect(html.contains("data-live=\"/maps/\(HTMLReportTests.mapID)/picture.json\""))
        #expect(densityRows(layer(try pictureOf(html), "stored")) == 1600)
        let live = try #require(get(server.url + "/maps/\(HTMLReportTests.mapID)/picture.json"))
        let picture = try #require(JSONValue.parse(live.body))
        #expect(layer(picture, "stored")?["total"]?.integer == 1600)
        #expect(get(server.url + "/maps/no-such-map")?.status == 404)
        // The viewer is not part of the API's request counts.
        #expect(server.store.requestCounts.all == before.all)
    }
}
