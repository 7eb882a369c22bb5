import Foundation
import NIOConcurrencyHelpers

/// The `gazetteer` provider: places from a GeoNames-format file, offline. The file is the
/// documented tab-separated dump: the `geoname` table (19 columns: `cities15000.txt`,
/// `allCountries.txt`, a country's file) or the postal-code export (12 columns), as `.txt` or
/// inside a `.zip`. Its populated places (feature class `P`), countries and first- and
/// second-level divisions (class `A`: `PCL*`, `ADM1`, `ADM2`) are indexed once into SQLite, by
/// every name and alternate name, folded (`GazetteerText.keys`: case, accents, `ß`, `ä` → `ae`),
/// so `München`, `Muenchen` and `Munich` find the same place; postal codes by the code. The index
/// is rebuilt when the file changes (its size or time of change) and reused otherwise.
///
/// An address is read as place names and postal codes, and an optional country (a name in one of
/// several languages, or its two-letter code): see `candidates(for:countries:)` for the matching
/// and the confidence of each kind of match.
final class Gazetteer: @unchecked Sendable {  // `database` and `select` are used under `lock` only
    /// The source file, as configured.
    let file: String
    /// Lookups made so far (one per distinct address).
    var lookups: Int { counter.withLockedValue { $0 } }
    private let counter = NIOLockedValueBox(0)
    private let lock = NIOLock()
    private let database: SQLiteDatabase
    private let select: SQLiteDatabase.Statement

    /// The index's format; an index in another one is rebuilt.
    private static let version = 1

    /// Opens the index of `file` in `directory`, building it first when it is missing or stale.
    /// - Throws: `ImportError` naming the file and line of a line that is not a GeoNames record.
    init(file: String, directory: String) throws {
        self.file = file
        var status = stat()
        guard stat(file, &status) == 0 else {
            throw ImportError(
                .config,
                "geocode.gazetteer \(file) cannot be read (\(String(cString: strerror(errno)))): give a GeoNames file such as cities15000.txt or its .zip"
            )
        }
        let absolute = URL(fileURLWithPath: file).standardizedFileURL.path
        let identity =
            "\(Self.version) \(absolute) \(status.st_size) \(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec)"
        let path = "\(directory)/gazetteer-\(fnv1a(absolute.utf8)).sqlite"
        if (try? Self.identity(of: path)) != identity {
            try Self.build(from: file, into: path, identity: identity)
        }
        database = try SQLiteDatabase(path: path)
        select = try database.prepare(
            """
            SELECT p.name, p.country, p.admin1, p.latitude, p.longitude, p.population, p.kind
            FROM names n JOIN places p ON p.id = n.place WHERE n.key = ? ORDER BY p.population DESC, p.id
            """)
    }

    /// What a place in the index is.
    enum Kind: Int64 {
        /// A city, town or village (GeoNames class `P`).
        case place = 0
        /// A postal code's area (the postal-code export).
        case postcode = 1
        /// A country or an administrative division (class `A`).
        case area = 2
    }

    struct Entry {
        var name: String
        var country: String
        var admin1: String
        var latitude: Double
        var longitude: Double
        var population: Int64
        var kind: Kind
    }

    /// The places the index holds under one folded key.
    private func entries(_ key: String) throws -> [Entry] {
        try lock.withLock {
            try select.rows([.text(key)]).compactMap { row in
                guard case .text(let name) = row[0], case .text(let country) = row[1], case .text(let admin1) = row[2],
                    case .real(let latitude) = row[3], case .real(let longitude) = row[4],
                    case .integer(let population) = row[5], case .integer(let kind) = row[6],
                    let kind = Kind(rawValue: kind)
                else { return nil }
                return Entry(
                    name: name, country: country, admin1: admin1, latitude: latitude, longitude: longitude,
                    population: population, kind: kind)
            }
        }
    }

