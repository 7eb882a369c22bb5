import FuzzSupport

@testable import MapsembleImport

/// The number and coordinate notation parsers: decimal with a point or a comma, degrees-minutes-
/// seconds and decimal minutes with hemisphere letters, points in one field (WKT, ISO 6709,
/// "lat, lon"). Any value they return must be finite.
@main struct Harness {
    static func main() { runFuzzer(fuzz) }
}

func fuzz(_ bytes: UnsafeRawBufferPointer) {
    for separator in [UInt8(ascii: "."), UInt8(ascii: ",")] {
        if case .success(let number) = NumberText.parse(bytes, separator: separator), !number.value.isFinite {
            fatalError("NumberText gave \(number.value)")
        }
        if let coordinate = CoordinateText.sexagesimal(bytes, separator: separator), !coordinate.value.isFinite {
            fatalError("sexagesimal gave \(coordinate.value)")
        }
    }
    for digits in [2, 3] {
        if let coordinate = CoordinateText.iso6709(bytes, degreeDigits: digits), !coordinate.value.isFinite {
            fatalError("ISO 6709 gave \(coordinate.value)")
        }
    }
    if let parts = CoordinateText.splitPoint(bytes) {
        _ = CoordinateText.sexagesimal(parts.latitude, separator: UInt8(ascii: "."))
        _ = CoordinateText.sexagesimal(parts.longitude, separator: UInt8(ascii: "."))
    }
    let validator = Validator(longitudeColumn: 0, latitudeColumn: 0, pointColumn: 0, header: ["point"])
    _ = validator.checkPoint(bytes)
}
