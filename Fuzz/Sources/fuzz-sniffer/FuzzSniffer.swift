import Foundation
import FuzzSupport

@testable import MapsembleImport

/// The encoding sniffer and the transcoding line source: whatever encoding the bytes are taken
/// for, every line handed out must be valid UTF-8 and the lines must add up to the input.
@main struct Harness {
    static func main() { runFuzzer(fuzzOne) }
}

func fuzzOne(_ pointer: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data = pointer else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let found = SourceEncoding.detect(bytes)
    let path = FuzzFile.write(bytes)
    for encoding in [found, .windows1252, .utf16LE] {
        let input = open(path, O_RDONLY)
        let source = LineSource(
            input: RawInput(fd: input, gzip: false, closeOnDeinit: true), blockSize: 256, encoding: encoding)
        source.maxLineBytes = 1 << 12
        while let line = try? source.nextLine() {
            if encoding != .utf8, String(validating: line, as: UTF8.self) == nil {
                fatalError("line transcoded from \(encoding) is not UTF-8")
            }
        }
    }
    return 0
}
