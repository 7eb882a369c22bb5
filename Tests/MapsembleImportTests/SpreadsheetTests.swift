import Foundation
import MapsembleJSON
import MapsembleSandbox
import Testing

@testable import MapsembleImport

private let fixtures = projectDirectory + "/Tests/Fixtures/xlsx"

/// Reads a workbook through the XLSX reader: header, records as strings, their lines, rejections.
private func readSheet(_ file: String, sheet: String? = nil, hasHeader: Bool = true) throws -> ReadResult {
    try readAll(
        XLSXReader(path: fixtures + "/" + file, sheet: sheet, hasHeader: hasHeader, blockBytes: 1 << 10, name: file))
}

@Suite("Spreadsheets: .xlsx workbooks", .serialized)
struct SpreadsheetTests {
    @Test("every cell kind, as the user sees it (fixture written by openpyxl)")
    func cellKinds() throws {
        let result = try readSheet("cells.xlsx")
        #expect(
            result.header == [
                "id", "name", "zip", "lat", "lon", "opened", "opened_at", "open", "big_id", "rating", "note",
            ])
        #expect(result.lines == [2, 3, 4, 7])
        #expect(
            result.records[0] == [
                "1", "Kaffeehaus Mitte", "01067", "52.520008", "13.404954", "2021-03-14", "2021-03-14T09:30:00", "true",
                "1234567890123456", "4.5", "line one\nline two",
            ])
        #expect(result.records[1][1] == "Café \"Zur Post\", Süd")
        #expect(result.records[1][7] == "false")
        #expect(result.records[1][9] == "3.14159265358979")
        // Stored with an exponent: written out, to the 15 digits a spreadsheet keeps.
        #expect(result.records[2][3] == "0.0000001")
        #expect(result.records[2][4] == "10.0000001")
        #expect(result.records[2][8] == "12345678901234600000")
        #expect(result.records[2][9] == "100000000000000000000")
        #expect(result.records[2][5] == "1900-03-01")
        // Cells skipped in the XML (r="D7" after "B7") are empty fields.
        #expect(result.records[3] == ["7", "Gap", "", "48.85", "2.35", "", "", "", "", "", ""])
        #expect(result.rejections.map(\.line) == [5, 8])
        #expect(result.rejections[0].code == .invalidCell)
        #expect(result.rejections[0].column == "lat")
        #expect(result.rejections[0].message == "cell D5 holds the error #N/A, expected a value")
        #expect(result.rejections[0].fields.prefix(4) == ["4", "Broken", "12345", "#N/A"])
        #expect(result.rejections[1].code == .malformedRow)
        #expect(result.rejections[1].message == "cell L8 has a value right of the header's 11 columns")
        #expect(result.rowsRead == 6)
    }

    @Test("inline strings, rich text, formula results, prefixed tags, rows without r, escapes, CDATA")
    func handmade() throws {
        let result = try readSheet("handmade.xlsx")
        #expect(result.header == ["id", "name", "lat", "lon"])
        // Values are trimmed of spaces and tabs at both ends, as a CSV file's are (the cell is
        // " spaced\ttab "; the report keeps it so).
        #expect(
            result.records == [
                ["1", "A&B", "45.5", "6.25"], ["2", "spaced\ttab", "15", "-7"], ["3", "<raw> & ready", "1", "2"],
            ])
        #expect(result.lines == [2, 3, 5])
    }

    @Test("source.header as a row number: the rows above are skipped; an empty header row is an error")
    func headerRow() throws {
        let reader = try XLSXReader(
            path: fixtures + "/cells.xlsx", sheet: nil, hasHeader: true, headerRow: 3, blockBytes: 1 << 10,
            name: "cells.xlsx")
        #expect(reader.header.prefix(3) == ["2", "Café \"Zur Post\", Süd", "80331"])
        var lines: [Int] = []
        var rejected: [Int] = []
        while let block = try reader.nextBlock() {
            lines += block.lines
            rejected += block.rejections.map(\.line)
        }
        // Row 3 has 10 columns: row 4's note in K is past them.
        #expect(lines == [7])
        #expect(rejected == [4, 5, 8])
        #expect(throws: ImportError.self) {
            try XLSXReader(
                path: fixtures + "/cells.xlsx", sheet: nil, hasHeader: true, headerRow: 6, blockBytes: 1 << 10,
                name: "cells.xlsx")
        }
        #expect(throws: ImportError.self) {
            try XLSXReader(
                path: fixtures + "/cells.xlsx", sheet: nil, hasHeader: true, headerRow: 60, blockBytes: 1 << 10,
                name: "cells.xlsx")
        }
    }

    @Test("a header cell merged across columns names each of them")
    func mergedHeader() throws {
        let result = try readSheet("merged.xlsx")
        #expect(result.header == ["id", "Address", "Address 2", "lat", "lon"])
        #expect(result.records == [["1", "Main St 1", "Berlin", "52.5", "13.4"]])
    }

    @Test("the 1904 date system; a sheet chosen by name or position; headerless sheets")
    func datesSheetsAndHeaders() throws {
        #expect(try readSheet("dates1904.xlsx").records == [["1", "10.5", "20.5", "2024-02-29"]])
        #expect(try readSheet("multi.xlsx").header == ["The data is on the second sheet."])
        #expect(
            try readSheet("multi.xlsx", sheet: "Sites").records == [["S1", "50.5", "4.5"], ["S2", "51.5", "5.5"]])
        #expect(try readSheet("multi.xlsx", sheet: "2").header == ["code", "lat", "lon"])
        let headerless = try readSheet("multi.xlsx", sheet: "Sites", hasHeader: false)
        #expect(headerless.header == ["A", "B", "C"])
        #expect(headerless.records.count == 3)
        #expect(throws: ImportError.self) { try readSheet("multi.xlsx", sheet: "Stores") }
        do {
            _ = try readSheet("multi.xlsx", sheet: "3")
        } catch let error as ImportError {
            #expect(error.description == #"multi.xlsx: has no sheet "3"; its sheets are: 1 "Read me", 2 "Sites""#)
        }
    }

    @Test("the same 5,000 rows as CSV and as XLSX give byte-identical dry-run output")
    func csvAndWorkbookTwins() async throws {
        let dir = TempDir()
        var outputs: [String] = []
        for file in ["twin.csv", "twin.xlsx"] {
            var config = PipelineConfig()
            config.source.path = fixtures + "/" + file
            config.report.dir = dir.path
            config.properties.label = "{name} ({category})"
            config.properties.remoteID = "id"
            config.properties.fields = [
                .init(slug: "category", column: "category"), .init(slug: "value", column: "value", type: "number"),
                .init(slug: "updated_at", column: "updated_at"), .init(slug: "notes", column: "notes"),
            ]
            var options = RunOptions()
            options.output = dir.path + "/" + file + ".geojson"
            let summary = try await Pipeline(config: config, options: options).run()
            #expect(summary.rowsRead == 5000)
            #expect(summary.imported == 5000)
            outputs.append(dir.read(file + ".geojson"))
        }
        #expect(outputs[0].count > 1_000_000)
        #expect(outputs[0] == outputs[1])
    }

    @Test("bad workbooks stop with one sentence naming the file, exit 2")
    func badWorkbooks() throws {
        let dir = TempDir()
        let notZip = dir.write("stores.xlsx", "id,lat,lon\n1,2,3\n")
        let whole = try #require(FileManager.default.contents(atPath: fixtures + "/cells.xlsx"))
        let truncated = dir.write("cut.xlsx", [UInt8](whole.prefix(whole.count / 2)))
        let ole = dir.write(
            "locked.xlsx", [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1] + [UInt8](repeating: 0, count: 512))
        let cases: [(String, String)] = [
            (notZip, "is not an .xlsx workbook (not a ZIP archive)"),
            (truncated, "is not a readable .xlsx workbook (the ZIP archive is damaged or truncated)"),
            (ole, "is an encrypted workbook or an old .xls file"),
            (dir.path + "/missing.xlsx", "cannot open the input: No such file or directory"),
        ]
        for (path, expected) in cases {
            let result = try runCLI(["validate", "--input", path, "--report-dir", dir.path])
            #expect(result.status == 2, "\(path): \(result.stderr)")
            #expect(result.stderr.contains(expected), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
        #expect {
            try WorkbookFormat.of(format: "xlsx", path: "-")
        } throws: { error in
            (error as? ImportError)?.message.contains("cannot be read from standard input") == true
        }
        // A workbook whose name says nothing is still recognised by its bytes.
        let renamed = dir.path + "/export.dat"
        try FileManager.default.copyItem(atPath: fixtures + "/multi.xlsx", toPath: renamed)
        let sites = try runCLI(["validate", "--input", renamed, "--sheet", "Sites", "--report-dir", dir.path])
        #expect(sites.status == 0, "\(sites.stderr)")
        #expect(sites.stderr.contains("2 of 2 rows would be imported"))
    }

    @Test("a reader let go before the end stops its scanning thread")
    func readerLetGo() async throws {
        let before = XLSXReader.scanningThreads
        for _ in 0..<6 {
            let reader = try XLSXReader(
                path: fixtures + "/twin.xlsx", sheet: nil, hasHeader: true, blockBytes: 1 << 10, name: "twin.xlsx")
            _ = try reader.nextBlock()
            #expect(XLSXReader.scanningThreads > before)
        }
        var after = XLSXReader.scanningThreads
        for _ in 0..<100 where after > before {
            try await Task.sleep(for: .milliseconds(20))
            after = XLSXReader.scanningThreads
        }
        #expect(after == before, "\(after - before) scanning threads left running")
    }

    @Test("date serials, number text and number formats")
    func values() {
        #expect(SpreadsheetValue.iso8601(1, time: false, date1904: false) == "1900-01-01")
        #expect(SpreadsheetValue.iso8601(59, time: false, date1904: false) == "1900-02-28")
        #expect(SpreadsheetValue.iso8601(61, time: false, date1904: false) == "1900-03-01")
        #expect(SpreadsheetValue.iso8601(45000.75, time: true, date1904: false) == "2023-03-15T18:00:00")
        #expect(SpreadsheetValue.iso8601(0, time: false, date1904: true) == "1904-01-01")
        #expect(SpreadsheetValue.clock(0.5000115740740741) == "12:00:01")
        #expect(SpreadsheetValue.format(-1.5e-7) == "-0.00000015")
        #expect(SpreadsheetValue.format(9_007_199_254_740_992) == "9007199254740992")
        #expect(SpreadsheetValue.format(0.30000000000000004) == "0.3")
        // The shortest-text fast path agrees with rounding to 15 digits, over magnitudes and signs.
        var generator = SeededGenerator(state: 20_261_203)
        for _ in 0..<20_000 {
            let exponent = Double(Int(generator.next() % 40) - 20)
            let digits = Int(generator.next() % 17) + 1
            var value = Double(generator.next() % 1_000_000_000_000_000) * pow(10, exponent - Double(digits))
            value = (value * pow(10, Double(digits))).rounded() / pow(10, Double(digits))
            if generator.next() % 2 == 0 { value = -value }
            // Whole numbers up to 2^53 are exact, not rounded.
            if value == value.rounded() { continue }
            #expect(SpreadsheetValue.format(value) == SpreadsheetValue.rounded15(value), "\(value)")
        }
        #expect(
            String(decoding: SpreadsheetValue.plain(Array("13.404954000000001".utf8)), as: UTF8.self) == "13.404954")
        #expect(String(decoding: SpreadsheetValue.plain(Array("00123".utf8)), as: UTF8.self) == "00123")
        #expect(XLSXWorkbook.numberStyle(code: "dd.mm.yyyy") == .date(time: false))
        #expect(XLSXWorkbook.numberStyle(code: "yyyy-mm-dd hh:mm") == .date(time: true))
        #expect(XLSXWorkbook.numberStyle(code: "[h]:mm:ss") == .time)
        #expect(XLSXWorkbook.numberStyle(code: "#,##0.00 \"m\"") == .general)
        #expect(XLSXWorkbook.numberStyle(code: "[Red]0.0") == .general)
        #expect(XLSXWorkbook.numberStyle(code: "@") == .text)
    }

    @Test("the XML scanner gives the same events whatever the chunks")
    func scannerChunks() throws {
        let xml = Array(
            #"<?xml version="1.0"?><x:row r="2"><!-- note --><x:c r="A2" t="s"><x:v>12</x:v></x:c><c t="inlineStr"><is><t><![CDATA[a<b]]></t></is></c><c s='3'/></x:row>"#
                .utf8)
        func events(chunk: Int) throws -> [String] {
            var scanner = XMLScanner()
            var out: [String] = []
            for start in stride(from: 0, to: xml.count, by: chunk) {
                let piece = Array(xml[start..<min(start + chunk, xml.count)])
                try piece.withUnsafeBytes { bytes in
                    try scanner.feed(bytes) { event in
                        switch event {
                        case .start(let name, let attributes, let closing):
                            out.append(
                                "<\(String(decoding: name, as: UTF8.self)) \(XMLText.attributeString("r", in: attributes) ?? "")\(closing ? "/" : "")>"
                            )
                        case .end(let name): out.append("</\(String(decoding: name, as: UTF8.self))>")
                        case .text(let text, let raw):
                            out.append("\(raw ? "raw:" : "")\(String(decoding: text, as: UTF8.self))")
                        }
                    }
                }
            }
            return out
        }
        let whole = try events(chunk: xml.count)
        #expect(
            whole == [
                "<row 2>", "<c A2>", "<v >", "12", "</v>", "</c>", "<c >", "<is >", "<t >", "raw:a<b", "</t>", "</is>",
                "</c>", "<c />", "</row>",
            ])
        for chunk in [1, 2, 3, 7, 16] { #expect(try events(chunk: chunk) == whole, "chunks of \(chunk)") }
    }
}

