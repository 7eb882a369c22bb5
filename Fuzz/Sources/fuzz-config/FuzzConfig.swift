import FuzzSupport

@testable import MapsembleImport

/// The pipeline.yml loader (Yams, then our checks) on any text, with `${VAR}` expansion.
@main struct Harness {
    static func main() { runFuzzer(fuzz) }
}

func fuzz(_ bytes: UnsafeRawBufferPointer) {
    let text = String(decoding: bytes, as: UTF8.self)
    _ = try? ConfigLoader.parse(yaml: text, file: "fuzz.yml", environment: ["HOME": "/home/fuzz", "KEY": "k"])
}
