import Foundation
import Testing

@testable import MapsembleImport

@Suite("State between runs: SQLite, the state folder, the geocoding cache")
struct StateStorageTests {
    @Test("SQLite through the C library: values of every type round-trip, a failed transaction leaves nothing")
    func database() throws {
        let dir = TempDir()
        let database = try SQLiteDatabase(path: dir.path + "/state.sqlite")
        try database.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, n TEXT)")
        let insert = try database.prepare("INSERT INTO t VALUES (?, ?, ?, ?)")
        let rows: [[SQLiteDatabase.Statement.Value]] = [
            [.integer(Int64.min), .real(-38.183646), .text("München, Straße 5 — ü"), .null],
            [.integer(42), .real(1e-300), .text(""), .text("'; DROP TABLE t; --")],
        ]
        try database.transaction { for row in rows { try insert.run(row) } }
        #expect(try database.prepare("SELECT * FROM t ORDER BY rowid").rows() == rows)
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try database.transaction {
                try insert.run([.integer(3), .null, .null, .null])
                throw Stop()
            }
        }
        #expect(try database.prepare("SELECT count(*) FROM t").rows() == [[.integer(2)]])
        #expect(try database.prepare("PRAGMA journal_mode").rows() == [[.text("wal")]])
        #expect {
            try database.execute("SELECT * FROM missing")
        } throws: { error in
            let text = (error as? ImportError)?.description ?? ""
            return text.contains("state.sqlite") && text.contains("no such table: missing")
        }
    }

    @Test("the state folder: --state-dir, then MAPSEMBLE_STATE_DIR, then XDG_STATE_HOME, then ~/.local/state")
    func stateFolder() throws {
        let env = ["MAPSEMBLE_STATE_DIR": "/s", "XDG_STATE_HOME": "/x", "HOME": "/h"]
        #expect(StateDirectory.path(override: "/o", environment: env) == "/o")
        #expect(StateDirectory.path(environment: env) == "/s")
        #expect(StateDirectory.path(environment: ["XDG_STATE_HOME": "/x", "HOME": "/h"]) == "/x/mapsemble-import")
        #expect(StateDirectory.path(environment: ["HOME": "/h"]) == "/h/.local/state/mapsemble-import")
        let dir = TempDir()
        let made = try StateDirectory.create(dir.path + "/a/b")
        let mode = try FileManager.default.attributesOfItem(atPath: made)[.posixPermissions] as? Int
        #expect(mode == 0o700)
    }

    @Test("the cache keeps places and not-found answers, across connections, until they are too old")
    func cache() throws {
        let dir = TempDir()
        let path = dir.path + "/geocode-cache.sqlite"
        let cache = try GeocodeCache(path: path, maxAgeSeconds: 86_400)
        let place = GeocodeCache.Place(
            longitude: 11.5755, latitude: 48.1374, confidence: 0.92, label: "München, Bayern")
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let query = try AddressQuery(address: "a", parts: [:], header: ["a"])
        func key(_ text: String, _ scope: String = "nominatim https://x de") -> AddressKey {
            AddressKeyer(query: query, scope: scope).key(normalised: text)
        }
        #expect(try cache.lookup(key("marienplatz muenchen"), now: now) == nil)
        try cache.store(.found(place), key: key("marienplatz muenchen"), now: now)
        try cache.store(.notFound, key: key("nowhere 1"), now: now)
        #expect(try cache.lookup(key("marienplatz muenchen"), now: now) == .found(place))
        #expect(try cache.lookup(key("nowhere 1"), now: now) == .notFound)
        // Another provider or other options are other questions.
        #expect(try cache.lookup(key("marienplatz muenchen", "photon https://x de"), now: now) == nil)
        #expect(try cache.lookup(key("marienplatz muenchen", "nominatim https://x at"), now: now) == nil)
        // Many keys at once, past one statement's batch, found and missing mixed.
        let many = (0..<700).map { key("street \($0)") }
        for (index, manyKey) in many.enumerated() where index % 3 == 0 {
            try cache.store(.notFound, key: manyKey, now: now)
        }
        let found = try cache.lookup(many + [key("nowhere 1")], now: now)
        #expect(found.compactMap { $0 }.count == 234 + 1 && found.last == .notFound)
        #expect(many.indices.allSatisfy { (found[$0] != nil) == ($0 % 3 == 0) })
        // A key whose check half differs is another address.
        var forged = key("nowhere 1")
        forged.check &+= 1
        #expect(try cache.lookup(forged, now: now) == nil)
        // A second connection (another run) sees what the first committed, while it is open.
        let other = try GeocodeCache(path: path, maxAgeSeconds: 86_400)
        #expect(try other.lookup(key("nowhere 1"), now: now.addingTimeInterval(60)) == .notFound)
        // Too old: asked again; a new answer replaces the old one.
        let later = now.addingTimeInterval(86_400)
        #expect(try other.lookup(key("nowhere 1"), now: later) == nil)
        try other.store(.found(place), key: key("nowhere 1"), now: later)
        #expect(try cache.lookup(key("nowhere 1"), now: later) == .found(place))
        // --refresh-geocodes: nothing is young enough.
        let refreshing = try GeocodeCache(path: path, maxAgeSeconds: 0)
        #expect(try refreshing.lookup(key("nowhere 1"), now: later) == nil)
    }

    @Test("block memos: kept while no answer is replaced (new answers do not matter) and young enough")
    func memos() throws {
        let dir = TempDir()
        let path = dir.path + "/cache.sqlite"
        let cache = try GeocodeCache(path: path, maxAgeSeconds: 86_400)
        let now = Date()
        let digest = AddressKey(primary: 42, check: 7)
        try cache.store(.notFound, key: AddressKey(primary: 1, check: 1), now: now)
        try cache.storeMemo(digest, answers: [1, 2, 3], oldest: now.timeIntervalSince1970, generation: 0)
        #expect(try cache.memo(digest) == [1, 2, 3])
        #expect(try cache.memo(AddressKey(primary: 42, check: 8)) == nil, "another digest's check half")
        try cache.store(.notFound, key: AddressKey(primary: 2, check: 2), now: now)
        #expect(try cache.memo(digest) == [1, 2, 3], "a new answer replaces none the memo holds")
        #expect(try GeocodeCache(path: path, maxAgeSeconds: 86_400).memo(digest) == [1, 2, 3], "another run")
        #expect(try cache.memo(digest, now: now.addingTimeInterval(86_400)) == nil, "too old")
        #expect(try cache.store(.notFound, key: AddressKey(primary: 1, check: 1), now: now) == false)
        #expect(try cache.memo(digest) == [1, 2, 3], "the same answer again: no memo is stale")
        let place = GeocodeCache.Place(longitude: 1, latitude: 2, confidence: 0.5, label: "x")
        #expect(try cache.store(.found(place), key: AddressKey(primary: 1, check: 1), now: now) == true)
        #expect(try cache.memo(digest) == nil, "an answer replaced: any memo may hold the old one")
        // A memo made from answers read before that replacement is not kept; one read after it is.
        try cache.storeMemo(digest, answers: [4], oldest: now.timeIntervalSince1970, generation: 0)
        #expect(try cache.memo(digest) == nil)
        let readAt = try cache.visit([AddressKey(primary: 1, check: 1)]) { _, _ in }
        #expect(readAt == 1)
        try cache.storeMemo(digest, answers: [4], oldest: now.timeIntervalSince1970, generation: readAt)
        #expect(try cache.memo(digest) == [4])
        #expect(try GeocodeCache(path: path, maxAgeSeconds: 0).memo(digest) == nil, "--refresh-geocodes")
    }

    @Test("a cache file of another format is read as empty and rewritten, not an error")
    func cacheFormat() throws {
        let dir = TempDir()
        let path = dir.path + "/old.sqlite"
        let old = try SQLiteDatabase(path: path)
        try old.execute("CREATE TABLE geocodes (x TEXT); PRAGMA user_version = 99")
        let cache = try GeocodeCache(path: path)
        #expect(try cache.lookup(AddressKey(primary: 1, check: 2)) == nil)
        try cache.store(.notFound, key: AddressKey(primary: 1, check: 2))
        #expect(try cache.lookup(AddressKey(primary: 1, check: 2)) == .notFound)
    }
}

