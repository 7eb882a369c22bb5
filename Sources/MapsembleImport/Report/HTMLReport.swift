import Foundation
import MapsembleMapView
import NIOConcurrencyHelpers

/// Gathers, while a run goes, what `NAME.report.html` shows: a uniform sample of the rows that
/// passed (with their points), a sample per reject code of the rejected rows that have a point
/// (for `coordinates_swapped`, also where they would land the other way round), and the first
/// rejected rows of each code for the table. Memory is bounded whatever the file's size: a few
/// hundred thousand points at most.
final class ReportCollector: Sendable {
    /// Points of the rows that passed, at most.
    static let passedSample = 30_000
    /// Lines and polygons drawn, at most: their outlines are the costly part of a page.
    static let shapeSample = 2_000
    /// Points per reject code, at most.
    static let rejectedSample = 2_000
    /// Rows per reject code in the table.
    static let tableRows = 10

    struct State {
        var passed = PointReservoir(capacity: ReportCollector.passedSample)
        /// Lines and polygons that passed, a sample of their own (each carries its outline).
        var shapes = PointReservoir(capacity: ReportCollector.shapeSample)
        /// Rows placed by the geocoder, by confidence band (`ReportCollector.bands`).
        var geocoded = ReportCollector.bands.map { _ in PointReservoir(capacity: ReportCollector.rejectedSample) }
        var geocodedByBand = [Int](repeating: 0, count: ReportCollector.bands.count)
        var rejected: [RejectCode: PointReservoir] = [:]
        var firstRejected: [RejectCode: [Rejection]] = [:]
    }

    private let state = NIOLockedValueBox(State())
    private let validator: Validator

    init(validator: Validator) {
        self.validator = validator
    }

    /// The rows of a block that passed the validator (in the validator's task): their points, and
    /// for a geometry column their lines and polygons, each a sample of its own.
    func observe(_ block: ValidatedBlock) {
        guard !block.accepted.isEmpty else { return }
        state.withLockedValue { state in
            Self.offer(block, to: &state.passed) { text, line in
                Self.point(text).map { MapPoint(longitude: $0.0, latitude: $0.1, line: line) }
            }
            guard block.geometries else { return }
            Self.offer(block, to: &state.shapes) { text, line in
                guard let outline = Self.outline(text), let point = Self.point(text) else { return nil }
                return MapPoint(longitude: point.0, latitude: point.1, line: line, outline: outline)
            }
        }
    }

    /// Offers each accepted row of `block` to `sample`; `point` makes the point (from the row's
    /// coordinates text and its line) only for the rows the sample keeps.
    private static func offer(
        _ block: ValidatedBlock, to sample: inout PointReservoir, _ point: (ArraySlice<UInt8>, Int) -> MapPoint?
    ) {
        var index = 0
        let count = block.accepted.count
        while index < count {
            let skip = min(sample.passesBeforeNext, count - index)
            if skip > 0 {
                sample.pass(skip)
                index += skip
                continue
            }
            let start = index == 0 ? 0 : block.coordinateEnds[index - 1]
            if let made = point(
                block.coordinates[start..<block.coordinateEnds[index]], block.records.lines[block.accepted[index]])
            {
                sample.keep(made)
            } else {
                sample.pass()
            }
            index += 1
        }
    }

    /// Confidence bands of geocoded rows: the lowest confidence of each, its label and colour.
    static let bands: [(from: Double, label: String, color: String)] = [
        (0.8, "geocoded, confidence 0.8 or more", "#16a34a"), (0.5, "geocoded, confidence 0.5 to 0.8", "#65a30d"),
        (0, "geocoded, confidence below 0.5", "#a16207"),
    ]

    /// The rows of a block the geocoder placed (in the geocoder's task): their points, by the
    /// band of their confidence.
    func observeGeocoded(_ block: ValidatedBlock) {
        guard !block.geocodedConfidence.isEmpty else { return }
        state.withLockedValue { state in
            for (position, record) in block.accepted.enumerated() {
                let confidence = block.geocodedConfidence[position]
                guard !confidence.isNaN else { continue }
                let band = Self.bands.firstIndex { confidence >= $0.from } ?? Self.bands.count - 1
                state.geocodedByBand[band] += 1
                let start = position == 0 ? 0 : block.coordinateEnds[position - 1]
                state.geocoded[band].offer {
                    Self.point(block.coordinates[start..<block.coordinateEnds[position]]).map {
                        MapPoint(longitude: $0.0, latitude: $0.1, line: block.records.lines[record])
                    }
                }
            }
        }
    }

