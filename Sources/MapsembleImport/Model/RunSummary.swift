/// What a run did with every row; written as `NAME.summary.json`.
///
/// The one place where the books are balanced: `notSent` is every row read that was neither
/// imported nor rejected, so `rowsRead == imported + rejected + notSent` holds on every path.
public struct RunSummary: Sendable, Equatable {
    public enum Status: String, Sendable {
        case completed
        case completedWithRejects = "completed_with_rejects"
        case aborted
        /// A URL source is as its last completed import saw it: nothing was read or sent.
        case unchanged
    }

    /// The run's id (`RunID`): its row in the run history, and what `history show` and `rollback`
    /// take.
    public var runID: String?
    public var input: String
    /// The input's text encoding, as read (`utf-8`, `windows-1252`, …).
    public var encoding = SourceEncoding.utf8.rawValue
    public var status: Status
    public var rowsRead: Int
    public var imported: Int
    /// Of `imported`: rows an earlier, unfinished run imported (resume journal), not sent again.
    public var resumedRows = 0
    /// Of `imported`: rows a sync or an update found on the map as they are, not sent.
    public var unchanged = 0
    /// The resume journal, when the run stopped early and can be resumed.
    public var journal: String?
    public var created = 0
    public var updated = 0
    public var deleted = 0
    public var rejectedByCode: [RejectCode: Int]
    /// Values of `text` fields longer than the 255 characters the server keeps (imported, cut).
    public var longTexts = 0
    /// Rows whose coordinates were read, per notation they were written in.
    public var notations: [CoordinateNotation: Int] = [:]
    /// With a geometry column: the geometry types imported and what was done to them.
    public var shapes: GeometryCounts?
    public var requests = 0
    public var retries = 0
    public var durationSeconds: Double
    /// Why the run stopped early, when it did.
    public var abortReason: ImportError?
    /// The run was stopped by a signal (exit 130).
    public var interrupted = false
    /// What geocoding did, when the pipeline geocodes.
    public struct Geocoding: Sendable, Equatable {
        /// Rows given a point from their address.
        public var geocoded: Int
        /// Addresses answered from the cache.
        public var cacheHits: Int
        /// Requests sent to the geocoder, retries included.
        public var requests: Int
    }

    public var geocoding: Geocoding?
    /// Rows went somewhere before the run stopped (sent, written to an output, or settled by an
    /// earlier run): an abort is then "aborted part-way" (3), never "nothing sent" (2).
    public var rowsMoved = false

    public var rejected: Int { rejectedByCode.values.reduce(0, +) }
    public var notSent: Int { rowsRead - imported - rejected }

    /// The exit code of spec/cli.md: 0 all imported, 1 some rejected, 3 aborted part-way, 130
    /// interrupted; an abort before any row moved keeps its error's code (2: nothing sent).
    public var exitCode: Int32 {
        if interrupted { return 130 }
        switch status {
        case .completed, .unchanged: return 0
        case .completedWithRejects: return 1
        case .aborted: return rowsMoved ? 3 : abortReason?.exitCode ?? 3
        }
    }

    /// A report that could not be written once rows had moved: the run is `aborted` (its first
    /// problem is kept as the reason).
    mutating func reportFailed(_ error: ImportError) {
        status = .aborted
        if abortReason == nil { abortReason = error }
    }

    /// `geocoded`, `geocode_cache_hits`, `geocode_requests` (with a comma and the next line's
    /// indent), when the pipeline geocodes.
    private var geocodingJSON: String {
        guard let geocoding else { return "" }
        return
            "\"geocoded\": \(geocoding.geocoded),\n  \"geocode_cache_hits\": \(geocoding.cacheHits),\n  \"geocode_requests\": \(geocoding.requests),\n  "
    }

    /// `geometry_types` (with a comma and the next line's indent), with a geometry column.
    private var shapesJSON: String {
        guard let shapes else { return "" }
        let types = shapes.byType.keys.sorted().map { "    \"\($0)\": \(shapes.byType[$0]!)" }
        return "\"geometry_types\": {\(types.isEmpty ? "" : "\n" + types.joined(separator: ",\n") + "\n  ")},\n  "
    }

    private var warningsJSON: String {
        var entries: [(String, Int)] = [("text_over_255_characters", longTexts)]
        if let shapes {
            entries += [
                ("geometry_z_m_dropped", shapes.droppedDimensions), ("geometry_repaired", shapes.repaired),
                ("geometry_rings_reoriented", shapes.reoriented), ("geometry_simplified", shapes.simplified),
            ]
        }
        let lines = entries.filter { $0.1 > 0 }.map { "    \"\($0.0)\": \($0.1)" }
        return lines.isEmpty ? "" : "\n" + lines.joined(separator: ",\n") + "\n  "
    }

    private var notationsJSON: String {
        let entries = notations.keys.sorted().map { "    \"\($0.rawValue)\": \(notations[$0]!)" }
        return entries.isEmpty ? "" : "\n" + entries.joined(separator: ",\n") + "\n  "
    }

    /// The summary as pretty-printed JSON with the keys in the documented order.
    public var json: String {
        let codes = rejectedByCode.keys.sorted()
            .map { "    \"\($0.rawValue)\": \(rejectedByCode[$0]!)" }
            .joined(separator: ",\n")
        var inputJSON: [UInt8] = []
        JSONBytes.appendString(input, to: &inputJSON)
        return """
            {
              \(runID.map { "\"run_id\": \"\($0)\",\n  " } ?? "")"tool_version": "\(ToolVersion.number)",
              "input": \(String(decoding: inputJSON, as: UTF8.self)),
              "encoding": "\(encoding)",
              "status": "\(status.rawValue)",
              "rows_read": \(rowsRead),
              "imported": \(imported),
              "resumed_rows": \(resumedRows),
              "unchanged": \(unchanged),
              "created": \(created),
              "updated": \(updated),
              "deleted": \(deleted),
              "rejected": \(rejected),
              "not_sent": \(notSent),
              "rejected_by_code": {\(codes.isEmpty ? "" : "\n\(codes)\n  ")},
              "coordinate_notations": {\(notationsJSON)},
              \(shapesJSON)"warnings": {\(warningsJSON)},
              \(geocodingJSON)"requests": \(requests),
              "retries": \(retries),
              "duration_s": \(Double((durationSeconds * 1000).rounded()) / 1000)
            }
            """ + "\n"
    }
}
