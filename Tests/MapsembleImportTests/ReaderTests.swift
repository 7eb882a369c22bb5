import Foundation
import Testing

@testable import MapsembleImport

@Suite("Reader: CSV through libcsv")
struct ReaderTests {
    @Test("quoted fields keep delimiters, doubled quotes and newlines")
    func quotedFields() throws {
        let result = try readAll("a,b,c\n\"x,1\",\"say \"\"hi\"\"\",\"two\nlines\"\n")
        #expect(result.header == ["a", "b", "c"])
        #expect(result.records == [["x,1", "say \"hi\"", "two\nlines"]])
        #expect(result.lines == [2])
    }

    @Test("a UTF-8 byte-order mark is not part of the first column name")
    func byteOrderMark() throws {
        let result = try readAll([0xEF, 0xBB, 0xBF] + Array("lat,lon\n1,2\n".utf8))
        #expect(result.header == ["lat", "lon"])
        #expect(result.records == [["1", "2"]])
    }

    @Test("CRLF and LF line ends give the same records and physical lines")
    func lineEnds() throws {
        let crlf = try readAll("a,b\r\n1,2\r\n3,4\r\n")
        let lf = try readAll("a,b\n1,2\n3,4\n")
        #expect(crlf.records == [["1", "2"], ["3", "4"]])
        #expect(crlf.records == lf.records)
        #expect(crlf.lines == [2, 3])
    }

    @Test("physical lines count the newlines inside quoted fields and blank lines")
    func physicalLines() throws {
        let result = try readAll("a,b\n1,\"x\ny\nz\"\n\n2,w\n3,\"\"\n")
        #expect(result.lines == [2, 6, 7])
        #expect(result.records[2] == ["3", ""])
    }

    @Test("a last line without a newline is still a record")
    func noFinalNewline() throws {
        let result = try readAll("a,b\n1,2\n3,4")
        #expect(result.records == [["1", "2"], ["3", "4"]])
        #expect(result.lines == [2, 3])
    }

    @Test("short rows get empty trailing fields, empty extra fields are dropped, other extras are malformed_row")
    func raggedRows() throws {
        let result = try readAll("a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12,,\n13,14,15, \n")
        #expect(result.records == [["1", "2", "3"], ["4", "5", ""], ["10", "11", "12"], ["13", "14", "15"]])
        #expect(result.lines == [2, 3, 5, 6])
        #expect(result.rejections.map(\.line) == [4])
        #expect(result.rejections.allSatisfy { $0.code == .malformedRow })
        #expect(result.rejections[0].fields == ["6", "7", "8", "9"])
        #expect(result.rejections[0].message == "expected 3 fields as in the header, found 4")
        #expect(result.rowsRead == 5)
    }

    @Test("a stray quote costs one row: the 1000 good rows after it all come out")
    func strayQuoteThenThousandRows() throws {
        var text = "id,name,lat,lon\n0,\"broken,1,2\n"
        for row in 1...1000 { text += "\(row),name \(row),\(row % 90),\(row % 180)\n" }
        let result = try readAll(text)
        #expect(result.records.count == 1000)
        #expect(result.rejections.count == 1)
        #expect(result.rejections.first?.line == 2)
        #expect(result.rejections.first?.code == .malformedRow)
        #expect(result.rejections.first?.fields == ["0,\"broken,1,2"])
        #expect(result.records.first == ["1", "name 1", "1", "1"])
        #expect(result.lines.first == 3)
        #expect(result.lines.last == 1002)
        #expect(result.rowsRead == 1001)
    }

    @Test("a quote in the middle of a field and text after a closing quote are malformed")
    func quoteErrors() throws {
        let result = try readAll("a,b\n1,ab\"c\n2,\"x\"y\n3,ok\n")
        #expect(result.records == [["3", "ok"]])
        #expect(result.rejections.map(\.line) == [2, 3])
        #expect(result.rejections.map(\.fields) == [["1,ab\"c"], ["2,\"x\"y"]])
    }

