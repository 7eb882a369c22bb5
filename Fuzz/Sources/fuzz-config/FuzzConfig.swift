import FuzzSupport

@testable import MapsembleImport

/// The pipeline.yml loader (Yams, then our checks) on any text, with `${VAR}` expansion.
@main struct Harness {
    static func main() { runFuzzer(fuzzOne) }
}

func fuzzOne(_ pointer: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data = pointer else { return 0 }
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? ConfigLoader.parse(yaml: text, file: "fuzz.yml", environment: ["HOME": "/home/fuzz", "KEY": "k"])
    return 0
}
