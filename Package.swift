// swift-tools-version: 6.0
import PackageDescription

// MemberImportVisibility is left off: glibc's headers are not modular, so `struct stat` is declared
// by whichever of Glibc, CoreFoundation or CDispatch the compiler loads first, and with it on, a
// use of `stat` needed that module imported, which changed from one build to the next.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "mapsemble-import",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mapsemble-import", targets: ["mapsemble-import"]),
        .library(name: "MapsembleImport", targets: ["MapsembleImport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.1.4"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        /// libcsv (Debian `libcsv-dev`): the CSV tokenizer under the reader.
        .systemLibrary(name: "CLibCSV", path: "Sources/CLibCSV", providers: [.apt(["libcsv-dev"])]),
        /// libcurl (Debian `libcurl4-openssl-dev`): the HTTP transport of the uploader.
        .systemLibrary(
            name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        /// zlib (Debian `zlib1g-dev`): `.gz` inputs read as a stream.
        .systemLibrary(name: "CGzip", path: "Sources/CGzip", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        /// SQLite (Debian `libsqlite3-dev`): the state kept between runs (the geocoding cache).
        .systemLibrary(
            name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        /// PROJ (Debian `libproj-dev`): coordinates in other reference systems (`coordinates.crs`).
        .systemLibrary(name: "CPROJ", path: "Sources/CPROJ", pkgConfig: "proj", providers: [.apt(["libproj-dev"])]),
        /// GEOS (Debian `libgeos-dev`, its C API): lines and polygons read, checked and repaired.
        .systemLibrary(name: "CGEOS", path: "Sources/CGEOS", pkgConfig: "geos", providers: [.apt(["libgeos-dev"])]),
        /// FreeXL (Debian `libfreexl-dev`, GDAL's reader for it): legacy Excel `.xls` workbooks.
        .systemLibrary(
            name: "CFreeXL", path: "Sources/CFreeXL", pkgConfig: "freexl", providers: [.apt(["libfreexl-dev"])]),
        /// JSON from bytes to values and back without Foundation: the sandbox reads every request
        /// body with it, the uploader every answer.
        .target(name: "MapsembleJSON", swiftSettings: swiftSettings),
        /// Maps drawn offline: Web Mercator, point samples, the world's outline, and the
        /// self-contained HTML page of the import report and the sandbox viewer.
        .target(name: "MapsembleMapView", swiftSettings: swiftSettings),
        .target(
            name: "MapsembleImport",
            dependencies: [
                "CLibCSV",
                "CCurl",
                "CGzip",
                "CSQLite",
                "CPROJ",
                "CGEOS",
                "CFreeXL",
                "MapsembleJSON",
                "MapsembleMapView",
                "MapsembleBuildInfo",
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        /// The git commit built (`ToolVersion.commit`), written by the `BuildCommit` plugin.
        .target(name: "MapsembleBuildInfo", swiftSettings: swiftSettings, plugins: ["BuildCommit"]),
        .plugin(name: "BuildCommit", capability: .buildTool(), dependencies: ["BuildCommitTool"]),
        .executableTarget(name: "BuildCommitTool", path: "Sources/BuildCommitTool"),
        /// The Mapsemble-compatible local server: for tests, and for users to try a pipeline.
        .target(
            name: "MapsembleSandbox",
            dependencies: [
                "MapsembleJSON",
                "MapsembleMapView",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "mapsemble-import",
            dependencies: [
                "MapsembleImport",
                "MapsembleSandbox",
                "MapsembleJSON",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "MapsembleImportTests",
            dependencies: [
                "MapsembleImport", "MapsembleSandbox", "MapsembleMapView", "MapsembleJSON", "CGzip", "CGEOS",
                "mapsemble-import",
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
    ],
    swiftLanguageModes: [.v6]
)
