import Foundation
import FuzzSupport

@testable import MapsembleImport

/// The workbook readers on any bytes: taken for an .xlsx file (ZIP parts, our XML scanner,
/// shared strings, styles, dates) and for an .ods file (content.xml, repeated rows and columns),
/// and the XML scanner alone on them fed in small pieces. (.xls goes through libfreexl, a C
/// library of its own, not fuzzed here.)
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
    if let reader = try? XLSXReader(
        path: path, sheet: nil, hasHeader: true, blockBytes: 4096, name: "fuzz.xlsx", maxRecordBytes: 1 << 16)
    {
        while let block = try? reader.nextBlock() { _ = block.count }
    }
    let sheet = FuzzFile.write(bytes, suffix: ".ods")
    if let reader = try? ODSSheet.reader(
        path: sheet, sheet: nil, hasHeader: true, headerRow: nil, blockBytes: 4096, name: "fuzz.ods",
        maxRecordBytes: 1 << 16)
    {
        while let block = try? reader.nextBlock() { _ = block.count }
    }
}
