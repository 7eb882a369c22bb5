import Foundation
import NIOConcurrencyHelpers
import Prometheus

/// The Prometheus series of spec/cli.md ("Operations"), each labelled with `pipeline` and `map`,
/// kept in a swift-prometheus registry: the `--metrics-file` of a run (merged into the file, see
/// `MetricsFile`) and the `/metrics` of a watcher (`MetricsServer`).
public final class RunMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// Runs by `pipeline`/`map` that were recorded, with when each last succeeded.
    private let lastSuccess = NIOLockedValueBox<[String: Double]>([:])

    /// Buckets of `mapsemble_import_run_duration_seconds`: a second to three hours.
    static let durationBuckets: [Duration] = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 10800].map {
        .seconds($0)
    }

    public init() {}

    /// What a series is called and says.
    private static func descriptor(_ name: String, _ unit: String = "", _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "mapsemble_import", metricName: name, unitName: unit, helpText: help)
    }

    /// A series' labels: `pipeline`, `map`, then `extra`, always in this order.
    static func labels(_ end: RunEnd, _ extra: [(String, String)] = []) -> [(String, String)] {
        [("pipeline", pipelineName(end)), ("map", end.map ?? "")] + extra
    }

    /// The `pipeline` label: the pipeline file's name without `.yml` (its folder's name for a
    /// `pipeline.yml`), else the input's report name.
    public static func pipelineName(_ end: RunEnd) -> String {
        if let pipeline = end.pipeline {
            var name = (pipeline as NSString).lastPathComponent
            for suffix in [".yml", ".yaml"] where name.hasSuffix(suffix) { name.removeLast(suffix.count) }
            // `stores/pipeline.yml` is the stores pipeline.
            let folder = ((pipeline as NSString).deletingLastPathComponent as NSString).lastPathComponent
            if name == "pipeline", !folder.isEmpty, folder != ".", folder != "/" { return folder }
            return name
        }
        return Pipeline.reportName(of: end.input)
    }

    /// Counts a run that ended. `totals` seeds each counter with what it counted before (a metrics
    /// file's earlier runs); `previousSuccess` is the last success before this run.
    public func record(
        _ end: RunEnd, at time: Double = Date().timeIntervalSince1970, totals: [String: Double] = [:],
        previousSuccess: Double? = nil, histogram: Bool = true
    ) {
        func counter(_ name: String, _ help: String, _ extra: [(String, String)], _ amount: Int) {
            let labels = Self.labels(end, extra)
            let counter = registry.makeCounter(descriptor: Self.descriptor(name, "total", help), labels: labels)
            let key = MetricsFile.seriesKey("mapsemble_import_\(name)_total", labels)
            counter.increment(by: Int64(totals[key] ?? 0) + Int64(amount))
        }
        func gauge(_ name: String, _ unit: String, _ help: String, _ value: Double) {
            registry.makeGauge(descriptor: Self.descriptor(name, unit, help), labels: Self.labels(end)).set(value)
        }
        let summary = end.summary
        counter("runs", "Runs ended, by status.", [("status", end.status)], 1)
        for (outcome, count) in [
            ("imported", summary?.imported), ("rejected", summary?.rejected), ("not_sent", summary?.notSent),
        ] {
            counter("rows", "Rows read, by what became of them.", [("outcome", outcome)], count ?? 0)
        }
        for (change, count) in [
            ("created", summary?.created), ("updated", summary?.updated), ("deleted", summary?.deleted),
            ("unchanged", summary?.unchanged),
        ] {
            counter("features", "The map's features the runs changed, by change.", [("change", change)], count ?? 0)
        }
        counter("requests", "Requests to the Mapsemble API.", [], summary?.requests ?? 0)
        counter(
            "retries", "Requests tried again (429, 5xx, time-outs, dropped connections).", [], summary?.retries ?? 0)
        counter("geocoder_requests", "Requests to the geocoder.", [], summary?.geocoding?.requests ?? 0)
        let duration = summary?.durationSeconds ?? 0
        gauge("duration", "seconds", "How long the last run took.", duration)
        // A file holds one run's registry at a time: only a watcher's own registry has a history
        // worth a histogram.
        if histogram {
            registry.makeDurationHistogram(
                descriptor: Self.descriptor("run_duration", "seconds", "How long runs took."), labels: Self.labels(end),
                buckets: Self.durationBuckets
            ).record(.milliseconds(Int64(duration * 1000)))
        }
        gauge("last_run_timestamp", "seconds", "When the last run ended (Unix time).", time)
        gauge("last_exit_code", "", "The last run's exit code.", Double(end.exitCode))
        let key = MetricsFile.seriesKey("", Self.labels(end))
        // A success is a run that completed (exit 0 or 1).
        let success = lastSuccess.withLockedValue { seen -> Double? in
            if end.exitCode <= 1 {
                seen[key] = time
            } else if seen[key] == nil, let previousSuccess {
                seen[key] = previousSuccess
            }
            return seen[key]
        }
        if let success {
            gauge(
                "last_success_timestamp", "seconds",
                "When the last run that completed (exit 0 or 1) ended (Unix time).",
                success)
        }
    }

    /// The registry's series as Prometheus text.
    public var text: String { registry.emitToString() }
}

