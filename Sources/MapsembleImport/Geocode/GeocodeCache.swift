import Foundation
import NIOConcurrencyHelpers

/// A geocoder's answers kept between runs, in SQLite: keyed by provider, the normalised query and
/// the options that change an answer (countries, say); a place found and "not found" are both
/// kept, so a weekly rerun of an unchanged file asks the geocoder nothing. Each answer is
/// committed (`synchronous = FULL`) before `store` returns: a row uploaded after it never needs
/// asking again, even after `kill -9`. Entries older than `maxAgeSeconds` are asked again.
///
/// Safe to call from several tasks: one lock around the database.
final class GeocodeCache: @unchecked Sendable {  // `database` and the statements are used under `lock` only
    /// Where a geocoder put an address.
    struct Place: Sendable, Equatable {
        var longitude: Double
        var latitude: Double
        /// How sure the geocoder was, 0…1.
        var confidence: Double
        /// What it matched, as it names it.
        var label: String
    }

    enum Entry: Sendable, Equatable {
        case found(Place)
        case notFound
    }

    /// Answers older than this are not used (nil: any age). A run with `--refresh-geocodes`
    /// passes 0.
    let maxAgeSeconds: Double?
    private let lock = NIOLock()
    private let database: SQLiteDatabase
    private let select: SQLiteDatabase.Statement
    private let upsert: SQLiteDatabase.Statement

    /// The cache's format; a file in another one is read as empty and rewritten.
    private static let version = 1

    init(path: String, maxAgeSeconds: Double? = nil) throws {
        self.maxAgeSeconds = maxAgeSeconds
        let database = try SQLiteDatabase(path: path)
        self.database = database
        let stored = try database.prepare("PRAGMA user_version").rows().first?.first
        if stored != .integer(Int64(Self.version)) {
            try database.transaction {
                try database.execute("DROP TABLE IF EXISTS geocodes")
                try database.execute(
                    """
                    CREATE TABLE geocodes (
                        provider TEXT NOT NULL, query TEXT NOT NULL, options TEXT NOT NULL,
                        found INTEGER NOT NULL, longitude REAL, latitude REAL, confidence REAL, label TEXT,
                        stored_at REAL NOT NULL,
                        PRIMARY KEY (provider, query, options)
                    ) WITHOUT ROWID
                    """)
                try database.execute("PRAGMA user_version = \(Self.version)")
            }
        }
        select = try database.prepare(
            """
            SELECT found, longitude, latitude, confidence, label, stored_at FROM geocodes
            WHERE provider = ? AND query = ? AND options = ?
            """)
        upsert = try database.prepare(
            """
            INSERT INTO geocodes (provider, query, options, found, longitude, latitude, confidence, label, stored_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (provider, query, options) DO UPDATE SET
                found = excluded.found, longitude = excluded.longitude, latitude = excluded.latitude,
                confidence = excluded.confidence, label = excluded.label, stored_at = excluded.stored_at
            """)
    }

    /// The kept answer for a query, when there is one young enough.
    func lookup(provider: String, query: String, options: String, now: Date = Date()) throws -> Entry? {
        try lookup(provider: provider, queries: [query], options: options, now: now)[query]
    }

    /// The kept answers for many queries (a block's addresses), read in one transaction: one lock
    /// of the file for all of them, not one each.
    func lookup(provider: String, queries: [String], options: String, now: Date = Date()) throws -> [String: Entry] {
        try lock.withLock {
            try database.transaction(immediate: false) {
                var found: [String: Entry] = [:]
                for query in queries {
                    guard let row = try select.rows([.text(provider), .text(query), .text(options)]).first,
                        case .real(let storedAt) = row[5]
                    else { continue }
                    if let maxAgeSeconds, now.timeIntervalSince1970 - storedAt >= maxAgeSeconds { continue }
                    guard row[0] == .integer(1) else {
                        found[query] = .notFound
                        continue
                    }
                    guard case .real(let longitude) = row[1], case .real(let latitude) = row[2],
                        case .real(let confidence) = row[3], case .text(let label) = row[4]
                    else { continue }
                    found[query] = .found(
                        Place(longitude: longitude, latitude: latitude, confidence: confidence, label: label))
                }
                return found
            }
        }
    }

    /// Keeps an answer, durably, replacing an older one for the same query.
    func store(_ entry: Entry, provider: String, query: String, options: String, now: Date = Date()) throws {
        var values: [SQLiteDatabase.Statement.Value] = [.text(provider), .text(query), .text(options)]
        switch entry {
        case .found(let place):
            values += [
                .integer(1), .real(place.longitude), .real(place.latitude), .real(place.confidence),
                .text(place.label),
            ]
        case .notFound:
            values += [.integer(0), .null, .null, .null, .null]
        }
        values.append(.real(now.timeIntervalSince1970))
        try lock.withLock { try upsert.run(values) }
    }
}
