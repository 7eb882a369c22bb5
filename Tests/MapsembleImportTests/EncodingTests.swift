import Foundation
import Testing

@testable import MapsembleImport

@Suite("Encodings: detection, transcoding to UTF-8, invalid bytes")
struct EncodingTests {
    static func transcode(_ bytes: [UInt8], _ encoding: SourceEncoding, split: Int? = nil) -> [UInt8] {
        var transcoder = Transcoder(encoding)
        var out = [UInt8](repeating: 0, count: Transcoder.maxOutput(bytes.count))
        let parts = split.map { [Array(bytes[..<$0]), Array(bytes[$0...])] } ?? [bytes]
        var written = 0
        for (index, part) in parts.enumerated() {
            written += part.withUnsafeBytes { raw in
                out.withUnsafeMutableBufferPointer { buffer in
                    transcoder.transcode(raw, into: buffer.baseAddress! + written, final: index == parts.count - 1)
                }
            }
        }
        return Array(out[..<written])
    }

    @Test("Windows-1252: the 0x80–0x9F punctuation, Latin-1 letters, and undefined bytes marked invalid")
    func windows1252() {
        #expect(Self.transcode([0x4B, 0xF6, 0x6C, 0x6E], .windows1252) == Array("Köln".utf8))
        #expect(Self.transcode([0x80, 0x20, 0x93, 0x61, 0x94], .windows1252) == Array("€ \u{201C}a\u{201D}".utf8))
        #expect(Self.transcode([0x61, 0x81, 0x62], .windows1252) == [0x61, SourceEncoding.invalidMarker, 0x62])
        #expect(Self.transcode([0x80, 0xE9], .latin1) == [0xC2, 0x80, 0xC3, 0xA9])
    }

