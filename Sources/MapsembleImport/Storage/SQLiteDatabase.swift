import CSQLite
import Foundation

/// One SQLite database file, for the state kept between runs (the geocoding cache): opened in WAL
/// mode with a busy time-out, so that concurrent runs share it, and `synchronous = FULL`, so a
/// committed write survives a crash or `kill -9`. The only place that turns SQLite's result codes
/// into Swift errors.
///
/// Not thread-safe (`SQLITE_OPEN_NOMUTEX`): its owner serialises access.
final class SQLiteDatabase {
    private let handle: OpaquePointer
    let path: String

    /// Opens (creating when missing) the database at `path`.
    init(path: String, busyTimeoutMilliseconds: Int32 = 5000) throws {
        var opened: OpaquePointer?
        let status = sqlite3_open_v2(
            path, &opened, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard status == SQLITE_OK, let opened else {
            let reason = opened.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(status))
            sqlite3_close_v2(opened)
            throw ImportError(.output, "cannot open the database: \(reason)", file: path)
        }
        handle = opened
        self.path = path
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        // Switching a new file to WAL answers SQLITE_BUSY at once, without the busy handler, while
        // another connection opens it too: retried here for as long as the time-out.
        var waited: Int32 = 0
        while sqlite3_exec(handle, "PRAGMA journal_mode = WAL", nil, nil, nil) == SQLITE_BUSY,
            waited < busyTimeoutMilliseconds
        {
            usleep(10_000)
            waited += 10
        }
        try execute("PRAGMA journal_mode = WAL")
        try execute("PRAGMA synchronous = FULL")
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs statements that return no rows.
    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &message)
        guard status == SQLITE_OK else {
            let reason = message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(status))
            sqlite3_free(message)
            throw error(reason)
        }
    }

    /// Rows changed by the last insert, update or delete.
    var changes: Int { Int(sqlite3_changes(handle)) }

    /// Compiles `sql` once, to run many times.
    func prepare(_ sql: String) throws -> Statement {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw error(String(cString: sqlite3_errmsg(handle)))
        }
        return Statement(statement, database: self)
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    /// `immediate` takes the write lock at once (for writes); else the first write takes it.
    func transaction<T>(immediate: Bool = true, _ body: () throws -> T) throws -> T {
        try execute(immediate ? "BEGIN IMMEDIATE" : "BEGIN")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    fileprivate func error(_ reason: String) -> ImportError {
        ImportError(.output, "the database failed: \(reason)", file: path)
    }

    fileprivate var lastError: String { String(cString: sqlite3_errmsg(handle)) }

    /// A compiled statement: bind its `?` parameters (from 1), then step through its rows.
    final class Statement {
        private let statement: OpaquePointer
        private let database: SQLiteDatabase

        fileprivate init(_ statement: OpaquePointer, database: SQLiteDatabase) {
            self.statement = statement
            self.database = database
        }

        deinit { sqlite3_finalize(statement) }

        /// A value for a parameter or from a column.
        enum Value: Equatable {
            case null
            case integer(Int64)
            case real(Double)
            case text(String)
        }

        /// Clears the bindings and the last run, then binds `values` to parameters 1, 2, ….
        func bind(_ values: [Value]) throws {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
            // SQLite copies the text (SQLITE_TRANSIENT: a C macro Swift cannot import).
            let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
            for (offset, value) in values.enumerated() {
                let index = Int32(offset + 1)
                let status: Int32
                switch value {
                case .null: status = sqlite3_bind_null(statement, index)
                case .integer(let number): status = sqlite3_bind_int64(statement, index, number)
                case .real(let number): status = sqlite3_bind_double(statement, index, number)
                case .text(let text): status = sqlite3_bind_text(statement, index, text, -1, transient)
                }
                guard status == SQLITE_OK else { throw database.error(database.lastError) }
            }
        }

        /// The next row's columns, or nil when there are no more.
        func next() throws -> [Value]? {
            switch sqlite3_step(statement) {
            case SQLITE_ROW:
                return (0..<sqlite3_column_count(statement)).map { column in
                    switch sqlite3_column_type(statement, column) {
                    case SQLITE_INTEGER: .integer(sqlite3_column_int64(statement, column))
                    case SQLITE_FLOAT: .real(sqlite3_column_double(statement, column))
                    case SQLITE_TEXT: .text(String(cString: sqlite3_column_text(statement, column)))
                    default: .null
                    }
                }
            case SQLITE_DONE:
                return nil
            default:
                throw database.error(database.lastError)
            }
        }

        /// Clears the last run and binds integers to parameters 1, 2, … (no `Value` per parameter:
        /// for the batched reads of a hot path).
        func bind(integers: some Sequence<Int64>) throws {
            sqlite3_reset(statement)
            var index: Int32 = 1
            for number in integers {
                guard sqlite3_bind_int64(statement, index, number) == SQLITE_OK else {
                    throw database.error(database.lastError)
                }
                index += 1
            }
        }

        /// Binds a number to parameter `index` (after `bind(integers:)`, which resets).
        func bind(real: Double, at index: Int32) throws {
            guard sqlite3_bind_double(statement, index, real) == SQLITE_OK else {
                throw database.error(database.lastError)
            }
        }

        /// Binds bytes to parameter `index` (SQLite copies them).
        func bind(blob: [UInt8], at index: Int32) throws {
            let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
            let status = blob.withUnsafeBytes {
                sqlite3_bind_blob(
                    statement, index, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32($0.count), transient)
            }
            guard status == SQLITE_OK else { throw database.error(database.lastError) }
        }

        /// A blob column's bytes.
        func blob(_ column: Int32) -> [UInt8] {
            let count = Int(sqlite3_column_bytes(statement, column))
            guard count > 0, let bytes = sqlite3_column_blob(statement, column) else { return [] }
            return Array(UnsafeRawBufferPointer(start: bytes, count: count))
        }

        /// Steps to the next row: true when there is one, read with `integer`, `real`, `text`.
        func step() throws -> Bool {
            switch sqlite3_step(statement) {
            case SQLITE_ROW: return true
            case SQLITE_DONE: return false
            default: throw database.error(database.lastError)
            }
        }

        func integer(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }
        func real(_ column: Int32) -> Double { sqlite3_column_double(statement, column) }
        func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }
        /// A text column's bytes, appended to `out` (no String made).
        func appendText(_ column: Int32, to out: inout [UInt8]) {
            guard let text = sqlite3_column_text(statement, column) else { return }
            out.append(
                contentsOf: UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(statement, column))))
        }

        func text(_ column: Int32) -> String {
            guard let text = sqlite3_column_text(statement, column) else { return "" }
            return String(cString: text)
        }

        /// Binds `values` and runs the statement to its end (an insert, an update, a delete).
        func run(_ values: [Value] = []) throws {
            try bind(values)
            while try next() != nil {}
        }

        /// Binds `values` and returns every row.
        func rows(_ values: [Value] = []) throws -> [[Value]] {
            try bind(values)
            var rows: [[Value]] = []
            while let row = try next() { rows.append(row) }
            return rows
        }
    }
}