@Suite("Addresses: templates, structured parts, the text asked and the key it is cached under")
struct AddressTests {
    static let header = ["Street", "No", "Postcode", "City", "Country", "lat", "lon"]

    func block(_ rows: [[String]]) -> RecordBlock {
        var block = RecordBlock()
        for (index, row) in rows.enumerated() { block.append(fields: row, line: index + 2) }
        return block
    }

    @Test("a template: empty columns leave no stray separators; an address of separators only is missing")
    func template() throws {
        let query = try AddressQuery(
            address: "{Street} {No}, {Postcode} {City}, {Country}", parts: [:], header: Self.header)
        let rows = block([
            ["Hauptstraße", "5", "10115", "Berlin", "DE", "", ""],
            ["Hauptstraße", "", "", "Berlin", "", "", ""],
            ["", "", "", "", "", "", ""],
        ])
        #expect(query.address(0, of: rows)?.text == "Hauptstraße 5, 10115 Berlin, DE")
        #expect(query.address(1, of: rows)?.text == "Hauptstraße, Berlin")
        #expect(query.address(2, of: rows) == nil)
    }

    @Test("structured parts, each a column or a template; a row without any is missing")
    func structured() throws {
        let query = try AddressQuery(
            address: nil, parts: ["street": "{Street} {No}", "city": "City", "country": "Country"], header: Self.header)
        let rows = block([["Ring", "1", "", "Wien", "AT", "", ""], ["", "", "", "", "", "", ""]])
        let address = try #require(query.address(0, of: rows))
        #expect(address.parts == [.street: "Ring 1", .city: "Wien", .country: "AT"])
        #expect(address.text == "Ring 1, Wien, AT")
        #expect(address.key == "street=ring 1|city=wien|country=at")
        #expect(query.address(1, of: rows) == nil)
    }

