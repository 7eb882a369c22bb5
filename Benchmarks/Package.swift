// swift-tools-version: 6.1
// Micro-benchmarks of the pipeline's stages, kept apart so the main build and CI do not pay for
// them. Run: cd Benchmarks && swift package benchmark
import PackageDescription

let package = Package(
    name: "mapsemble-import-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "mapsemble-import", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "PipelineStages",
            dependencies: [
                .product(name: "MapsembleImport", package: "mapsemble-import"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/PipelineStages",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
