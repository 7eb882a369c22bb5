import Foundation
import MapsembleJSON
import Testing

@testable import MapsembleImport

/// Files seen in the wild: Excel's `sep=` first line, a header naming a column twice, and a quoted
/// decimal comma in a comma-delimited file; through the reader and through the built binary.
@Suite("Files seen in the wild")
struct WildFilesTests {
    /// A generated CSV body: `rows` records of `columns` fields separated by `delimiter`, with values
    /// that need quotes (the delimiter, quotes, line ends) now and then.
    static func body(_ delimiter: UInt8, rows: Int, columns: Int, _ random: inout SplitMix) -> [UInt8] {
        let plain = ["a", "b", "c", "x", "y", "z", "0", "1", "9", " ", ".", "-", "_", "é"].map { Array($0.utf8) }
            .filter { $0 != [delimiter] }
        var out: [UInt8] = []
        for row in 0...rows {
            for column in 0..<columns {
                if column > 0 { out.append(delimiter) }
                if row == 0 {
                    out += Array("c\(column)".utf8)
                    continue
                }
                var value = (0..<Int.random(in: 0...6, using: &random)).flatMap { _ in
                    plain.randomElement(using: &random)!
                }
                switch Int.random(in: 0..<8, using: &random) {
                case 0: value += [delimiter] + value
                case 1: value += Array("say \"\"hi\"\"".utf8)
                case 2: value += Array("two\nlines".utf8)
                default: break
                }
                let quoted = value.contains(delimiter) || value.contains(0x22) || value.contains(0x0A)
                out += quoted ? [0x22] + value + [0x22] : value
            }
            out += Bool.random(using: &random) ? [0x0D, 0x0A] : [0x0A]
        }
        return out
    }

    @Test(
        "sep=X names the delimiter for every ASCII X: what is read equals the body read with X, one line further down")
    func delimiterHintDifferential() throws {
        var random = SplitMix(seed: 0x5E9)
        let delimiters =
            [UInt8(0x09)]
            + (0x21...0x7E).map(UInt8.init).filter {
                // Not the quote, and not what the generated values are made of.
                $0 != 0x22 && !Array("abcxyz019 .-_\n".utf8).contains($0)
            }
        #expect(delimiters.count > 60)
        for delimiter in delimiters {
            let body = Self.body(delimiter, rows: 20, columns: 1 + Int.random(in: 0..<5, using: &random), &random)
            var plain = ReaderOptions()
            plain.delimiter = delimiter
            let expected = try readAll(body, options: plain)
            for form in ["sep=", "\"sep=", "SEP="] {
                let quoted = form.hasPrefix("\"")
                let line = Array(form.utf8) + [delimiter] + (quoted ? [0x22] : []) + [0x0D, 0x0A]
                for bom in [false, true] {
                    var hinted = ReaderOptions()
                    hinted.delimiterFromHint = true
                    // The sniffed delimiter is a comma: the hint overrides it.
                    let result = try readAll((bom ? [0xEF, 0xBB, 0xBF] : []) + line + body, options: hinted)
                    let shown = "\(form)\(Character(Unicode.Scalar(delimiter)))"
                    #expect(result.header == expected.header, "\(shown)")
                    #expect(result.records == expected.records, "\(shown)")
                    #expect(result.lines == expected.lines.map { $0 + 1 }, "\(shown)")
                    #expect(result.rowsRead == expected.rowsRead, "\(shown)")
                }
            }
        }
    }

    @Test("a stated delimiter is kept over the hint, whose line is skipped all the same; near misses are headers")
    func delimiterHintKinds() throws {
        var options = ReaderOptions()
        options.delimiter = UInt8(ascii: ",")
        let kept = try readAll("sep=;\na,b;c\n1,2;3\n", options: options)
        #expect(kept.header == ["a", "b;c"])
        #expect(kept.records == [["1", "2;3"]])
        #expect(kept.lines == [3])
        let hint = Array("sep=;\na,b\n".utf8)
        #expect(CSVReader.delimiterHint(Array(hint.prefix(5))) == UInt8(ascii: ";"))
        for line in ["sep=", "sep=;;", "sep= ;", "sepx;", "se=;", "\"sep=;", "sep=\"", "id;name", "\"sep=;\"x"] {
            #expect(CSVReader.delimiterHint(Array(line.utf8)) == nil, "\(line)")
        }
        options.delimiterFromHint = true
        let near = try readAll("sep=;;\n1;2\n", options: options)
        #expect(near.header == ["sep=;;"])
        // A file of only the hint has no header.
        #expect(throws: ImportError.self) { try readAll("sep=;\n", options: options) }
    }