    /// A rejected row, from any stage: it leaves the sample of passed rows if it was in it.
    func observe(_ rejection: Rejection) {
        state.withLockedValue { state in
            if !Self.beforeSampling.contains(rejection.code) {
                state.passed.remove(line: rejection.line)
                state.shapes.remove(line: rejection.line)
                for band in state.geocoded.indices { state.geocoded[band].remove(line: rejection.line) }
            }
            if state.firstRejected[rejection.code, default: []].count < Self.tableRows {
                state.firstRejected[rejection.code, default: []].append(rejection)
            }
            var sample = state.rejected[rejection.code] ?? PointReservoir(capacity: Self.rejectedSample)
            sample.offer {
                guard let stated = validator.statedPoint(rejection.fields) else { return nil }
                var point = MapPoint(longitude: stated.longitude, latitude: stated.latitude, line: rejection.line)
                if rejection.code == .coordinatesSwapped && abs(stated.longitude) <= 90
                    && abs(stated.latitude) <= 180
                {
                    point.swapped = (stated.latitude, stated.longitude)
                }
                let onEarth = abs(stated.longitude) <= 180 && abs(stated.latitude) <= 90
                return onEarth || point.swapped != nil ? point : nil
            }
            state.rejected[rejection.code] = sample
        }
    }

    var snapshot: State { state.withLockedValue { $0 } }

    /// Codes given to rows before the validator passed them: such rows never enter the sample.
    static let beforeSampling: Set<RejectCode> = [
        .malformedRow, .invalidCell, .missingCoordinate, .invalidNumber, .nonFiniteNumber, .latitudeOutOfRange,
        .longitudeOutOfRange, .coordinatesSwapped, .outsideBounds, .nullIsland,
    ]

    /// `lon,lat` JSON text to numbers.
    /// A line's or polygon's paths from its GeoJSON (or any notation a geometry column takes),
    /// for drawing; nil for points.
    static func outline(_ text: ArraySlice<UInt8>) -> MapOutline? {
        var shape = Shape()
        let read = text.withUnsafeBytes { geometry in
            do throws(ShapeProblem) {
                try ShapeText.read(geometry, into: &shape)
                return true
            } catch { return false }
        }
        guard read else { return nil }
        guard !shape.kind.isPuntal else { return nil }
        let paths = shape.pathEnds.indices.map {
            Array(shape.xy[(2 * shape.pathRange($0).lowerBound)..<(2 * shape.pathRange($0).upperBound)])
        }
        return MapOutline(paths: paths, filled: shape.kind.isPolygonal)
    }

    static func point(_ text: ArraySlice<UInt8>) -> (Double, Double)? {
        if text.first == UInt8(ascii: "{") {
            // A whole geometry (a geometry column): its first position stands for it.
            guard let close = text.firstIndex(of: UInt8(ascii: "]")),
                let open = text[..<close].lastIndex(of: UInt8(ascii: "["))
            else { return nil }
            return point(text[(open + 1)..<close])
        }
        guard let comma = text.firstIndex(of: UInt8(ascii: ",")) else { return nil }
        return text.withUnsafeBytes { bytes in
            let split = comma - text.startIndex
            guard case .success(let longitude) = NumberText.parse(UnsafeRawBufferPointer(rebasing: bytes[..<split])),
                case .success(let latitude) = NumberText.parse(UnsafeRawBufferPointer(rebasing: bytes[(split + 1)...]))
            else { return nil }
            return (longitude.value, latitude.value)
        }
    }
}

/// `NAME.report.html`: the run on one page (see `MapPage`).
struct HTMLReport {
    var summary: RunSummary
    var collected: ReportCollector.State
    /// A dry run: rows "would be imported", and the target is not shown.
    var dryRun: Bool
    /// The API and map.
    var target: String
    var mode: String
    var notes: [String]
    var mapping: PropertyMapping
    var header: [String]
    var rejectedFile: String
    var batchSize: Int
    var concurrency: Int

    static let importedColor = "#2563eb"

    /// A colour per reject code; codes without one share grey.
    static func color(_ code: RejectCode) -> String {
        switch code {
        case .coordinatesSwapped: "#dc2626"
        case .outsideBounds: "#ea580c"
        case .nullIsland: "#9333ea"
        case .latitudeOutOfRange, .longitudeOutOfRange: "#be123c"
        case .duplicateRemoteId: "#ca8a04"
        case .missingRemoteId: "#0d9488"
        case .serverRejected: "#db2777"
        case .planLimit: "#7c3aed"
        case .invalidFieldValue: "#0891b2"
        case .addressNotFound: "#c2410c"
        case .geocodeLowConfidence: "#d97706"
        case .geocodeFailed: "#b91c1c"
        case .missingAddress: "#78716c"
        default: "#6b7280"
        }
    }

    var importedLabel: String { dryRun ? "would be imported" : "imported" }

    /// What the run went to.
    var destination: String { dryRun ? "dry run" : target }

