import Foundation
import Testing

@testable import MapsembleImport

@Suite("Typed fields: dates, selects, images, grouped numbers, long text")
struct FieldValueTests {
    static func json(_ text: String, _ kind: FieldKind) -> String? {
        switch FieldValue.convert(text, kind: kind, slug: "f") {
        case .json(let bytes): String(decoding: bytes, as: UTF8.self)
        case .invalid, .longText, nil: nil
        }
    }

    @Test(
        "dates: ISO 8601 kept, configured formats turned into it, impossible dates refused",
        arguments: [
            ("2024-02-29", [], "\"2024-02-29\""), ("2024-02-29 13:05", [], "\"2024-02-29T13:05\""),
            ("2024-02-29T13:05:09.123+01:00", [], "\"2024-02-29T13:05:09.123+01:00\""),
            ("29.02.2024", ["DD.MM.YYYY"], "\"2024-02-29\""), ("2/9/24", ["MM/DD/YY"], "\"2024-02-09\""),
            ("31.12.1999 23:59", ["DD.MM.YYYY hh:mm"], "\"1999-12-31T23:59:00\""), ("", [], "null"),
            ("2023-02-29", [], nil), ("29.02.2024", [], nil), ("32.01.2024", ["DD.MM.YYYY"], nil),
            ("yesterday", ["DD.MM.YYYY"], nil),
        ] as [(String, [String], String?)])
    func dates(_ text: String, _ formats: [String], _ expected: String?) {
        #expect(Self.json(text, .date(formats: formats)) == expected)
    }

    @Test("selects: keys or labels in any case, sent as keys; unknown options name the allowed ones")
    func selects() {
        let options = [FieldKind.SelectOption(key: "open", label: "Open"), .init(key: "closed", label: "Geschlossen")]
        let single = FieldKind.select(options: options, multiple: false, separator: ",")
        #expect(Self.json("OPEN", single) == "\"open\"")
        #expect(Self.json("geschlossen", single) == "\"closed\"")
        #expect(Self.json("", single) == "null")
        guard case .invalid(let message) = FieldValue.convert("maybe", kind: single, slug: "status") else {
            Issue.record("an unknown option must be invalid")
            return
        }
        #expect(message.contains("open (Open), closed (Geschlossen)"))
        let multi = FieldKind.select(options: options, multiple: true, separator: "|")
        #expect(Self.json("open | Geschlossen", multi) == "[\"open\",\"closed\"]")
        #expect(Self.json("anything", .select(options: [], multiple: false, separator: ",")) == "\"anything\"")
    }

    @Test("images: http(s) URLs only")
    func images() {
        #expect(Self.json("https://example.org/a.png", .image) == "\"https://example.org/a.png\"")
        #expect(Self.json("example.org/a.png", .image) == nil)
        #expect(Self.json("https://exa mple.org", .image) == nil)
    }

    @Test(
        "numbers with thousands separators",
        arguments: [
            ("1 234,5", nil, true, "1234.5"), ("1.234,5", nil, true, "1234.5"), ("1,234.5", nil, false, "1234.5"),
            ("1'234'567", nil, false, "1234567"), ("-1\u{00A0}234", true, false, "-1234"),
            ("1,234,567", nil, false, "1234567"), ("12,5", nil, true, "12.5"), ("1,23,4", nil, false, nil),
            ("1.2.3,4", true, false, nil),
        ] as [(String, Bool?, Bool, String?)])
    func grouped(_ text: String, _ decimalComma: Bool?, _ loneCommaIsDecimal: Bool, _ expected: String?) {
        #expect(
            FieldValue.groupedNumber(text, decimalComma: decimalComma, loneCommaIsDecimal: loneCommaIsDecimal)
                == expected)
    }

    @Test("end to end: typed fields from pipeline.yml, long text counted in the summary")
    func pipeline() async throws {
        let dir = TempDir()
        let long = String(repeating: "x", count: 300)
        let yaml = """
            source: { path: places.csv }
            properties:
              label: name
              fields:
                opened: { column: opened, type: date, formats: [DD.MM.YYYY] }
                photo: { column: photo, type: image }
                revenue: { column: revenue, type: number }
                notes: notes
            """
        dir.write(
            "places.csv",
            "name;lat;lon;opened;photo;revenue;notes\nA;50.9;6.9;01.03.2015;https://e.org/a.jpg;1.234,5;\(long)\nB;50.8;6.8;soon;;12;ok\n"
        )
        var config = try ConfigLoader.load(path: dir.write("pipeline.yml", yaml), environment: [:])
        config.report.dir = dir.path
        var options = RunOptions()
        options.output = dir.path + "/out.geojson"
        let summary = try await Pipeline(config: config, options: options).run()
        #expect(summary.imported == 1)
        #expect(summary.rejectedByCode == [.invalidFieldValue: 1])
        #expect(summary.longTexts == 1)
        let output = dir.read("out.geojson")
        #expect(output.contains("\"opened\":\"2015-03-01\""))
        #expect(output.contains("\"revenue\":1234.5"))
        #expect(dir.read("places.summary.json").contains("\"text_over_255_characters\": 1"))
        #expect(dir.read("places.rejected.csv").contains("is not a date"))
    }
}
