import Foundation
import FuzzSupport

@testable import MapsembleImport

/// The encoding sniffer and the transcoding line source: whatever encoding the bytes are taken
/// for, every line handed out must be valid UTF-8 but for the markers of invalid input.
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
            // Input invalid in its encoding is marked with a byte that is never UTF-8 (its rows
            // become invalid_encoding); everything else must be valid UTF-8.
            let unmarked = line.filter { $0 != SourceEncoding.invalidMarker }
            if encoding != .utf8, String(validating: unmarked, as: UTF8.self) == nil {
                fatalError("line transcoded from \(encoding) is not UTF-8 apart from its invalid-input markers")
            }
        }
    }
}
