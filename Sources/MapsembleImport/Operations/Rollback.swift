import Foundation
import MapsembleJSON

/// `rollback RUN_ID`: puts a map back as it was before a run made with `report.undo: true`, from
/// the run's undo file: deletes the features the run created, puts back the properties and
/// geometry of those it updated, re-creates those it deleted, through the `Uploader` (batches,
/// retries, halving, the server's refusals).
///
/// What to do is decided from the map as it is now, feature by feature: one that is as before
/// the run is left alone (the run did not change it, or a rollback put it back already); one
/// that is as the run left it is restored; one changed since by someone else is reported and
/// left alone unless `force`. So a rollback stopped part-way (`kill -9`, Ctrl-C, a network
/// failure) is finished by running it again: what is done already is seen as done, nothing is
/// sent twice.
public enum Rollback {
    public struct Options: Sendable {
        public var dryRun = false
        public var force = false
        public var batchSize = 500
        public var concurrency = 4
        public var timeoutSeconds = 30.0
        public var policy = RetryPolicy(maxRetries: 8)
        public init() {}
    }

    /// What becomes of one feature the run touched.
    public enum Action: String, Sendable {
        /// Created by the run: deleted.
        case delete
        /// Updated by the run: its previous properties and geometry sent back.
        case restore
        /// Deleted by the run: created again as it was.
        case recreate
        /// As before the run already.
        case none = "already_as_before"
        /// Changed on the map since the run: left alone (without `force`).
        case conflict = "changed_since"
    }

    public struct Step: Sendable {
        public var remoteID: String
        public var action: Action
        /// The action `force` takes for a conflict.
        public var forced: Action?
        /// After the rollback: whether the feature is as before the run.
        public var restored = false
    }

    public struct Result: Sendable {
        public var runID: String
        public var map: String
        public var steps: [Step] = []
        /// `--force`: the conflicts were put back too.
        public var forced = false
        /// The map was read again at the end (else `restored` is unknown: false).
        public var verified = false
        public var requests = 0
        public var retries = 0
        public var durationSeconds = 0.0

        public func count(_ action: Action) -> Int { steps.filter { $0.action == action }.count }
        /// The rollback as a run summary, for the history: the features the run touched are its
        /// rows; those as before the run now are imported, the rest not sent.
        public func summary(rollbackID: String, exitCode: Int32, force: Bool, interrupted: Bool) -> RunSummary {
            var summary = RunSummary(
                input: "undo of \(runID)",
                status: exitCode == 0 ? .completed : exitCode == 1 ? .completedWithRejects : .aborted,
                rowsRead: steps.count, imported: steps.filter(\.restored).count, rejectedByCode: [:],
                durationSeconds: durationSeconds)
            summary.runID = rollbackID
            func done(_ action: Action) -> Int {
                steps.filter { $0.restored && (force && $0.action == .conflict ? $0.forced : $0.action) == action }
                    .count
            }
            summary.created = done(.recreate)
            summary.updated = done(.restore)
            summary.deleted = done(.delete)
            summary.unchanged = count(.none)
            summary.requests = requests
            summary.retries = retries
            summary.interrupted = interrupted
            return summary
        }

        /// Features that were to be changed and are not as before the run now.
        public var failed: [String] {
            steps.filter { $0.action != .none && ($0.action != .conflict || forced) && !$0.restored }.map(\.remoteID)
        }
    }

    /// The undo file's content, by remote id.
    struct Undo {
        var runID = ""
        var map = ""
        var apiURL = ""
        var remoteField = ""
        var before: [String: JSONValue] = [:]
        /// The run's last word on each feature it touched: as sent, or `.null` for deleted.
        var after: [String: JSONValue] = [:]
        var listed = false

        init(records: [JSONValue]) throws {
            for record in records {
                switch record["t"]?.string {
                case "header":
                    runID = record["run_id"]?.string ?? ""
                    map = record["map"]?.string ?? ""
                    apiURL = record["api_url"]?.string ?? ""
                    remoteField = record["remote_field"]?.string ?? ""
                case "page":
                    let body = record["body"]
                    for feature in (body?["featureCollection"] ?? body)?["features"]?.array ?? [] {
                        if let id = feature["properties"]?[remoteField]?.remoteKey { before[id] = feature }
                    }
                case "listed": listed = true
                case "after": if let id = record["id"]?.string, let feature = record["f"] { after[id] = feature }
                case "deleted": if let id = record["id"]?.string { after[id] = .null }
                default: break
                }
            }
            guard !map.isEmpty, !remoteField.isEmpty else {
                throw ImportError(.usage, "the undo file has no header: it is not an undo file, or it is damaged")
            }
        }
    }

