import Foundation
import NIOConcurrencyHelpers
import Synchronization

/// The stage between the validator and the transformer (`geocode:`): a point, from its address,
/// for each row that needs one (`when: missing`: the rows the validator passed without
/// coordinates; `always`: every row). Input order is kept; one distinct address (by its
/// normalised key) is looked up once per block, in the cache first, and the rest asked of the
/// geocoder on `concurrency` connections under its rate limit. Each answer is stored in the cache
/// (durably) before the block moves on, so a row uploaded after it never needs asking again.
///
/// Rows it cannot place are rejected (`missing_address`, `address_not_found`,
/// `geocode_low_confidence`, `geocode_failed`) with their original cells.
final class GeocodeStage: Sendable {
    let query: AddressQuery
    /// Each row's address key, scoped to the provider and its options.
    private let keyer: AddressKeyer
    let when: PipelineConfig.Geocode.When
    let minConfidence: Double
    /// Who places the addresses.
    private let finder: Finder
    /// The map field that receives each geocoded row's confidence, JSON-encoded with its colon.
    private let qualityKey: [UInt8]?

    /// Where points come from.
    enum Finder: Sendable {
        /// A geocoder over HTTP, its answers kept in the cache (keyed besides the query by the
        /// provider and its address, and by the countries), asked on `workers`.
        case http(HTTPGeocoder, GeocodeCache, workers: [CurlWorker])
        /// The local gazetteer: its own index, no cache.
        case gazetteer(Gazetteer, countries: [String])
        /// The map geocodes: rows go with `"geometry": null` and the address under `field`.
        case map(field: [UInt8])
    }

    /// Rows given a point by the geocoder (or sent for the map to geocode), addresses answered
    /// from the cache, requests sent (lookups, for the gazetteer).
    let geocoded = Atomic<Int>(0)
    let cacheHits = Atomic<Int>(0)
    /// Called after each answer from the geocoder (for the progress line: at one request a
    /// second, a block takes long).
    let onAnswer = NIOLockedValueBox<(@Sendable () -> Void)?>(nil)
    var requests: Int {
        switch finder {
        case .http(let geocoder, _, _): geocoder.requests
        case .gazetteer(let gazetteer, _): gazetteer.lookups
        case .map: 0
        }
    }

    /// - Parameter geocodeField: the map's `config.geocodeField` (`provider: mapsemble`), read by
    ///   the pre-flight.
    init(
        config: PipelineConfig.Geocode, header: [String], stateDirectory: String, options: RunOptions,
        geocodeField: String? = nil
    ) throws {
        query = try AddressQuery(address: config.address, parts: config.parts, header: header)
        when = config.when
        minConfidence = config.minConfidence
        qualityKey = config.qualityField.map(Self.propertyKey)
        func cachePath() throws -> String {
            try config.cache ?? (StateDirectory.create(stateDirectory) + "/geocode-cache.sqlite")
        }
        switch config.provider {
        case "mapsemble":
            guard let geocodeField else {
                throw ImportError(
                    .config,
                    "geocode.provider mapsemble needs the map's geocode field: give credentials and a map id, so that the pre-flight can read it"
                )
            }
            finder = .map(field: Self.propertyKey(geocodeField))
        case "gazetteer":
            guard let file = config.gazetteer, !file.isEmpty else {
                throw ImportError(
                    .config,
                    "geocode.gazetteer is needed for provider gazetteer: a GeoNames file such as cities15000.txt, allCountries.zip or a postal-code file"
                )
            }
            let directory = (try cachePath() as NSString).deletingLastPathComponent
            finder = .gazetteer(
                try Gazetteer(file: file, directory: directory.isEmpty ? "." : directory),
                countries: config.countryCodes)
        default:
            guard let provider = GeocoderSettings.Provider(rawValue: config.provider) else {
                throw ImportError(.config, "geocode.provider \"\(config.provider)\" is not one this version asks")
            }
            guard let url = config.url, !url.isEmpty else {
                throw ImportError(
                    .config, "geocode.url is needed: the address of the \(provider.rawValue) geocoder to ask")
            }
            var settings = GeocoderSettings(provider: provider, url: url)
            settings.apiKey = config.apiKey
            settings.userAgent = config.userAgent
            settings.countryCodes = config.countryCodes
            if let rate = config.rateLimit { settings.rateLimit = rate }
            settings.timeoutSeconds = config.timeoutSeconds
            settings.maxRetries = config.maxRetries
            let geocoder = try HTTPGeocoder(
                settings: settings, backoffSeconds: options.backoffSeconds,
                maxBackoffSeconds: options.maxBackoffSeconds)
            let cache = try GeocodeCache(
                path: try cachePath(), maxAgeSeconds: options.refreshGeocodes ? 0 : config.maxAgeDays * 86_400)
            finder = .http(
                geocoder, cache, workers: (0..<config.concurrency).map { CurlWorker(name: "geocode-\($0)") })
        }
        keyer = AddressKeyer(query: query, scope: Self.scope(config))
    }

