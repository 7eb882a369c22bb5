import CCurl

#if canImport(Glibc)
    import Glibc
#endif

/// One HTTP request for `CurlEasy`.
struct HTTPRequest: Sendable {
    var method: String
    var url: String
    var headers: [String] = []
    var body: [UInt8]? = nil
    var timeoutSeconds: Double = 30
    /// Where the answer's body goes as it arrives, instead of memory (a download): called with
    /// each piece; returns false to abort the transfer (the disk is full).
    var bodyConsumer: (@Sendable (UnsafeRawBufferPointer) -> Bool)? = nil
    /// A file of CA certificates to trust instead of the system's (`source.ca_file`).
    var caFile: String? = nil
    /// A transfer that moves less than this many bytes a second for `timeoutSeconds` is given up
    /// (a download): a slow but moving source is not cut off by the request time-out.
    var lowSpeedLimit: Int? = nil
}

/// What came back.
struct HTTPResponse: Sendable {
    var status: Int
    var body: [UInt8]
    /// The `Retry-After` header, when sent.
    var retryAfter: String?
    /// The `Location` header of a redirect (never followed: the key would go with it).
    var location: String? = nil
    /// The answer came over a new connection although this handle had one open: the old one was
    /// closed, possibly after curl had sent the request on it (curl then sends it again by itself),
    /// so the request may have been applied twice.
    var reconnected = false
    /// The validators of the answer (`ETag`, `Last-Modified`), for a conditional request later.
    var etag: String? = nil
    var lastModified: String? = nil
    /// The file name `Content-Disposition` gives the body, when it gives one.
    var fileName: String? = nil
}

/// A request that got no HTTP answer.
struct TransportError: Error, Sendable, CustomStringConvertible {
    enum Kind: Sendable {
        /// The server's certificate is not trusted (or TLS cannot start): trying again cannot help.
        case certificate
        case connect, timeout, dropped, aborted, other
    }

    var kind: Kind
    var message: String
    var description: String { message }
}

/// A libcurl easy handle: one connection kept alive across requests. Not thread-safe: owned by
/// one `CurlWorker`, used only on its thread. The only place that turns `CURLcode`s into Swift
/// errors.
final class CurlEasy {
    private let handle: UnsafeMutableRawPointer
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))

    /// Set from any thread to abort the transfer in progress (checked about once a second).
    let abort: AbortFlag
    /// Whether an earlier transfer left a connection open.
    private var connected = false

    /// Must run once per process before any handle is made.
    static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    init(abort: AbortFlag) {
        _ = Self.globalInit
        handle = curl_easy_init()
        self.abort = abort
    }

    deinit {
        curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    /// Sends `request` and waits for the answer (blocking: call it off the cooperative pool).
    func perform(_ request: HTTPRequest) -> Result<HTTPResponse, TransportError> {
        curl_easy_reset(handle)
        let sink = ResponseSink(consumer: request.bodyConsumer)
        errorBuffer[0] = 0
        var headers: UnsafeMutablePointer<curl_slist>? = nil
        // Every request names the tool, unless it names itself (a geocoder's agent adds to it).
        let named = request.headers.contains { $0.lowercased().hasPrefix("user-agent:") }
        let extra = named ? ["Expect:"] : ["Expect:", "User-Agent: \(ToolVersion.userAgent)"]
        for header in request.headers + extra { headers = curl_slist_append(headers, header) }
        defer { curl_slist_free_all(headers) }

        setLong(CURLOPT_NOSIGNAL, 1)
        setLong(CURLOPT_TCP_KEEPALIVE, 1)
        setLong(CURLOPT_TCP_NODELAY, 1)
        if let limit = request.lowSpeedLimit {
            setLong(CURLOPT_LOW_SPEED_LIMIT, limit)
            setLong(CURLOPT_LOW_SPEED_TIME, Int(request.timeoutSeconds.rounded(.up)))
        } else {
            setLong(CURLOPT_TIMEOUT_MS, Int(request.timeoutSeconds * 1000))
        }
        if let caFile = request.caFile { _ = caFile.withCString { ccurl_easy_setopt_ptr(handle, CURLOPT_CAINFO, $0) } }
        setLong(CURLOPT_CONNECTTIMEOUT_MS, Int(min(request.timeoutSeconds, 10) * 1000))
        _ = ccurl_easy_setopt_ptr(handle, CURLOPT_ERRORBUFFER, errorBuffer)
        _ = request.url.withCString { ccurl_easy_setopt_ptr(handle, CURLOPT_URL, $0) }
        _ = "http,https".withCString { ccurl_easy_setopt_ptr(handle, CURLOPT_PROTOCOLS_STR, $0) }
        // Stated although they are libcurl's defaults, so that no change of default loosens them:
        // certificates and host names are checked, and a redirect is not followed (the
        // Authorization header must not go to another address).
        setLong(CURLOPT_SSL_VERIFYPEER, 1)
        setLong(CURLOPT_SSL_VERIFYHOST, 2)
        setLong(CURLOPT_FOLLOWLOCATION, 0)
        _ = ccurl_easy_setopt_ptr(handle, CURLOPT_HTTPHEADER, headers)
        let context = Unmanaged.passUnretained(sink).toOpaque()
        _ = ccurl_easy_setopt_data_cb(handle, CURLOPT_WRITEFUNCTION, onBody)
        _ = ccurl_easy_setopt_ptr(handle, CURLOPT_WRITEDATA, context)
        _ = ccurl_easy_setopt_data_cb(handle, CURLOPT_HEADERFUNCTION, onHeader)
        _ = ccurl_easy_setopt_ptr(handle, CURLOPT_HEADERDATA, context)
        setLong(CURLOPT_NOPROGRESS, 0)
        _ = ccurl_easy_setopt_xferinfo_cb(handle, onProgress)
        _ = ccurl_easy_setopt_ptr(handle, CURLOPT_XFERINFODATA, Unmanaged.passUnretained(abort).toOpaque())

        let code: CURLcode = withExtendedLifetime((sink, abort)) {
            if let body = request.body {
                return body.withUnsafeBytes { bytes in
                    // The size first: without it curl measures the body with strlen.
                    _ = ccurl_easy_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bytes.count))
                    _ = ccurl_easy_setopt_ptr(handle, CURLOPT_POSTFIELDS, bytes.baseAddress)
                    if request.method != "POST" {
                        _ = request.method.withCString { ccurl_easy_setopt_ptr(handle, CURLOPT_CUSTOMREQUEST, $0) }
                    }
                    return curl_easy_perform(handle)
                }
            }
            if request.method != "GET" {
                _ = request.method.withCString { ccurl_easy_setopt_ptr(handle, CURLOPT_CUSTOMREQUEST, $0) }
            }
            return curl_easy_perform(handle)
        }
        guard code == CURLE_OK else {
            connected = false
            return .failure(error(code))
        }
        var status = 0
        _ = ccurl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var connects = 0
        _ = ccurl_easy_getinfo_long(handle, CURLINFO_NUM_CONNECTS, &connects)
        let reconnected = connected && connects > 0
        connected = true
        return .success(
            HTTPResponse(
                status: status, body: sink.body, retryAfter: sink.retryAfter, location: sink.location,
                reconnected: reconnected, etag: sink.etag, lastModified: sink.lastModified, fileName: sink.fileName))
    }

    private func setLong(_ option: CURLoption, _ value: Int) {
        _ = ccurl_easy_setopt_long(handle, option, value)
    }

    private func error(_ code: CURLcode) -> TransportError {
        let detail = errorBuffer[0] != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(code))
        let kind: TransportError.Kind
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: kind = .connect
        case CURLE_OPERATION_TIMEDOUT: kind = .timeout
        case CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE: kind = .dropped
        case CURLE_ABORTED_BY_CALLBACK: kind = .aborted
        case CURLE_WRITE_ERROR: kind = .other
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM: kind = .certificate
        default: kind = .other
        }
        return TransportError(kind: kind, message: detail)
    }
}

