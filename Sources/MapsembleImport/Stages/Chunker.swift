/// Stage 4: cuts the feature stream into request bodies. `FeatureBlock` → `Batch`.
///
/// A batch holds at most `batchSize` features (1…1000, the API's maximum) and is cut before its
/// body would pass `maxBodyBytes`; a single feature larger than that travels alone (the pipeline
/// rejects such features before: `Transformer.maxFeatureBytes`). Order is kept.
public struct Chunker: Sendable {
    public let batchSize: Int
    public let maxBodyBytes: Int
    private let prefix: [UInt8]
    private static let suffix: [UInt8] = Array("]}".utf8)
    private var current: Batch
    private var nextSequence = 1

    /// - Parameter remoteField: sent as the collection's `remoteField` when rows carry a remote id.
    public init(batchSize: Int, maxBodyBytes: Int, remoteField: String?) {
        precondition(batchSize > 0)
        self.batchSize = batchSize
        self.maxBodyBytes = maxBodyBytes
        var prefix = Array(#"{"type":"FeatureCollection","#.utf8)
        if let remoteField {
            prefix += Array(#""remoteField":"#.utf8)
            JSONBytes.appendString(remoteField, to: &prefix)
            prefix.append(UInt8(ascii: ","))
        }
        prefix += Array(#""features":["#.utf8)
        self.prefix = prefix
        current = Batch(sequence: 0)
        current.body = prefix
    }

    /// The largest feature a request body of `maxBodyBytes` holds, around the collection's own
    /// bytes.
    public var maxFeatureBytes: Int { maxBodyBytes - prefix.count - Self.suffix.count }

    /// Adds a block's features; returns the batches that became full.
    public mutating func append(_ block: FeatureBlock) -> [Batch] {
        var full: [Batch] = []
        var joinedBatch = -1
        block.bytes.withUnsafeBytes { bytes in
            for index in 0..<block.count {
                let feature = UnsafeRawBufferPointer(rebasing: bytes[block.range(index)])
                let grown = current.body.count + feature.count + 1 + Self.suffix.count
                if current.count > 0 && grown > maxBodyBytes { full.append(take()) }
                if current.count > 0 { current.body.append(UInt8(ascii: ",")) }
                let start = current.body.count
                current.body.appendBytes(feature)
                current.featureRanges.append(start..<current.body.count)
                current.lines.append(block.lines[index])
                if let source = block.source {
                    // The block joins a batch's sources once, with its first feature there; it is
                    // then the batch's last source, since blocks come in order.
                    if joinedBatch != current.sequence {
                        current.sources.append(source)
                        joinedBatch = current.sequence
                    }
                    current.rowRefs.append((Int32(current.sources.count - 1), Int32(block.records[index])))
                }
                if current.count == batchSize { full.append(take()) }
            }
        }
        return full
    }

    /// The last, partial batch, if any.
    public mutating func finish() -> Batch? {
        current.count > 0 ? take() : nil
    }

    private mutating func take() -> Batch {
        // The suffix goes on before the batch is handed out: appended to a copy that still shares
        // its body with `current`, it would copy the whole body.
        current.body.append(contentsOf: Self.suffix)
        let batch = current
        current = Batch(sequence: nextSequence)
        current.body.reserveCapacity(min(batch.body.count + batch.body.count / 4, maxBodyBytes))
        current.featureRanges.reserveCapacity(batch.count)
        current.lines.reserveCapacity(batch.count)
        current.body.append(contentsOf: prefix)
        nextSequence += 1
        return batch
    }
}
