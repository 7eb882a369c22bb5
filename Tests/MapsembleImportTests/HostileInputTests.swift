import Foundation
import Testing
import ZIPFoundation

/// Runs the binary with its address space capped (`ulimit -v`), so that input which made it hold
/// more than the cap in memory fails the test instead of passing slowly.
/// Under a sanitizer (`scripts/sanitize`), which reserves terabytes of address space, it runs uncapped.
func runCapped(_ arguments: [String], in dir: TempDir, megabytes: Int = 1000) throws -> CLIResult {
    if ProcessInfo.processInfo.environment["MAPSEMBLE_SANITIZER"] != nil { return try runCLI(arguments) }
    let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
    dir.write("capped.sh", "ulimit -v \(megabytes * 1024)\nexec '\(binary)' \(quoted)\n")
    return try runCLI([], launcher: "/bin/sh", launcherArguments: [dir.path + "/capped.sh"])
}

/// Writes a file piece by piece (the test itself must not hold a 200 MB file either).
func writePieces(_ path: String, _ pieces: () -> [(bytes: [UInt8], times: Int)]) throws {
    FileManager.default.createFile(atPath: path, contents: nil)
    let handle = try #require(FileHandle(forWritingAtPath: path))
    defer { try? handle.close() }
    for piece in pieces() {
        let data = Data(piece.bytes)
        for _ in 0..<piece.times { handle.write(data) }
    }
}

@Suite("Hostile input: a clear error and bounded memory")
struct HostileInputTests {
    func summary(_ dir: TempDir, _ name: String) -> String { dir.read("\(name).summary.json") }

