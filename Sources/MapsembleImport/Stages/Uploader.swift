import Foundation
import MapsembleJSON
import NIOConcurrencyHelpers
import Synchronization

/// Stage 5: sends batches to Mapsemble. `Batch` → requests, with `concurrency` workers, each a
/// libcurl handle with its own keep-alive connection on a thread of its own.
///
/// Per batch: 429, 5xx, dropped connections and time-outs are retried under the client's
/// `RetryPolicy` (`Retry-After`, else capped exponential backoff with full jitter); 400 "maximum number of
/// features" and 413 halve the batch; a 422 rejects the features it names (`server_rejected`) and
/// sends the rest again, or bisects when it names none; `failed[]` entries reject exactly their
/// rows; `location_limit_reached` stops the import (`plan_limit`, the rest `not_sent`, exit 3).
/// A row counts as imported only when the server's answer confirms it.
public final class Uploader: BatchSink, Sendable {
    /// How requests are made for a mode.
    public struct Settings: Sendable {
        public var method: String
        public var concurrency: Int
        public var timeoutSeconds: Double
        /// `replace`: the whole data set must fit one request.
        public var singleRequest = false
    }

    let client: MapsembleClient
    let path: String
    let settings: Settings
    let rejects: RejectedRowsWriter
    /// Where settled rows are recorded for a resumption, when the run keeps a journal.
    let journal: ResumeJournal?
    let log: (@Sendable (RunEvent) -> Void)?
    /// `report.undo`: each batch is kept there, on disk, before it is sent.
    let undo: UndoLog?
    private let counters = NIOLockedValueBox(Counters())
    private let stopping = AbortFlag()

    struct Counters {
        var imported = 0
        var stats = UploadStats()
    }

    init(
        client: MapsembleClient, mapID: String, settings: Settings, rejects: RejectedRowsWriter,
        journal: ResumeJournal? = nil, undo: UndoLog? = nil, log: (@Sendable (RunEvent) -> Void)?
    ) {
        self.undo = undo
        self.client = client
        path = APIPath.features(mapID)
        self.settings = settings
        self.rejects = rejects
        self.journal = journal
        self.log = log
    }

    public var featureCount: Int { counters.withLockedValue { $0.imported } }
    public var stats: UploadStats { counters.withLockedValue { $0.stats } }

    public func close() throws {}

    /// Up to eight batches per worker wait (64 at most, two per worker at least); the chunker is
    /// woken when the workers have taken half and cuts the other half back to back (see
    /// `BatchQueue`). Measured with 8 workers: 0.96x the client CPU of two per worker, for 15 MB
    /// more; sixteen per worker gained nothing more.
    public func makeQueue() -> BatchQueue {
        let workers = settings.concurrency
        return BatchQueue(capacity: settings.singleRequest ? 1 : max(2 * workers, min(8 * workers, 64)))
    }

