import Dispatch

/// One upload worker: a libcurl handle (one keep-alive connection) on a thread of its own, so
/// a blocking `curl_easy_perform` never holds one of the cooperative pool's few threads.
final class CurlWorker: Sendable {
    private let queue: DispatchQueue
    private let easy: Confined
    let abort = AbortFlag()

    /// The handle, touched only on `queue`.
    private final class Confined: @unchecked Sendable {
        let easy: CurlEasy
        init(_ easy: CurlEasy) { self.easy = easy }
    }

    init(name: String) {
        queue = DispatchQueue(label: "mapsemble-import.\(name)")
        easy = Confined(CurlEasy(abort: abort))
    }

    /// Sends a request on this worker's thread. Not cancellable mid-transfer: a request in flight
    /// settles (its answer is still accounted for); set `abort` to cut it short.
    func send(_ request: HTTPRequest) async -> Result<HTTPResponse, TransportError> {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: self.easy.easy.perform(request)) }
        }
    }
}