/// Collects a response's body and the headers the client needs.
private final class ResponseSink {
    var body: [UInt8] = []
    var retryAfter: String?
    var location: String?
    var etag: String?
    var lastModified: String?
    var fileName: String?
    let consumer: (@Sendable (UnsafeRawBufferPointer) -> Bool)?

    init(consumer: (@Sendable (UnsafeRawBufferPointer) -> Bool)?) { self.consumer = consumer }
}

private let onBody: ccurl_data_cb = { data, size, count, context in
    let sink = Unmanaged<ResponseSink>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    guard let data else { return length }
    let bytes = UnsafeRawBufferPointer(start: data, count: length)
    if let consumer = sink.consumer { return consumer(bytes) ? length : 0 }
    sink.body.appendBytes(bytes)
    return length
}

private let onHeader: ccurl_data_cb = { data, size, count, context in
    let sink = Unmanaged<ResponseSink>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    guard let data, length > 0 else { return length }
    // Only the status line, Retry-After, Location, the validators and Content-Disposition matter:
    // other lines make no string.
    switch UInt8(bitPattern: data[0]) | 0x20 {
    case UInt8(ascii: "h"), UInt8(ascii: "r"), UInt8(ascii: "l"), UInt8(ascii: "e"), UInt8(ascii: "c"): break
    default: return length
    }
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    let lowered = line.lowercased()
    if lowered.hasPrefix("retry-after:") {
        sink.retryAfter = line.dropFirst("retry-after:".count).trimmingSpaces
    } else if lowered.hasPrefix("location:") {
        sink.location = line.dropFirst("location:".count).trimmingSpaces
    } else if lowered.hasPrefix("etag:") {
        sink.etag = line.dropFirst("etag:".count).trimmingSpaces
    } else if lowered.hasPrefix("last-modified:") {
        sink.lastModified = line.dropFirst("last-modified:".count).trimmingSpaces
    } else if lowered.hasPrefix("content-disposition:") {
        sink.fileName = dispositionFileName(String(line.dropFirst("content-disposition:".count)))
    } else if line.hasPrefix("HTTP/") {
        // A new response (after a 100-continue) starts.
        sink.retryAfter = nil
        sink.location = nil
        sink.etag = nil
        sink.lastModified = nil
        sink.fileName = nil
    }
    return length
}

/// `attachment; filename="stores.csv"` → `stores.csv` (the last path component only).
func dispositionFileName(_ value: String) -> String? {
    for part in value.split(separator: ";") {
        let pair = part.trimmingSpaces
        guard pair.lowercased().hasPrefix("filename=") else { continue }
        var name = String(pair.dropFirst("filename=".count))
        if name.hasPrefix("\""), name.hasSuffix("\""), name.count >= 2 { name = String(name.dropFirst().dropLast()) }
        let last = name.split(separator: "/").last.map(String.init) ?? ""
        return last.isEmpty || last.hasPrefix(".") ? nil : last
    }
    return nil
}

private let onProgress: ccurl_xferinfo_cb = { context, _, _, _, _ in
    Unmanaged<AbortFlag>.fromOpaque(context!).takeUnretainedValue().isSet ? 1 : 0
}
