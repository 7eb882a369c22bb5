import Foundation
import FuzzSupport

@testable import MapsembleImport

/// The encoding sniffer and the transcoding line source: whatever encoding the bytes are taken
/// for, every line handed out must be valid UTF-8.
@main struct Harness {
    static func main() { runFuzzer(fuzz) }
}

func fuzz(_ bytes: UnsafeRawBufferPointer) {
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
}
