/// One request's worth of features: the body is built once, as bytes, and sent as is.
public struct Batch: Sendable {
    /// Position of the batch in the run, from 0.
    public var sequence: Int
    /// The request body: a FeatureCollection.
    public var body: [UInt8] = []
    /// Where each feature's JSON sits in `body`.
    public var featureRanges: [Range<Int>] = []
    /// Input line of each feature.
    public var lines: [Int] = []
    /// The record blocks this batch's rows came from (shared, not copied), when kept (uploads).
    public var sources: [RecordBlock] = []
    /// For each feature: which of `sources`, and which record in it.
    public var rowRefs: [(source: Int32, record: Int32)] = []

    /// The original fields of feature `index`'s row; empty when rows were not kept.
    public func originalRow(_ index: Int) -> [String] {
        guard index < rowRefs.count else { return [] }
        let ref = rowRefs[index]
        return sources[Int(ref.source)].originalCells(Int(ref.record))
    }

    public var count: Int { lines.count }

    /// A block's features as a batch that is not a request body: `body` is the features back to
    /// back (shared with the block, not copied), for a sink that writes features only.
    init(featuresOf block: FeatureBlock, sequence: Int) {
        self.sequence = sequence
        body = block.bytes
        featureRanges = (0..<block.count).map(block.range)
        lines = block.lines
    }

    init(sequence: Int) {
        self.sequence = sequence
    }
}