    @Test(
        "duplicate names: unique, the first keeps its name, the others NAME_k with k from 2, never a name the header has"
    )
    func headerNamesProperty() {
        var random = SplitMix(seed: 2_025)
        let alphabet = ["a", "b", "a_2", "a_3", "b_2", "", "_2", "Notes"]
        for _ in 0..<3000 {
            let names = (0..<Int.random(in: 1...9, using: &random)).map { _ in alphabet.randomElement(using: &random)! }
            let (result, duplicates) = HeaderNames.unique(names)
            #expect(result.count == names.count)
            let named = result.filter { !$0.isEmpty }
            #expect(Set(named).count == named.count, "\(names) → \(result)")
            var seen = Set<String>()
            for (index, name) in names.enumerated() {
                if name.isEmpty {
                    // Unnamed columns stay unnamed.
                    #expect(result[index] == "", "\(names) → \(result)")
                } else if seen.insert(name).inserted {
                    #expect(result[index] == name, "\(names) → \(result)")
                } else {
                    let suffix = result[index].dropFirst(name.count + 1)
                    #expect(result[index].hasPrefix(name + "_") && (Int(suffix) ?? 0) >= 2, "\(names) → \(result)")
                    #expect(!names.contains(result[index]), "\(names) → \(result)")
                }
            }
            // Each name given more than once lists its columns' names in order.
            for (name, list) in duplicates {
                #expect(list == names.indices.filter { names[$0] == name }.map { result[$0] })
            }
            #expect(
                Set(duplicates.keys)
                    == Set(names.filter { name in !name.isEmpty && names.filter { $0 == name }.count > 1 }))
        }
    }

    @Test(
        "sep=; through the binary: run and inspect honour it, line numbers count it, the rejected row comes back whole")
    func delimiterHintCLI() throws {
        let dir = TempDir()
        let bytes: [UInt8] =
            [0xEF, 0xBB, 0xBF]
            + Array("sep=;\r\nid;name;lat;lon\r\n1;Caf\u{e9};52,5;13,4\r\n2;B;abc;11,5\r\n3;\"C;D\";48,1;11,6\r\n".utf8)
        let input = dir.write("semi.csv", bytes)
        let pipeline = dir.write(
            "pipeline.yml",
            "source:\n  path: \"\(input)\"\nproperties:\n  label: name\n  remote_id: id\n  fields:\n    name: name\n")
        let result = try runCLI(["run", pipeline, "--dry-run", "--output", "-", "--report-dir", dir.path, "-v"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("delimiter \";\" (from the file's first line sep=;)"), "\(result.stderr)")
        let features = try #require(JSONParser.parse(Array(result.stdout.utf8))?["features"]?.array)
        #expect(features.map { $0["properties"]?["name"]?.string } == ["Caf\u{e9}", "C;D"])
        #expect(
            features.first?["geometry"]?["coordinates"]?.array?.compactMap { $0.number } == [13.4, 52.5])
        let rejected = dir.read("semi.rejected.csv")
        // In the file's own delimiter, the row's cells as they were.
        #expect(rejected.contains("\n4;invalid_number;lat;"), "\(rejected)")
        #expect(rejected.hasSuffix(";2;B;abc;11,5\n"), "\(rejected)")
        let summary = try #require(JSONParser.parse(Array(dir.read("semi.summary.json").utf8)))
        #expect(summary["rows_read"]?.integer == 3)

        // Errors about the header name its line: 2, below the hint.
        let missing = try runCLI([
            "run", dir.write("missing.yml", "source:\n  path: \"\(input)\"\nproperties:\n  label: nom\n"), "--dry-run",
            "--report-dir", dir.path,
        ])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("\(input):2: properties.label names the column \"nom\""), "\(missing.stderr)")

        // Standard input: the hint is read there too.
        let piped = try runCLI(
            ["run", "--dry-run", "--input", "-", "--output", "-", "--report-dir", dir.path],
            stdin: "sep=|\nname|latitude|longitude\nA|1.5|2.5\n")
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(JSONParser.parse(Array(piped.stdout.utf8))?["features"]?.array?.count == 1)

        let inspected = try runCLI(["inspect", input])
        #expect(inspected.status == 0, "\(inspected.stderr)")
        #expect(inspected.stdout.contains("delimiter  \";\""), "\(inspected.stdout)")
        #expect(inspected.stdout.contains("rows       3 "), "\(inspected.stdout)")
        #expect(inspected.stdout.contains("the first line sep=; names the delimiter; it is not a row"))
        #expect(!inspected.stdout.contains("sep=;  "), "the hint is not a column: \(inspected.stdout)")
        // What inspect writes runs unedited.
        let emitted = try runCLI(["inspect", input, "--emit-config"])
        let written = dir.write("emitted.yml", emitted.stdout)
        let rerun = try runCLI(["run", written, "--dry-run", "--report-dir", dir.path + "/again"])
        #expect(rerun.status == 1, "\(rerun.stderr)")
        #expect(rerun.stderr.contains("2 of 3 rows would be imported"), "\(rerun.stderr)")
    }

    @Test("a header naming a column twice: read as Notes and Notes_2; only a mapping of the ambiguous name stops")
    func duplicateHeaderCLI() throws {
        let dir = TempDir()
        let input = dir.write(
            "dup.csv", "id,Notes,lat,lon,Notes,Notes_2\n1,first,52.5,13.4,second,real\n2,,48.1,11.5,x,y\n")
        func pipeline(_ fields: String) -> String {
            dir.write(
                "p.yml", "source:\n  path: \"\(input)\"\nproperties:\n  remote_id: id\n  fields:\n\(fields)")
        }
        // Both named: "Notes" is the first; the second is Notes_3 (Notes_2 is the header's own).
        let both = try runCLI(
            [
                "run", pipeline("    a: Notes\n    b: Notes_3\n    c: Notes_2\n"), "--dry-run", "--output", "-",
                "--report-dir", dir.path, "-v",
            ])
        #expect(both.status == 0, "\(both.stderr)")
        #expect(
            both.stderr.contains("the header names \"Notes\" 2 times, read as \"Notes\", \"Notes_3\""), "\(both.stderr)"
        )
        let features = try #require(JSONParser.parse(Array(both.stdout.utf8))?["features"]?.array)
        #expect(features.first?["properties"]?["a"]?.string == "first")
        #expect(features.first?["properties"]?["b"]?.string == "second")
        #expect(features.first?["properties"]?["c"]?.string == "real")
        // Only the second: fine.
        let second = try runCLI(
            ["run", pipeline("    b: Notes_3\n"), "--dry-run", "--output", "-", "--report-dir", dir.path])
        #expect(second.status == 0, "\(second.stderr)")
        // "Notes" alone is ambiguous: one sentence with the choices, nothing read.
        let alone = try runCLI(["run", pipeline("    a: Notes\n"), "--dry-run", "--report-dir", dir.path])
        #expect(alone.status == 2)
        #expect(
            alone.stderr
                == "mapsemble-import: error: \(input):1: properties.fields.a names the column \"Notes\", which the header has 2 times, read as \"Notes\", \"Notes_3\"; name the one meant (\"Notes\" is the first once the pipeline names \"Notes_3\" too)\n",
            "\(alone.stderr)")
        // Found by name: two "lat" columns are not guessed between.
        let twoLat = dir.write("lat.csv", "id,lat,lat,lon\n1,1,2,3\n")
        let guessed = try runCLI(["run", "--dry-run", "--input", twoLat, "--report-dir", dir.path])
        #expect(guessed.status == 2)
        #expect(
            guessed.stderr.contains("\"lat\", is in the header 2 times; set coordinates.latitude"), "\(guessed.stderr)")

        // The label found by name twice: asked for, not guessed.
        let twoNames = dir.write("names.csv", "name,lat,lon,name\nA,1,2,B\n")
        let label = try runCLI(["run", "--dry-run", "--input", twoNames, "--report-dir", dir.path])
        #expect(label.status == 2)
        #expect(label.stderr.contains("set properties.label in pipeline.yml to one of: \"name\", \"name_2\""))
        // Unnamed columns (Excel's trailing delimiters) stay unnamed and unmapped, as one always was.
        let unnamed = dir.write("unnamed.csv", "name,lat,lon,,,\nA,1,2,,,\n")
        let trailing = try runCLI(["run", "--dry-run", "--input", unnamed, "--report-dir", dir.path, "-v"])
        #expect(trailing.status == 0, "\(trailing.stderr)")
        #expect(!trailing.stderr.contains("_2"), "\(trailing.stderr)")

        // A workbook's header is read the same way; errors name its row.
        let workbook = try makeWorkbook(
            in: dir,
            rows: [["Survey"], ["id", "Notes", "lat", "lon", "Notes"], ["1", "first", "52.5", "13.4", "second"]])
        func sheetPipeline(_ fields: String) -> String {
            dir.write(
                "sheet.yml",
                "source:\n  path: \"\(workbook)\"\n  header: 2\nproperties:\n  remote_id: id\n  fields:\n\(fields)")
        }
        let sheet = try runCLI(
            [
                "run", sheetPipeline("    a: Notes\n    b: Notes_2\n"), "--dry-run", "--output", "-", "--report-dir",
                dir.path,
            ])
        #expect(sheet.status == 0, "\(sheet.stderr)")
        let sheetFeatures = try #require(JSONParser.parse(Array(sheet.stdout.utf8))?["features"]?.array)
        #expect(sheetFeatures.first?["properties"]?["a"]?.string == "first")
        #expect(sheetFeatures.first?["properties"]?["b"]?.string == "second")
        let sheetAlone = try runCLI(["run", sheetPipeline("    a: Notes\n"), "--dry-run", "--report-dir", dir.path])
        #expect(sheetAlone.status == 2)
        #expect(
            sheetAlone.stderr.contains("\(workbook):2: properties.fields.a names the column \"Notes\""),
            "\(sheetAlone.stderr)")

        let inspected = try runCLI(["inspect", input])
        #expect(inspected.stdout.contains("Notes_3"), "\(inspected.stdout)")
        #expect(inspected.stdout.contains("the header names \"Notes\" 2 times, read as \"Notes\", \"Notes_3\""))
        // What inspect writes names every column, so it runs unedited.
        let emitted = try runCLI(["inspect", input, "--emit-config"])
        let rerun = try runCLI(["run", dir.write("emitted.yml", emitted.stdout), "--dry-run", "--report-dir", dir.path])
        #expect(rerun.status == 0, "\(rerun.stderr)\n\(emitted.stdout)")
    }

    @Test(
        "a quoted decimal comma in a comma-delimited file: generated coordinates read back exactly under decimal auto")
    func quotedDecimalComma() throws {
        var random = SplitMix(seed: 5_252)
        let dir = TempDir()
        var text = "id,lat,lon,count\n"
        var expected: [(Double, Double)] = []
        for row in 0..<400 {
            func value(_ limit: Double) -> String {
                let digits = Int.random(in: 0...7, using: &random)
                let number = Double.random(in: -limit...limit, using: &random)
                return String(format: "%.\(digits)f", number)
            }
            let lat = value(89.9)
            let lon = value(179.9)
            expected.append((Double(lon)!, Double(lat)!))
            func written(_ value: String) -> String {
                // Half with a decimal comma (quoted, as a comma-delimited file must), half plain.
                value.contains(".") && row % 2 == 0 ? "\"\(value.replacingOccurrences(of: ".", with: ","))\"" : value
            }
            text += "\(row),\(written(lat)),\(written(lon)),\"1,234\"\n"
        }
        let input = dir.write("quoted.csv", text)
        let pipeline = dir.write(
            "p.yml",
            "source:\n  path: \"\(input)\"\nproperties:\n  remote_id: id\n  fields:\n    count:\n      column: count\n      type: number\n"
        )
        let result = try runCLI(["run", pipeline, "--dry-run", "--output", "-", "--report-dir", dir.path])
        #expect(result.status == 0, "\(result.stderr)")
        let features = try #require(JSONParser.parse(Array(result.stdout.utf8))?["features"]?.array)
        #expect(features.count == expected.count)
        for (feature, (lon, lat)) in zip(features, expected) {
            let coordinates = feature["geometry"]?["coordinates"]?.array?.compactMap { $0.number } ?? []
            #expect(coordinates == [lon, lat], "\(feature)")
            // Other numbers keep a quoted comma as a thousands separator.
            #expect(feature["properties"]?["count"]?.number == 1234)
        }
        // decimal: point reads no decimal comma: those rows are invalid_number, returned whole.
        let point = dir.write(
            "point.yml", "source:\n  path: \"\(input)\"\n  decimal: point\nproperties:\n  remote_id: id\n")
        let strict = try runCLI(["run", point, "--dry-run", "--report-dir", dir.path + "/point"])
        #expect(strict.status == 1, "\(strict.stderr)")
        let rejected = try String(contentsOfFile: dir.path + "/point/quoted.rejected.csv", encoding: .utf8)
        let firstComma = try #require(text.split(separator: "\n").dropFirst().first { $0.contains("\"") })
        #expect(rejected.contains(",invalid_number,lat,") && rejected.contains(String(firstComma)), "\(rejected)")
    }
}