@Suite("Spreadsheets: inspect (the built binary)")
struct SpreadsheetInspectTests {
    @Test("inspect lists the sheets with their used ranges; its starter pipeline imports the sheet unedited")
    func inspectWorkbook() throws {
        let dir = TempDir()
        let file = fixtures + "/multi.xlsx"
        let text = try runCLI(["inspect", file, "--sheet", "Sites"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains(#"sheet 1    "Read me" A1:A1"#))
        #expect(text.stdout.contains(#"sheet 2    "Sites" A1:C3  ← profiled"#))
        let json = try runCLI(["inspect", file, "--sheet", "2", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let sheets = try #require(object["sheets"] as? [[String: Any]])
        #expect(sheets.map { $0["name"] as? String } == ["Read me", "Sites"])
        let starter = try runCLI(["inspect", file, "--sheet", "Sites", "--emit-config"])
        #expect(starter.stdout.contains("  format: xlsx\n  sheet: \"Sites\""))
        let pipeline = dir.write("pipeline.yml", starter.stdout)
        let validate = try runCLI(["validate", pipeline, "--report-dir", dir.path])
        #expect(validate.status == 0, "\(validate.stderr)")
        #expect(validate.stderr.contains("2 of 2 rows would be imported"))
        let cells = try runCLI(["inspect", fixtures + "/cells.xlsx"])
        #expect(cells.stdout.contains("2 of the sampled rows would be rejected (a cell holding an error"))
        #expect(cells.stdout.contains("opened     date"))
    }
}
