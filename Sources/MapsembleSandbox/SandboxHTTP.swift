import MapsembleJSON

/// An HTTP request as the sandbox's routes see it.
public struct SandboxRequest: Sendable {
    public var method: String
    /// The path without the query.
    public var path: String
    public var query: [String: String]
    /// Header names in lower case.
    public var headers: [String: String]
    public var body: [UInt8]
    /// When the connection that carried it was opened, in seconds since 1970 (0 when not over
    /// HTTP): a process opens its connections while it lives, so a write log can name the process
    /// that sent a request by it, even one read after that process was killed.
    public var connected = 0.0

    public init(
        method: String, path: String, query: [String: String] = [:], headers: [String: String] = [:], body: [UInt8] = []
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }

    /// Splits `target` (`/path?a=1&b=2`) into path and query.
    public init(method: String, target: String, headers: [String: String], body: [UInt8]) {
        var path = target
        var query: [String: String] = [:]
        if let mark = target.firstIndex(of: "?") {
            path = String(target[..<mark])
            for pair in target[target.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                let key = String(parts[0]).removingPercentEncoding ?? String(parts[0])
                query[key] = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            }
        }
        self.init(method: method, path: path, query: query, headers: headers, body: body)
    }
}

/// What the sandbox does with a request.
public struct SandboxReply: Sendable {
    public var status: Int
    public var headers: [(String, String)] = []
    public var body: [UInt8] = []
    /// Close the connection without answering (after the request was applied).
    public var drop = false
    /// Wait this long before answering (or, with `drop`, before closing).
    public var delaySeconds = 0.0
    /// A page of a listing and the map's total, made into the body once the store's lock is
    /// released (writing it out is most of a listing's work).
    var page: (features: [StoredFeature], total: Int)?

    public init(status: Int, json: JSONValue? = nil, headers: [(String, String)] = []) {
        self.status = status
        self.headers = headers
        if let json {
            body = json.bytes
            self.headers.append(("Content-Type", "application/json"))
        }
    }

    static func error(_ status: Int, _ message: String) -> SandboxReply {
        SandboxReply(status: status, json: ["message": .string(message)])
    }
}

extension String {
    var removingPercentEncoding: String? {
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte == UInt8(ascii: "+") ? 0x20 : byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