    var picture: MapPicture {
        let passedLabel =
            summary.status == .aborted
            ? "rows that passed (not all sent)" : importedLabel
        var layers = [
            MapLayer(
                key: "imported", label: passedLabel, color: Self.importedColor,
                total: summary.imported, points: collected.passed.points, density: true,
                shapes: collected.shapes.points.compactMap(\.outline))
        ]
        for (band, sample) in collected.geocoded.enumerated() where !sample.points.isEmpty {
            let (_, label, color) = ReportCollector.bands[band]
            layers.append(
                MapLayer(
                    key: "geocoded-\(band)", label: label, color: color, total: collected.geocodedByBand[band],
                    points: sample.points))
        }
        for (code, sample) in collected.rejected.sorted(by: { $0.key.rawValue < $1.key.rawValue })
        where !sample.points.isEmpty {
            layers.append(
                MapLayer(
                    key: code.rawValue, label: code.rawValue.replacingOccurrences(of: "_", with: " "),
                    color: Self.color(code), total: summary.rejectedByCode[code] ?? sample.points.count,
                    points: sample.points))
        }
        let shown = collected.passed.points.count
        var caption = "Web Mercator, zoomed to the points."
        if shown < summary.imported {
            caption +=
                " The \(MapPage.grouped(summary.imported)) rows that passed are shown as a uniform sample of \(MapPage.grouped(shown)), binned to pixels (darker: more rows)."
        }
        let unplaced =
            summary.rejected
            - layers.dropFirst().filter { !$0.key.hasPrefix("geocoded") }.reduce(0) { $0 + $1.points.count }
        if unplaced > 0 {
            caption += " \(MapPage.grouped(unplaced)) rejected rows have no point to draw or are not in the sample."
        }
        return MapPicture(layers: layers, caption: caption)
    }

    var html: String {
        let status: (String, String) =
            switch summary.status {
            case .completed: ("completed", "ok")
            case .completedWithRejects: ("completed with rejects", "warn")
            case .aborted: ("aborted", "bad")
            case .unchanged: ("unchanged", "ok")
            }
        var header = "<h1>\(MapPage.escape(summary.input))"
        header += "<span class=\"pill \(status.1)\">\(status.0)</span></h1>"
        header += "<p class=\"sub\">\(MapPage.escape(destination)) · mode \(MapPage.escape(mode))"
        header += " · \(String(format: "%.2f", summary.durationSeconds)) s</p>"
        header += "<div class=\"stats\">"
        let stats: [(String, Int)] = [
            ("rows read", summary.rowsRead), (importedLabel, summary.imported),
            ("rejected", summary.rejected), ("not sent", summary.notSent),
        ]
        for (label, value) in stats {
            header += "<div class=\"stat\"><b>\(MapPage.grouped(value))</b><span>\(label)</span></div>"
        }
        header += "</div>"
        if let reason = summary.abortReason {
            header += "<p class=\"pill bad\">\(MapPage.escape(reason.message))</p>"
        }
        return MapPage.document(
            title: "\(summary.input): import report", header: header, picture: picture, sections: sections)
    }

    private var sections: String {
        var html = "<h2>Rows</h2>"
        var statuses: [(label: String, count: Int, color: String)] = [
            (importedLabel, summary.imported, Self.importedColor),
            ("rejected", summary.rejected, "#dc2626"), ("not sent", summary.notSent, "#9ca3af"),
        ]
        if summary.created + summary.updated + summary.unchanged + summary.resumedRows > 0 {
            statuses += [
                ("  created", summary.created, "#60a5fa"), ("  updated", summary.updated, "#93c5fd"),
                ("  unchanged", summary.unchanged, "#bfdbfe"), ("  resumed", summary.resumedRows, "#dbeafe"),
            ]
        }
        html += MapPage.bars(statuses)
        if !summary.rejectedByCode.isEmpty {
            html += "<h3>Rejected, by code</h3>"
            html += MapPage.bars(
                summary.rejectedByCode.sorted { ($1.value, $0.key.rawValue) < ($0.value, $1.key.rawValue) }.map {
                    ($0.key.rawValue, $0.value, Self.color($0.key))
                })
        }
        html += geocodingSection
        html += "<h2>How the file was read</h2><dl class=\"facts\">"
        html += fact("encoding", summary.encoding)
        for note in notes { html += fact("decided", note) }
        let notations = summary.notations.sorted { $0.value > $1.value }.map {
            "\($0.key.rawValue) \(MapPage.grouped($0.value))"
        }
        if !notations.isEmpty { html += fact("coordinate notations", notations.joined(separator: ", ")) }
        if let label = mapping.label {
            let text = label.map { part -> String in
                switch part {
                case .literal(let text): text
                case .column(let column): "{\(column < header.count ? header[column] : "#\(column)")}"
                }
            }.joined()
            html += fact("label", text)
        }
        if let remote = mapping.remoteID {
            html += fact("remote id", "\(name(remote.column)) → \(remote.slug)")
        }
        for field in mapping.fields {
            html += fact("field \(field.slug)", "\(name(field.column))\(field.isNumber ? " (number)" : "")")
        }
        html += fact("target", destination)
        html += fact(
            "requests", "\(MapPage.grouped(summary.requests)) (batches of \(batchSize), \(concurrency) at a time)")
        html += fact("retries", MapPage.grouped(summary.retries))
        let rate = summary.durationSeconds > 0 ? Double(summary.rowsRead) / summary.durationSeconds : 0
        html += fact("time", String(format: "%.2f s, %@ rows/s", summary.durationSeconds, MapPage.grouped(Int(rate))))
        html += fact(
            "tool",
            ToolVersion.userAgent + (ToolVersion.commit.map { " (commit \($0))" } ?? "")
                + (summary.runID.map { ", run \($0)" } ?? ""))
        html += "</dl>"
        html += rejectedTables
        return html
    }