    /// What a cached answer holds for besides its address: the provider, its address and the
    /// countries asked.
    static func scope(_ config: PipelineConfig.Geocode) -> String {
        "\(config.provider) \(config.url ?? config.gazetteer ?? "") \(config.countryCodes.sorted())"
    }

    /// The map's geocode field as `"slug":`, when the map geocodes (`.toMap` answers only then).
    private var mapField: [UInt8] {
        if case .map(let field) = finder { field } else { [] }
    }

    /// `"slug":`, to put a value after.
    private static func propertyKey(_ slug: String) -> [UInt8] {
        var key: [UInt8] = []
        JSONBytes.appendString(slug, to: &key)
        key.append(UInt8(ascii: ":"))
        return key
    }

    /// What became of one distinct address, when asked.
    enum Outcome {
        case found(GeocodeCache.Place)
        case notFound
        case failed(String)
    }

    /// What became of each distinct address of a block, by its index: flat arrays, so that a
    /// block of cached answers costs no allocation per address.
    struct Answers: Sendable {
        enum Kind: UInt8 {
            case failed, found, notFound, toMap
        }

        var kinds: [Kind]
        var confidences: [Double]
        /// Each found place's `lon,lat` text, at `pointStarts[index]..<pointEnds[index]` in `points`.
        var points: [UInt8] = []
        var pointStarts: [Int]
        var pointEnds: [Int]
        /// The reason of a failure; the label of a place found.
        var notes: [Int: String] = [:]

        init(count: Int, kind: Kind) {
            kinds = Array(repeating: kind, count: count)
            confidences = Array(repeating: 0, count: count)
            pointStarts = Array(repeating: 0, count: count)
            pointEnds = Array(repeating: 0, count: count)
        }

        mutating func set(_ index: Int, _ outcome: Outcome) {
            switch outcome {
            case .found(let place):
                kinds[index] = .found
                confidences[index] = place.confidence
                notes[index] = place.label
                pointStarts[index] = points.count
                CoordinateText.appendDegrees(place.longitude, place.latitude, to: &points)
                pointEnds[index] = points.count
            case .notFound:
                kinds[index] = .notFound
            case .failed(let reason):
                kinds[index] = .failed
                notes[index] = reason
            }
        }
    }

    /// A block with its rows' address keys (`GeocodeStage.keys`), for `geocode`.
    struct KeyedBlock: Sendable {
        var block: ValidatedBlock
        /// Each distinct address once: its key, and the first record that has it.
        var keys: [AddressKey] = []
        var firstRecords: [Int] = []
        /// Per accepted row: the index of its address in `keys`, `GeocodeStage.kept` (it has its
        /// own point) or `GeocodeStage.noAddress`.
        var addresses: [Int] = []
        /// The block's digest, when the cache keeps block memos (geocoders over HTTP).
        var digest: AddressKey?
        /// The block's answers as a memo kept them (then `keys` is empty).
        var memo: Memo?
    }

    /// The first half of the stage, in a task of its own: the block's memo when the cache holds
    /// one for it, else each row's address key, from its bytes.
    func keys(_ block: ValidatedBlock) throws -> KeyedBlock {
        func needed(_ position: Int) -> Bool {
            when == .always
                || block.coordinateEnds[position] == (position == 0 ? 0 : block.coordinateEnds[position - 1])
        }
        var keyed = KeyedBlock(block: block)
        if case .http(_, let cache, _) = finder {
            var scratch: [UInt8] = []
            let digest = keyer.digest(block, needed: needed, scratch: &scratch)
            keyed.digest = digest
            if let bytes = try cache.memo(digest),
                let memo = Memo(bytes, rows: block.accepted.indices.filter(needed), count: block.accepted.count),
                memo.lowestConfidence >= minConfidence
            {
                keyed.memo = memo
                return keyed
            }
        }
        return keys(block, keyed, needed: needed)
    }

