import Foundation
import Testing

@testable import MapsembleImport

/// Builds a validated block of rows under `header` with coordinates `0,0`.
private func validated(_ rows: [[String]]) -> ValidatedBlock {
    var block = RecordBlock()
    for (index, row) in rows.enumerated() { block.append(fields: row, line: index + 2) }
    var result = ValidatedBlock(records: block)
    for index in rows.indices {
        result.accepted.append(index)
        result.coordinates += Array("1,2".utf8)
        result.coordinateEnds.append(result.coordinates.count)
    }
    return result
}

/// Every feature of a block, decoded.
private func features(_ block: FeatureBlock) throws -> [[String: Any]] {
    try (0..<block.count).map {
        try JSONSerialization.jsonObject(with: Data(block.bytes[block.range($0)])) as! [String: Any]
    }
}

@Suite("Transformer: rows to features")
struct TransformerTests {
    let header = ["id", "name", "city", "revenue"]

    func mapping(label: String? = "name", remoteID: Bool = true, numberRevenue: Bool = true) throws -> PropertyMapping {
        PropertyMapping(
            label: try label.map { try PropertyMapping.labelParts($0, header: header).get() },
            remoteID: remoteID ? (column: 0, slug: "ext_id") : nil,
            fields: [
                .init(slug: "city", column: 2, isNumber: false),
                .init(slug: "revenue", column: 3, isNumber: numberRevenue),
            ],
            header: header)
    }

    @Test("a feature carries geometry, label, remote id and typed fields")
    func featureShape() throws {
        let block = Transformer(mapping: try mapping()).transform(
            validated([["A1", "Café \"Zur Post\"", "Köln", "12.50"]]))
        let feature = try #require(try features(block).first)
        #expect(feature["type"] as? String == "Feature")
        let geometry = try #require(feature["geometry"] as? [String: Any])
        #expect(geometry["type"] as? String == "Point")
        #expect(geometry["coordinates"] as? [Double] == [1, 2])
        let properties = try #require(feature["properties"] as? [String: Any])
        #expect(properties["label"] as? String == "Café \"Zur Post\"")
        #expect(properties["ext_id"] as? String == "A1")
        #expect(properties["city"] as? String == "Köln")
        #expect(properties["revenue"] as? Double == 12.5)
        #expect(block.lines == [2])
    }

    @Test(
        "label templates",
        arguments: [
            ("{name} ({city})", "Alpha (Berlin)"), ("Store #{id}", "Store #7"),
            ("{{literal}} {name}", "{literal} Alpha"),
            ("name", "Alpha"), ("{name}{city}", "AlphaBerlin"),
        ])
    func templates(template: String, expected: String) throws {
        let block = Transformer(mapping: try mapping(label: template)).transform(
            validated([["7", "Alpha", "Berlin", "1"]]))
        let properties = try #require(try features(block).first?["properties"] as? [String: Any])
        #expect(properties["label"] as? String == expected)
    }

    @Test("a label naming an unknown column is a config error listing the columns")
    func unknownLabelColumn() {
        let result = PropertyMapping.labelParts("{nmae}", header: header)
        guard case .failure(let error) = result else {
            Issue.record("expected an error")
            return
        }
        #expect(error.message.contains("nmae"))
        #expect(error.message.contains("id, name, city, revenue"))
        #expect(throws: ImportError.self) { try PropertyMapping.labelParts("{name", header: header).get() }
    }

    @Test("missing and duplicate remote ids: only the first occurrence is imported")
    func remoteIDs() throws {
        let block = Transformer(mapping: try mapping()).transform(
            validated([
                ["A", "a", "x", "1"], ["", "b", "x", "1"], ["A", "c", "x", "1"], ["B", "d", "x", "1"],
                [" ", "e", "x", "1"],
            ]))
        #expect(block.lines == [2, 5])
        #expect(block.rejections.map(\.code) == [.missingRemoteId, .duplicateRemoteId, .missingRemoteId])
        #expect(block.rejections.map(\.line) == [3, 4, 6])
        #expect(block.rejections[1].fields == ["A", "c", "x", "1"])
        #expect(block.rejections[1].column == "id")
    }

    @Test("duplicates are found across blocks")
    func duplicatesAcrossBlocks() throws {
        let transformer = Transformer(mapping: try mapping())
        _ = transformer.transform(validated([["A", "a", "x", "1"]]))
        let second = transformer.transform(validated([["A", "b", "x", "1"]]))
        #expect(second.rejections.map(\.code) == [.duplicateRemoteId])
    }

    @Test("number fields: JSON numbers, null when empty, invalid_field_value otherwise")
    func numberFields() throws {
        let block = Transformer(mapping: try mapping()).transform(
            validated([["1", "a", "x", " 1e3 "], ["2", "b", "x", ""], ["3", "c", "x", "12 EUR"]]))
        let values = try features(block).map { ($0["properties"] as! [String: Any])["revenue"] }
        #expect(values[0] as? Double == 1000)
        #expect(values[1] is NSNull)
        #expect(block.rejections.map(\.code) == [.invalidFieldValue])
        #expect(block.rejections.first?.column == "revenue")
    }

