import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A source at a URL (`source.path: https://…`): downloaded through libcurl under the shared
/// retry policy into a temporary file only its owner can read (removed once the run ends), then
/// read as a file of the same name would be. A run keeps the validators of the last completed
/// import of the source (`ETag`, `Last-Modified`, and the body's digest) in the state directory:
/// the next one asks with `If-None-Match`/`If-Modified-Since`, and a `304`, or a body with the
/// same digest, ends it at once as `unchanged`.
///
/// Redirects are followed by hand (ten at most), so that `source.headers` go only to the origin
/// (scheme, host and port) they were written for; the conditional headers, which hold no secret,
/// go to every hop (a share link's export redirects to a download host). Plain `http://` is
/// allowed only to this machine, at every hop.
public enum RemoteSource {
    /// Whether `path` is a URL rather than a file.
    public static func isURL(_ path: String) -> Bool {
        let lower = path.prefix(8).lowercased()
        return lower.hasPrefix("https://") || lower.hasPrefix("http://")
    }

    /// The URL as messages and reports show it: no user or password, and `?…` in place of a query
    /// (either may hold an access token).
    /// A share link's path is its access key: only its host is shown.
    public static func displayName(_ url: String) -> String {
        guard var parts = URLComponents(string: url) else { return "the source URL" }
        if let export = ShareLink.export(url) {
            return "\(parts.scheme ?? "https")://\(parts.host ?? "")/… (a \(export.service) link)"
        }
        parts.user = nil
        parts.password = nil
        let queried = parts.query != nil
        parts.query = nil
        parts.fragment = nil
        return (parts.string ?? "the source URL") + (queried ? "?…" : "")
    }

    /// The name the report files of a URL source share: its path's last part (`stores.csv`), else
    /// the host.
    static func fileName(_ url: String) -> String {
        if let export = ShareLink.export(url) {
            // The service and a digest of the link: two links' reports do not meet.
            return export.service.lowercased().replacingOccurrences(of: " ", with: "-") + "-"
                + fnv1a(url.utf8).prefix(6) + "." + export.format
        }
        let parts = URLComponents(string: url)
        let last = parts?.path.split(separator: "/").last.map(String.init) ?? ""
        return last.isEmpty ? (parts?.host ?? "source") : last
    }

    /// What a source's last completed import saw of it.
    struct Validators: Equatable, Sendable {
        var etag: String?
        var lastModified: String?
        /// FNV-1a of the whole body.
        var digest: String
        var size: Int
    }

    /// A body downloaded to a temporary file.
    final class Download: Sendable {
        /// The file, named after the source so that its extension says its format.
        let path: String
        let validators: Validators
        /// The folder's lock, held while the file is in use (`SourceFetcher.removeLeftovers`).
        private let lock: Int32

        init(path: String, lock: Int32, validators: Validators) {
            self.path = path
            self.validators = validators
            self.lock = lock
        }

        deinit {
            unlink(path)
            rmdir((path as NSString).deletingLastPathComponent)
            close(lock)
        }
    }

    enum Outcome {
        /// The source is as the last completed import saw it; the sentence says how that is known.
        case unchanged(String)
        case downloaded(Download)
    }
}

/// A URL or a `.zip` as a local file to read (for `inspect`, which keeps no validators): the
/// download and the unpacked member are removed once the copy is let go.
public final class LocalCopy: Sendable {
    /// The file to read.
    public let path: String
    private let held: [RemoteSource.Download]

    private init(path: String, held: [RemoteSource.Download]) {
        self.path = path
        self.held = held
    }

    /// The copy of the input a pipeline names, when it is a URL or a `.zip` (its settings used),
    /// with `config.source.path` pointing at it; nil otherwise.
    public static func of(_ config: inout PipelineConfig) async throws -> LocalCopy? {
        guard config.source.origin == nil, let path = config.source.path,
            let copy = try await of(
                path, member: config.source.member, headers: config.source.headers, caFile: config.source.caFile)
        else { return nil }
        config.source.origin = path
        config.source.path = copy.path
        return copy
    }