    /// The best place for an address, or none.
    ///
    /// The address's country (its `country` part, or a last comma-separated piece naming one, but
    /// for two letters that are the division of the place before them: `Springfield, IL`) limits
    /// the places, as `countries` (`geocode.country_codes`) does. Then the pieces are tried from the
    /// last to the first (`"Street 5, 12345 City"`: the place comes last; structured parts as
    /// state, street, then postal code and city together), each as a whole name, as a name without
    /// its numbers, and by its postal codes; the first piece that names something decides. Between places of one name, a postal code that agrees, then a
    /// first-level division named in the address (`Springfield, IL`), then the larger population
    /// choose. Confidence: a postal code and a place name that agree 0.8; a postal code, or a
    /// place name that is unique (or told apart by its division) 0.6; a place name chosen among
    /// several by population 0.5; a country or division only 0.3.
    func candidates(for address: Address, countries: [String]) throws -> [GeocodeCandidate] {
        counter.withLockedValue { $0 += 1 }
        var allowed = Set(countries.map { $0.uppercased() })
        var pieces: [String]
        var words: Set<String> = []
        if let text = address.freeForm {
            pieces = text.split(separator: ",").map(String.init)
            if pieces.count > 1, let country = CountryNames.code(pieces.last!) {
                // "Springfield, IL": two letters that are the division of a place the piece before
                // names are that division, not a country.
                let last = GazetteerText.fold(pieces.last!)
                let before = try entries(GazetteerText.fold(pieces[pieces.count - 2]))
                let division = last.count == 2 && before.contains { $0.admin1.lowercased() == last }
                if !division {
                    pieces.removeLast()
                    if allowed.isEmpty || allowed.contains(country) { allowed = [country] } else { return [] }
                }
            }
        } else {
            if let stated = address.parts[.country] {
                guard let country = CountryNames.code(stated) else { return [] }
                if allowed.isEmpty || allowed.contains(country) { allowed = [country] } else { return [] }
            }
            // The state only tells places apart (and is the last resort); a postal code and a city
            // are one piece, so that a code that agrees with its place decides.
            let place = [address.parts[.postcode], address.parts[.city]].compactMap { $0 }.joined(separator: " ")
            pieces = [address.parts[.state], address.parts[.street], place.isEmpty ? nil : place].compactMap { $0 }
        }
        words.formUnion(pieces.flatMap { GazetteerText.fold($0).split(separator: " ").map(String.init) })
        for piece in pieces.reversed() {
            let folded = GazetteerText.fold(piece)
            let tokens = folded.split(separator: " ").map(String.init)
            let codes = tokens.filter { $0.contains(where: \.isNumber) }
            let name = tokens.filter { !$0.contains(where: \.isNumber) }.joined(separator: " ")
            func inCountry(_ entry: Entry) -> Bool { allowed.isEmpty || allowed.contains(entry.country) }
            var named = try entries(folded).filter(inCountry)
            if named.isEmpty && !name.isEmpty && name != folded { named = try entries(name).filter(inCountry) }
            var posted: [Entry] = []
            for code in codes { posted += try entries("#" + code.uppercased()).filter(inCountry) }
            if named.isEmpty && posted.isEmpty { continue }
            return choose(named: named, posted: posted, words: words)
        }
        return []
    }

    /// The candidates of one piece, the best first, with their confidence.
    private func choose(named: [Entry], posted: [Entry], words: Set<String>) -> [GeocodeCandidate] {
        func candidate(_ entry: Entry, _ confidence: Double) -> GeocodeCandidate {
            GeocodeCandidate(
                place: .init(
                    longitude: entry.longitude, latitude: entry.latitude, confidence: confidence,
                    label: "\(entry.name), \(entry.country)"),
                countryCode: entry.country.lowercased())
        }
        // A postal code and a place of the same name: the code's place.
        let namedKeys = Set(named.map { GazetteerText.fold($0.name) })
        if let agreed = posted.first(where: { namedKeys.contains(GazetteerText.fold($0.name)) }) {
            return [candidate(agreed, 0.8)]
        }
        if let code = posted.first, named.isEmpty { return [candidate(code, 0.6)] }
        // Places before areas, then one whose division the address names, then the most populous.
        let places = named.filter { $0.kind != .area }
        guard let first = places.first else { return named.prefix(1).map { candidate($0, 0.3) } }
        if places.count == 1 { return [candidate(first, 0.6)] }
        if let told = places.first(where: { !$0.admin1.isEmpty && words.contains($0.admin1.lowercased()) }) {
            return [candidate(told, 0.6)]
        }
        return [candidate(first, 0.5)]
    }

