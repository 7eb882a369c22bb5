import Foundation
import MapsembleJSON
import NIOConcurrencyHelpers

/// A digest of what a feature says, comparable between a feature about to be sent and the same
/// feature as the map lists it: its point, and the values of the properties we send (numbers as
/// numbers, empty text and null alike; the server's own properties, and the order of keys, do not
/// count).
enum FeatureDigest {
    /// Tagged values into FNV-1a: a string ends with 0xFF, a number is its 8 bytes.
    private struct Hash {
        var fnv = FNV1a()

        mutating func mix(_ byte: UInt8) { fnv.mix(byte) }

        mutating func mix(_ text: String) {
            for byte in text.utf8 { fnv.mix(byte) }
            fnv.mix(0xFF)
        }

        mutating func mix(number: Double) {
            var bits = (number == 0 ? 0 : number).bitPattern
            for _ in 0..<8 {
                fnv.mix(UInt8(truncatingIfNeeded: bits))
                bits >>= 8
            }
        }
    }

    static func of(_ feature: JSONValue, keys: [String], geometry: Bool) -> UInt64 {
        var hash = Hash()
        if geometry {
            // The type and every position, nested as sent: a point, a line or a polygon.
            if let shape = feature["geometry"], let type = shape["type"]?.string, let coordinates = shape["coordinates"]
            {
                hash.mix(type)
                mix(coordinates, into: &hash)
            } else {
                hash.mix(0)
            }
        }
        let properties = feature["properties"]
        for key in keys {
            hash.mix(key)
            switch properties?[key] {
            case nil, .null, .string(""): hash.mix(0)
            case .number(let value):
                hash.mix(1)
                hash.mix(number: value)
            case .string(let text):
                hash.mix(2)
                hash.mix(text)
            case .bool(let value): hash.mix(value ? 3 : 4)
            case .some(let value):
                hash.mix(5)
                hash.mix(value.text)
            }
        }
        return hash.fnv.value
    }

    /// Nested arrays of positions: each array's length, then its members; numbers as numbers.
    private static func mix(_ value: JSONValue, into hash: inout Hash) {
        switch value {
        case .number(let number): hash.mix(number: number)
        case .array(let items):
            hash.mix(6)
            hash.mix(number: Double(items.count))
            for item in items { mix(item, into: &hash) }
        default: hash.mix(7)
        }
    }
}

/// The map's features as a sync or an update needs them: by remote id, the feature's digest.
public struct MapListing: Sendable {
    struct Entry {
        /// Digests with and without the point (a row of an update may leave the point alone).
        var withPoint: UInt64
        var withoutPoint: UInt64
        var seen = false
    }

    var entries: [String: Entry] = [:]
    /// Features listed.
    public var total = 0
    /// GET requests made.
    public var requests = 0
}

extension MapsembleClient {
    /// Every page of a map's features (`per_page` 500, until a short page), handed to `body` with
    /// its number from 1; returns the pages read. Each page is retried under the client's policy,
    /// as writes are. A sync's listing and `maps export` both read the map through here.
    @discardableResult
    func forEachPage(
        mapID: String, log: (@Sendable (RunEvent) -> Void)?, raw: (([UInt8]) throws -> Void)? = nil,
        _ body: (_ features: [JSONValue], _ page: Int) throws -> Void
    ) async throws -> Int {
        let perPage = 500
        var page = 1
        while true {
            let response = try await get(
                APIPath.features(mapID, page: page, perPage: perPage), what: "listing the map's features",
                onRetry: { retry in
                    var fields = retry.fields
                    fields["page"] = .int(page)
                    log?(RunEvent(.notice, retry.sentence + " (listing page \(page))", event: "retry", fields: fields))
                })
            try Self.check(response, what: "the features of map \"\(mapID)\"", baseURL: baseURL)
            guard let parsed = JSONParser.parse(response.body),
                let features = (parsed["featureCollection"] ?? parsed)["features"]?.array
            else {
                throw ImportError(
                    .remote,
                    "\(baseURL) answered page \(page) of map \(mapID)'s features with something that is not a FeatureCollection"
                )
            }
            try raw?(response.body)
            try body(features, page)
            if features.count < perPage { return page }
            page += 1
        }
    }

