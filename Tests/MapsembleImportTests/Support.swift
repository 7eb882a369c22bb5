import Foundation
import Testing

@testable import MapsembleImport

/// A fresh folder under the system temp dir, removed at deinit.
final class TempDir: Sendable {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "mapsemble-import-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` to `name` in this folder and returns the path.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let file = "\(path)/\(name)"
        FileManager.default.createFile(atPath: file, contents: Data(bytes))
        return file
    }

    @discardableResult
    func write(_ name: String, _ text: String) -> String { write(name, Array(text.utf8)) }

    func read(_ name: String) -> String {
        (try? String(contentsOfFile: "\(path)/\(name)", encoding: .utf8)) ?? "<missing \(name)>"
    }
}

/// Everything the reader produced for an input: the header, records (as strings, with lines) and
/// malformed rows.
struct ReadResult {
    var header: [String]
    var records: [[String]] = []
    var lines: [Int] = []
    var rejections: [Rejection] = []
    var rowsRead = 0
}

/// Reads `bytes` through the real reader (libcsv) from a temporary file.
func readAll(_ bytes: [UInt8], options: ReaderOptions = ReaderOptions()) throws -> ReadResult {
    let dir = TempDir()
    let path = dir.write("input.csv", bytes)
    return try readAll(CSVReader(path: path, options: options))
}

/// Everything a reader (CSV or workbook) yields.
func readAll(_ reader: any RecordReader) throws -> ReadResult {
    var result = ReadResult(header: reader.header)
    while let block = try reader.nextBlock() {
        for record in 0..<block.count {
            result.records.append(block.strings(record))
            result.lines.append(block.lines[record])
        }
        result.rejections += block.rejections
    }
    result.rowsRead = reader.rowsRead
    return result
}

func readAll(_ text: String, options: ReaderOptions = ReaderOptions()) throws -> ReadResult {
    try readAll(Array(text.utf8), options: options)
}

/// The shared folder beside the project (corpus, bench), when present.
let sharedDirectory: String? = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<4 { url.deleteLastPathComponent() }
    let shared = url.appendingPathComponent("shared").path
    return FileManager.default.fileExists(atPath: shared + "/corpus") ? shared : nil
}()

/// The project's root folder.
let projectDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// As in the command's `main`: a peer closing a socket must not kill the test process.
let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN) }()

/// A dry run of `input` with the default pipeline, writing `out.geojson` and the reports in `dir`.
func dryRun(_ input: String, in dir: TempDir) async throws -> RunSummary {
    var config = PipelineConfig()
    config.source.path = input
    config.report.dir = dir.path
    var options = RunOptions()
    options.output = dir.path + "/out.geojson"
    return try await Pipeline(config: config, options: options).run()
}

/// Set by `scripts/sanitize`: the suite runs under a sanitizer, several times slower.
let underSanitizer = ProcessInfo.processInfo.environment["MAPSEMBLE_SANITIZER"] != nil

/// A test's time limit in minutes, five times as long under a sanitizer.
func minutes(_ count: Int) -> TimeLimitTrait.Duration { .minutes(underSanitizer ? count * 5 : count) }