/// `--metrics-file PATH`: the Prometheus text file node_exporter's textfile collector reads. Each
/// run replaces the file atomically (a temporary file renamed over it) under a lock, keeping the
/// series of the other pipelines written there; this pipeline's counters go on from the values
/// the file held.
public enum MetricsFile {
    /// One sample line.
    struct Sample {
        var name: String
        var labels: [(String, String)]
        var value: Double
        var line: String
    }

    /// A metric family as written: its `# HELP` and `# TYPE` lines and its samples.
    struct Family {
        var name: String
        var comments: [String] = []
        var samples: [Sample] = []
    }

    /// Names a series: its metric name and labels (in their order).
    static func seriesKey(_ name: String, _ labels: [(String, String)]) -> String {
        name + "{" + labels.map { "\($0.0)=\($0.1)" }.joined(separator: "\u{1F}") + "}"
    }

    /// Records `end` in the file at `path`.
    public static func update(_ path: String, with end: RunEnd) throws {
        let lock = open(path + ".lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard lock >= 0 else { throw ImportError.system(.output, "cannot lock the metrics file", file: path) }
        defer { close(lock) }
        guard flock(lock, LOCK_EX) == 0 else {
            throw ImportError.system(.output, "cannot lock the metrics file", file: path)
        }
        defer { flock(lock, LOCK_UN) }
        let old = (try? String(contentsOfFile: path, encoding: .utf8)).map(parse) ?? []
        let ours = RunMetrics.labels(end)
        func isOurs(_ sample: Sample) -> Bool {
            ours.allSatisfy { label in sample.labels.contains { $0 == label } }
        }
        var totals: [String: Double] = [:]
        var previousSuccess: Double?
        for family in old {
            for sample in family.samples where isOurs(sample) {
                totals[seriesKey(sample.name, sample.labels)] = sample.value
                if sample.name == "mapsemble_import_last_success_timestamp_seconds" { previousSuccess = sample.value }
            }
        }
        let metrics = RunMetrics()
        metrics.record(end, totals: totals, previousSuccess: previousSuccess, histogram: false)
        let fresh = parse(metrics.text)
        // This run's series replace their old lines; the pipeline's others (its runs of another
        // status) stay as they were.
        let replaced = Set(fresh.flatMap(\.samples).map { seriesKey($0.name, $0.labels) })
        var merged: [String: Family] = [:]
        for family in old {
            var kept = family
            kept.samples.removeAll { isOurs($0) && replaced.contains(seriesKey($0.name, $0.labels)) }
            if !kept.samples.isEmpty { merged[family.name] = kept }
        }
        for family in fresh {
            var combined = merged[family.name] ?? Family(name: family.name)
            combined.comments = family.comments
            combined.samples += family.samples
            merged[family.name] = combined
        }
        var text = ""
        for name in merged.keys.sorted() {
            let family = merged[name]!
            for line in family.comments { text += line + "\n" }
            for sample in family.samples { text += sample.line + "\n" }
        }
        let directory = (path as NSString).deletingLastPathComponent
        let temporary =
            (directory.isEmpty ? "." : directory) + "/." + (path as NSString).lastPathComponent + ".\(getpid()).tmp"
        let descriptor = open(temporary, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw ImportError.system(.output, "cannot write the metrics file", file: temporary)
        }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == bytes.count, synced else {
            unlink(temporary)
            throw ImportError.system(.output, "cannot write the metrics file", file: temporary)
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw ImportError.system(.output, "cannot replace the metrics file", file: path)
        }
    }

    /// The families of a Prometheus text file, in order; a line that is no sample is dropped.
    static func parse(_ text: String) -> [Family] {
        var families: [Family] = []
        var index: [String: Int] = [:]
        func family(_ name: String) -> Int {
            if let found = index[name] { return found }
            families.append(Family(name: name))
            index[name] = families.count - 1
            return families.count - 1
        }
        var current: Int?
        for line in text.split(separator: "\n").map(String.init) {
            if line.hasPrefix("#") {
                let words = line.split(separator: " ", maxSplits: 3)
                guard words.count >= 3, words[1] == "HELP" || words[1] == "TYPE" else { continue }
                current = family(String(words[2]))
                families[current!].comments.append(line)
                continue
            }
            guard let sample = sample(line) else { continue }
            // A sample of the family being read (`x_bucket` of histogram `x`), else a family of its own.
            if let current, sample.name.hasPrefix(families[current].name) {
                families[current].samples.append(sample)
            } else {
                let found = family(sample.name)
                families[found].samples.append(sample)
                current = found
            }
        }
        return families
    }

    /// `name{label="value",…} value [timestamp]`, or nil.
    static func sample(_ line: String) -> Sample? {
        let bytes = Array(line.utf8)
        var at = 0
        while at < bytes.count, bytes[at] != UInt8(ascii: "{"), bytes[at] != UInt8(ascii: " ") { at += 1 }
        guard at > 0 else { return nil }
        let name = String(decoding: bytes[..<at], as: UTF8.self)
        var labels: [(String, String)] = []
        if at < bytes.count, bytes[at] == UInt8(ascii: "{") {
            at += 1
            while at < bytes.count, bytes[at] != UInt8(ascii: "}") {
                let start = at
                while at < bytes.count, bytes[at] != UInt8(ascii: "=") { at += 1 }
                let key = String(decoding: bytes[start..<at], as: UTF8.self).trimmingSpaces
                at += 1
                guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { return nil }
                at += 1
                var value: [UInt8] = []
                while at < bytes.count, bytes[at] != UInt8(ascii: "\"") {
                    if bytes[at] == UInt8(ascii: "\\"), at + 1 < bytes.count {
                        at += 1
                        value.append(bytes[at] == UInt8(ascii: "n") ? 0x0A : bytes[at])
                    } else {
                        value.append(bytes[at])
                    }
                    at += 1
                }
                guard at < bytes.count else { return nil }
                at += 1
                labels.append((key, String(decoding: value, as: UTF8.self)))
                if at < bytes.count, bytes[at] == UInt8(ascii: ",") { at += 1 }
            }
            guard at < bytes.count else { return nil }
            at += 1
        }
        let rest = String(decoding: bytes[at...], as: UTF8.self).split(separator: " ")
        guard let first = rest.first, let value = Double(first) ?? (first == "+Inf" ? .infinity : nil) else {
            return nil
        }
        return Sample(name: name, labels: labels, value: value, line: line)
    }
}
