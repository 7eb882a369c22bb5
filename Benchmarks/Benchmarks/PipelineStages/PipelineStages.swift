import Benchmark
import Foundation
import MapsembleImport

/// A file like `../shared/bench/gen_csv.py` writes (quoted names, embedded quotes and newlines),
/// made once per run.
let sample: (path: String, rows: Int) = {
    let rows = 100_000
    let names = ["Springfield", "São Paulo", "Zürich", "Washington, D.C.", "東京", "Kraków", "Joe's \"Diner\""]
    func field(_ text: String) -> String {
        text.contains(",") || text.contains("\"") ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }
    // Coordinates with six decimals, as the benchmark generator and most exports write them.
    func degrees(_ value: Double) -> String { String(format: "%.6f", value) }
    var text = "id,name,category,lat,lon,value,updated_at,notes\n"
    for row in 1...rows {
        let lat = degrees(Double(row % 179_999) / 1000 - 89.9995)
        let lon = degrees(Double(row % 359_999) / 1000 - 179.9995)
        let notes = row % 100 == 0 ? "\"line one\nline \"\"two\"\"\"" : (row % 10 == 0 ? "" : "gate open pending")
        text +=
            "\(row),\(field("\(names[row % names.count]) \(row)")),station,\(lat),\(lon),\(row % 997).25,2024-08-20T01:46:55Z,\(notes)\n"
    }
    let path = NSTemporaryDirectory() + "mapsemble-import-bench-\(ProcessInfo.processInfo.processIdentifier).csv"
    _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    return (path, rows)
}()

func readAll() throws -> [RecordBlock] {
    let reader = try CSVReader(path: sample.path, options: ReaderOptions())
    var blocks: [RecordBlock] = []
    while let block = try reader.nextBlock() { blocks.append(block) }
    // Every row must parse: a rejected row takes the report's path, not the one measured here.
    precondition(blocks.reduce(0) { $0 + $1.count } == sample.rows && blocks.allSatisfy { $0.rejections.isEmpty })
    return blocks
}

let validator = Validator(
    longitudeColumn: 4, latitudeColumn: 3,
    header: ["id", "name", "category", "lat", "lon", "value", "updated_at", "notes"])

func mapping() throws -> PropertyMapping {
    let header = ["id", "name", "category", "lat", "lon", "value", "updated_at", "notes"]
    return PropertyMapping(
        label: try PropertyMapping.labelParts("{name} ({category})", header: header).get(), remoteID: (0, "remote_id"),
        fields: [.init(slug: "value", column: 5, isNumber: true), .init(slug: "notes", column: 7, isNumber: false)],
        header: header)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .peakMemoryResident, .throughput],
        scalingFactor: .one, maxDuration: .seconds(3), maxIterations: 10,
        // Allocations are held to the figures in Thresholds/, within 10 % either way (a few
        // allocations vary from run to run): `swift package benchmark thresholds check` fails when
        // a stage allocates more, and asks for the figure to be lowered when it allocates less.
        thresholds: [.mallocCountTotal: .init(relative: [.p90: 10.0])])

    Benchmark("reader-100k-rows-through-libcsv") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try readAll())
        }
    }

    Benchmark("validator-100k-coordinate-pairs") { (benchmark, blocks: [RecordBlock]) in
        for _ in benchmark.scaledIterations {
            for block in blocks { blackHole(validator.validate(block)) }
        }
    } setup: { () -> [RecordBlock] in
        try readAll()
    }

    Benchmark("transformer-100k-features-as-json-bytes") { (benchmark, validated: [ValidatedBlock]) in
        let mapping = try mapping()
        for _ in benchmark.scaledIterations {
            let transformer = Transformer(mapping: mapping)
            for block in validated { blackHole(transformer.transform(block)) }
        }
    } setup: { () -> [ValidatedBlock] in
        try readAll().map(validator.validate)
    }

    Benchmark("chunker-100k-features-into-batches-of-500") { (benchmark, features: [FeatureBlock]) in
        for _ in benchmark.scaledIterations {
            var chunker = Chunker(batchSize: 500, maxBodyBytes: 4 << 20, remoteField: "remote_id")
            for block in features { blackHole(chunker.append(block)) }
            blackHole(chunker.finish())
        }
    } setup: { () -> [FeatureBlock] in
        let transformer = Transformer(mapping: try mapping())
        return try readAll().map { transformer.transform(validator.validate($0)) }
    }

    Benchmark("geojson-writer-100k-features-to-dev-null") { (benchmark, batches: [Batch]) in
        for _ in benchmark.scaledIterations {
            let sink = try DryRunSink(featuresPath: "/dev/null", batchesPath: nil)
            for batch in batches { try sink.consume(batch) }
            try sink.close()
        }
    } setup: { () -> [Batch] in
        let transformer = Transformer(mapping: try mapping())
        var chunker = Chunker(batchSize: 500, maxBodyBytes: 4 << 20, remoteField: "remote_id")
        var batches = try readAll().flatMap { chunker.append(transformer.transform(validator.validate($0))) }
        if let last = chunker.finish() { batches.append(last) }
        return batches
    }
}