    @Test("UTF-16: both byte orders, a surrogate pair and a code unit cut between reads, lone surrogates")
    func utf16() {
        let text = "Zürich 😀,1.5\n"
        let le = Array(text.utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let be = Array(text.utf16).flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        #expect(Self.transcode(le, .utf16LE) == Array(text.utf8))
        #expect(Self.transcode(be, .utf16BE) == Array(text.utf8))
        for split in 1..<le.count {
            #expect(Self.transcode(le, .utf16LE, split: split) == Array(text.utf8), "cut at byte \(split)")
        }
        // A high surrogate followed by a letter, and a trailing odd byte.
        #expect(Self.transcode([0x3D, 0xD8, 0x41, 0x00, 0x42], .utf16LE) == [0xFF, 0x41, 0xFF])
    }

    @Test("detection: byte-order marks, UTF-16 without one, UTF-8, and Windows-1252 as the fallback")
    func detection() {
        func detect(_ bytes: [UInt8]) -> SourceEncoding { bytes.withUnsafeBytes { SourceEncoding.detect($0) } }
        #expect(detect([0xEF, 0xBB, 0xBF, 0x61]) == .utf8)
        #expect(detect([0xFF, 0xFE, 0x61, 0x00]) == .utf16LE)
        #expect(detect([0xFE, 0xFF, 0x00, 0x61]) == .utf16BE)
        #expect(detect(Array("name,lat\n".utf16).flatMap { [UInt8($0 & 0xFF), 0] }) == .utf16LE)
        #expect(detect(Array("Zürich,47.3\n".utf8)) == .utf8)
        #expect(detect(Array("K".utf8) + [0xF6] + Array("ln,50.9,6.9\nmore text".utf8)) == .windows1252)
        // A UTF-8 sequence cut by the end of the sample is not evidence against UTF-8.
        #expect(detect(Array("abc".utf8) + [0xC3]) == .utf8)
        #expect(SourceEncoding(setting: "Latin-1") == .latin1)
        #expect(SourceEncoding(setting: "cp1252") == .windows1252)
        #expect(SourceEncoding(setting: "ebcdic") == nil)
    }

    @Test("the reader parses UTF-16 (BOM, CRLF) and Windows-1252 files as UTF-8, with the right lines")
    func reader() throws {
        let text = "name;lat;lon\r\nMünchen;48,1;11,5\r\n\"Köln\r\nHbf\";50,9;6,9\r\n"
        let le: [UInt8] = [0xFF, 0xFE] + Array(text.utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        var options = ReaderOptions()
        options.delimiter = UInt8(ascii: ";")
        let utf16 = try readAll(le, options: options)
        #expect(utf16.header == ["name", "lat", "lon"])
        #expect(utf16.records == [["München", "48,1", "11,5"], ["Köln\r\nHbf", "50,9", "6,9"]])
        #expect(utf16.lines == [2, 3])

        let cp1252: [UInt8] =
            Array("name;lat;lon\nM".utf8) + [0xFC] + Array("nchen ".utf8) + [0x80] + Array(";48,1;11,5\n".utf8)
        let latin = try readAll(cp1252, options: options)
        #expect(latin.records.first?.first == "München €")
    }

    @Test("end to end: a Windows-1252 file imports with its accents; a forced UTF-8 rejects those rows")
    func pipeline() async throws {
        let dir = TempDir()
        let input = dir.write(
            "stations.csv", Array("name,lat,lon\nK".utf8) + [0xF6] + Array("ln,50.9,6.9\nBonn,50.7,7.1\n".utf8))
        var config = PipelineConfig()
        config.source.path = input
        config.report.dir = dir.path
        var options = RunOptions()
        options.output = dir.path + "/out.geojson"
        let summary = try await Pipeline(config: config, options: options).run()
        #expect(summary.encoding == "windows-1252")
        #expect(summary.imported == 2)
        #expect(dir.read("out.geojson").contains("\"label\":\"Köln\""))
        #expect(dir.read("stations.summary.json").contains("\"encoding\": \"windows-1252\""))

        config.source.encoding = "utf-8"
        let forced = try await Pipeline(config: config, options: options).run()
        #expect(forced.imported == 1)
        #expect(forced.rejectedByCode[.invalidEncoding] == 1)
        #expect(dir.read("stations.rejected.csv").contains("2,invalid_encoding,name,"))

        config.source.encoding = "ebcdic"
        await #expect(throws: ImportError.self) { try await Pipeline(config: config, options: options).run() }
    }
}

@Suite("Compressed input")
struct GzipTests {
    /// Compresses `path` with the gzip tool, keeping it; returns the `.gz` path.
    func gzip(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-k", "-f", path]
        try process.run()
        process.waitUntilExit()
        return path + ".gz"
    }

    @Test("a .gz file over several read-ahead chunks gives the plain file's records and lines, then its size as read")
    func readAhead() throws {
        let dir = TempDir()
        var text = "id,name,lat,lon,notes\n"
        for row in 1...90_000 {
            let notes = row % 1000 == 0 ? "\"spans\nlines\"" : "note \(row * 7919 % 100_003)"
            text += "\(row),Place \(row),\(Double(row % 180) - 89.5),\(Double(row % 360) - 179.5),\(notes)\n"
        }
        #expect(text.utf8.count > 3 << 20)
        let plain = dir.write("places.csv", text)
        let compressed = try gzip(plain)
        let expected = try readAll(CSVReader(path: plain, options: ReaderOptions()))
        let reader = try CSVReader(path: compressed, options: ReaderOptions())
        let result = try readAll(reader)
        #expect(result.records.count == 90_000)
        #expect(result.records == expected.records)
        #expect(result.lines == expected.lines)
        #expect(result.lines.last == 90_090)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: compressed)[.size] as? Int)
        #expect(reader.bytesRead == size)
    }

    @Test("a .gz file cut short: the rows before the cut come out, then an error naming the file and the reason")
    func truncated() async throws {
        let dir = TempDir()
        var text = "name,lat,lon\n"
        for row in 1...200_000 {
            text += "Place \(row * 7919 % 100_003),\(row % 80).\(row % 997),\(row % 170).\(row % 991)\n"
        }
        let compressed = try gzip(dir.write("places.csv", text))
        let bytes = try #require(FileManager.default.contents(atPath: compressed))
        try Data(bytes.prefix(bytes.count / 2)).write(to: URL(fileURLWithPath: compressed))
        let reader = try CSVReader(path: compressed, options: ReaderOptions())
        var rows = 0
        let error = #expect(throws: ImportError.self) {
            while let block = try reader.nextBlock() { rows += block.count }
        }
        #expect(rows > 50_000 && rows < 200_000)
        #expect(error?.message.contains("cut short") == true)
        #expect(error?.file?.hasSuffix("places.csv.gz") == true)
        #expect((error?.line ?? 0) > rows + 1)
    }

    @Test("a .gz file is read as a stream, inspected, and named in the reports without .gz")
    func gzip() async throws {
        let dir = TempDir()
        var text = "name;lat;lon\n"
        for row in 1...5000 { text += "Ort \(row);\(50 + Double(row % 100) / 1000);\(7 + Double(row % 50) / 1000)\n" }
        let plain = dir.write("places.csv", text)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-k", plain]
        try process.run()
        process.waitUntilExit()
        let path = plain + ".gz"
        let summary = try await dryRun(path, in: dir)
        #expect(summary.rowsRead == 5000)
        #expect(summary.imported == 5000)
        #expect(FileManager.default.fileExists(atPath: dir.path + "/places.summary.json"))
        var inspect = InspectOptions()
        inspect.sampleRows = 100
        let report = try Inspector.inspect(path: path, options: inspect)
        #expect(report.delimiter == UInt8(ascii: ";"))
        #expect(report.rows == 5000)
        #expect(report.rowsMethod == "counted lines")
    }
}