    @Test("settings that cannot work are one sentence naming the setting")
    func errors() {
        func message(_ address: String?, _ parts: [String: String]) -> String {
            do {
                _ = try AddressQuery(address: address, parts: parts, header: Self.header)
                return ""
            } catch {
                return (error as? ImportError)?.message ?? "\(error)"
            }
        }
        #expect(message("{Strasse}, {City}", [:]).contains("geocode.address uses the column \"{Strasse}\""))
        #expect(message("Addr", [:]).contains("geocode.address names the column \"Addr\""))
        #expect(message("{City}", ["city": "City"]).contains("exclude each other"))
        #expect(message(nil, ["town": "City"]).contains("geocode.town is not an address part"))
        #expect(message(nil, [:]).contains("geocode needs the address"))
        #expect(message(nil, ["city": "{Town}"]).contains("geocode.city uses the column \"{Town}\""))
    }

    @Test("one distinct address, however it is written, is one key")
    func normalisedKeys() {
        #expect(AddressText.normalised("  Hauptstraße 5,  10115   BERLIN. ") == "hauptstrasse 5 10115 berlin")
        #expect(AddressText.normalised("HAUPTSTRASSE 5") == AddressText.normalised("Hauptstraße 5"))
        #expect(AddressText.cleaned(" Main St\t 5 , ,  Springfield ,") == "Main St 5, Springfield")
        // Generated addresses: each written with other case, spacing and punctuation has the same
        // key, the key is stable under normalising again, and other words give another key.
        var generator = SplitMix(seed: 2020)
        let words = [
            "Hauptstraße", "Rue", "de", "la", "Paix", "5b", "München", "Zürich", "1010", "Åre", "Ōsaka", "Main",
        ]
        let separators = [" ", "  ", ", ", " - ", ". ", "\t", " / "]
        for _ in 0..<1000 {
            let picked = (0..<Int.random(in: 1...6, using: &generator)).map { _ in
                words.randomElement(using: &generator)!
            }
            let plain = picked.joined(separator: " ")
            var messy = ""
            for (index, word) in picked.enumerated() {
                if index > 0 { messy += separators.randomElement(using: &generator)! }
                messy += Bool.random(using: &generator) ? word.uppercased() : word.lowercased()
            }
            if Bool.random(using: &generator) { messy = " ,\(messy). " }
            let key = AddressText.normalised(plain)
            #expect(AddressText.normalised(messy) == key, "\(messy)")
            #expect(AddressText.normalised(key) == key)
            #expect(AddressText.normalised(plain + " 99x") != key)
        }
    }

    @Test(
        "a row's key, computed from its bytes, is the key of the address the String path builds (differential, generated rows)"
    )
    func byteKeysMatchStringKeys() throws {
        var generator = SplitMix(seed: 6709)
        // ASCII, Latin, Greek (final sigma), Cyrillic, a decomposed accent, CJK, punctuation,
        // invalid UTF-8 and NBSP.
        let pieces: [[UInt8]] =
            [
                "Hauptstraße", "STRASSE", "Åre", "ÆBLE", "Øst", "İstanbul", "ΟΔΟΣ", "Σοφία", "Москва", "e\u{301}cole",
                "東京", "5b", "1010", ",", ".", " ", "  ", "-", "/", "\u{A0}", "ǅ", "ŉ", "ﬁ",
            ].map { Array($0.utf8) } + [[0xC3], [0xFF, 0x41]]
        let header = ["a", "b", "c"]
        let freeForm = try AddressQuery(address: "{a}, {b} {c}", parts: [:], header: header)
        let parts = try AddressQuery(address: nil, parts: ["street": "a", "city": "{b}-{c}"], header: header)
        for query in [freeForm, parts] {
            let keyer = AddressKeyer(query: query, scope: "photon https://x")
            var block = RecordBlock()
            for row in 0..<600 {
                let fields = (0..<3).map { _ in
                    (0..<Int.random(in: 0...4, using: &generator)).flatMap { _ in
                        pieces.randomElement(using: &generator)!
                    }
                }
                block.append(fields: fields.map { String(decoding: $0, as: UTF8.self) }, line: row + 2)
            }
            var scratch = AddressBytes()
            block.bytes.withUnsafeBytes { bytes in
                for record in 0..<block.count {
                    let fast = keyer.key(record, of: block, bytes: bytes, scratch: &scratch)
                    let slow = query.address(record, of: block).map { keyer.key(normalised: $0.key) }
                    #expect(fast == slow, "\(block.strings(record))")
                }
            }
        }
        // The byte path folds as the String path does, letter by letter.
        for (text, folded) in [("ΟΔΟΣ", "οδοσ"), ("Straße", "strasse"), ("ÅRE", "åre")] {
            var bytes = AddressBytes()
            bytes.start()
            Array(text.utf8).withUnsafeBytes { bytes.append($0) }
            #expect(String(decoding: bytes.out, as: UTF8.self) == folded && AddressText.normalised(text) == folded)
        }
    }
}
