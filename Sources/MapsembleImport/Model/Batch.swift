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
    /// The original row of each feature, when kept (uploads).
    public var rows: RowArchive?

    public var count: Int { lines.count }
}
