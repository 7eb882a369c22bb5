import Foundation
import FuzzSupport

@testable import MapsembleImport

/// The workbook reader (ZIPFoundation, our XML scanner, shared strings, styles, dates) on any
/// bytes taken for an .xlsx file, and the XML scanner alone on them fed in small pieces.
@main struct Harness {
    static func main() { runFuzzer(fuzzOne) }
}

func fuzzOne(_ pointer: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data = pointer else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    var scanner = XMLScanner()
    var offset = 0
    while offset < size {
        let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<min(size, offset + 7)])
        if (try? scanner.feed(piece) { _ in }) == nil { break }
        offset += 7
    }
    let path = FuzzFile.write(bytes, suffix: ".xlsx")
    guard
        let reader = try? XLSXReader(
            path: path, sheet: nil, hasHeader: true, blockBytes: 4096, name: "fuzz.xlsx", maxRecordBytes: 1 << 16)
    else { return 0 }
    while let block = try? reader.nextBlock() {
        _ = block.count
    }
    return 0
}