    private func keys(_ block: ValidatedBlock, _ keyed: KeyedBlock, needed: (Int) -> Bool) -> KeyedBlock {
        var keyed = keyed
        var distinct: [AddressKey: Int] = [:]
        distinct.reserveCapacity(block.accepted.count)
        keyed.addresses.reserveCapacity(block.accepted.count)
        var scratch = AddressBytes()
        block.records.bytes.withUnsafeBytes { bytes in
            for (position, record) in block.accepted.enumerated() {
                guard needed(position) else {
                    keyed.addresses.append(Self.kept)
                    continue
                }
                guard let key = keyer.key(record, of: block.records, bytes: bytes, scratch: &scratch) else {
                    keyed.addresses.append(Self.noAddress)
                    continue
                }
                if let index = distinct[key] {
                    keyed.addresses.append(index)
                } else {
                    distinct[key] = keyed.keys.count
                    keyed.addresses.append(keyed.keys.count)
                    keyed.keys.append(key)
                    keyed.firstRecords.append(record)
                }
            }
        }
        return keyed
    }

    /// Both halves of the stage, one after the other.
    func geocode(_ block: ValidatedBlock) async throws -> ValidatedBlock {
        try await geocode(try keys(block))
    }

    /// The second half of the stage: the answers for the block's distinct addresses, from the
    /// cache, the geocoder, the gazetteer or the map, and the block rebuilt with them.
    func geocode(_ keyed: KeyedBlock) async throws -> ValidatedBlock {
        if let memo = keyed.memo {
            cacheHits.add(memo.distinct, ordering: .relaxed)
            return rebuild(keyed.block, addresses: memo.addresses, answers: memo.answers)
        }
        let (block, keys, firstRecords, addresses) = (keyed.block, keyed.keys, keyed.firstRecords, keyed.addresses)
        guard addresses.contains(where: { $0 != Self.kept }) else { return block }
        func address(_ index: Int) -> Address {
            query.address(firstRecords[index], of: block.records) ?? Address(freeForm: "")
        }
        var answers: Answers
        switch finder {
        case .map:
            answers = Answers(count: keys.count, kind: .toMap)
        case .gazetteer(let gazetteer, let countries):
            answers = Answers(count: keys.count, kind: .notFound)
            for index in keys.indices {
                do {
                    let candidates = try gazetteer.candidates(for: address(index), countries: countries)
                    answers.set(index, GeocoderAnswers.best(candidates).map { .found($0.place) } ?? .notFound)
                } catch let error as ImportError {
                    answers.set(index, .failed(error.message))
                }
            }
        case .http(let geocoder, let cache, let workers):
            // The cache, then the geocoder.
            answers = Answers(count: keys.count, kind: .failed)
            var known = [Bool](repeating: false, count: keys.count)
            var oldest = Date().timeIntervalSince1970
            let readAt = try cache.visit(keys) { index, row in
                known[index] = true
                oldest = min(oldest, row.storedAt)
                guard row.found else {
                    answers.kinds[index] = .notFound
                    return
                }
                let confidence = row.confidence
                answers.kinds[index] = .found
                answers.confidences[index] = confidence
                answers.pointStarts[index] = answers.points.count
                row.appendPoint(to: &answers.points)
                answers.pointEnds[index] = answers.points.count
                // The label is read only for the rows that will name it.
                if confidence < minConfidence { answers.notes[index] = row.label }
            }
            let toAsk = keys.indices.filter { !known[$0] }.map { (index: $0, address: address($0)) }
            cacheHits.add(keys.count - toAsk.count, ordering: .relaxed)
            let asking = Asking(geocoder: geocoder, cache: cache, onAnswer: onAnswer.withLockedValue { $0 })
            let (asked, replaced) = try await asking.ask(toAsk, keys: keys, on: workers)
            for (index, outcome) in asked { answers.set(index, outcome) }
            // Every address answered: the block's memo, for the next run of the same file (when
            // no other run replaced an answer meanwhile).
            if let digest = keyed.digest, !answers.kinds.contains(.failed) {
                try cache.storeMemo(
                    digest, answers: Memo.encode(addresses: addresses, answers: answers), oldest: oldest,
                    generation: readAt + Int64(replaced))
            }
        }
        return rebuild(block, addresses: addresses, answers: answers)
    }

    /// A block's answers kept whole in the cache (`GeocodeCache.memo`): per row that needs a
    /// point, in order, a tag (0: no address, 1: found, 2: not found) and, for a place, its
    /// confidence (8 bytes) and its `lon,lat` text (a length byte, then the text); after a header
    /// of the block's distinct addresses (4 bytes), which the memo stands for in the summary's
    /// cache hits.
    struct Memo: Sendable {
        var addresses: [Int]
        var answers: Answers
        var distinct: Int
        var lowestConfidence = Double.infinity

