import Foundation

/// libFuzzer's driver: SwiftPM gives an executable its own `main`, so each harness's `@main` hands
/// the command line to libFuzzer with the function to call on every input.
@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// The harness's function, for the C callback (which cannot capture it).
nonisolated(unsafe) private var harness: ((UnsafeRawBufferPointer) -> Void)?

/// Runs libFuzzer, handing `body` every input it makes.
public func runFuzzer(_ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
    harness = body
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(
        runDriver(&argc, &argv) { data, size in
            harness?(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        })
}

/// One scratch file per process, in memory where the machine has /dev/shm.
public enum FuzzFile {
    public static func write(_ bytes: UnsafeRawBufferPointer, suffix: String = "") -> String {
        let folder = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let path = "\(folder)/mapsemble-fuzz-\(getpid())\(suffix)"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if let base = bytes.baseAddress, bytes.count > 0 { _ = Foundation.write(fd, base, bytes.count) }
        close(fd)
        return path
    }
}