    /// A copy of `source` when it is a URL or a `.zip`, else nil (read the path itself).
    public static func of(
        _ source: String, member: String? = nil, headers: [String: String] = [:], caFile: String? = nil,
        log: (@Sendable (RunEvent) -> Void)? = nil
    ) async throws -> LocalCopy? {
        var held: [RemoteSource.Download] = []
        var path = source
        if RemoteSource.isURL(source) {
            let fetcher = try SourceFetcher(
                url: source, headers: headers, caFile: caFile, policy: RetryPolicy(maxRetries: 3),
                timeoutSeconds: 60, log: log)
            guard case .downloaded(let download) = try await fetcher.fetch(previous: nil) else {
                preconditionFailure("a fetch without validators downloads")
            }
            held.append(download)
            path = download.path
        }
        if ZipMember.isZip(path) {
            let shown = RemoteSource.isURL(source) ? RemoteSource.displayName(source) : source
            let unpacked = try ZipMember.extract(path, member: member, name: shown)
            held.append(unpacked)
            path = unpacked.path
        }
        return held.isEmpty ? nil : LocalCopy(path: path, held: held)
    }
}

/// One download of a URL source.
struct SourceFetcher {
    var url: String
    /// `source.headers`, values expanded already.
    var headers: [String: String]
    var caFile: String?
    var policy: RetryPolicy
    var timeoutSeconds: Double
    var log: (@Sendable (RunEvent) -> Void)?
    /// Told the bytes downloaded as they come.
    var progress: (@Sendable (Progress) -> Void)?

    /// The format a share link's export has, when `url` was one: the temporary file's extension.
    private var exportFormat: String?
    /// How messages name the source: from the URL as given (a share link's export URL holds
    /// the link, key included).
    private let shown: String

