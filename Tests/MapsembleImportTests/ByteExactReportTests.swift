import Foundation
import Testing

@testable import MapsembleImport

@Suite("rejected.csv holds the input's cells byte for byte; values sent are trimmed")
struct ByteExactReportTests {
    /// Rows rejected for their coordinates or remote id, with spaces, tabs and whitespace-only
    /// cells, quoted and not; and one row that passes, whose padded values are sent trimmed.
    static let input =
        "id,name,lat,lon\n"
        + "CO3 ,  padded name\t,x,13.4\n"
        + "\"  quoted  \",\"\t\",y,13.4\n"
        + "   ,\t\t, ,  \n"
        + "\" a \"\"q\"\" \",b  ,999,13.4\n"
        + "\"   \",three spaces,52.5,13.4\n"
        + "\tT1,tab first,52.5,13.4x\n"
        + "ST1 ,\"  Café  \",52.5,13.4\n"

    /// The original cells of each rejected row, as the input has them.
    static let originals: [[String]] = [
        ["CO3 ", "  padded name\t", "x", "13.4"],
        ["  quoted  ", "\t", "y", "13.4"],
        ["   ", "\t\t", " ", "  "],
        [" a \"q\" ", "b  ", "999", "13.4"],
        ["   ", "three spaces", "52.5", "13.4"],
        ["\tT1", "tab first", "52.5", "13.4x"],
    ]

    func run(_ input: String, in dir: TempDir) async throws -> RunSummary {
        var config = PipelineConfig()
        config.source.path = input
        config.report.dir = dir.path
        config.report.html = false
        config.properties.label = "{name}"
        config.properties.remoteID = "id"
        var options = RunOptions()
        options.output = dir.path + "/out.geojson"
        return try await Pipeline(config: config, options: options).run()
    }

    /// The rows of a rejected.csv, each split as written (spaces kept): the error columns, then the original ones.
    func rows(_ text: String) throws -> [[String]] {
        // One line a record: no cell of these inputs holds a line end.
        try text.split(separator: "\n").dropFirst().map { line in
            try #require(LibCSVParser.cells(of: Array(line.utf8), delimiter: UInt8(ascii: ","), quote: 0x22))
        }
    }

    @Test("spaces, tabs and whitespace-only cells come back exactly, and feed back to the same rows")
    func roundTrip() async throws {
        let dir = TempDir()
        let input = dir.write("input.csv", Self.input)
        let first = try await run(input, in: dir)
        #expect(first.rowsRead == 7)
        #expect(first.imported == 1)
        #expect(first.rejected == 6)
        let report = dir.read("input.rejected.csv")
        let rejected = try rows(report)
        #expect(rejected.map { Array($0.dropFirst(4)) } == Self.originals)
        #expect(
            rejected.map { $0[1] } == [
                "invalid_number", "invalid_number", "missing_coordinate", "latitude_out_of_range", "missing_remote_id",
                "invalid_number",
            ])
        // Quoted where a reader would otherwise drop the spaces, else as they were.
        #expect(report.contains(",\"CO3 \",\"  padded name\t\",x,13.4\n"))
        #expect(report.contains(",\"   \",\"\t\t\",\" \",\"  \"\n"))
        #expect(report.contains(",\"\tT1\",tab first,52.5,13.4x\n"))

        // Fed back as input: the same rows, rejected the same way.
        let second = try await run(dir.path + "/input.rejected.csv", in: dir)
        #expect(second.rowsRead == 6)
        #expect(second.rejected == 6)
        let again = try rows(dir.read("input.rejected.rejected.csv"))
        #expect(again.map { Array($0.dropFirst(8)) } == Self.originals)
        #expect(again.map { $0[1] } == rejected.map { $0[1] })

    }

    @Test("values sent are trimmed of spaces and tabs, quoted or not")
    func sentTrimmed() async throws {
        let dir = TempDir()
        let input = dir.write(
            "trim.csv", "id,name,lat,lon\nST1 ,\"  Café  \",52.5,13.4\n\" ST2\",\tBar\t,\" 52.6 \",13.5\n")
        let summary = try await run(input, in: dir)
        #expect(summary.imported == 2)
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(dir.read("out.geojson").utf8)) as? [String: Any])
        let features = try #require(object["features"] as? [[String: Any]])
        let properties = features.map { $0["properties"] as? [String: Any] ?? [:] }
        #expect(properties.map { $0["label"] as? String } == ["Café", "Bar"])
        #expect(properties.map { $0["remote_id"] as? String } == ["ST1", "ST2"])
        #expect(dir.read("out.geojson").contains("[13.5,52.6]"))
    }
}
