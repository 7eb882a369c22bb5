/// What the sandbox serves: accounts with API keys, their maps and fields, limits and faults.
public struct SandboxConfig: Sendable {
    public enum Plan: String, Sendable {
        /// At most `freePlanLimit` features per map through the API.
        case free
        case pro
        case enterprise
    }

    public struct Field: Sendable, Equatable {
        public var slug: String
        /// `text`, `multiline_text`, `number`, `date`, `image`, `single_select`, `multi_select`.
        public var type: String
        public var label: String
        public var required = false
        /// Option keys of a select field.
        public var options: [String] = []
        /// Their labels, where they differ from the keys (same order; empty: the keys).
        public var optionLabels: [String] = []

        public init(
            slug: String, type: String = "text", label: String? = nil, required: Bool = false, options: [String] = []
        ) {
            self.slug = slug
            self.type = type
            self.label = label ?? slug
            self.required = required
            self.options = options
        }
    }

    public struct Map: Sendable {
        public var id: String
        public var label: String
        public var account: String
        public var plan: Plan
        public var fields: [Field]
        public var remoteField: String?
        /// The field whose address the map geocodes for features sent without a point
        /// (`config.geocodeField`; plans other than free).
        public var geocodeField: String?

        public init(
            id: String, label: String? = nil, account: String = "sandbox", plan: Plan = .pro, fields: [Field] = [],
            remoteField: String? = nil, geocodeField: String? = nil
        ) {
            self.geocodeField = geocodeField
            self.id = id
            self.label = label ?? "Map \(id.prefix(8))"
            self.account = account
            self.plan = plan
            self.fields = fields
            self.remoteField = remoteField
        }
    }

    public struct Client: Sendable {
        public var id: String
        public var secret: String
        public var account: String

        public init(id: String, secret: String, account: String = "sandbox") {
            self.id = id
            self.secret = secret
            self.account = account
        }
    }

    /// API key → account.
    public var apiKeys: [String: String] = ["sandbox-key": "sandbox"]
    public var clients: [Client] = []
    public var maps: [Map] = []
    public var maxFeaturesPerRequest = 1000
    public var maxBodyBytes = 32 << 20
    public var freePlanLimit = 100
    public var faults = FaultPlan()
    /// Serve this folder's files at `/files/NAME` with `ETag` and `Last-Modified` (`sandbox --serve-dir`).
    public var serveDirectory: String?
    /// Serve geocoder endpoints (Nominatim, Photon, Pelias) from a gazetteer (`sandbox --geocoder`).
    public var geocoder: SandboxGeocoder?
    /// Keep a log of every write request (`SandboxStore.writeLog`), for tests that check what
    /// was sent how often.
    public var recordWrites = false
    /// Append one JSON line per write request to this file (`{"method","status","dropped","connected","ids"}`),
    /// for a soak run that checks from outside what was sent how often.
    public var writeLogPath: String?

    public init(maps: [Map] = []) {
        self.maps = maps
    }
}