    /// Reads the undo file and the map, then restores (or, in a dry run, only plans) the map.
    /// - Parameter apiURL: `--api-url`: the server to restore on, when not the run's.
    public static func run(
        undoFile: String, rollbackID: String, config: PipelineConfig, apiURL: String? = nil, options: Options,
        log: (@Sendable (RunEvent) -> Void)?
    ) async throws -> Result {
        let started = ContinuousClock.now
        let undo = try Undo(records: UndoLog.records(at: undoFile))
        var result = Result(runID: undo.runID, map: undo.map)
        result.forced = options.force
        var target = config
        let configured = config.target.apiURL
        if apiURL == nil, configured != PipelineConfig.Target().apiURL, configured != undo.apiURL {
            // The key configured here may be for another server than the run's: not sent there unasked.
            throw ImportError(
                .usage,
                "run \(undo.runID) wrote to \(undo.apiURL), but the configuration names \(configured); give --api-url to say which server to restore on"
            )
        }
        target.target.apiURL = apiURL ?? undo.apiURL
        let client = try MapsembleClient(
            baseURL: target.target.apiURL, credentials: target.credentials, timeoutSeconds: options.timeoutSeconds,
            policy: options.policy)
        let touched = undo.after.keys.sorted()
        guard undo.listed, !touched.isEmpty else {
            log?(RunEvent(.notice, "run \(undo.runID) changed no feature of map \(undo.map): nothing to roll back"))
            return result
        }
        let current = try await features(
            client, map: undo.map, remoteField: undo.remoteField, ids: Set(touched), log: log)
        result.steps = touched.map { id in
            step(id, before: undo.before[id], after: undo.after[id]!, current: current[id])
        }
        let todo = result.steps.filter { $0.action != .none && ($0.action != .conflict || options.force) }
        for step in result.steps where step.action == .conflict {
            log?(
                RunEvent(
                    .notice,
                    "\(step.remoteID) changed on the map after run \(undo.runID): \(options.force ? "--force: \(options.dryRun ? "would be " : "")put back anyway" : "left alone (--force puts it back anyway)")",
                    event: "rollback_conflict", fields: ["remote_id": .text(step.remoteID)]))
        }
        guard !options.dryRun else {
            result.durationSeconds = (ContinuousClock.now - started).seconds
            return result
        }
        let restore = todo.filter { ($0.forced ?? $0.action) != .delete }.map(\.remoteID)
        let delete = todo.filter { ($0.forced ?? $0.action) == .delete }.map(\.remoteID)
        let reportPath = NSTemporaryDirectory() + "mapsemble-import-rollback-\(rollbackID).rejected.csv"
        let rejects = try RejectedRowsWriter(path: reportPath, header: ["remote_id"], delimiter: UInt8(ascii: ","))
        defer { unlink(reportPath) }
        let uploader = Uploader(
            client: client, mapID: undo.map,
            settings: .init(method: "PATCH", concurrency: options.concurrency, timeoutSeconds: options.timeoutSeconds),
            rejects: rejects, log: log)
        var failure: (any Error)?
        do {
            if !restore.isEmpty {
                let queue = uploader.makeQueue()
                async let drained: Void = uploader.drain(queue)
                for (sequence, start) in stride(from: 0, to: restore.count, by: options.batchSize).enumerated() {
                    let ids = restore[start..<min(start + options.batchSize, restore.count)]
                    await queue.send(
                        batch(
                            ids.map {
                                restoring(undo.before[$0]!, after: undo.after[$0]!)
                            },
                            remoteField: undo.remoteField, sequence: sequence, firstLine: start + 1))
                }
                queue.finish()
                try await drained
            }
            if !delete.isEmpty {
                _ = try await uploader.delete(
                    remoteIDs: delete, remoteField: undo.remoteField, batchSize: options.batchSize)
            }
        } catch {
            failure = error
        }
        try? rejects.close()
        result.requests = uploader.stats.requests
        result.retries = uploader.stats.retries
        // What the map holds now says what was done.
        do {
            let now = try await features(
                client, map: undo.map, remoteField: undo.remoteField, ids: Set(touched), log: log)
            for index in result.steps.indices {
                let id = result.steps[index].remoteID
                result.steps[index].restored = same(now[id], undo.before[id])
            }
            result.verified = true
        } catch {
            failure = failure ?? error
        }
        result.durationSeconds = (ContinuousClock.now - started).seconds
        if let failure { throw RollbackFailure(result: result, error: failure) }
        return result
    }

    /// A rollback that stopped part-way, with what it did.
    public struct RollbackFailure: Error {
        public var result: Result
        public var error: any Error
    }

