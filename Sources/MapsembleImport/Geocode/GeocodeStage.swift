import Foundation
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
        case http(HTTPGeocoder, GeocodeCache, provider: String, options: String, workers: [CurlWorker])
        /// The local gazetteer: its own index, no cache.
        case gazetteer(Gazetteer, countries: [String])
        /// The map geocodes: rows go with `"geometry": null` and the address under `field`.
        case map(field: [UInt8])
    }

    /// Rows given a point by the geocoder (or sent for the map to geocode), addresses answered
    /// from the cache, requests sent (lookups, for the gazetteer).
    let geocoded = Atomic<Int>(0)
    let cacheHits = Atomic<Int>(0)
    var requests: Int {
        switch finder {
        case .http(let geocoder, _, _, _, _): geocoder.requests
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
                geocoder, cache, provider: "\(provider.rawValue) \(geocoder.baseURL)",
                options: config.countryCodes.sorted().joined(separator: ","),
                workers: (0..<config.concurrency).map { CurlWorker(name: "geocode-\($0)") })
        }
    }

    /// `"slug":`, to put a value after.
    private static func propertyKey(_ slug: String) -> [UInt8] {
        var key: [UInt8] = []
        JSONBytes.appendString(slug, to: &key)
        key.append(UInt8(ascii: ":"))
        return key
    }

    /// What became of one distinct address.
    private enum Outcome {
        case found(GeocodeCache.Place)
        case notFound
        case failed(String)
        /// Sent for the map to geocode.
        case toMap
    }

    func geocode(_ block: ValidatedBlock) async throws -> ValidatedBlock {
        // The rows that need a point, their addresses and the keys they are asked under.
        var needed: [Int: (address: Address, key: String)] = [:]
        var missing: Set<Int> = []
        for (position, record) in block.accepted.enumerated() {
            let start = position == 0 ? 0 : block.coordinateEnds[position - 1]
            guard when == .always || block.coordinateEnds[position] == start else { continue }
            if let address = query.address(record, of: block.records) {
                needed[position] = (address, address.key)
            } else {
                missing.insert(position)
            }
        }
        guard !needed.isEmpty || !missing.isEmpty else { return block }
        // Each distinct address once.
        var distinct: [String: Address] = [:]
        for (address, key) in needed.values { distinct[key] = address }
        var outcomes: [String: Outcome] = [:]
        switch finder {
        case .map:
            for key in distinct.keys { outcomes[key] = .toMap }
        case .gazetteer(let gazetteer, let countries):
            for (key, address) in distinct {
                let candidates: [GeocodeCandidate]
                do {
                    candidates = try gazetteer.candidates(for: address, countries: countries)
                } catch let error as ImportError {
                    outcomes[key] = .failed(error.message)
                    continue
                }
                outcomes[key] = GeocoderAnswers.best(candidates).map { .found($0.place) } ?? .notFound
            }
        case .http(let geocoder, let cache, let provider, let options, let workers):
            // The cache, then the geocoder.
            var toAsk: [(key: String, address: Address)] = []
            let cached = try cache.lookup(provider: provider, queries: Array(distinct.keys), options: options)
            for (key, address) in distinct {
                switch cached[key] {
                case .found(let place): outcomes[key] = .found(place)
                case .notFound: outcomes[key] = .notFound
                case nil: toAsk.append((key, address))
                }
            }
            cacheHits.add(cached.count, ordering: .relaxed)
            let asking = Asking(geocoder: geocoder, cache: cache, provider: provider, options: options)
            for (key, outcome) in try await asking.ask(toAsk, on: workers) { outcomes[key] = outcome }
        }
        return rebuild(block, needed: needed, missing: missing, outcomes: outcomes)
    }

    /// Asks a geocoder over HTTP, and keeps its answers in the cache.
    private struct Asking: Sendable {
        let geocoder: HTTPGeocoder
        let cache: GeocodeCache
        let provider: String
        let options: String

        /// Asks the geocoder for each address, on the stage's connections; stores every answer.
        func ask(_ addresses: [(key: String, address: Address)], on workers: [CurlWorker]) async throws -> [(
            String, Outcome
        )] {
            guard !addresses.isEmpty else { return [] }
            final class Cursor: Sendable { let next = Atomic<Int>(0) }
            let cursor = Cursor()
            return try await withThrowingTaskGroup(of: [(String, Outcome)].self) { group in
                for worker in workers.prefix(addresses.count) {
                    group.addTask {
                        var answered: [(String, Outcome)] = []
                        while true {
                            let index = cursor.next.add(1, ordering: .relaxed).oldValue
                            guard index < addresses.count else { return answered }
                            let (key, address) = addresses[index]
                            answered.append((key, try await answer(address, key: key, worker: worker)))
                        }
                    }
                }
                var all: [(String, Outcome)] = []
                for try await part in group { all += part }
                return all
            }
        }

        private func answer(_ address: Address, key: String, worker: CurlWorker) async throws -> Outcome {
            let candidates: [GeocodeCandidate]
            do {
                candidates = try await geocoder.candidates(for: address, worker: worker)
            } catch let error as ImportError {
                return .failed(error.message)
            }
            let countries = geocoder.settings.countryCodes
            let entry: GeocodeCache.Entry =
                GeocoderAnswers.best(candidates, countries: countries).map { .found($0.place) } ?? .notFound
            try cache.store(entry, provider: provider, query: key, options: options)
            switch entry {
            case .found(let place): return .found(place)
            case .notFound: return .notFound
            }
        }
    }

    /// The block with the points found, and the rows that got none rejected.
    private func rebuild(
        _ block: ValidatedBlock, needed: [Int: (address: Address, key: String)], missing: Set<Int>,
        outcomes: [String: Outcome]
    ) -> ValidatedBlock {
        var result = block
        result.accepted = []
        result.coordinates = []
        result.coordinateEnds = []
        var placed = 0
        block.coordinates.withUnsafeBytes { coordinates in
            for (position, record) in block.accepted.enumerated() {
                func reject(_ code: RejectCode, _ message: String) {
                    result.records.rejections.append(
                        Rejection(
                            line: block.records.lines[record], code: code, column: "", message: message,
                            fields: block.records.originalCells(record)))
                }
                if missing.contains(position) {
                    reject(.missingAddress, "the row has no address to geocode (its address columns are empty)")
                    continue
                }
                guard let (address, key) = needed[position] else {
                    let start = position == 0 ? 0 : block.coordinateEnds[position - 1]
                    result.coordinates.appendBytes(
                        UnsafeRawBufferPointer(rebasing: coordinates[start..<block.coordinateEnds[position]]))
                    result.coordinateEnds.append(result.coordinates.count)
                    result.accepted.append(record)
                    continue
                }
                switch outcomes[key] ?? .failed("no answer") {
                case .found(let place) where place.confidence >= minConfidence:
                    CoordinateText.appendDegrees(place.longitude, to: &result.coordinates)
                    result.coordinates.append(UInt8(ascii: ","))
                    CoordinateText.appendDegrees(place.latitude, to: &result.coordinates)
                    result.coordinateEnds.append(result.coordinates.count)
                    result.accepted.append(record)
                    if let qualityKey {
                        var property = qualityKey
                        property += Array(String((place.confidence * 1000).rounded() / 1000).utf8)
                        result.addedProperties[record] = property
                    }
                    placed += 1
                case .toMap:
                    guard case .map(let field) = finder else { break }
                    // No point: the map geocodes the address it finds under its geocode field.
                    result.coordinateEnds.append(result.coordinates.count)
                    result.accepted.append(record)
                    var property = field
                    JSONBytes.appendString(address.text, to: &property)
                    result.addedProperties[record] = property
                    placed += 1
                case .found(let place):
                    reject(
                        .geocodeLowConfidence,
                        "the best match for \"\(address.text)\" is \"\(place.label)\" with confidence \(place.confidence.formatted()), below geocode.min_confidence \(minConfidence.formatted())"
                    )
                case .notFound:
                    reject(.addressNotFound, "the geocoder knows no place for \"\(address.text)\"")
                case .failed(let reason):
                    reject(.geocodeFailed, "geocoding \"\(address.text)\" failed: \(reason)")
                }
            }
        }
        result.records.rejections.sort { $0.line < $1.line }
        geocoded.add(placed, ordering: .relaxed)
        return result
    }
}
