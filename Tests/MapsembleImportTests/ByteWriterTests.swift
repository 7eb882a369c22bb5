import Foundation
import Testing

@testable import MapsembleImport

@Suite("Output files")
struct ByteWriterTests {
    /// The names in the folder, sorted.
    func names(_ dir: TempDir) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }

    @Test("a new file appears whole at close, under a temporary name until then")
    func newFile() throws {
        let dir = TempDir()
        let writer = try ByteWriter(path: "\(dir.path)/out.geojson")
        try writer.write("first part, ")
        try writer.flush()
        #expect(try names(dir) == ["out.geojson.partial"])
        try writer.write("second part")
        try writer.close()
        #expect(try names(dir) == ["out.geojson"])
        #expect(dir.read("out.geojson") == "first part, second part")
    }

    @Test("features written out of a batch: each range after the separator, across buffer flushes")
    func ranges() throws {
        let dir = TempDir()
        // Ranges of 1 to 40,000 bytes, 3 MB in all: the buffer flushes (at 1 MiB) inside the loop.
        var body: [UInt8] = []
        var ranges: [Range<Int>] = []
        var expected: [UInt8] = Array("head".utf8)
        for index in 0..<150 {
            let start = body.count
            body += Array(repeating: UInt8(ascii: "a") + UInt8(index % 26), count: 1 + (index * 7_919) % 40_000)
            ranges.append(start..<body.count)
            body += Array("|gap|".utf8)  // bytes between ranges are left out
        }
        let writer = try ByteWriter(path: "\(dir.path)/out.txt")
        try writer.write("head")
        try body.withUnsafeBytes { bytes in
            try writer.write(Array(ranges[..<100]), of: bytes, separatedBy: ",\n", separateFirst: true)
            try writer.write(Array(ranges[100...]), of: bytes, separatedBy: ",\n", separateFirst: true)
        }
        // No ranges: nothing, not even a separator.
        try writer.write([], of: UnsafeRawBufferPointer(start: nil, count: 0), separatedBy: ",", separateFirst: true)
        for range in ranges { expected += Array(",\n".utf8) + body[range] }
        #expect(writer.bytesWritten == expected.count)
        try writer.close()
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(dir.path)/out.txt")) == Data(expected))
    }

    @Test("an existing file is replaced in one step: a reader holding the old one still reads it whole")
    func replacesExisting() throws {
        let dir = TempDir()
        let path = dir.write("out.geojson", String(repeating: "old ", count: 100_000))
        let old = try #require(FileHandle(forReadingAtPath: path))
        defer { try? old.close() }
        let writer = try ByteWriter(path: path)
        try writer.write("new")
        try writer.close()
        #expect(dir.read("out.geojson") == "new")
        #expect(try names(dir) == ["out.geojson"])
        let stillOld = try #require(try old.readToEnd())
        #expect(stillOld.count == 400_000)
        #expect(stillOld.prefix(4) == Data("old ".utf8))
    }

    @Test("a symbolic link at the path is replaced by the file, its target left alone")
    func replacesLink() throws {
        let dir = TempDir()
        let target = dir.write("target.txt", "kept")
        try FileManager.default.createSymbolicLink(atPath: "\(dir.path)/out.txt", withDestinationPath: target)
        let writer = try ByteWriter(path: "\(dir.path)/out.txt")
        try writer.write("new")
        try writer.close()
        #expect(dir.read("out.txt") == "new")
        #expect(dir.read("target.txt") == "kept")
        let kind = try FileManager.default.attributesOfItem(atPath: "\(dir.path)/out.txt")[.type] as? FileAttributeType
        #expect(kind == .typeRegular)
    }

    @Test("a directory at the path is an error naming it, and the directory stays as it was")
    func refusesDirectory() throws {
        let dir = TempDir()
        try FileManager.default.createDirectory(atPath: "\(dir.path)/out", withIntermediateDirectories: false)
        dir.write("out/inside.txt", "kept")
        let writer = try ByteWriter(path: "\(dir.path)/out")
        try writer.write("new")
        let error = #expect(throws: ImportError.self) { try writer.close() }
        #expect(error?.message.contains("cannot write") == true)
        #expect(error?.description.contains("\(dir.path)/out") == true)
        #expect(dir.read("out/inside.txt") == "kept")
        #expect(try names(dir) == ["out"])
    }
}
