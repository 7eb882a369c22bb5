/// One upload worker: a libcurl handle (one keep-alive connection) on a thread of its own, so
/// a blocking `curl_easy_perform` never holds one of the cooperative pool's few threads. A task
/// that prefers the worker's `executor` runs there already and sends without changing threads.
final class CurlWorker: Sendable {
    let executor: ThreadExecutor
    private let easy: Confined
    let abort = AbortFlag()

    /// The handle, touched only on the executor's thread.
    private final class Confined: @unchecked Sendable {
        let easy: CurlEasy
        init(_ easy: CurlEasy) { self.easy = easy }
    }

    init(name: String) {
        executor = ThreadExecutor(name: "mapsemble-import.\(name)")
        easy = Confined(CurlEasy(abort: abort))
    }

    deinit { executor.shutdown() }

    /// Sends a request on this worker's thread. Not cancellable mid-transfer: a request in flight
    /// settles (its answer is still accounted for); set `abort` to cut it short.
    func send(_ request: HTTPRequest) async -> Result<HTTPResponse, TransportError> {
        await withTaskExecutorPreference(executor) { [easy] in
            easy.easy.perform(request)
        }
    }
}