    // MARK: Building the index

    private static func identity(of path: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let database = try SQLiteDatabase(path: path)
        guard
            case .text(let identity) = try database.prepare("SELECT value FROM meta WHERE key = 'source'").rows()
                .first?.first
        else { return nil }
        return identity
    }

    /// Reads the file into a new index beside `path`, then moves it into place (a reader of the
    /// old index, or a build cut short, never sees half an index).
    private static func build(from file: String, into path: String, identity: String) throws {
        let building = path + ".building-\(getpid())"
        for suffix in ["", "-wal", "-shm"] { unlink(building + suffix) }
        defer { for suffix in ["", "-wal", "-shm"] { unlink(building + suffix) } }
        do {
            let database = try SQLiteDatabase(path: building)
            try database.execute("PRAGMA synchronous = OFF")
            try database.execute(
                """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
                CREATE TABLE places (
                    id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL, admin1 TEXT NOT NULL,
                    latitude REAL NOT NULL, longitude REAL NOT NULL, population INTEGER NOT NULL, kind INTEGER NOT NULL);
                CREATE TABLE names (key TEXT NOT NULL, place INTEGER NOT NULL, PRIMARY KEY (key, place)) WITHOUT ROWID;
                """)
            let insertPlace = try database.prepare(
                "INSERT INTO places (id, name, country, admin1, latitude, longitude, population, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            )
            let insertName = try database.prepare("INSERT OR IGNORE INTO names (key, place) VALUES (?, ?)")
            try database.transaction {
                var id: Int64 = 0
                try GeoNamesLines.read(file) { line, fields in
                    guard let record = try GeoNamesRecord(fields, file: file, line: line) else { return }
                    id += 1
                    try insertPlace.run([
                        .integer(id), .text(record.place.name), .text(record.place.country),
                        .text(record.place.admin1), .real(record.place.latitude), .real(record.place.longitude),
                        .integer(record.place.population), .integer(record.place.kind.rawValue),
                    ])
                    for key in record.keys { try insertName.run([.text(key), .integer(id)]) }
                }
                try database.prepare("INSERT INTO meta (key, value) VALUES ('source', ?)").run([.text(identity)])
            }
            try database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        for suffix in ["-wal", "-shm"] { unlink(path + suffix) }
        guard rename(building, path) == 0 else {
            throw ImportError.system(.output, "cannot move the gazetteer index into place", file: path)
        }
    }
}

/// One line of a GeoNames dump, as the index keeps it.
struct GeoNamesRecord {
    var place: Gazetteer.Entry
    /// The folded names (and `#CODE` for a postal code) it is found under.
    var keys: Set<String>

    /// Reads a line's fields; nil for a line the index leaves out (a mountain, a river).
    init?(_ fields: [Substring], file: String, line: Int) throws {
        func number(_ index: Int, _ what: String) throws -> Double {
            guard let value = Double(fields[index]), value.isFinite else {
                throw ImportError(
                    .unreadableInput, "the \(what) \"\(fields[index])\" is not a number", file: file, line: line,
                    column: "\(index + 1)")
            }
            return value
        }
        switch fields.count {
        case 19:
            // geonameid, name, asciiname, alternatenames, latitude, longitude, feature class, feature
            // code, country code, cc2, admin1 … admin4, population, elevation, dem, timezone, date.
            let featureClass = fields[6]
            let code = fields[7]
            guard
                featureClass == "P"
                    || (featureClass == "A" && (code.hasPrefix("PCL") || code == "ADM1" || code == "ADM2"))
            else { return nil }
            place = Gazetteer.Entry(
                name: String(fields[1]), country: String(fields[8]), admin1: String(fields[10]),
                latitude: try number(4, "latitude"), longitude: try number(5, "longitude"),
                population: Int64(fields[14]) ?? 0, kind: featureClass == "P" ? .place : .area)
            keys = []
            for alias in [fields[1], fields[2]] + fields[3].split(separator: ",") {
                keys.formUnion(GazetteerText.keys(String(alias)))
            }
        case 12:
            // country code, postal code, place name, admin name1, admin code1, admin name2, admin
            // code2, admin name3, admin code3, latitude, longitude, accuracy.
            place = Gazetteer.Entry(
                name: String(fields[2]), country: String(fields[0]), admin1: String(fields[4]),
                latitude: try number(9, "latitude"), longitude: try number(10, "longitude"), population: 0,
                kind: .postcode)
            keys = GazetteerText.keys(place.name)
            keys.insert("#" + GazetteerText.fold(String(fields[1])).uppercased())
        default:
            throw ImportError(
                .unreadableInput,
                "the line has \(fields.count) tab-separated field\(fields.count == 1 ? "" : "s"), expected 19 (a GeoNames place) or 12 (a GeoNames postal code)",
                file: file, line: line)
        }
        keys.remove("")
        guard abs(place.latitude) <= 90, abs(place.longitude) <= 180 else {
            throw ImportError(
                .unreadableInput, "the point \(place.latitude), \(place.longitude) is out of range", file: file,
                line: line)
        }
    }
}

/// The lines of a GeoNames file, `.txt` or the first `.txt` (not `readme.txt`) in a `.zip`,
/// split into tab-separated fields. Empty lines and `#` comments are skipped.
enum GeoNamesLines {
    static func read(_ file: String, _ body: (Int, [Substring]) throws -> Void) throws {
        var carry: [UInt8] = []
        var line = 0
        func consume(_ chunk: UnsafeRawBufferPointer) throws {
            var start = chunk.startIndex
            while let newline = chunk[start...].firstIndex(of: 0x0A) {
                carry.append(contentsOf: chunk[start..<newline])
                line += 1
                try emit()
                carry.removeAll(keepingCapacity: true)
                start = newline + 1
            }
            carry.append(contentsOf: chunk[start...])
        }
        func emit() throws {
            if carry.last == 0x0D { carry.removeLast() }
            guard !carry.isEmpty, carry.first != UInt8(ascii: "#") else { return }
            let text = String(decoding: carry, as: UTF8.self)
            try body(line, text.split(separator: "\t", omittingEmptySubsequences: false))
        }
        if file.lowercased().hasSuffix(".zip") {
            let zip: ZipParts
            do { zip = try ZipParts(path: file) } catch let damaged as ZipParts.Damaged {
                throw ImportError(.unreadableInput, "the .zip cannot be read: \(damaged.reason)", file: file)
            }
            guard
                let name = zip.parts.keys.sorted().first(where: {
                    $0.lowercased().hasSuffix(".txt") && !$0.lowercased().hasSuffix("readme.txt")
                })
            else { throw ImportError(.unreadableInput, "the .zip holds no GeoNames .txt file", file: file) }
            do { try zip.read(name, consume) } catch let damaged as ZipParts.Damaged {
                throw ImportError(.unreadableInput, "the .zip cannot be read: \(damaged.reason)", file: file)
            }
        } else {
            guard let handle = FileHandle(forReadingAtPath: file) else {
                throw ImportError.system(.unreadableInput, "cannot open the gazetteer", file: file)
            }
            defer { try? handle.close() }
            while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
                try data.withUnsafeBytes { try consume($0) }
            }
        }
        if !carry.isEmpty {
            line += 1
            try emit()
        }
    }
}

/// Place names folded for comparing: lower case, accents removed, letters such as `ß`, `æ`, `ø`
/// written out, punctuation as spaces.
enum GazetteerText {
    /// What a query is looked up by.
    static func fold(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return AddressText.normalised(text) }
        var written = ""
        for character in text.lowercased() {
            switch character {
            case "ß": written += "ss"
            case "æ": written += "ae"
            case "œ": written += "oe"
            case "ø": written += "o"
            case "ł": written += "l"
            case "đ", "ð": written += "d"
            case "þ": written += "th"
            case "ı": written += "i"
            default: written.append(character)
            }
        }
        return AddressText.normalised(written.folding(options: [.diacriticInsensitive], locale: nil))
    }

