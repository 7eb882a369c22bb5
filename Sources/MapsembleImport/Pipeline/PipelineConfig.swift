import Foundation

/// Everything a run needs to know, from pipeline.yml and the command line (flags win), with the
/// defaults of spec/cli.md. Checked once by `ConfigLoader`; the stages trust it.
public struct PipelineConfig: Sendable, Equatable {
    public struct Source: Sendable, Equatable {
        public var path: String?
        public var format = "auto"
        /// `auto` or one of `,` `;` tab `|`.
        public var delimiter = "auto"
        public var encoding = "auto"
        /// `auto`, `true` or `false`.
        public var header = "auto"
        /// The quote character, or `none`.
        public var quote = "\""
        /// `auto`, `point` or `comma`.
        public var decimal = "auto"
        public var sheet: String?
        /// A record (or a line) past this many bytes is rejected and read past, not held.
        public var maxRecordBytes = ReaderOptions().maxRecordBytes
        /// A record with more fields is rejected; a header with more is an error.
        public var maxColumns = ReaderOptions().maxColumns
        /// Request headers for a URL source (`source.headers`), values expanded from the
        /// environment: sent to the source's own address only, never shown.
        public var headers: [String: String] = [:]
        /// A file of CA certificates for a URL source served under a private CA.
        public var caFile: String?
        /// The file to read in a `.zip` holding several.
        public var member: String?
        /// The URL a downloaded source came from, while a run reads its temporary copy at `path`:
        /// what messages and reports name.
        public var origin: String?
    }

    public enum Mode: String, Sendable, CaseIterable {
        case create, upsert, replace, delete, update, sync

        /// The HTTP method of a write in this mode.
        public var method: String {
            switch self {
            case .create: "POST"
            case .upsert, .update, .sync: "PATCH"
            case .replace: "PUT"
            case .delete: "DELETE"
            }
        }
    }

    public struct Target: Sendable, Equatable {
        public init() {}
        public var apiURL = "https://app.mapsemble.com"
        public var apiKey: String?
        /// OAuth client credentials, used when there is no API key.
        public var clientID: String?
        public var clientSecret: String?
        public var mapID: String?
        /// nil: `upsert` when a remote id is configured, `create` otherwise.
        public var mode: Mode?
    }

    public enum SwappedPolicy: String, Sendable, CaseIterable {
        case reject, fix, off
    }

    public struct Coordinates: Sendable, Equatable {
        /// Column names; nil means "find a conventional name in the header".
        public var longitude: String?
        public var latitude: String?
        public var point: String?
        public var swapped = SwappedPolicy.reject
        /// `[min_lon, min_lat, max_lon, max_lat]`.
        public var bounds: [Double]?
        /// A row at exactly (0, 0) is imported instead of rejected as `null_island`.
        public var allowNullIsland = false
        /// The coordinates' reference system (an EPSG code or a PROJ string); nil: WGS 84
        /// longitude and latitude in degrees. Anything else is reprojected before it is judged.
        public var crs: String?
        /// A column holding whole geometries (WKT, EWKT, hex WKB or GeoJSON), instead of points.
        public var geometry: String?
        /// Repair invalid polygons instead of rejecting them.
        public var makeValid = false
        /// Simplify lines and polygons to this tolerance in metres; 0: not simplified.
        public var simplifyMetres = 0.0
        /// A geometry with more vertices is `too_many_vertices`.
        public var maxVertices = 100_000

        /// Whether `crs` is WGS 84 degrees already (nothing to reproject).
        var crsIsDegrees: Bool {
            guard let crs else { return true }
            return ["EPSG:4326", "WGS84", "WGS 84", "CRS:84", "OGC:CRS84"].contains(crs.uppercased())
        }
    }

    public struct Field: Sendable, Equatable {
        public var slug: String
        public var column: String
        /// A Mapsemble field type: `text`, `multiline_text`, `number`, `date`, `image`,
        /// `single_select`, `multi_select`.
        public var type = "text"
        /// Whether pipeline.yml states `type` (else a new field's type is read from the values).
        public var typeStated = false
        /// `date` fields: formats besides ISO 8601, e.g. `DD.MM.YYYY`.
        public var formats: [String] = []
        /// `multi_select` fields: what separates the options in one value.
        public var separator = ","
    }

    public struct Properties: Sendable, Equatable {
        /// A column name, or a template such as `{name} ({city})`.
        public var label: String?
        public var remoteID: String?
        /// The map's remote field slug, when stated; the map's own `config.remoteField` otherwise.
        public var remoteField: String?
        /// The slug a dry run sends remote ids under: the stated one, else `remote_id`.
        public var remoteFieldSlug: String { remoteField ?? "remote_id" }
        /// In the order of the file.
        public var fields: [Field] = []
    }

    public struct Upload: Sendable, Equatable {
        public var batchSize = 500
        public var concurrency = 4
        public var maxRetries = 8
        public var timeoutSeconds = 30.0
        /// Largest request body; a batch is cut before it would grow past this.
        public var maxBodyBytes = 4 << 20
    }