    init(
        url: String, headers: [String: String], caFile: String?, policy: RetryPolicy, timeoutSeconds: Double,
        log: (@Sendable (RunEvent) -> Void)?
    ) throws {
        self.url = url
        shown = RemoteSource.displayName(url)
        self.headers = headers
        self.caFile = caFile
        self.policy = policy
        self.timeoutSeconds = timeoutSeconds
        self.log = log
        if let export = ShareLink.export(url) {
            self.url = export.url
            exportFormat = export.format
            log?(
                RunEvent(
                    .detail,
                    "\(RemoteSource.displayName(url)) is a \(export.service) share link: reading its \(export.format) export"
                ))
        }
        try Self.checkScheme(url)
        for (name, value) in headers {
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                throw ImportError(.config, "source.headers has a header named \"\(name)\", expected a header name")
            }
            guard !value.contains("\r"), !value.contains("\n") else {
                throw ImportError(.config, "source.headers.\(name) holds a line break, expected a one-line value")
            }
        }
        if let caFile, access(caFile, R_OK) != 0 {
            throw ImportError.system(.config, "source.ca_file cannot be read", file: caFile)
        }
    }

    /// `https://`, or plain `http://` to this machine only.
    static func checkScheme(_ url: String) throws {
        let shown = RemoteSource.displayName(url)
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(), let host = parts.host,
            !host.isEmpty
        else {
            throw ImportError(.config, "source.path \"\(shown)\" is not a URL such as https://example.org/stores.csv")
        }
        guard scheme == "https" || (scheme == "http" && BaseURL.isLoopback(host)) else {
            throw ImportError(
                .config, "source.path \"\(shown)\" must use https:// (plain http:// is allowed only for localhost)")
        }
    }

    /// Scheme, host and port: what headers written for one address may go to.
    static func origin(_ url: String) -> String {
        guard let parts = URLComponents(string: url) else { return url }
        let scheme = parts.scheme?.lowercased() ?? ""
        let port = parts.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(parts.host?.lowercased() ?? ""):\(port)"
    }

    /// Downloads the source, or finds it unchanged since `previous` (nil: download it whatever).
    func fetch(previous: RemoteSource.Validators?) async throws -> RemoteSource.Outcome {
        let started = ContinuousClock.now
        let file = try Self.temporaryFile(named: fileName())
        let spool = Spool(fd: file.fd, progress: progress)
        var keep = false
        defer {
            close(file.fd)
            if !keep { Self.discard(file) }
        }
        let worker = CurlWorker(name: "source")
        let firstOrigin = Self.origin(url)
        var current = url
        var response: HTTPResponse?
        for hop in 0...10 {
            var lines: [String] = []
            if Self.origin(current) == firstOrigin { lines += headers.keys.sorted().map { "\($0): \(headers[$0]!)" } }
            if let etag = previous?.etag { lines.append("If-None-Match: \(etag)") }
            if let modified = previous?.lastModified { lines.append("If-Modified-Since: \(modified)") }
            let request = HTTPRequest(
                method: "GET", url: current, headers: lines, timeoutSeconds: timeoutSeconds,
                bodyConsumer: { spool.write($0) }, caFile: caFile, lowSpeedLimit: 1)
            let answer: HTTPResponse
            do {
                // Ctrl-C stops the transfer (curl's progress callback polls the flag).
                (answer, _) = try await withTaskCancellationHandler {
                    try await worker.exchange(
                        policy: policy, timeoutSeconds: timeoutSeconds,
                        request: {
                            try spool.restart()
                            return request
                        },
                        onRetry: { notice in
                            log?(
                                RunEvent(
                                    .notice, "downloading \(shown): \(notice.sentence)", event: "retry",
                                    fields: notice.fields))
                        })
                } onCancel: {
                    worker.abort.set()
                }
            } catch let exhausted as RetriesExhausted {
                if let failure = spool.failure { throw failure }
                let cut = spool.written > 0 && exhausted.status == nil
                throw ImportError(
                    .remote,
                    cut
                        ? "the download of \(shown) was cut short at byte \(spool.written) (\(exhausted.reason)) after \(exhausted.attempts) attempts, expected the whole body; nothing was imported"
                        : "cannot download \(shown): \(exhausted.reason) after \(exhausted.attempts) attempts")
            }
            if let failure = spool.failure { throw failure }
            guard (300..<400).contains(answer.status), answer.status != 304 else {
                response = answer
                break
            }
            guard let location = answer.location, let next = URL(string: location, relativeTo: URL(string: current))
            else {
                throw ImportError(.remote, "\(shown) answered HTTP \(answer.status) without a Location to go to")
            }
            guard hop < 10 else { throw ImportError(.remote, "\(shown) redirects more than 10 times") }
            let target = next.absoluteString
            do {
                try Self.checkScheme(target)
            } catch {
                throw ImportError(
                    .remote,
                    "\(shown) redirects to \(RemoteSource.displayName(target)), which is not https:// (plain http:// only to localhost)"
                )
            }
            if Self.origin(target) != firstOrigin && !headers.isEmpty && Self.origin(current) == firstOrigin {
                log?(
                    RunEvent(
                        .detail,
                        "\(shown) redirects to another address (\(RemoteSource.displayName(target))): source.headers are not sent there"
                    ))
            }
            current = target
        }
        guard let response else { throw ImportError(.remote, "\(shown) redirects more than 10 times") }
        if response.status == 304, let previous {
            return .unchanged(
                "\(shown) answered 304 Not Modified to \(previous.etag != nil ? "its ETag" : "its Last-Modified date")")
        }
        guard response.status == 200 else {
            let hint =
                response.status == 401 || response.status == 403
                ? " (the source needs credentials: source.headers, e.g. Authorization: \"Bearer ${TOKEN}\")" : ""
            throw ImportError(.remote, "cannot download \(shown): it answered HTTP \(response.status)\(hint)")
        }
        let validators = RemoteSource.Validators(
            etag: response.etag, lastModified: response.lastModified, digest: spool.digest, size: spool.written)
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        log?(
            RunEvent(
                .detail,
                "downloaded \(shown): \(spool.written) bytes in \(String(format: "%.1f", seconds)) s"
                    + (validators.etag != nil || validators.lastModified != nil
                        ? "" : " (no ETag or Last-Modified: compared by content next time)"),
                event: "download", fields: ["bytes": .int(spool.written)]))
        if let previous, previous.digest == validators.digest, previous.size == validators.size {
            return .unchanged("\(shown) holds the same \(spool.written) bytes as at its last import")
        }
        keep = true
        // A URL whose last part says nothing of the format: the name the server gives the body.
        var path = file.path
        if let given = response.fileName.map(Self.safeName), !given.isEmpty,
            !ZipMember.isDataName(fileName()) && !ZipMember.isZip(fileName()),
            rename(file.path, file.folder + "/" + given) == 0
        {
            path = file.folder + "/" + given
        }
        return .downloaded(RemoteSource.Download(path: path, lock: file.lock, validators: validators))
    }

    /// The temporary file's name: the URL's last part, or the share link's export format, so
    /// the format is found from the name as for a file.
    private func fileName() -> String {
        var name = Self.safeName(RemoteSource.fileName(url))
        if let exportFormat, !name.lowercased().hasSuffix("." + exportFormat) { name = "export." + exportFormat }
        return name.isEmpty ? "source" : name
    }

    /// A file name made of letters, digits, `.`, `_` and `-` only (80 characters at most), never
    /// hidden.
    static func safeName(_ name: String) -> String {
        String(name.filter { $0.isLetter || $0.isNumber || "._-".contains($0) }.drop { $0 == "." }.suffix(80))
    }

    /// Removes a temporary file made by `temporaryFile`, its folder, and lets go of its lock.
    static func discard(_ file: TemporaryFile) {
        unlink(file.path)
        rmdir(file.folder)
        close(file.lock)
    }

    /// A temporary file, the folder of its own it is in, and the lock held on that folder.
    struct TemporaryFile {
        var fd: Int32
        var path: String
        var folder: String
        var lock: Int32
    }

    /// The prefix of the temporary folders' names (then six characters from `mkdtemp`).
    static let folderPrefix = "mapsemble-import.tmp-"

    /// A new file `NAME` (mode 0600) in a new folder of its own in `$TMPDIR` (mode 0700),
    /// `mapsemble-import.tmp-XXXXXX/NAME`, locked (`flock`) for as long as it is used. The folders
    /// a killed run left behind (no process holds their lock) are removed first.
    static func temporaryFile(named name: String) throws -> TemporaryFile {
        let directory = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        removeLeftovers(in: directory)
        // Made under another name, and given its own once locked: a folder named with the prefix
        // is always locked while its run lives.
        var template = Array((directory + "/mapsemble-import.new-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw ImportError.system(.output, "cannot make a temporary folder for the download", file: directory)
        }
        var folder = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let lock = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard lock >= 0, flock(lock, LOCK_EX) == 0 else {
            if lock >= 0 { close(lock) }
            rmdir(folder)
            throw ImportError.system(.output, "cannot lock the temporary folder for the download", file: folder)
        }
        let named = directory + "/" + folderPrefix + folder.suffix(6)
        if rename(folder, named) == 0 { folder = named }
        let path = folder + "/" + name
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            rmdir(folder)
            close(lock)
            throw ImportError.system(.output, "cannot make a temporary file for the download", file: folder)
        }
        return TemporaryFile(fd: fd, path: path, folder: folder, lock: lock)
    }

    /// Removes the temporary folders whose run is gone (killed with -9): named as `temporaryFile`
    /// names them, the user's, no process holding their lock; only the regular files directly
    /// in them are removed, one by one, then the folder if that empties it.
    static func removeLeftovers(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(folderPrefix) {
            let suffix = name.dropFirst(folderPrefix.count)
            guard suffix.count == 6, suffix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else { continue }
            let folder = directory + "/" + name
            var info = stat()
            guard lstat(folder, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == getuid() else {
                continue
            }
            let lock = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard lock >= 0 else { continue }
            defer { close(lock) }
            guard flock(lock, LOCK_EX | LOCK_NB) == 0,
                let files = try? FileManager.default.contentsOfDirectory(atPath: folder)
            else { continue }
            for file in files {
                var entry = stat()
                if lstat(folder + "/" + file, &entry) == 0, (entry.st_mode & S_IFMT) == S_IFREG {
                    unlink(folder + "/" + file)
                }
            }
            rmdir(folder)
        }
    }
}