        /// Reads a memo for a block of `count` accepted rows, of which `rows` (positions) need a
        /// point; nil when it does not fit them.
        init?(_ bytes: [UInt8], rows: [Int], count: Int) {
            guard bytes.count >= 4 else { return nil }
            distinct = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
            addresses = Array(repeating: GeocodeStage.kept, count: count)
            answers = Answers(count: rows.count, kind: .notFound)
            var at = 4
            for (index, position) in rows.enumerated() {
                guard at < bytes.count else { return nil }
                let tag = bytes[at]
                at += 1
                switch tag {
                case 0:
                    addresses[position] = GeocodeStage.noAddress
                case 2:
                    addresses[position] = index
                case 1:
                    guard at + 9 <= bytes.count else { return nil }
                    var bits: UInt64 = 0
                    for shift in 0..<8 { bits |= UInt64(bytes[at + shift]) << (shift * 8) }
                    let confidence = Double(bitPattern: bits)
                    let length = Int(bytes[at + 8])
                    at += 9
                    guard at + length <= bytes.count else { return nil }
                    addresses[position] = index
                    answers.kinds[index] = .found
                    answers.confidences[index] = confidence
                    answers.pointStarts[index] = answers.points.count
                    answers.points += bytes[at..<at + length]
                    answers.pointEnds[index] = answers.points.count
                    lowestConfidence = min(lowestConfidence, confidence)
                    at += length
                default:
                    return nil
                }
            }
            guard at == bytes.count else { return nil }
        }

