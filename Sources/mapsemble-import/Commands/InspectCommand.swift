import ArgumentParser
import Foundation
import MapsembleImport

/// `mapsemble-import inspect FILE`: what the file holds and a starter pipeline.yml for it.
struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract:
            "Sniff a CSV file or a workbook: encoding, delimiter or sheets, header, rows, column types, coordinate columns.",
        discussion: """
            Reads a sample of rows (--sample-rows) and counts the file's lines without parsing them;
            --full parses every row. --emit-config prints a commented pipeline.yml that imports the file.
            """)

    @Argument(
        help:
            "The CSV file, workbook (.xlsx, .ods, .xls), .zip or URL; or a pipeline.yml, whose source is read with its settings (headers, CA, member, sheet)."
    )
    var file: String

    @Flag(help: "Print a starter pipeline.yml for the file instead of the profile.")
    var emitConfig = false

    @Flag(help: "Print the profile as JSON.")
    var json = false

    @Flag(help: "Parse every row (exact row count, every row profiled) instead of a sample.")
    var full = false

    @Option(help: "Rows parsed for the profile on the fast path.")
    var sampleRows = 1000

    @Option(help: "The delimiter, or auto.")
    var delimiter = "auto"

    @Option(help: "For a workbook: the sheet to profile, by name or 1-based position (default: the first).")
    var sheet: String?

    @Flag(
        help:
            "Also write NAME.inspect.html: a map of where the coordinate columns put the rows read, and where they would land swapped when they look swapped."
    )
    var html = false

    @Option(name: .customLong("html-file"), help: "Where --html writes the page (default: NAME.inspect.html here).")
    var htmlFile: String?

    @Option(help: "For a .zip holding several files: the one to profile.")
    var member: String?

    func run() async throws {
        var options = InspectOptions()
        options.full = full
        options.sampleRows = max(1, sampleRows)
        options.delimiter = delimiter == "tab" ? "\t" : delimiter
        options.sheet = sheet
        let writeHTML = html || htmlFile != nil
        if writeHTML { options.keepRecords = InspectReport.drawnRecords }
        let report: InspectReport
        // A pipeline: its source, read with its settings (headers, CA, member, sheet).
        var input = file
        var member = member
        var headers: [String: String] = [:]
        var caFile: String?
        do {
            let lower = file.lowercased()
            if lower.hasSuffix(".yml") || lower.hasSuffix(".yaml") {
                if emitConfig {
                    throw ImportError(
                        .usage, "--emit-config writes a pipeline for a file or URL; this is a pipeline already",
                        file: file)
                }
                let config = try ConfigLoader.load(path: file, environment: ProcessInfo.processInfo.environment)
                guard let path = config.source.path else {
                    throw ImportError(.config, "has no source.path to inspect", file: file)
                }
                input = path
                member = member ?? config.source.member
                headers = config.source.headers
                caFile = config.source.caFile
                options.sheet = options.sheet ?? config.source.sheet
            }
            // A URL is downloaded, a .zip unpacked, to a temporary copy removed afterwards.
            let copy = try await LocalCopy.of(input, member: member, headers: headers, caFile: caFile)
            if copy != nil {
                options.displayName = RemoteSource.isURL(input) ? RemoteSource.displayName(input) : input
            }
            report = try withExtendedLifetime(copy) {
                try Inspector.inspect(path: copy?.path ?? input, options: options)
            }
        } catch let error as ImportError {
            Console.error(error.description)
            throw ExitCode(2)
        }
        if writeHTML {
            let page = htmlFile ?? Pipeline.reportName(of: input) + ".inspect.html"
            do {
                try Data(report.html.utf8).write(to: URL(fileURLWithPath: page))
            } catch {
                Console.error("cannot write \(page): \(error.localizedDescription)")
                throw ExitCode(2)
            }
            Console.write("mapsemble-import: wrote \(page)\n")
        }
        if emitConfig {
            // Paths in pipeline.yml are relative to the file's own folder, which is not known here.
            let absolute =
                input == "-" || input.hasPrefix("/") ? input : FileManager.default.currentDirectoryPath + "/" + input
            var text = report.starterPipeline(
                path: RemoteSource.isURL(input) ? input : URL(fileURLWithPath: absolute).standardized.path)
            if let member, let line = text.range(of: "\nsource:\n") {
                text.insert(contentsOf: "  member: \(InspectReport.quoted(member))\n", at: line.upperBound)
            }
            print(text, terminator: "")
        } else if json {
            printJSON(report)
        } else {
            printText(report)
        }
    }

    private func printText(_ report: InspectReport) {
        let delimiterName = report.delimiter == 0x09 ? "tab" : "\"\(String(UnicodeScalar(report.delimiter)))\""
        print("file       \(report.file)\(report.sizeBytes.map { " (\(Self.size($0)))" } ?? "")")
        print("encoding   \(report.encoding)")
        if let sheet = report.sheet {
            for (index, summary) in report.sheets.enumerated() {
                let marker = summary.name == sheet ? "  ← profiled" : ""
                print(
                    "sheet \(index + 1)    \"\(summary.name)\" \(summary.dimension ?? "(no used range declared)")\(summary.hidden ? " (hidden)" : "")\(marker)"
                )
            }
        } else {
            print(
                "delimiter  \(delimiterName)\(report.decimalComma ? ", decimal comma" : "")\(report.quoteNone ? ", \" is data (quote: none)" : "")"
            )
        }
        print("header     \(report.hasHeader ? "yes" : "no (columns are named 1, 2, 3, ...)")")
        let about = report.rowsMethod.hasPrefix("estimated") ? "about " : ""
        print("rows       \(about)\(report.rows) (\(report.rowsMethod))")
        print(
            "sampled    \(report.sampledRows) rows\(report.malformedRows > 0 ? ", \(report.malformedRows) malformed" : "")"
        )
        print("")
        let nameWidth = min(32, max(6, report.columns.map(\.name.count).max() ?? 6))
        print(
            "COLUMN".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  TYPE      NULLS  UNIQUE  EXAMPLES")
        for (index, column) in report.columns.enumerated() {
            var role = ""
            if index == report.coordinates?.longitude { role = "  ← longitude" }
            if index == report.coordinates?.latitude { role = "  ← latitude" }
            if index == report.coordinates?.point { role = "  ← both coordinates" }
            if index == report.coordinates?.geometry { role = "  ← geometries" }
            if index == report.label { role = "  ← label" }
            if index == report.remoteID { role = "  ← remote id" }
            if role.isEmpty, let address = report.address, address.indices.contains(index) { role = "  ← address" }
            let type = column.kind.rawValue + (column.leadingZeros ? "*" : "")
            print(
                column.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
                    + type.padding(toLength: 8, withPad: " ", startingAt: 0) + "  "
                    + String(format: "%4.0f%%", column.nullShare * 100) + "  "
                    + (column.unique ? "yes   " : "no    ") + "  "
                    + column.examples.joined(separator: ", ") + role)
        }
        if report.columns.contains(where: \.leadingZeros) {
            print("* integers with leading zeros: kept as text")
        }
        print("")
        if let coordinates = report.coordinates, let geometry = coordinates.geometry {
            print(
                "coordinates: geometries in \"\(report.columns[geometry].name)\" (by values), \(coordinates.notation)")
        } else if let coordinates = report.coordinates, let point = coordinates.point {
            print("coordinates: both in \"\(report.columns[point].name)\" (by values), \(coordinates.notation)")
        } else if let coordinates = report.coordinates {
            let lon = report.columns[coordinates.longitude].name
            let lat = report.columns[coordinates.latitude].name
            print(
                "coordinates: longitude \"\(lon)\", latitude \"\(lat)\" (by \(coordinates.foundBy)), \(coordinates.notation); "
                    + (coordinates.looksSwapped
                        ? "they look SWAPPED"
                        : coordinates.looksProjected
                            ? "projected\(coordinates.systems.first.map { ", likely \($0)" } ?? "")" : "not swapped"))
        }
        for note in report.notes { print("note: \(note)") }
        print("next: mapsemble-import inspect \(file) --emit-config > pipeline.yml")
    }

    private func printJSON(_ report: InspectReport) {
        var object: [String: Any] = [
            "file": report.file, "encoding": report.encoding,
            "delimiter": String(UnicodeScalar(report.delimiter)), "header": report.hasHeader,
            "rows": report.rows, "rows_method": report.rowsMethod, "sampled_rows": report.sampledRows,
            "malformed_rows": report.malformedRows, "decimal": report.decimalComma ? "comma" : "point",
            "quote": report.quoteNone ? "none" : "\"",
            "notes": report.notes,
            "sheets": report.sheets.map { ["name": $0.name, "dimension": $0.dimension ?? "", "hidden": $0.hidden] },
            "columns": report.columns.map { (column) -> [String: Any] in
                var entry: [String: Any] = [
                    "name": column.name, "type": column.kind.rawValue, "null_share": column.nullShare,
                    "unique": column.unique, "examples": column.examples, "leading_zeros": column.leadingZeros,
                ]
                if let minimum = column.minimum { entry["min"] = minimum }
                if let maximum = column.maximum { entry["max"] = maximum }
                return entry
            },
        ]
        object["size_bytes"] = report.sizeBytes ?? NSNull()
        object["label"] = report.label.map { report.columns[$0].name } ?? NSNull()
        object["remote_id"] = report.remoteID.map { report.columns[$0].name } ?? NSNull()
        if let coordinates = report.coordinates {
            object["coordinates"] =
                [
                    "longitude": report.columns[coordinates.longitude].name,
                    "latitude": report.columns[coordinates.latitude].name,
                    "point": coordinates.point.map { report.columns[$0].name } ?? NSNull(),
                    "found_by": coordinates.foundBy, "notation": coordinates.notation,
                    "looks_swapped": coordinates.looksSwapped, "looks_projected": coordinates.looksProjected,
                    "evidence": coordinates.evidence ?? NSNull(),
                ] as [String: Any]
        } else {
            object["coordinates"] = NSNull()
        }
        object["address"] =
            report.address.map { address in
                Dictionary(uniqueKeysWithValues: address.settings(report.columns).map { ($0.key, $0.value) })
            } ?? NSNull()
        let data =
            (try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        print(String(decoding: data, as: UTF8.self))
    }

    private static func size(_ bytes: Int) -> String {
        bytes >= 1 << 20
            ? String(format: "%.1f MB", Double(bytes) / 1e6)
            : bytes >= 1024 ? String(format: "%.1f KB", Double(bytes) / 1e3) : "\(bytes) bytes"
    }
}