    /// Decides one feature's step from what it was, what the run made it, and what it is.
    static func step(_ id: String, before: JSONValue?, after: JSONValue, current: JSONValue?) -> Step {
        let deletedByRun = after == .null
        let wanted: Action = before == nil ? .delete : deletedByRun ? .recreate : .restore
        if same(current, before) { return Step(remoteID: id, action: .none) }
        let asLeft = deletedByRun ? current == nil : same(current, left(before, after))
        if asLeft { return Step(remoteID: id, action: wanted) }
        return Step(remoteID: id, action: .conflict, forced: wanted)
    }

    /// The feature as the run left it: what it was, with what the run sent laid over it (a PATCH
    /// changes the properties it sends, and the point unless it sends none).
    static func left(_ before: JSONValue?, _ sent: JSONValue) -> JSONValue {
        guard let before else { return sent }
        var properties = before["properties"]?.members ?? []
        for (key, value) in sent["properties"]?.members ?? [] {
            if let index = properties.firstIndex(where: { $0.0 == key }) {
                properties[index].1 = value
            } else {
                properties.append((key, value))
            }
        }
        let geometry = sent["geometry"].flatMap { $0 == .null ? nil : $0 } ?? before["geometry"] ?? .null
        return .object([("type", "Feature"), ("geometry", geometry), ("properties", .object(properties))])
    }

    /// The map's features with these remote ids, as they are now.
    static func features(
        _ client: MapsembleClient, map: String, remoteField: String, ids: Set<String>,
        log: (@Sendable (RunEvent) -> Void)?
    ) async throws -> [String: JSONValue] {
        var found: [String: JSONValue] = [:]
        try await client.forEachPage(mapID: map, log: log) { features, _ in
            for feature in features {
                if let id = feature["properties"]?[remoteField]?.remoteKey, ids.contains(id) { found[id] = feature }
            }
        }
        return found
    }

    static func propertyKeys(_ feature: JSONValue) -> [String] {
        feature["properties"]?.members?.map(\.0) ?? []
    }

    /// Whether two features say the same: both absent, or the same geometry and the same value
    /// for every property of either, empty text and null alike.
    static func same(_ a: JSONValue?, _ b: JSONValue?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        guard sameValue(a["geometry"] ?? .null, b["geometry"] ?? .null) else { return false }
        return Set(propertyKeys(a) + propertyKeys(b)).allSatisfy {
            sameValue(a["properties"]?[$0] ?? .null, b["properties"]?[$0] ?? .null)
        }
    }

    /// Values equal as the map keeps them: numbers by value (also when written as text), empty
    /// text as null, arrays and objects member by member.
    static func sameValue(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null), (.null, .string("")), (.string(""), .null): return true
        case (.number(let x), .number(let y)): return x == y || abs(x - y) <= 1e-9 * max(1, abs(x))
        case (.number(let x), .string(let text)), (.string(let text), .number(let x)):
            return Double(text.trimmingSpaces).map { $0 == x } ?? false
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy(sameValue)
        case (.object, .object):
            let keys = Set((a.members ?? []).map(\.0) + (b.members ?? []).map(\.0))
            return keys.allSatisfy { sameValue(a[$0] ?? .null, b[$0] ?? .null) }
        default: return a == b
        }
    }

    /// The feature to send to put `before` back. A feature the run updated gets back only what the
    /// run changed: the properties it sent (null for one it did not have), and its point when the
    /// run sent one. A feature the run deleted is sent whole.
    static func restoring(_ before: JSONValue, after: JSONValue) -> JSONValue {
        guard after != .null else {
            return .object([
                ("type", "Feature"), ("geometry", before["geometry"] ?? .null),
                ("properties", before["properties"] ?? .object([])),
            ])
        }
        let properties = propertyKeys(after).map { key in (key, before["properties"]?[key] ?? .null) }
        let sentPoint = after["geometry"].map { $0 != .null } ?? false
        return .object([
            ("type", "Feature"), ("geometry", sentPoint ? before["geometry"] ?? .null : .null),
            ("properties", .object(properties)),
        ])
    }

    /// A request body of `features` (with `remoteField`), as the uploader takes it.
    static func batch(_ features: [JSONValue], remoteField: String, sequence: Int, firstLine: Int) -> Batch {
        var batch = Batch(sequence: sequence)
        batch.body = Array(#"{"type":"FeatureCollection","remoteField":"#.utf8)
        JSONBytes.appendString(remoteField, to: &batch.body)
        batch.body += Array(#","features":["#.utf8)
        for (index, feature) in features.enumerated() {
            if index > 0 { batch.body.append(UInt8(ascii: ",")) }
            let start = batch.body.count
            feature.write(to: &batch.body)
            batch.featureRanges.append(start..<batch.body.count)
            batch.lines.append(firstLine + index)
        }
        batch.body += Array("]}".utf8)
        return batch
    }
}