    /// A map's features, keeping each remote id's digest over `keys`.
    func listing(
        mapID: String, remoteField: String, keys: [String], log: (@Sendable (RunEvent) -> Void)?,
        onPage: (([UInt8]) throws -> Void)? = nil
    ) async throws -> MapListing {
        var listing = MapListing()
        listing.requests = try await forEachPage(mapID: mapID, log: log, raw: onPage) { features, _ in
            for feature in features {
                listing.total += 1
                // A feature without a remote id (made by hand on the map) is left alone.
                guard let remote = feature["properties"]?[remoteField]?.remoteKey else { continue }
                listing.entries[remote] = MapListing.Entry(
                    withPoint: FeatureDigest.of(feature, keys: keys, geometry: true),
                    withoutPoint: FeatureDigest.of(feature, keys: keys, geometry: false))
            }
        }
        return listing
    }

}

/// Compares the file with the map's listing, row by row, for `sync` and `update`: unchanged rows
/// are not sent; in an update, a remote id the map does not have is `unknown_remote_id`; a sync
/// learns which of the map's features the file no longer has. Used by the chunk stage (one task),
/// read once the run is over.
public final class MapReconciler: Sendable {
    /// What becomes of one row.
    enum Decision {
        case send
        case unchanged
        case unknown(String)
    }

    /// What the run would change (and a sync's deletions), by remote id.
    public struct Diff: Sendable {
        public var create: [String] = []
        public var update: [String] = []
        public var unchanged = 0
        public var delete: [String] = []
    }

    let mode: PipelineConfig.Mode
    let remoteField: String
    let remoteColumn: Int
    let keys: [String]
    private let state: NIOLockedValueBox<(listing: MapListing, diff: Diff, unidentified: Int)>

    init(mode: PipelineConfig.Mode, listing: MapListing, remoteField: String, remoteColumn: Int, keys: [String]) {
        self.mode = mode
        self.remoteField = remoteField
        self.remoteColumn = remoteColumn
        self.keys = keys
        state = NIOLockedValueBox((listing, Diff(), 0))
    }

    /// The map's features listed.
    public var listing: MapListing { state.withLockedValue { $0.listing } }

    /// The map's features the rows of a sync never named, with the other changes of the run.
    public var diff: Diff {
        state.withLockedValue { state in
            var diff = state.diff
            if mode == .sync {
                diff.delete = state.listing.entries.filter { !$0.value.seen }.map(\.key).sorted()
            }
            return diff
        }
    }

    /// Rejected rows whose remote id could not be read (a row the parser could not split): a sync
    /// cannot tell whether they name a feature of the map.
    public var unidentifiedRejections: Int { state.withLockedValue { $0.unidentified } }

    /// Marks the remote ids of rejected rows as present in the file: a sync never deletes the
    /// feature of a row that is there but was rejected.
    func see(_ rejections: [Rejection]) {
        guard mode == .sync, !rejections.isEmpty else { return }
        state.withLockedValue { state in
            for rejection in rejections {
                guard rejection.code != .malformedRow, remoteColumn < rejection.fields.count else {
                    state.unidentified += 1
                    continue
                }
                // The report's cell as the input has it, and the value as sent (trimmed): a
                // feature stored by either name stays.
                let cell = rejection.fields[remoteColumn]
                state.listing.entries[cell]?.seen = true
                state.listing.entries[cell.trimmingBlanks]?.seen = true
            }
        }
    }

    /// Decides one feature about to be sent.
    func decide(_ feature: UnsafeRawBufferPointer) -> Decision {
        guard let json = JSONParser.parse(Array(feature)),
            let remote = json["properties"]?[remoteField]?.remoteKey
        else { return .send }
        let hasPoint = json["geometry"]?["coordinates"] != nil
        let digest = FeatureDigest.of(json, keys: keys, geometry: hasPoint)
        return state.withLockedValue { state in
            guard var entry = state.listing.entries[remote] else {
                if mode == .update { return .unknown(remote) }
                state.diff.create.append(remote)
                return .send
            }
            entry.seen = true
            state.listing.entries[remote] = entry
            if digest == (hasPoint ? entry.withPoint : entry.withoutPoint) {
                state.diff.unchanged += 1
                return .unchanged
            }
            state.diff.update.append(remote)
            return .send
        }
    }
}
