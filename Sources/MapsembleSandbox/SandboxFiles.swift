import Foundation

/// `sandbox --serve-dir DIR`: the files of DIR at `/files/NAME`, as a web server publishes a
/// data export, with the validators a scheduled import keeps between runs: a strong `ETag` (a
/// digest of the bytes) and `Last-Modified`, answered `304 Not Modified` when the request's
/// `If-None-Match` or `If-Modified-Since` still holds. No key is needed.
extension SandboxStore {
    /// How many file requests were answered with the body, and how many with `304`.
    public var fileCounts: (bodies: Int, notModified: Int) {
        state.withLockedValue { ($0.fileBodies, $0.fileNotModified) }
    }

    func serveFile(_ request: SandboxRequest) -> SandboxReply? {
        guard request.path.hasPrefix("/files/"), let directory = state.withLockedValue({ $0.config.serveDirectory })
        else { return nil }
        guard request.method == "GET" || request.method == "HEAD" else { return .error(405, "Method not allowed") }
        // A name inside the folder: no `..`, no hidden files.
        let name = String(request.path.dropFirst("/files/".count)).removingPercentEncoding ?? ""
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, parts.allSatisfy({ !$0.isEmpty && !$0.hasPrefix(".") }) else {
            return .error(404, "Not found")
        }
        let path = directory + "/" + name
        guard let bytes = FileManager.default.contents(atPath: path),
            let modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
        else { return .error(404, "Not found") }
        let etag = "\"" + Self.digest(bytes) + "\""
        let lastModified = Self.httpDate(modified)
        var reply = SandboxReply(status: 200, headers: [("ETag", etag), ("Last-Modified", lastModified)])
        // If-None-Match wins over If-Modified-Since (RFC 9110, 13.2.2).
        let unchanged: Bool
        if let tags = request.headers["if-none-match"] {
            unchanged =
                tags == "*" || tags.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == etag }
        } else if let since = request.headers["if-modified-since"].flatMap(Self.parseHTTPDate) {
            unchanged = modified.timeIntervalSince1970.rounded(.down) <= since.timeIntervalSince1970
        } else {
            unchanged = false
        }
        state.withLockedValue { state in
            if unchanged { state.fileNotModified += 1 } else if request.method == "GET" { state.fileBodies += 1 }
        }
        if unchanged {
            reply.status = 304
            return reply
        }
        reply.headers.append(("Content-Type", Self.contentType(name)))
        if request.method == "GET" { reply.body = Array(bytes) }
        return reply
    }

    /// FNV-1a over the bytes and their count, as 16 hex digits.
    static func digest(_ bytes: Data) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        hash ^= UInt64(bytes.count)
        let text = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }

    static func contentType(_ name: String) -> String {
        switch name.lowercased().split(separator: ".").last ?? "" {
        case "csv": "text/csv; charset=utf-8"
        case "tsv", "tab": "text/tab-separated-values"
        case "json", "geojson": "application/geo+json"
        case "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        case "ods": "application/vnd.oasis.opendocument.spreadsheet"
        case "xls": "application/vnd.ms-excel"
        case "zip": "application/zip"
        case "gz": "application/gzip"
        default: "application/octet-stream"
        }
    }

    private static let httpDateFormat: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter
    }()

    /// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
    static func httpDate(_ date: Date) -> String { httpDateFormat.string(from: date) }
    static func parseHTTPDate(_ text: String) -> Date? { httpDateFormat.date(from: text) }
}
