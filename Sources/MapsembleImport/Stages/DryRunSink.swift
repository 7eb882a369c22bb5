/// The last stage: where batches go. The `Uploader` sends them to Mapsemble; `DryRunSink` writes
/// them to files.
public protocol BatchSink: AnyObject, Sendable {
    /// Takes batches until the channel ends. A thrown error stops the run.
    func drain(_ batches: BatchQueue) async throws
    /// Called once after the last batch (also after an error).
    func close() throws
    /// Rows taken so far (imported, or in a dry run: would be).
    var featureCount: Int { get }
    /// Requests, retries and what the server did; zeros for a dry run.
    var stats: UploadStats { get }
    /// Whether batches must be request bodies (a FeatureCollection each); a sink that writes
    /// features only takes them as they come from the transformer.
    var needsRequestBodies: Bool { get }
    /// The queue the chunker hands batches to this sink through.
    func makeQueue() -> BatchQueue
    /// Deletes the destination's features with these remote ids (the end of a sync, after the
    /// last batch and `close()`), `batchSize` a request; returns how many it deleted. Not called
    /// in a dry run. A sink that cannot delete throws (the default): a sync then stops with that
    /// sentence instead of leaving features the file no longer has.
    func delete(remoteIDs: [String], remoteField: String, batchSize: Int) async throws -> Int
}

extension BatchSink {
    public var stats: UploadStats { UploadStats() }
    public var needsRequestBodies: Bool { true }
    /// One batch ahead at most, as a channel.
    public func makeQueue() -> BatchQueue { BatchQueue(capacity: 1) }

    public func delete(remoteIDs: [String], remoteField: String, batchSize: Int) async throws -> Int {
        throw ImportError(
            .uploadAborted,
            "the sync would delete \(remoteIDs.count) features no longer in the file, but this destination cannot delete; nothing was deleted"
        )
    }
}

/// What the uploader did, as the server reported it.
public struct UploadStats: Sendable, Equatable {
    public var created = 0
    public var updated = 0
    public var deleted = 0
    public var requests = 0
    public var retries = 0
    /// Rows of batches the server answered without saying which features failed.
    public var unconfirmed = 0
    public init() {}
}

/// Stage 5 for `--dry-run` and `validate`: takes the batches that would be sent and writes them
/// where asked — every feature as one GeoJSON FeatureCollection (RFC 7946, streamed: written as it
/// comes, never held), and/or each request body on a line of its own.
public final class DryRunSink: BatchSink, @unchecked Sendable {  // used by one task at a time
    private let features: ByteWriter?
    private let batches: ByteWriter?
    private var wroteFeature = false
    public private(set) var featureCount = 0
    public var needsRequestBodies: Bool { batches != nil }

    public init(featuresPath: String?, batchesPath: String?) throws {
        // Outputs asked for are data files like any other (the umask decides), unlike reports.
        features = try featuresPath.map { (path) in try ByteWriter(path: path, mode: 0o644) }
        batches = try batchesPath.map { (path) in try ByteWriter(path: path, mode: 0o644) }
        try features?.write(Self.head)
    }

    private static let head: [UInt8] = Array("{\"type\":\"FeatureCollection\",\"features\":[\n".utf8)
    private static let tail: [UInt8] = Array("\n]}\n".utf8)

    public func drain(_ batches: BatchQueue) async throws {
        for await batch in batches {
            try consume(batch)
            try Task.checkCancellation()
        }
    }

    /// Takes one batch; its features count as imported once written.
    public func consume(_ batch: Batch) throws {
        if let features, !batch.featureRanges.isEmpty {
            try batch.body.withUnsafeBytes { (body) in
                try features.write(batch.featureRanges, of: body, separatedBy: ",\n", separateFirst: wroteFeature)
            }
            wroteFeature = true
        }
        if let batches {
            try batches.write(batch.body)
            try batches.write([0x0A])
        }
        featureCount += batch.count
    }

    /// Ends the collection and closes both outputs.
    public func close() throws {
        if let features {
            try features.write(wroteFeature ? Self.tail : Array("]}\n".utf8))
            try features.close()
        }
        try batches?.close()
    }
}
