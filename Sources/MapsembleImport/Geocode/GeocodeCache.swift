import Foundation
import NIOConcurrencyHelpers

/// A geocoder's answers kept between runs, in SQLite, keyed by `AddressKey` (the normalised
/// query, hashed with the provider, its address and the options that change an answer, such as the
/// countries); a place found and "not found" are both kept, so a weekly rerun of an unchanged file
/// asks the geocoder nothing. Each answer is committed (`synchronous = FULL`) before `store`
/// returns: a row uploaded after it never needs asking again, even after `kill -9`. Entries older
/// than `maxAgeSeconds` are asked again. The file holds no address text: only keys and answers.
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
    private let scan: SQLiteDatabase.Statement
    private let insert: SQLiteDatabase.Statement
    private let update: SQLiteDatabase.Statement
    private let renew: SQLiteDatabase.Statement
    private let bump: SQLiteDatabase.Statement
    private let generation: SQLiteDatabase.Statement
    private let readMemo: SQLiteDatabase.Statement
    private let writeMemo: SQLiteDatabase.Statement
    /// About how many answers the file holds: counted when opened, then counted up per store.
    private var rows: Int64 = 0

    /// The cache's format; a file in another one is read as empty and rewritten.
    private static let version = 4
    /// Keys read per statement.
    private static let batch = 256

    init(path: String, maxAgeSeconds: Double? = nil) throws {
        self.maxAgeSeconds = maxAgeSeconds
        let database = try SQLiteDatabase(path: path)
        self.database = database
        let stored = try database.prepare("PRAGMA user_version").rows().first?.first
        if stored != .integer(Int64(Self.version)) {
            try database.transaction {
                try database.execute(
                    "DROP TABLE IF EXISTS geocodes; DROP TABLE IF EXISTS blocks; DROP TABLE IF EXISTS meta")
                try database.execute(
                    """
                    CREATE TABLE geocodes (
                        key INTEGER PRIMARY KEY, verify INTEGER NOT NULL,
                        found INTEGER NOT NULL, longitude REAL, latitude REAL, confidence REAL, label TEXT,
                        point TEXT, stored_at REAL NOT NULL
                    );
                    CREATE TABLE blocks (
                        digest INTEGER PRIMARY KEY, verify INTEGER NOT NULL, generation INTEGER NOT NULL,
                        oldest REAL NOT NULL, answers BLOB NOT NULL
                    );
                    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                    INSERT INTO meta (key, value) VALUES ('generation', 0);
                    """)
                try database.execute("PRAGMA user_version = \(Self.version)")
            }
        }
        // Up to 4 MB of pages kept in memory (SQLite's default is 2 MB), and no more: a rerun of an
        // unchanged file reads block memos, a few pages each, and the run's memory stays flat
        // however large the cache (measured: 100,000 and 1,000,000 addresses within 2 %; with
        // 16 MB, 11 % apart).
        try database.execute("PRAGMA cache_size = -4096")
        select = try database.prepare(
            """
            SELECT key, verify, found, longitude, latitude, confidence, label, stored_at, point FROM geocodes
            WHERE key IN (\(Array(repeating: "?", count: Self.batch).joined(separator: ",")))
            """)
        scan = try database.prepare(
            """
            SELECT key, verify, found, longitude, latitude, confidence, label, stored_at, point FROM geocodes
            WHERE key BETWEEN ? AND ?
            """)
        if case .integer(let count) = try database.prepare("SELECT count(*) FROM geocodes").rows().first?.first {
            rows = count
        }
        insert = try database.prepare(
            """
            INSERT INTO geocodes (key, verify, found, longitude, latitude, confidence, label, point, stored_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING
            """)
        update = try database.prepare(
            """
            UPDATE geocodes SET verify = ?2, found = ?3, longitude = ?4, latitude = ?5, confidence = ?6, label = ?7,
                point = ?8, stored_at = ?9
            WHERE key = ?1 AND NOT (verify IS ?2 AND found IS ?3 AND longitude IS ?4 AND latitude IS ?5
                AND confidence IS ?6)
            """)
        renew = try database.prepare(
            "UPDATE geocodes SET label = ?7, point = ?8, stored_at = ?9 WHERE key = ?1 AND verify = ?2 AND found = ?3")
        bump = try database.prepare("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
        generation = try database.prepare("SELECT value FROM meta WHERE key = 'generation'")
        readMemo = try database.prepare("SELECT verify, generation, oldest, answers FROM blocks WHERE digest = ?")
        writeMemo = try database.prepare(
            "INSERT OR REPLACE INTO blocks (digest, verify, generation, oldest, answers) VALUES (?, ?, ?, ?, ?)")
        if let maxAgeSeconds, maxAgeSeconds > 0 {
            try database.execute("DELETE FROM blocks WHERE oldest <= \(Date().timeIntervalSince1970 - maxAgeSeconds)")
        }
        if case .integer(let count) = try database.prepare("SELECT count(*) FROM geocodes").rows().first?.first {
            rows = count
        }
    }

    /// The kept answer for a key, when there is one young enough.
    func lookup(_ key: AddressKey, now: Date = Date()) throws -> Entry? {
        try lookup([key], now: now)[0]
    }

    /// The kept answers for many distinct keys, in their order.
    func lookup(_ keys: [AddressKey], now: Date = Date()) throws -> [Entry?] {
        var found = [Entry?](repeating: nil, count: keys.count)
        try visit(keys, now: now) { position, row in
            found[position] =
                row.found
                ? .found(
                    Place(
                        longitude: row.longitude, latitude: row.latitude, confidence: row.confidence,
                        label: row.label))
                : .notFound
        }
        return found
    }

    /// A kept answer as `visit` reads it, straight from SQLite's row.
    struct Row: ~Copyable {
        fileprivate let statement: SQLiteDatabase.Statement
        /// A place, or "not found".
        var found: Bool { statement.integer(2) == 1 }
        var longitude: Double { statement.real(3) }
        var latitude: Double { statement.real(4) }
        var confidence: Double { statement.real(5) }
        var label: String { statement.text(6) }
        /// When it was stored, in seconds since 1970.
        var storedAt: Double { statement.real(7) }
        /// The place as `lon,lat` JSON text (`CoordinateText.appendDegrees`), appended to `out`.
        func appendPoint(to out: inout [UInt8]) { statement.appendText(8, to: &out) }
    }

    /// Calls `body` with the position (in `keys`) and the row of each key the cache holds an answer
    /// for, young enough; read in one transaction (one lock of the file for all of them). The
    /// keys are taken in key order, `batch` at a time, and each batch read either by seeking each
    /// key (`key IN (…)`) or, when the answers in its key range are few enough (a rerun of a file
    /// whose cache holds little else), by reading that range through; SQLite returns both in key
    /// order, merged with the batch.
    ///
    /// Returns the generation the answers were read at (for `storeMemo`).
    @discardableResult
    func visit(_ keys: [AddressKey], now: Date = Date(), _ body: (Int, borrowing Row) throws -> Void) throws -> Int64 {
        let oldest = maxAgeSeconds.map { now.timeIntervalSince1970 - $0 }
        let order = keys.indices.sorted { keys[$0].primary < keys[$1].primary }
        return try lock.withLock {
            try database.transaction(immediate: false) {
                let readAt = try currentGeneration()
                var start = 0
                while start < order.count {
                    let batch = order[start..<min(start + Self.batch, order.count)]
                    let low = keys[batch.first!].primary
                    let high = keys[batch.last!].primary
                    // Answers expected in the range, against the seeks the batch would take (a
                    // seek costs about as much as reading 4 answers in order: 1 µs and 0.2 µs here).
                    let share = (Double(high) - Double(low)) / 18_446_744_073_709_551_616.0
                    let statement: SQLiteDatabase.Statement
                    if Double(rows) * share < Double(batch.count * 4) {
                        statement = scan
                        try scan.bind(integers: [low, high])
                    } else {
                        statement = select
                        // The last statement's spare parameters repeat its last key.
                        try select.bind(
                            integers: (0..<Self.batch).lazy.map {
                                keys[batch[batch.startIndex + min($0, batch.count - 1)]].primary
                            })
                    }
                    var next = batch.startIndex
                    var previous = Int64.min
                    while try statement.step() {
                        let primary = statement.integer(0)
                        // A row out of key order (not SQLite's way) starts the merge again.
                        if primary < previous { next = batch.startIndex }
                        previous = primary
                        while next < batch.endIndex && keys[order[next]].primary < primary { next += 1 }
                        guard next < batch.endIndex, keys[order[next]].primary == primary else { continue }
                        let position = order[next]
                        guard statement.integer(1) == keys[position].check else { continue }
                        if let oldest, statement.real(7) <= oldest { continue }
                        let row = Row(statement: statement)
                        guard !row.found || (!statement.isNull(3) && !statement.isNull(4)) else { continue }
                        try body(position, row)
                    }
                    start += batch.count
                }
                return readAt
            }
        }
    }

    /// The count of replaced answers (under `lock`).
    private func currentGeneration() throws -> Int64 {
        try generation.bind(integers: [])
        defer { try? generation.bind(integers: []) }
        guard try generation.step() else { throw ImportError(.output, "the geocoding cache has no generation") }
        return generation.integer(0)
    }

    /// Keeps an answer, durably, replacing an older one for the same query. Returns whether it
    /// replaced a different answer (and so made every block memo older than it stale).
    @discardableResult
    func store(_ entry: Entry, key: AddressKey, now: Date = Date()) throws -> Bool {
        var values: [SQLiteDatabase.Statement.Value] = [.integer(key.primary), .integer(key.check)]
        switch entry {
        case .found(let place):
            var point: [UInt8] = []
            CoordinateText.appendDegrees(place.longitude, place.latitude, to: &point)
            values += [
                .integer(1), .real(place.longitude), .real(place.latitude), .real(place.confidence),
                .text(place.label), .text(String(decoding: point, as: UTF8.self)),
            ]
        case .notFound:
            values += [.integer(0), .null, .null, .null, .null, .null]
        }
        values.append(.real(now.timeIntervalSince1970))
        return try lock.withLock {
            try database.transaction {
                try insert.run(values)
                guard database.changes == 0 else {
                    rows += 1
                    return false
                }
                // A different answer for a key answered before: the block memos may hold the old
                // one. The same answer again only renews its age.
                try update.run(values)
                guard database.changes > 0 else {
                    try renew.run(values)
                    return false
                }
                try bump.run()
                return true
            }
        }
    }

    // MARK: Block memos

    /// A block's answers as `storeMemo` kept them, when none of the answers they were made from
    /// has been replaced since (the generation counts replacements) and the oldest is young
    /// enough. A rerun of an unchanged file reads its answers a block at a time this way, not
    /// an address at a time.
    func memo(_ digest: AddressKey, now: Date = Date()) throws -> [UInt8]? {
        try lock.withLock {
            try database.transaction(immediate: false) {
                try readMemo.bind(integers: [digest.primary])
                defer { try? readMemo.bind(integers: []) }
                guard try readMemo.step(), readMemo.integer(0) == digest.check else { return nil }
                if let maxAgeSeconds, readMemo.real(2) <= now.timeIntervalSince1970 - maxAgeSeconds { return nil }
                let made = readMemo.integer(1)
                let blob = readMemo.blob(3)
                return try currentGeneration() == made ? blob : nil
            }
        }
    }

    /// Keeps a block's answers, made from answers the cache holds, the oldest stored at `oldest`;
    /// only when no answer was replaced (by another run sharing the file) since they were read:
    /// `generation` is the one `visit` read them at, plus the block's own replacing stores.
    func storeMemo(_ digest: AddressKey, answers: [UInt8], oldest: Double, generation expected: Int64) throws {
        try lock.withLock {
            try database.transaction {
                let current = try currentGeneration()
                guard current == expected else { return }
                try writeMemo.bind(integers: [digest.primary, digest.check, current])
                try writeMemo.bind(real: oldest, at: 4)
                try writeMemo.bind(blob: answers, at: 5)
                while try writeMemo.step() {}
            }
        }
    }
}
