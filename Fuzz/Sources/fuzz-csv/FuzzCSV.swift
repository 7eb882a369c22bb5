import Foundation
import FuzzSupport

@testable import MapsembleImport

/// The CSV reader (libcsv), the validator and the transformer on raw bytes. The first byte picks
/// the delimiter and whether `"` quotes; the rest is the file. Errors are expected; a crash, a
/// hang or a sanitizer report is a bug.
@main struct Harness {
    static func main() { runFuzzer(fuzz) }
}

func fuzz(_ bytes: UnsafeRawBufferPointer) {
    guard let first = bytes.first else { return }
    let path = FuzzFile.write(UnsafeRawBufferPointer(rebasing: bytes.dropFirst()))
    var options = ReaderOptions()
    options.delimiter = [UInt8(ascii: ","), UInt8(ascii: ";"), 0x09, UInt8(ascii: "|")][Int(first & 3)]
    options.quote = first & 4 == 0 ? UInt8(ascii: "\"") : nil
    options.blockBytes = 4096
    options.maxRecordBytes = 1 << 16
    options.maxColumns = 64
    guard let reader = try? CSVReader(path: path, options: options) else { return }
    let header = reader.header
    let columns = header.count
    let validator = Validator(
        longitudeColumn: columns > 2 ? 2 : 0, latitudeColumn: columns > 1 ? 1 : 0,
        pointColumn: columns == 1 ? 0 : nil, header: header, swapped: first & 8 == 0 ? .reject : .fix,
        bounds: first & 16 == 0 ? nil : [5, 47, 15, 55], alternateSeparator: UInt8(ascii: ","))
    let mapping = PropertyMapping(
        label: [.column(0), .literal(" / "), .column(columns - 1)], remoteID: (0, "remote_id"),
        fields: header.indices.map { PropertyMapping.Field(slug: "f\($0)", column: $0, isNumber: $0 % 2 == 1) },
        header: header)
    let transformer = Transformer(mapping: mapping, keepRows: true)
    while let block = try? reader.nextBlock() {
        _ = transformer.transform(validator.validate(block))
    }
}
