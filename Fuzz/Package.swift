// swift-tools-version: 6.0
// libFuzzer harnesses for the parts that read bytes nobody vouches for. Kept apart so the main
// build and CI do not pay for them. Run: scripts/fuzz (builds with -sanitize=fuzzer,address).
import PackageDescription

let harnesses = ["fuzz-csv", "fuzz-sniffer", "fuzz-notation", "fuzz-config", "fuzz-xlsx"]

let package = Package(
    name: "mapsemble-import-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "mapsemble-import", path: "..")],
    targets: [
        .target(name: "FuzzSupport", path: "Sources/FuzzSupport")
    ]
        + harnesses.map { name in
            .executableTarget(
                name: name,
                dependencies: ["FuzzSupport", .product(name: "MapsembleImport", package: "mapsemble-import")],
                path: "Sources/\(name)")
        }
)