    public func drain(_ batches: BatchQueue) async throws {
        if settings.singleRequest { return try await drainSingle(batches) }
        let workers = (0..<settings.concurrency).map { CurlWorker(name: "upload-\($0)") }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in workers {
                // The task runs on the worker's own thread: taking a batch, building its parts and
                // waiting for curl all happen there.
                group.addTask(executorPreference: worker.executor) {
                    for await batch in batches {
                        if self.stopping.isSet || Task.isCancelled { break }
                        try await self.upload(batch, with: worker)
                    }
                }
            }
            try await waitForWorkers(&group)
        }
    }

    /// Waits for every worker task; the first error stops the others and is thrown.
    private func waitForWorkers(_ group: inout ThrowingTaskGroup<Void, any Error>) async throws {
        do {
            while try await group.next() != nil {}
        } catch {
            stopping.set()
            group.cancelAll()
            throw error
        }
    }

    /// `replace` sends the whole data set in one PUT: a second batch means the file is too large,
    /// found before anything is sent.
    private func drainSingle(_ batches: BatchQueue) async throws {
        var first: Batch?
        for await batch in batches {
            guard first == nil else {
                throw ImportError(
                    .config,
                    "mode replace sends the whole data set in one request of at most 1000 rows (batch_size), and this file has more; use mode upsert or sync"
                )
            }
            first = batch
        }
        if let first { try await upload(first, with: CurlWorker(name: "upload-0")) }
    }

    /// One part of a batch on its way: the positions of its features in the batch.
    typealias Part = [Int]

    private func upload(_ batch: Batch, with worker: CurlWorker) async throws {
        if let undo {
            do {
                try undo.sending(batch, method: settings.method)
            } catch {
                stopping.set()
                throw ImportError(
                    .uploadAborted,
                    "\((error as? ImportError)?.description ?? "\(error)"): a batch that cannot be undone is not sent; stopped"
                )
            }
        }
        var parts: [Part] = [Array(0..<batch.count)]
        while let part = parts.popLast() {
            if stopping.isSet { return }
            let body = part.count == batch.count ? batch.body : Self.body(of: part, in: batch)
            let (response, uncertain) = try await send(body, rows: part.count, batch: batch.sequence, with: worker)
            switch response.status {
            case 200..<300:
                try settle(part, of: batch, response: response, uncertain: uncertain)
            case 400 where Self.isTooManyFeatures(response), 413:
                if part.count > 1 {
                    log?(
                        RunEvent(
                            .notice,
                            "the server took \(part.count) features as too many (HTTP \(response.status)); sending them in halves"
                        ))
                    parts.append(contentsOf: Self.halves(part).reversed())
                } else {
                    reject(
                        part, of: batch, code: .serverRejected,
                        message: "the server refuses this feature as too large (HTTP \(response.status))")
                }
            case 422:
                let errors = Self.indexedErrors(response.body)
                if !errors.isEmpty {
                    var rest: Part = []
                    for (position, row) in part.enumerated() {
                        if let messages = errors[position] {
                            reject(
                                [row], of: batch, code: .serverRejected,
                                message: "the server refused this row: \(messages)")
                        } else {
                            rest.append(row)
                        }
                    }
                    if !rest.isEmpty { parts.append(rest) }
                } else if part.count > 1 {
                    parts.append(contentsOf: Self.halves(part).reversed())
                } else {
                    reject(
                        part, of: batch, code: .serverRejected,
                        message: "the server refused this row: \(MapsembleClient.serverMessage(response.body))")
                }
            default:
                if Self.code(of: response.body) == "location_limit_reached" {
                    reject(
                        part, of: batch, code: .planLimit,
                        message: "the map's plan limit was reached; this row was not stored")
                    throw planLimit(response.body)
                }
                stopping.set()
                throw ImportError(
                    .uploadAborted,
                    "\(client.baseURL) answered HTTP \(response.status) to a \(settings.method) of \(part.count) features: \(MapsembleClient.serverMessage(response.body)); stopped"
                )
            }
        }
    }

    /// Books a 2xx answer: `failed[]` rows are rejected, the rest imported.
    private func settle(_ part: Part, of batch: Batch, response: HTTPResponse, uncertain: Bool) throws {
        let object = JSONParser.parse(response.body)
        let failed = object?["failed"]?.array ?? []
        var refused = Set<Int>()
        var planLimited = false
        var unindexed = 0
        var duplicatesOfOurs = 0
        var planLimitedRows: [Int] = []
        var refusals: [(line: Int, code: RejectCode, message: String)] = []
        for entry in failed {
            let code = entry["code"]?.string ?? "failed"
            let message = entry["message"]?.string ?? code
            guard let index = entry["index"]?.integer, index >= 0, index < part.count else {
                unindexed += 1
                continue
            }
            if uncertain
                && ((code == "duplicate_remote_id" && settings.method == "POST")
                    || (code == "not_found" && settings.method == "DELETE"))
            {
                // An earlier attempt of this very request was applied before its answer was lost.
                duplicatesOfOurs += 1
                continue
            }
            refused.insert(index)
            if code == "location_limit_reached" {
                planLimited = true
                planLimitedRows.append(part[index])
                reject(
                    [part[index]], of: batch, code: .planLimit, message: "the map's plan limit was reached: \(message)",
                    record: false)
            } else {
                let text = "the server refused this row (\(code)): \(message)"
                refusals.append((batch.lines[part[index]], .serverRejected, text))
                reject([part[index]], of: batch, code: .serverRejected, message: text, record: false)
            }
        }
        let stored = part.count - refused.count
        let created =
            (object?["created"]?.integer ?? (settings.method == "POST" ? stored : 0)) + duplicatesOfOurs
        let updated = object?["updated"]?.integer ?? 0
        let deleted = object?["deleted"]?.integer ?? (settings.method == "DELETE" ? stored : 0)
        counters.withLockedValue { counters in
            if unindexed > 0 {
                counters.stats.unconfirmed += stored
            } else {
                counters.imported += stored
            }
            counters.stats.created += created
            counters.stats.updated += updated
            counters.stats.deleted += deleted
        }
        if unindexed == 0, let journal {
            // Rows refused for the plan limit are not settled: once the plan allows, a rerun sends them.
            let settledRows = planLimitedRows.isEmpty ? part : part.filter { !planLimitedRows.contains($0) }
            if let problem = journal.record(
                spans: Self.spans(settledRows, of: batch), refused: refusals, created: created, updated: updated,
                deleted: deleted)
            {
                log?(RunEvent(.notice, problem))
            }
        }
        if unindexed > 0 {
            log?(
                RunEvent(
                    .notice,
                    "the server reported \(unindexed) failures without saying which features; \(part.count - refused.count) rows of that request stay unconfirmed (not_sent)"
                ))
        }
        if planLimited { throw planLimit(response.body) }
    }

    private func planLimit(_ body: [UInt8]) -> ImportError {
        stopping.set()
        var limit = ""
        if let object = JSONParser.parse(body) {
            let entries = [object] + (object["failed"]?.array ?? [])
            if let value = entries.lazy.compactMap({ $0["limit"]?.integer }).first {
                limit = " of \(value) features"
            }
        }
        return ImportError(
            .uploadAborted,
            "the map's plan limit\(limit) was reached: the rows it refused are plan_limit rejections and the rest were not sent"
        )
    }

    /// Reports the rows of `part` as rejected; with `record`, rows the server refused (not those
    /// the plan limit held back) are also settled in the journal.
    private func reject(_ part: Part, of batch: Batch, code: RejectCode, message: String, record: Bool = true) {
        for row in part {
            rejects.writeLate(
                Rejection(
                    line: batch.lines[row], code: code, column: "", message: message,
                    fields: batch.originalRow(row)))
        }
        if record && code == .serverRejected, let journal,
            let problem = journal.record(
                spans: Self.spans(part, of: batch), refused: part.map { (batch.lines[$0], code, message) },
                created: 0, updated: 0, deleted: 0)
        {
            log?(RunEvent(.notice, problem))
        }
    }

    /// The input lines of the rows at `positions` of `batch`, as `[first, last]` spans of runs of
    /// neighbouring positions (no other row of the batch lies inside a span).
    static func spans(_ positions: [Int], of batch: Batch) -> [ClosedRange<Int>] {
        var spans: [ClosedRange<Int>] = []
        var runStart: Int?
        var previous = -2
        // Parts keep their batch's order (halves do, and so does what a 422 leaves): sort only
        // one that does not.
        let ordered = zip(positions, positions.dropFirst()).allSatisfy { $0 < $1 } ? positions : positions.sorted()
        for position in ordered {
            if position != previous + 1 {
                if let start = runStart { spans.append(batch.lines[start]...batch.lines[previous]) }
                runStart = position
            }
            previous = position
        }
        if let start = runStart { spans.append(batch.lines[start]...batch.lines[previous]) }
        return spans
    }

    /// Sends one body until it gets an answer worth reading (the client's retry policy). Returns
    /// the answer and whether an earlier attempt may have been applied (it got no answer).
    private func send(
        _ body: [UInt8], rows: Int, batch: Int? = nil, with worker: CurlWorker, method: String? = nil
    ) async throws -> (HTTPResponse, Bool) {
        let exchanged: (response: HTTPResponse, uncertain: Bool)
        do {
            exchanged = try await client.exchange(
                method ?? settings.method, path, body: body, contentType: "application/json", worker: worker,
                timeoutSeconds: settings.timeoutSeconds,
                onAttempt: { self.counters.withLockedValue { $0.stats.requests += 1 } },
                onRetry: { retry in
                    self.counters.withLockedValue { $0.stats.retries += 1 }
                    var fields = retry.fields
                    fields["rows"] = .int(rows)
                    if let batch { fields["batch"] = .int(batch) }
                    self.log?(RunEvent(.notice, retry.sentence, event: "retry", fields: fields))
                })
        } catch let error as RetriesExhausted {
            stopping.set()
            throw ImportError(
                .uploadAborted,
                "a request of \(rows) features failed \(error.attempts) times (last: \(error.reason)); stopped after max_retries, the rest was not sent"
            )
        }
        if exchanged.response.status == 401 || exchanged.response.status == 403 {
            stopping.set()
            throw ImportError(
                .uploadAborted,
                "\(client.baseURL) refused the credentials part-way (HTTP \(exchanged.response.status)); stopped, the rest was not sent"
            )
        }
        return exchanged
    }

    /// Deletes the map's features with these remote ids (a sync's last step), `batchSize` a
    /// request on `concurrency` workers, retried like every write. A feature already gone counts
    /// as deleted by someone else: not an error. Each answer's count goes to the journal, so a
    /// resumed run's summary counts the deletes of the runs before it. Returns how many this run
    /// deleted.
    public func delete(remoteIDs: [String], remoteField: String, batchSize: Int) async throws -> Int {
        let chunks = stride(from: 0, to: remoteIDs.count, by: batchSize).map {
            Array(remoteIDs[$0..<min($0 + batchSize, remoteIDs.count)])
        }
        final class Tally: Sendable {
            let next = Atomic<Int>(0)
            let deleted = Atomic<Int>(0)
        }
        let tally = Tally()
        var slug: [UInt8] = []
        JSONBytes.appendString(remoteField, to: &slug)
        let prefix = Array(#"{"type":"FeatureCollection","remoteField":"#.utf8) + slug + Array(#","features":["#.utf8)
        let featureStart = Array(#"{"type":"Feature","geometry":null,"properties":{"#.utf8) + slug + [UInt8(ascii: ":")]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for number in 0..<min(settings.concurrency, chunks.count) {
                let worker = CurlWorker(name: "delete-\(number)")
                group.addTask(executorPreference: worker.executor) {
                    while true {
                        let index = tally.next.add(1, ordering: .relaxed).oldValue
                        guard index < chunks.count, !self.stopping.isSet else { return }
                        if let undo = self.undo {
                            do {
                                try undo.deleting(chunks[index])
                            } catch {
                                self.stopping.set()
                                throw ImportError(
                                    .uploadAborted,
                                    "\((error as? ImportError)?.description ?? "\(error)"): deletions that cannot be undone are not sent; stopped"
                                )
                            }
                        }
                        var body = prefix
                        for (position, id) in chunks[index].enumerated() {
                            if position > 0 { body.append(UInt8(ascii: ",")) }
                            body += featureStart
                            JSONBytes.appendString(id, to: &body)
                            body += Array("}}".utf8)
                        }
                        body += Array("]}".utf8)
                        let (response, uncertain) = try await self.send(
                            body, rows: chunks[index].count, with: worker, method: "DELETE")
                        guard (200..<300).contains(response.status) else {
                            self.stopping.set()
                            throw ImportError(
                                .uploadAborted,
                                "\(self.client.baseURL) answered HTTP \(response.status) to a DELETE of \(chunks[index].count) features no longer in the file: \(MapsembleClient.serverMessage(response.body)); stopped"
                            )
                        }
                        let object = JSONParser.parse(response.body)
                        let gone = (object?["failed"]?.array ?? []).count
                        // After an attempt whose answer was lost, a feature already gone was most
                        // likely deleted by that attempt: counted as this import's.
                        let deleted =
                            uncertain
                            ? chunks[index].count : object?["deleted"]?.integer ?? (chunks[index].count - gone)
                        tally.deleted.add(deleted, ordering: .relaxed)
                        // Counted as each answer comes, so a run stopped part-way reports them.
                        self.counters.withLockedValue { $0.stats.deleted += deleted }
                        if let problem = self.journal?.record(
                            spans: [], refused: [], created: 0, updated: 0, deleted: deleted)
                        {
                            self.log?(RunEvent(.notice, problem))
                        }
                    }
                }
            }
            try await waitForWorkers(&group)
        }
        return tally.deleted.load(ordering: .relaxed)
    }

    static func isTooManyFeatures(_ response: HTTPResponse) -> Bool {
        MapsembleClient.serverMessage(response.body).lowercased().contains("maximum number of features")
    }

    static func code(of body: [UInt8]) -> String? {
        JSONParser.parse(body)?["code"]?.string
    }

    /// `errors` keys naming a feature (`features[3].geometry`) → messages, by index in the request.
    static func indexedErrors(_ body: [UInt8]) -> [Int: String] {
        guard let errors = JSONParser.parse(body)?["errors"]?.members else { return [:] }
        var result: [Int: String] = [:]
        for (key, value) in errors.sorted(by: { $0.0 < $1.0 }) {
            guard key.hasPrefix("features["), let close = key.firstIndex(of: "]"),
                let index = Int(key[key.index(key.startIndex, offsetBy: 9)..<close])
            else { continue }
            let messages = value.array?.compactMap(\.string).joined(separator: " ") ?? value.string ?? value.text
            let field = key[key.index(after: close)...].drop { $0 == "." }
            let text = field.isEmpty ? messages : "\(field): \(messages)"
            result[index] = result[index].map { "\($0); \(text)" } ?? text
        }
        return result
    }

    static func halves(_ part: Part) -> [Part] {
        let middle = part.count / 2
        return [Array(part[..<middle]), Array(part[middle...])]
    }

    /// A request body holding only the features at `part` of `batch`.
    static func body(of part: Part, in batch: Batch) -> [UInt8] {
        let prefixEnd = batch.featureRanges[0].lowerBound
        var body = Array(batch.body[..<prefixEnd])
        body.reserveCapacity(batch.body.count)
        for (position, index) in part.enumerated() {
            if position > 0 { body.append(UInt8(ascii: ",")) }
            body.append(contentsOf: batch.body[batch.featureRanges[index]])
        }
        body.append(contentsOf: Array("]}".utf8))
        return body
    }
}