    @Test("A 200 MB field costs its row, read past without being held (under a 1 GB address-space cap)")
    func hugeField() throws {
        let dir = TempDir()
        let input = dir.path + "/huge.csv"
        try writePieces(input) {
            [
                (Array("name,lat,lon\nA,50.1,7.1\nB,50.2,\"".utf8), 1), ([UInt8](repeating: 0x78, count: 1 << 20), 200),
                (Array("\"\nC,50.3,7.3\n".utf8), 1),
            ]
        }
        let result = try runCapped(["run", "--dry-run", "--input", input, "--report-dir", dir.path, "-q"], in: dir)
        #expect(result.status == 1, "\(result.stderr)")
        let rejected = dir.read("huge.rejected.csv")
        #expect(
            rejected.contains(
                "3,malformed_row,,\"line 3 is 209715210 bytes long, more than the 16777216 bytes source.max_record_bytes allows; it is skipped\""
            ))
        #expect(summary(dir, "huge").contains("\"rows_read\": 3"))
        #expect(summary(dir, "huge").contains("\"imported\": 2"))
    }

    @Test(
        "A quoted field over many lines past source.max_record_bytes costs its row; the lines after it are read again")
    func longQuotedField() throws {
        let dir = TempDir()
        var text = "name,lat,lon\nA,50.1,7.1\nB,50.2,\"start\n"
        for _ in 0..<3000 { text += String(repeating: "y", count: 1000) + "\n" }
        text += "\"\nC,50.3,7.3\n"
        let input = dir.write("quoted.csv", text)
        dir.write("p.yml", "source: { path: quoted.csv, max_record_bytes: 1048576 }\nreport: { dir: out }\n")
        let result = try runCLI(["run", "--dry-run", dir.path + "/p.yml"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(!input.isEmpty)
        let rejected = dir.read("out/quoted.rejected.csv")
        #expect(rejected.contains("3,malformed_row,,a quoted field runs past 1048576 bytes without its closing quote"))
        #expect(summary(dir, "out/quoted").contains("\"imported\": 2"))
    }

    @Test("A line of ten million delimiters costs its row, not ten million fields in memory")
    func tenMillionDelimiters() throws {
        let dir = TempDir()
        let input = dir.path + "/wide.csv"
        try writePieces(input) {
            [
                (Array("name,lat,lon\nA,50.1,7.1\nB,50.2,7.2".utf8), 1), (Array(repeating: 0x2C, count: 1_000_000), 10),
                (Array("\nC,50.3,7.3\n".utf8), 1),
            ]
        }
        let result = try runCapped(["run", "--dry-run", "--input", input, "--report-dir", dir.path, "-q"], in: dir)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(
            dir.read("wide.rejected.csv").contains(
                "3,malformed_row,,\"expected 3 fields as in the header, found 10000003, more than the 16384 source.max_columns allows\""
            ))
        #expect(summary(dir, "wide").contains("\"imported\": 2"))
    }

    @Test("A header of 100,000 columns is an error naming source.max_columns, with no list of 100,000 names")
    func hundredThousandColumns() throws {
        let dir = TempDir()
        let input = dir.write("cols.csv", (0..<100_000).map { "c\($0)" }.joined(separator: ",") + "\n1,2,3\n")
        let result = try runCapped(["run", "--dry-run", "--input", input, "--report-dir", dir.path], in: dir)
        #expect(result.status == 2)
        #expect(
            result.stderr
                == "mapsemble-import: error: \(input):1: the first row has 100000 fields, more than the 16384 source.max_columns allows\n"
        )
    }

    @Test("An .xlsx zip bomb (shared strings inflating far past the cap) stops with a clear error")
    func zipBomb() throws {
        let dir = TempDir()
        let path = dir.path + "/bomb.xlsx"
        let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .create)
        func add(_ name: String, _ text: String) throws {
            let data = Data(text.utf8)
            try archive.addEntry(
                with: name, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate,
                provider: { position, size in data.subdata(in: Int(position)..<Int(position) + size) })
        }
        let main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
        let relations = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
        try add(
            "[Content_Types].xml",
            "<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"xml\" ContentType=\"application/xml\"/></Types>"
        )
        try add(
            "_rels/.rels",
            "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"\(relations)/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>"
        )
        try add(
            "xl/workbook.xml",
            "<workbook xmlns=\"\(main)\" xmlns:r=\"\(relations)\"><sheets><sheet name=\"S\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>"
        )
        try add(
            "xl/_rels/workbook.xml.rels",
            "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"\(relations)/worksheet\" Target=\"worksheets/sheet1.xml\"/><Relationship Id=\"rId2\" Type=\"\(relations)/sharedStrings\" Target=\"sharedStrings.xml\"/></Relationships>"
        )
        try add(
            "xl/worksheets/sheet1.xml",
            "<worksheet xmlns=\"\(main)\"><sheetData><row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c></row></sheetData></worksheet>"
        )
        // 200 MB of strings in a file of a few hundred kB.
        let item = Data(("<si><t>" + String(repeating: "a", count: 1 << 16) + "</t></si>").utf8)
        let head = Data("<sst xmlns=\"\(main)\">".utf8)
        let tail = Data("</sst>".utf8)
        let items = 3200
        let total = head.count + item.count * items + tail.count
        try archive.addEntry(
            with: "xl/sharedStrings.xml", type: .file, uncompressedSize: Int64(total), compressionMethod: .deflate,
            bufferSize: 1 << 16,
            provider: { position, size in
                var chunk = Data()
                var at = Int(position)
                while chunk.count < size {
                    if at < head.count {
                        chunk += head[at...]
                    } else if at >= total - tail.count {
                        chunk += tail[(at - (total - tail.count))...]
                    } else {
                        let offset = (at - head.count) % item.count
                        chunk += item[offset...]
                    }
                    at = Int(position) + chunk.count
                }
                return chunk.prefix(size)
            })
        let size = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(size < 2_000_000)
        dir.write("p.yml", "source: { path: bomb.xlsx, max_record_bytes: 1048576 }\nreport: { dir: out }\n")
        let result = try runCapped(["run", "--dry-run", dir.path + "/p.yml"], in: dir)
        #expect(result.status == 2)
        #expect(
            result.stderr.contains(
                "its shared strings inflate past 67108864 bytes, more than this reader holds (64 × source.max_record_bytes)"
            ), "\(result.stderr)")
    }

    @Test("A YAML billion laughs, a 50 MB pipeline and 200,000 nested brackets end in a clear error")
    func hostileYAML() throws {
        let dir = TempDir()
        var laughs = "source:\n  path: x.csv\nproperties:\n  fields:\n"
        laughs += "    a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        for (index, name) in "bcdefghi".enumerated() {
            let previous = Array("abcdefghi")[index]
            laughs +=
                "    \(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
        }
        dir.write("x.csv", "name,lat,lon\n")
        dir.write("laughs.yml", laughs)
        var result = try runCapped(["validate", dir.path + "/laughs.yml"], in: dir, megabytes: 600)
        #expect(result.status == 2)
        #expect(
            result.stderr.contains("laughs.yml:5: key \"properties.fields.a\" must be a single value"),
            "\(result.stderr)")
        dir.write("big.yml", "source: { path: x.csv }\n# " + String(repeating: "x", count: 50_000_000) + "\n")
        result = try runCapped(["validate", dir.path + "/big.yml"], in: dir, megabytes: 600)
        #expect(result.status == 2)
        #expect(result.stderr.contains("more than the 1048576 a pipeline may have"), "\(result.stderr)")
        dir.write(
            "deep.yml", "source: " + String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000))
        result = try runCapped(["validate", dir.path + "/deep.yml"], in: dir, megabytes: 600)
        #expect(result.status == 2)
        #expect(result.stderr.contains("is not valid YAML"), "\(result.stderr)")
    }

    @Test(
        "A workbook whose part's deflate stream is cut short is an error, not a hang (found by scripts/fuzz)",
        .timeLimit(minutes(1)))
    func truncatedDeflate() throws {
        let dir = TempDir()
        let fixture = projectDirectory + "/Tests/Fixtures/xlsx/fuzz-truncated-deflate.xlsx"
        let result = try runCapped(["validate", "--input", fixture, "--report-dir", dir.path], in: dir)
        #expect(result.status == 2)
        #expect(
            result.stderr
                == "mapsemble-import: error: \(fixture): cannot read xl/styles.xml from the workbook (damaged or truncated)\n"
        )
    }
}