    /// What a name is indexed by: its folded form and, for names with umlauts, the German
    /// transliteration (`München` → `munchen` and `muenchen`).
    static func keys(_ name: String) -> Set<String> {
        var keys: Set<String> = [fold(name)]
        if name.contains(where: { "äöüÄÖÜ".contains($0) }) {
            var written = ""
            for character in name {
                switch character {
                case "ä", "Ä": written += "ae"
                case "ö", "Ö": written += "oe"
                case "ü", "Ü": written += "ue"
                default: written.append(character)
                }
            }
            keys.insert(fold(written))
        }
        return keys
    }
}

/// Countries by name (in English, German, French, Spanish, Italian, Portuguese and Dutch, from
/// the system's locale data) or two-letter code, folded as place names are.
enum CountryNames {
    private static let codes: [String: String] = {
        var names: [String: String] = [:]
        let regions = Locale.Region.isoRegions.map(\.identifier).filter {
            $0.count == 2 && $0.allSatisfy { $0.isLetter }
        }
        for language in ["en", "de", "fr", "es", "it", "pt", "nl"] {
            let locale = Locale(identifier: language)
            for code in regions {
                if let name = locale.localizedString(forRegionCode: code) {
                    for key in GazetteerText.keys(name) where names[key] == nil { names[key] = code }
                }
            }
        }
        for code in regions { names[code.lowercased()] = code }
        // Names in common use that the locale data spells otherwise.
        for (name, code) in [
            ("usa", "US"), ("us", "US"), ("united states of america", "US"), ("uk", "GB"), ("england", "GB"),
            ("scotland", "GB"), ("wales", "GB"), ("great britain", "GB"), ("holland", "NL"),
        ] {
            names[name] = code
        }
        return names
    }()

