import Foundation

/// The report files of one run: the rejected rows as they come, and once the rows are done the
/// diff of a sync or an update, the HTML page and the summary.
///
/// Rows have moved by the time the closing reports are written, so a report that cannot be
/// written does not end the run with an error: it is said in a log line, makes the run `aborted`
/// (exit 3, "aborted part-way"), and the reports after it, the summary last, are still written.
final class RunReports {
    let paths: Pipeline.ReportPaths
    let rejects: RejectedRowsWriter
    /// What the HTML report draws, when there is one.
    let collector: ReportCollector?
    private let config: PipelineConfig
    private let notes: [String]
    private let mapping: PropertyMapping
    private let header: [String]
    private let log: (@Sendable (RunEvent) -> Void)?

    init(paths: Pipeline.ReportPaths, plan: PipelinePlan, config: PipelineConfig, log: (@Sendable (RunEvent) -> Void)?)
        throws
    {
        do {
            try FileManager.default.createDirectory(atPath: config.report.dir, withIntermediateDirectories: true)
        } catch {
            throw ImportError(.output, "cannot create the report folder", file: config.report.dir)
        }
        let collector = config.report.html ? ReportCollector(validator: plan.validator) : nil
        let rejectionLog = log.map { RejectionLog(log: $0, report: paths.rejected) }
        var observer: (@Sendable (Rejection) -> Void)?
        if collector != nil || rejectionLog != nil {
            observer = { rejection in
                rejectionLog?.observe(rejection)
                collector?.observe(rejection)
            }
        }
        rejects = try RejectedRowsWriter(
            path: paths.rejected, header: plan.reader.header, delimiter: plan.readerOptions.delimiter,
            spreadsheetSafe: config.report.spreadsheetSafe, features: plan.reader is GeoJSONReader, observer: observer)
        self.paths = paths
        self.collector = collector
        self.config = config
        notes = plan.notes
        mapping = plan.mapping
        header = plan.reader.header
        self.log = log
    }

    /// Writes the closing reports: the diff (sync, update), the HTML page, the summary. Settles the
    /// journal: kept for a resumption when the run stopped early, removed when it is done.
    func write(_ summary: inout RunSummary, diff: MapReconciler.Diff?, journal: ResumeJournal?, dryRun: Bool) {
        if let diff { attempt("diff", &summary) { try Self.writeDiff(diff, to: paths.diff) } }
        if let collector {
            let report = HTMLReport(
                summary: summary, collected: collector.snapshot, dryRun: dryRun,
                target: "\(config.target.apiURL), map \(config.target.mapID ?? "?")", mode: config.mode.rawValue,
                notes: notes, mapping: mapping, header: header,
                rejectedFile: (paths.rejected as NSString).lastPathComponent, batchSize: config.upload.batchSize,
                concurrency: config.upload.concurrency)
            attempt("HTML report", &summary) { try Self.write(report.html, to: paths.html) }
        }
        if let journal, summary.status == .aborted { summary.journal = journal.path }
        let json = summary.json
        attempt("summary", &summary) { try Self.write(json, to: paths.summary) }
        if let journal {
            // Done: nothing to resume. Stopped early (a report that could not be written
            // included): the same command continues from the journal, sending nothing twice.
            if summary.status == .aborted {
                journal.sync()
                summary.journal = journal.path
            } else {
                journal.remove()
            }
        }
    }

    /// Runs `write`; a failure is told and makes the run aborted.
    private func attempt(_ what: String, _ summary: inout RunSummary, _ write: () throws -> Void) {
        do {
            try write()
        } catch {
            let problem = error as? ImportError ?? ImportError(.output, "\(error)")
            summary.reportFailed(problem)
            log?(
                RunEvent(
                    .notice, "the \(what) could not be written: \(problem.description)", event: "report_failed",
                    fields: ["report": .text(what)]))
        }
    }

    private static func write(_ text: String, to path: String) throws {
        let writer = try ByteWriter(path: path)
        try writer.write(text)
        try writer.close()
    }

    /// `NAME.diff.csv`: what a sync or an update created, updated and deleted (or would, in a dry
    /// run), one remote id a line; unchanged rows are left out.
    static func writeDiff(_ diff: MapReconciler.Diff, to path: String) throws {
        var text = "action,remote_id\n"
        func quoted(_ id: String) -> String {
            id.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + id.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : id
        }
        for (action, ids) in [("create", diff.create), ("update", diff.update), ("delete", diff.delete)] {
            for id in ids { text += "\(action),\(quoted(id))\n" }
        }
        try write(text, to: path)
    }
}