    @Test("text fields keep numbers as strings, exactly as written")
    func textFields() throws {
        let block = Transformer(mapping: try mapping(numberRevenue: false)).transform(
            validated([["1", "a", "007", "0012.50"]]))
        let properties = try #require(try features(block).first?["properties"] as? [String: Any])
        #expect(properties["city"] as? String == "007")
        #expect(properties["revenue"] as? String == "0012.50")
    }

    @Test("control characters are escaped and invalid UTF-8 is invalid_encoding")
    func escaping() throws {
        var block = RecordBlock()
        block.append(fields: ["1", "tab\there\u{1}", "x", "1"], line: 2)
        let latin1: [UInt8] = [0x43, 0x61, 0x66, 0xE9]  // "Café" in Latin-1: not UTF-8
        for field in [Array("2".utf8), Array("b".utf8), latin1, Array("1".utf8)] {
            field.withUnsafeBytes { block.appendField($0) }
        }
        block.closeRecord(line: 3)
        var input = ValidatedBlock(records: block)
        input.accepted = [0, 1]
        input.coordinates = Array("1,21,2".utf8)
        input.coordinateEnds = [3, 6]
        let output = Transformer(mapping: try mapping()).transform(input)
        let properties = try #require(try features(output).first?["properties"] as? [String: Any])
        #expect(properties["label"] as? String == "tab\there\u{1}")
        #expect(output.rejections.map(\.code) == [.invalidEncoding])
        #expect(output.rejections.first?.column == "city")
    }

    @Test("number fields: null markers become null, a decimal comma is read where allowed, text is rejected")
    func numberFieldForms() throws {
        var commaMapping = try mapping(remoteID: false)
        commaMapping.alternateSeparator = UInt8(ascii: ",")
        let transformer = Transformer(mapping: commaMapping)
        let block = transformer.transform(
            validated([
                ["1", "A", "x", "\\N"], ["2", "B", "x", "NULL"], ["3", "C", "x", "1234,5"], ["4", "D", "x", "lots"],
            ]))
        let values = try features(block).map { ($0["properties"] as! [String: Any])["revenue"] }
        #expect(values.count == 3)
        #expect(values[0] is NSNull && values[1] is NSNull)
        #expect((values[2] as? Double) == 1234.5)
        #expect(block.rejections.map(\.code) == [.invalidFieldValue])
    }
}

@Suite("Chunker: batches and byte budget")
struct ChunkerTests {
    func block(_ count: Int, size: Int = 10) -> FeatureBlock {
        var block = FeatureBlock()
        for index in 0..<count {
            block.bytes += Array("{\"f\":\"\(String(repeating: "x", count: max(0, size - 8)))\"}".utf8)
            block.ends.append(block.bytes.count)
            block.lines.append(index + 2)
        }
        return block
    }

    @Test("batches hold batch_size features, the last one the rest", arguments: [1, 7, 500, 1000])
    func batchSize(size: Int) throws {
        var chunker = Chunker(batchSize: size, maxBodyBytes: 1 << 30, remoteField: nil)
        var batches = chunker.append(block(2501))
        if let last = chunker.finish() { batches.append(last) }
        #expect(batches.map(\.count).reduce(0, +) == 2501)
        #expect(batches.dropLast().allSatisfy { $0.count == size })
        #expect(batches.map(\.sequence) == Array(0..<batches.count))
        #expect(batches.flatMap(\.lines) == Array(2...2502))
        for batch in batches {
            let body = try JSONSerialization.jsonObject(with: Data(batch.body)) as! [String: Any]
            #expect((body["features"] as! [Any]).count == batch.count)
            #expect(body["type"] as? String == "FeatureCollection")
        }
    }

    @Test("a batch is cut before its body passes the byte budget")
    func byteBudget() {
        var chunker = Chunker(batchSize: 1000, maxBodyBytes: 1000, remoteField: "ext_id")
        var batches = chunker.append(block(50, size: 100))
        if let last = chunker.finish() { batches.append(last) }
        #expect(batches.allSatisfy { $0.body.count <= 1000 })
        #expect(batches.map(\.count).reduce(0, +) == 50)
        #expect(batches.count > 1)
        #expect(String(decoding: batches[0].body.prefix(60), as: UTF8.self).contains("\"remoteField\":\"ext_id\""))
    }

    @Test("a feature larger than the budget travels alone")
    func oversizedFeature() {
        var chunker = Chunker(batchSize: 10, maxBodyBytes: 50, remoteField: nil)
        var batches = chunker.append(block(3, size: 200))
        if let last = chunker.finish() { batches.append(last) }
        #expect(batches.map(\.count) == [1, 1, 1])
    }
}