    /// The ISO 3166-1 alpha-2 code (upper case) a text names, or nil.
    static func code(_ text: String) -> String? {
        codes[GazetteerText.fold(text)]
    }
}

/// A GeoNames file's populated places, read whole (for the sandbox's geocoder, which serves
/// small extracts).
public enum GeoNamesFile {
    public struct Place: Sendable {
        public var name: String
        public var alternateNames: [String]
        /// ISO 3166-1 alpha-2, upper case.
        public var countryCode: String
        public var latitude: Double
        public var longitude: Double
        public var population: Int
    }

    /// The places (feature class `P`) of a GeoNames `geoname` file, `.txt` or `.zip`.
    /// - Throws: `ImportError` naming the file and line of a line that is not a GeoNames record.
    public static func places(_ file: String) throws -> [Place] {
        var places: [Place] = []
        try GeoNamesLines.read(file) { line, fields in
            guard let place = try GeoNamesRecord(fields, file: file, line: line)?.place, place.kind == .place else {
                return
            }
            places.append(
                Place(
                    name: place.name,
                    alternateNames: fields.count == 19 ? fields[3].split(separator: ",").map(String.init) : [],
                    countryCode: place.country, latitude: place.latitude, longitude: place.longitude,
                    population: Int(place.population)))
        }
        return places
    }
}