    @Test("an opening quote that closes lines later on a broken record resyncs on the next line")
    func brokenMultilineRecord() throws {
        // The quote opened on line 2 closes on line 3 and is followed by text: line 2 is the
        // malformed row, and line 3 is parsed again on its own (and is malformed too).
        let result = try readAll("a,b\n1,\"open\n2\"x,3\n4,5\n")
        #expect(result.records == [["4", "5"]])
        #expect(result.rejections.map(\.line) == [2, 3])
        #expect(result.lines == [4])
    }

    @Test("an unterminated quote at the end of the file is one malformed row")
    func unterminatedQuoteAtEnd() throws {
        let result = try readAll("a,b\n1,2\n3,\"never closed\n4,5\n")
        #expect(result.rejections.map(\.line) == [3])
        #expect(result.records == [["1", "2"], ["4", "5"]])
        #expect(result.rowsRead == 3)
    }

    @Test(
        "semicolon, tab and pipe delimiters",
        arguments: [
            (UInt8(ascii: ";"), "a;b\n1,5;x\n"), (UInt8(0x09), "a\tb\n1,5\tx\n"), (UInt8(ascii: "|"), "a|b\n1,5|x\n"),
        ])
    func delimiters(delimiter: UInt8, text: String) throws {
        var options = ReaderOptions()
        options.delimiter = delimiter
        let result = try readAll(text, options: options)
        #expect(result.header == ["a", "b"])
        #expect(result.records == [["1,5", "x"]])
    }

    @Test("tabs are data, never trimmed, in a tab-delimited file")
    func tabsAreNotSpaces() throws {
        var options = ReaderOptions()
        options.delimiter = 0x09
        let result = try readAll("a\tb\tc\n1\t\t3\n", options: options)
        #expect(result.records == [["1", "", "3"]])
    }

    @Test("quote none: quotes are plain data")
    func quoteNone() throws {
        var options = ReaderOptions()
        options.quote = nil
        options.delimiter = 0x09
        let result = try readAll("name\tlat\n\"Big\" Apple\t40.7\n", options: options)
        #expect(result.records == [["\"Big\" Apple", "40.7"]])
    }

    @Test("records spanning block boundaries come out whole", arguments: [1 << 10, 4 << 10])
    func blockBoundaries(blockBytes: Int) throws {
        var options = ReaderOptions()
        options.blockBytes = blockBytes
        var text = "id,note\n"
        var expected: [[String]] = []
        for row in 0..<3000 {
            let note = row % 7 == 0 ? "multi\nline \"\(row)\"" : "plain \(row)"
            text += "\(row),\"\(note.replacingOccurrences(of: "\"", with: "\"\""))\"\n"
            expected.append([String(row), note])
        }
        let result = try readAll(text, options: options)
        #expect(result.records == expected)
        #expect(result.rejections.isEmpty)
    }

    @Test("a record past max_record_bytes is malformed and reading goes on")
    func recordTooLarge() throws {
        var options = ReaderOptions()
        options.maxRecordBytes = 64
        var text = "a,b\n1,\"" + String(repeating: "x\n", count: 100) + "\"\n"
        text += "2,ok\n"
        let result = try readAll(text, options: options)
        #expect(result.rejections.first?.line == 2)
        #expect(result.records.last == ["2", "ok"])
    }

    @Test("an empty file and a missing file are clear errors; duplicate column names are read as NAME_2")
    func fatalInputs() throws {
        #expect(throws: ImportError.self) { try readAll("") }
        #expect(try readAll("a,a\n1,2\n").header == ["a", "a_2"])
        #expect(throws: ImportError.self) { try CSVReader(path: "/nonexistent/file.csv", options: ReaderOptions()) }
        do {
            _ = try readAll("\"a,b\n1,2\n")
            Issue.record("a header with an unterminated quote must fail")
        } catch let error as ImportError {
            #expect(error.line == 1)
            #expect(error.exitCode == 2)
        }
    }

    @Test("without a header, columns are numbered from 1 and the first line is a row")
    func noHeader() throws {
        var options = ReaderOptions()
        options.hasHeader = false
        let result = try readAll("x,1,2\ny,3,4\n", options: options)
        #expect(result.header == ["1", "2", "3"])
        #expect(result.records == [["x", "1", "2"], ["y", "3", "4"]])
        #expect(result.rowsRead == 2)
    }
}
