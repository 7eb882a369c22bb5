import Foundation
import Testing
import ZIPFoundation

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

    @Test("the last record without a line end, and a record over several lines, keep their cells too")
    func lastLineAndMultiLine() async throws {
        let dir = TempDir()
        let input = dir.write(
            "edge.csv", "id,name,lat,lon\nA1,\"two\n lines \",y,13.4\nA2,ok,52.5,13.4\nCO3 ,x ,y,13.4")
        let summary = try await run(input, in: dir)
        #expect(summary.rowsRead == 3)
        #expect(summary.imported == 1)
        let rejected = try rows(dir.read("edge.rejected.csv").replacingOccurrences(of: "two\n", with: "two\\n"))
        #expect(
            rejected.map { Array($0.dropFirst(4)) } == [
                ["A1", "two\\n lines ", "y", "13.4"], ["CO3 ", "x ", "y", "13.4"],
            ])
    }

    @Test("a broken line after a record over several lines is one malformed row, and the lines are right")
    func brokenLineAfterMultiLine() async throws {
        let dir = TempDir()
        let input = dir.write(
            "broken.csv", "id,name,lat,lon\n1,\"a\nb\",52.5,13.4\n2,x\"y,52.5,13.4\n3,c,52.5,13.4\n")
        let summary = try await run(input, in: dir)
        #expect(summary.rowsRead == 3)
        #expect(summary.imported == 2)
        #expect(summary.rejectedByCode == [.malformedRow: 1])
        let report = dir.read("broken.rejected.csv")
        #expect(report.contains("\n4,malformed_row,"), "\(report)")
        #expect(report.hasSuffix(",\"2,x\"\"y,52.5,13.4\"\n"), "\(report)")
    }

    @Test("a workbook's values are trimmed as a CSV file's are, and its rejected cells kept as they were")
    func workbookCells() async throws {
        let dir = TempDir()
        let path = try makeWorkbook(
            in: dir,
            rows: [["id", "name", "lat", "lon"], [" W1 ", "Ok ", "52.5", "13.4"], ["W2\t", " bad", "x", "13.4"]])
        let summary = try await run(path, in: dir)
        #expect(summary.imported == 1)
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(dir.read("out.geojson").utf8)) as? [String: Any])
        let properties = (object["features"] as? [[String: Any]])?.first?["properties"] as? [String: Any]
        #expect(properties?["remote_id"] as? String == "W1")
        #expect(properties?["label"] as? String == "Ok")
        let rejected = try rows(dir.read("sheet.rejected.csv"))
        #expect(rejected.map { Array($0.dropFirst(4)) } == [["W2\t", " bad", "x", "13.4"]])
    }
}

/// A workbook of one sheet of text cells (inline strings), written part by part.
func makeWorkbook(in dir: TempDir, rows: [[String]]) throws -> String {
    func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    }
    var sheet =
        #"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#
    for (number, row) in rows.enumerated() {
        sheet += #"<row r="\#(number + 1)">"#
        for (column, value) in row.enumerated() {
            let reference = String(UnicodeScalar(UInt8(65 + column))) + String(number + 1)
            sheet += #"<c r="\#(reference)" t="inlineStr"><is><t xml:space="preserve">\#(escaped(value))</t></is></c>"#
        }
        sheet += "</row>"
    }
    sheet += "</sheetData></worksheet>"
    let parts: [(String, String)] = [
        (
            "[Content_Types].xml",
            #"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#
        ),
        (
            "_rels/.rels",
            #"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
        ),
        (
            "xl/workbook.xml",
            #"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#
        ),
        (
            "xl/_rels/workbook.xml.rels",
            #"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#
        ),
        ("xl/worksheets/sheet1.xml", sheet),
    ]
    let path = dir.path + "/sheet.xlsx"
    let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .create)
    for (name, text) in parts {
        let data = Data(text.utf8)
        try archive.addEntry(
            with: name, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate,
            provider: { position, size in data.subdata(in: Int(position)..<Int(position) + size) })
    }
    return path
}