    /// What geocoding did: rows placed by confidence, the cache and the requests, and the rows it
    /// could not place (by code, linked to their tables).
    private var geocodingSection: String {
        guard let geocoding = summary.geocoding else { return "" }
        var html = "<h2>Geocoding</h2>"
        let placedOnMap = collected.geocodedByBand.reduce(0, +)
        var bars = ReportCollector.bands.indices.map { band in
            (ReportCollector.bands[band].label, collected.geocodedByBand[band], ReportCollector.bands[band].color)
        }
        if geocoding.geocoded > placedOnMap {
            bars.append(("sent for the map to geocode", geocoding.geocoded - placedOnMap, "#0d9488"))
        }
        let failedCodes: [RejectCode] = [.missingAddress, .addressNotFound, .geocodeLowConfidence, .geocodeFailed]
        for code in failedCodes {
            if let count = summary.rejectedByCode[code] { bars.append((code.rawValue, count, Self.color(code))) }
        }
        html += MapPage.bars(bars)
        html += "<dl class=\"facts\">"
        html += fact("geocoded", MapPage.grouped(geocoding.geocoded))
        html += fact("answers from the cache", MapPage.grouped(geocoding.cacheHits))
        html += fact("geocoder requests", MapPage.grouped(geocoding.requests))
        html += "</dl>"
        let failed = failedCodes.filter { collected.firstRejected[$0] != nil }
        if !failed.isEmpty {
            html += "<p class=\"sub\">Rows the geocoder could not place: "
            html += failed.map { code in
                "<a href=\"#code-\(code.rawValue)\">\(code.rawValue) (\(MapPage.grouped(summary.rejectedByCode[code] ?? 0)))</a>"
            }.joined(separator: ", ")
            html += ", listed below with the address asked.</p>"
        }
        return html
    }

    private var rejectedTables: String {
        guard !collected.firstRejected.isEmpty else { return "" }
        var html = "<h2>Rejected rows</h2><p class=\"sub\">The first \(ReportCollector.tableRows) of each code; "
        html += "all of them, with the reason, are in <a href=\"\(MapPage.escape(rejectedFile))\">"
        html += "\(MapPage.escape(rejectedFile))</a>, which can be fixed and imported again.</p>"
        let shownColumns = min(header.count, 12)
        for (code, rows) in collected.firstRejected.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let total = summary.rejectedByCode[code] ?? rows.count
            html += "<h3 id=\"code-\(code.rawValue)\">\(code.rawValue) · \(MapPage.grouped(total))</h3>"
            html += "<div class=\"scroll\"><table><tr><th>line</th><th>column</th><th>why</th>"
            for column in header.prefix(shownColumns) { html += "<th>\(MapPage.escape(column))</th>" }
            if header.count > shownColumns { html += "<th>…</th>" }
            html += "</tr>"
            for row in rows {
                html += "<tr id=\"line-\(row.line)\"><td><a href=\"#line-\(row.line)\">\(row.line)</a></td>"
                html += "<td>\(MapPage.escape(row.column))</td><td class=\"msg\">\(MapPage.escape(row.message))</td>"
                for value in row.fields.prefix(shownColumns) {
                    html += "<td>\(MapPage.escape(String(value.prefix(80))))</td>"
                }
                if header.count > shownColumns { html += "<td>…</td>" }
                html += "</tr>"
            }
            html += "</table></div>"
        }
        return html
    }

    private func name(_ column: Int) -> String {
        column < header.count ? "\"\(header[column])\"" : "column \(column + 1)"
    }

    private func fact(_ term: String, _ value: String) -> String {
        "<dt>\(MapPage.escape(term))</dt><dd>\(MapPage.escape(value))</dd>"
    }
}