    /// A count, or a share of the rows read.
    public enum Threshold: Sendable, Equatable {
        case count(Int)
        case percent(Double)
    }

    public struct Report: Sendable, Equatable {
        public var dir = "reports"
        public var maxRejects: Threshold?
        /// Write `NAME.report.html` (a page with a map of what landed and what was rejected).
        public var html = true
        /// Neutralise cells of `rejected.csv` a spreadsheet would run as formulas.
        public var spreadsheetSafe = false
        /// Keep what the run changes on the map in an undo file, so that `rollback` can restore it.
        public var undo = false
    }

    /// `notify:`: a webhook POSTed once a run ends (spec/cli.md, "Operations").
    public struct Notify: Sendable, Equatable {
        public enum When: String, Sendable, CaseIterable {
            /// Exit 2 or 3: nothing sent, or aborted part-way.
            case failure
            /// Exit 1, 2 or 3: some rows rejected, or worse.
            case rejects
            /// Every run that ends (a source found unchanged is no run).
            case always
        }

        public enum Format: String, Sendable, CaseIterable {
            /// The summary with `event`, `run_id`, the host and the report paths.
            case json
            /// `{"text": …}`: one paragraph for a Slack (or Mattermost, Teams) incoming webhook.
            case slack
        }

        /// Held as a secret: never printed, logged or written to a report.
        public var webhook: String
        public var on = When.failure
        public var format = Format.json
        /// Short: a receiver that hangs must not hold the run's end back long.
        public var timeoutSeconds = 10.0
        public var maxRetries = 3

        public init(webhook: String) { self.webhook = webhook }
    }

    public struct Sync: Sendable, Equatable {
        public var maxDelete = Threshold.percent(10)
    }

    /// `geocode:`: points for rows from their address (spec/cli.md, "Addresses").
    public struct Geocode: Sendable, Equatable {
        public enum When: String, Sendable, CaseIterable {
            /// Only rows whose coordinates are empty (or all rows, when the file has none).
            case missing
            /// Every row, its coordinates replaced.
            case always
        }

        /// A column or a template; or, instead, the structured parts.
        public var address: String?
        /// `street`, `postcode`, `city`, `state`, `country` → a column or a template.
        public var parts: [String: String] = [:]
        public var provider = "nominatim"
        public var url: String?
        /// Sent to the provider only, never printed.
        public var apiKey: String?
        public var userAgent: String?
        public var when = When.missing
        public var countryCodes: [String] = []
        public var minConfidence = 0.0
        /// Requests per second; nil: the provider's default (1 for nominatim, else none).
        public var rateLimit: Double?
        public var concurrency = 2
        public var timeoutSeconds = 10.0
        public var maxRetries = 5
        /// The cache file; nil: `geocode-cache.sqlite` in the state folder.
        public var cache: String?
        /// Answers older than this many days are asked again.
        public var maxAgeDays = 90.0
        /// `provider: gazetteer`: a GeoNames-format file (`.txt` or `.zip`).
        public var gazetteer: String?
        /// A map field that receives each geocoded row's confidence (0…1).
        public var qualityField: String?
    }

    public var version = 1
    public var source = Source()
    public var target = Target()
    public var coordinates = Coordinates()
    public var properties = Properties()
    public var upload = Upload()
    public var report = Report()
    public var sync = Sync()
    public var geocode: Geocode?
    public var notify: Notify?

    public init() {}

    /// Who requests are made as: the API key, else OAuth client credentials.
    public var credentials: Credentials? {
        if let key = target.apiKey, !key.isEmpty { return .apiKey(key) }
        if let id = target.clientID, let secret = target.clientSecret, !id.isEmpty {
            return .client(id: id, secret: secret)
        }
        return nil
    }

    /// The mode in force once defaults apply.
    public var mode: Mode { target.mode ?? (properties.remoteID == nil ? .create : .upsert) }
}

extension PipelineConfig.Threshold {
    /// Parses `N` or `P%`.
    public init?(parsing text: String) {
        let trimmed = text.trimmingSpaces
        if trimmed.hasSuffix("%") {
            guard let value = Double(trimmed.dropLast()), value >= 0, value <= 100 else { return nil }
            self = .percent(value)
        } else {
            guard let value = Int(trimmed), value >= 0 else { return nil }
            self = .count(value)
        }
    }

    /// As written in pipeline.yml: `N` or `P%`.
    public var text: String {
        switch self {
        case .count(let count): "\(count)"
        case .percent(let share): "\(share.formatted())%"
        }
    }

    /// Whether `count` out of `total` passes this threshold.
    public func isExceeded(by count: Int, of total: Int) -> Bool {
        switch self {
        case .count(let limit): count > limit
        case .percent(let share): total > 0 && Double(count) * 100 > share * Double(total)
        }
    }
}

extension StringProtocol {
    /// Without the spaces and tabs at either end: a cell's value as the reader reads it.
    var trimmingBlanks: String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }

    var trimmingSpaces: String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view = view.dropFirst() }
        while let last = view.last, last.isWhitespace { view = view.dropLast() }
        return String(view)
    }
}