/// Where a download's body goes: the temporary file, and its digest as it is written. Each
/// attempt starts the file over. Used by the transfer's thread, then read once it is done.
private final class Spool: @unchecked Sendable {
    let fd: Int32
    private(set) var written = 0
    private var hash = FNV1a()
    /// Why a write failed (the disk is full): the transfer stops on it.
    private(set) var failure: ImportError?
    private let progress: (@Sendable (Progress) -> Void)?

    init(fd: Int32, progress: (@Sendable (Progress) -> Void)?) {
        self.fd = fd
        self.progress = progress
    }

    var digest: String {
        let hex = String(hash.value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    func restart() throws {
        // A write that failed (the disk is full) is not tried again.
        if let failure { throw failure }
        written = 0
        hash = FNV1a()
        guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else {
            throw ImportError.system(.output, "cannot reuse the download's temporary file")
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var done = 0
        while done < bytes.count {
            let result = Glibc.write(fd, base + done, bytes.count - done)
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else {
                failure = ImportError.system(.output, "cannot write the download to its temporary file")
                return false
            }
            done += result
        }
        for byte in bytes { hash.mix(byte) }
        written += bytes.count
        progress?(Progress(rowsRead: 0, bytesRead: 0, rejected: 0, downloaded: written))
        return true
    }
}

/// The validators of each URL source's last completed import, one small file per source and
/// pipeline in `STATE_DIR/sources/` (named by a digest: the URL, which may hold a token, is not
/// written down).
struct SourceValidatorStore {
    let directory: String

    init(stateDirectory: String) { directory = stateDirectory + "/sources" }

    /// The key of a source imported by a pipeline: the URL, where it goes and how rows are read,
    /// so that the same URL imported by another pipeline, or into another map, is not unchanged.
    static func key(url: String, config: PipelineConfig) -> String {
        let settings = ResumeJournal.Fingerprint.settings(of: config)
        let text = ([url] + settings.keys.sorted().map { "\($0)=\(settings[$0]!)" }).joined(separator: "\n")
        return fnv1a(text.utf8)
    }

    /// Forgets the source's validators.
    func remove(_ key: String) { unlink("\(directory)/\(key).json") }

    func load(_ key: String) -> RemoteSource.Validators? {
        guard let data = FileManager.default.contents(atPath: "\(directory)/\(key).json"),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let digest = object["digest"] as? String, let size = object["size"] as? Int
        else { return nil }
        return RemoteSource.Validators(
            etag: object["etag"] as? String, lastModified: object["last_modified"] as? String, digest: digest,
            size: size)
    }

    /// Replaces the source's entry atomically (a rename), readable by its owner only.
    func save(_ validators: RemoteSource.Validators, for key: String) throws {
        try StateDirectory.create(directory)
        var object: [String: Any] = ["digest": validators.digest, "size": validators.size]
        if let etag = validators.etag { object["etag"] = etag }
        if let modified = validators.lastModified { object["last_modified"] = modified }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        let path = "\(directory)/\(key).json"
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]),
            rename(temporary, path) == 0
        else {
            unlink(temporary)
            throw ImportError.system(.output, "cannot keep the source's validators", file: path)
        }
    }
}
