import Foundation
import FuzzSupport

@testable import MapsembleImport

/// The workbook reader (ZIPFoundation, our XML scanner, shared strings, styles, dates) on any
/// bytes taken for an .xlsx file, and the XML scanner alone on them fed in small pieces.
@main struct Harness {
    static func main() { runFuzzer(fuzz) }
}

func fuzz(_ bytes: UnsafeRawBufferPointer) {
    var scanner = XMLScanner()
    var offset = 0
    while offset < bytes.count {
        let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<min(bytes.count, offset + 7)])
        if (try? scanner.feed(piece) { _ in }) == nil { break }
        offset += 7
    }
    let path = FuzzFile.write(bytes, suffix: ".xlsx")
    guard
        let reader = try? XLSXReader(
            path: path, sheet: nil, hasHeader: true, blockBytes: 4096, name: "fuzz.xlsx", maxRecordBytes: 1 << 16)
    else { return }
    while let block = try? reader.nextBlock() {
        _ = block.count
    }
}