        /// A memo of a block answered address by address.
        static func encode(addresses: [Int], answers: Answers) -> [UInt8] {
            let distinct = answers.kinds.count
            var bytes: [UInt8] = [
                UInt8(truncatingIfNeeded: distinct), UInt8(truncatingIfNeeded: distinct >> 8),
                UInt8(truncatingIfNeeded: distinct >> 16), UInt8(truncatingIfNeeded: distinct >> 24),
            ]
            for index in addresses where index != GeocodeStage.kept {
                guard index != GeocodeStage.noAddress else {
                    bytes.append(0)
                    continue
                }
                guard answers.kinds[index] == .found else {
                    bytes.append(2)
                    continue
                }
                bytes.append(1)
                let bits = answers.confidences[index].bitPattern
                for shift in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: bits >> (shift * 8))) }
                let point = answers.points[answers.pointStarts[index]..<answers.pointEnds[index]]
                bytes.append(UInt8(point.count))
                bytes += point
            }
            return bytes
        }
    }

    /// Rows that keep their own point, and rows without an address, in `geocode`'s row list.
    static let kept = -1
    static let noAddress = -2

    /// Asks a geocoder over HTTP, and keeps its answers in the cache.
    private struct Asking: Sendable {
        let geocoder: HTTPGeocoder
        let cache: GeocodeCache
        let onAnswer: (@Sendable () -> Void)?

        /// Asks the geocoder for each address, on the stage's connections; stores every answer.
        /// Returns the answers, and how many of them replaced a different one in the cache.
        func ask(_ addresses: [(index: Int, address: Address)], keys: [AddressKey], on workers: [CurlWorker])
            async throws -> (answers: [(Int, Outcome)], replaced: Int)
        {
            guard !addresses.isEmpty else { return ([], 0) }
            final class Cursor: Sendable {
                let next = Atomic<Int>(0)
                let replaced = Atomic<Int>(0)
            }
            let cursor = Cursor()
            let answers = try await withThrowingTaskGroup(of: [(Int, Outcome)].self) { group in
                for worker in workers.prefix(addresses.count) {
                    group.addTask {
                        var answered: [(Int, Outcome)] = []
                        while true {
                            let index = cursor.next.add(1, ordering: .relaxed).oldValue
                            guard index < addresses.count else { return answered }
                            let (position, address) = addresses[index]
                            let (outcome, replaced) = try await answer(address, key: keys[position], worker: worker)
                            if replaced { cursor.replaced.add(1, ordering: .relaxed) }
                            answered.append((position, outcome))
                        }
                    }
                }
                var all: [(Int, Outcome)] = []
                for try await part in group { all += part }
                return all
            }
            return (answers, cursor.replaced.load(ordering: .relaxed))
        }

        private func answer(_ address: Address, key: AddressKey, worker: CurlWorker) async throws -> (Outcome, Bool) {
            let candidates: [GeocodeCandidate]
            do {
                candidates = try await geocoder.candidates(for: address, worker: worker)
            } catch let error as ImportError {
                return (.failed(error.message), false)
            }
            let countries = geocoder.settings.countryCodes
            let entry: GeocodeCache.Entry =
                GeocoderAnswers.best(candidates, countries: countries).map { .found($0.place) } ?? .notFound
            let replaced = try cache.store(entry, key: key)
            onAnswer?()
            switch entry {
            case .found(let place): return (.found(place), replaced)
            case .notFound: return (.notFound, replaced)
            }
        }
    }

    /// The block with the points found, and the rows that got none rejected.
    private func rebuild(_ block: ValidatedBlock, addresses: [Int], answers: Answers) -> ValidatedBlock {
        var result = block
        result.accepted = []
        result.accepted.reserveCapacity(block.accepted.count)
        result.coordinates = []
        result.coordinates.reserveCapacity(block.accepted.count * 24)
        result.coordinateEnds = []
        result.coordinateEnds.reserveCapacity(block.accepted.count)
        var rejections: [Rejection] = []
        var placed = 0
        // Per accepted row of the result: the geocoder's confidence, or NaN.
        var confidences: [Double] = []
        confidences.reserveCapacity(block.accepted.count)
        block.coordinates.withUnsafeBytes { coordinates in
            answers.points.withUnsafeBytes { points in
                for (position, record) in block.accepted.enumerated() {
                    let index = addresses[position]
                    if index == Self.kept {
                        let start = position == 0 ? 0 : block.coordinateEnds[position - 1]
                        result.coordinates.appendBytes(
                            UnsafeRawBufferPointer(rebasing: coordinates[start..<block.coordinateEnds[position]]))
                        result.coordinateEnds.append(result.coordinates.count)
                        result.accepted.append(record)
                        confidences.append(.nan)
                        continue
                    }
                    let rejection: (RejectCode, String)
                    if index == Self.noAddress {
                        rejection = (
                            .missingAddress, "the row has no address to geocode (its address columns are empty)"
                        )
                    } else {
                        let confidence = answers.confidences[index]
                        switch answers.kinds[index] {
                        case .found where confidence >= minConfidence:
                            result.coordinates.appendBytes(
                                UnsafeRawBufferPointer(
                                    rebasing: points[answers.pointStarts[index]..<answers.pointEnds[index]]))
                            result.coordinateEnds.append(result.coordinates.count)
                            result.accepted.append(record)
                            confidences.append(confidence)
                            if let qualityKey {
                                var property = qualityKey
                                property += Array(String((confidence * 1000).rounded() / 1000).utf8)
                                result.addedProperties[record] = property
                            }
                            placed += 1
                            continue
                        case .toMap:
                            // No point: the map geocodes the address it finds under its geocode field.
                            result.coordinateEnds.append(result.coordinates.count)
                            result.accepted.append(record)
                            confidences.append(.nan)
                            var property = mapField
                            JSONBytes.appendString(address(record, of: block).text, to: &property)
                            result.addedProperties[record] = property
                            placed += 1
                            continue
                        case .found:
                            rejection = (
                                .geocodeLowConfidence,
                                "the best match for \"\(address(record, of: block).text)\" is \"\(answers.notes[index] ?? "")\" with confidence \(confidence.formatted()), below geocode.min_confidence \(minConfidence.formatted())"
                            )
                        case .notFound:
                            rejection = (
                                .addressNotFound,
                                "the geocoder knows no place for \"\(address(record, of: block).text)\""
                            )
                        case .failed:
                            rejection = (
                                .geocodeFailed,
                                "geocoding \"\(address(record, of: block).text)\" failed: \(answers.notes[index] ?? "no answer")"
                            )
                        }
                    }
                    rejections.append(
                        Rejection(
                            line: block.records.lines[record], code: rejection.0, column: "", message: rejection.1,
                            fields: block.records.originalCells(record)))
                }
            }
        }
        if confidences.contains(where: { !$0.isNaN }) { result.geocodedConfidence = confidences }
        if !rejections.isEmpty {
            result.records.rejections += rejections
            result.records.rejections.sort { $0.line < $1.line }
        }
        geocoded.add(placed, ordering: .relaxed)
        return result
    }

    private func address(_ record: Int, of block: ValidatedBlock) -> Address {
        query.address(record, of: block.records) ?? Address(freeForm: "")
    }
}
