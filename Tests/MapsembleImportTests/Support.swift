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

// MARK: - The built binary

/// The state folder of the binary's runs in this test process (a test that cares passes its own).
let testStateDirectory = NSTemporaryDirectory() + "mapsemble-import-tests-state-\(getpid())"

/// Runs the built `mapsemble-import` binary and collects what it printed.
struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// The binary is built beside the test bundle.
let binary: String = {
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return executable.deletingLastPathComponent().appendingPathComponent("mapsemble-import").path
}()

/// Runs the binary with `arguments`, or, with `launcher`, that program with `launcherArguments`
/// (a shell script that sets limits and runs the binary).
func runCLI(
    _ arguments: [String], in directory: String? = nil, stdin: String? = nil, environment: [String: String] = [:],
    launcher: String? = nil, launcherArguments: [String] = []
) throws -> CLIResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: launcher ?? binary)
    process.arguments = launcher == nil ? arguments : launcherArguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "MAPSEMBLE_API_KEY")
    // The run history and undo files of the tests' runs stay out of the user's state folder.
    env["MAPSEMBLE_STATE_DIR"] = testStateDirectory
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let input = Pipe()
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    // Read before waiting so a large output cannot fill the pipe and stall the child.
    let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
    let stderrData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CLIResult(
        status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
        stderr: String(decoding: stderrData, as: UTF8.self))
}

/// `runCLI` waited for on a thread of its own: an async test waiting on the binary leaves the
/// cooperative pool's few threads to the tests and in-process servers running beside it (a kill
/// test's timing among them).
func runCLIAsync(
    _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:]
) async throws -> CLIResult {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            continuation.resume(with: Result { try runCLI(arguments, in: directory, environment: environment) })
        }.start()
    }
}

/// Runs `body` on a thread of its own and waits for it: a loop that times kills of a child
/// process by polling keeps its pace however busy the cooperative pool is with other tests.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// A listening socket on a free loopback port, for the tests' raw HTTP servers.
func loopbackListener() throws -> (socket: Int32, port: Int) {
    let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var yes: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else {
        close(fd)
        throw ImportError(.remote, "cannot listen on loopback")
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// A raw HTTP server on loopback for tests: a thread accepts connections and hands each to
/// `handle`, until `stop` closes the listener. Subclasses call `start` at the end of their init.
class LoopbackServer: @unchecked Sendable {
    let port: Int
    private let socket: Int32

    var url: String { "http://127.0.0.1:\(port)" }

    init() throws {
        _ = ignoreSIGPIPE
        (socket, port) = try loopbackListener()
    }

    func start() {
        Thread { [self] in
            while true {
                let client = accept(socket, nil, nil)
                guard client >= 0 else { return }
                handle(client)
            }
        }.start()
    }

    func stop() {
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
    }

    /// Answers one connection and closes it.
    func handle(_ client: Int32) { close(client) }
}

/// A summary with its timing masked, for byte comparisons.
func maskDuration(_ summary: String) -> String {
    summary.replacingOccurrences(
        of: #""duration_s": [0-9.e-]+"#, with: "\"duration_s\": 0", options: .regularExpression
    )
    .replacingOccurrences(of: #"  "run_id": "[0-9A-Za-z-]+",\n"#, with: "", options: .regularExpression)
    .replacingOccurrences(of: #"  "tool_version": "[^"]+",\n"#, with: "", options: .regularExpression)
}

// MARK: - Headless Chromium

/// Headless Chromium (Debian's `chromium`), when installed. `scripts/test` installs it, so CI
/// always renders; elsewhere the browser tests are skipped when it is missing.
let chromium: String? = {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
    where FileManager.default.isExecutableFile(atPath: candidate) {
        return candidate
    }
    return nil
}()

/// Runs headless Chromium on a page (with a profile folder of its own, so that tests running
/// side by side do not share one) and returns what it printed on stdout.
@discardableResult
func headless(_ arguments: [String], page: String, in dir: TempDir) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
    let profile = dir.path + "/chromium-profile-\(UUID().uuidString)"
    process.arguments =
        [
            "120", chromium!, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
            "--user-data-dir=\(profile)", "--window-size=1100,900",
        ] + arguments + ["file://" + page]
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

/// Starts `mapsemble-import sandbox` and returns the process and its URL.
func startSandbox(_ arguments: [String]) throws -> (Process, Pipe, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = ["sandbox", "--port", "0"] + arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    var text = ""
    while !text.contains("\ntry:") {
        let chunk = err.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        text += String(decoding: chunk, as: UTF8.self)
    }
    let url = try #require(text.split(separator: " ").first { $0.hasPrefix("http://127.0.0.1:") }).split(
        separator: "\n")[0]
    return (process, out, String(url))
}

/// Great-circle distance in metres between two `(longitude, latitude)` points in degrees.
func greatCircleMetres(_ a: (Double, Double), _ b: (Double, Double)) -> Double {
    let radians = Double.pi / 180
    let dLat = (b.1 - a.1) * radians
    let dLon = (b.0 - a.0) * radians
    let h = sin(dLat / 2) * sin(dLat / 2) + cos(a.1 * radians) * cos(b.1 * radians) * sin(dLon / 2) * sin(dLon / 2)
    return 2 * 6_371_000 * asin(min(1, sqrt(h)))
}
