import Foundation

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

extension CurlWorker {
    /// Sends a request until it gets an answer worth reading, under `policy`: the one retry loop
    /// of every HTTP request the tool makes (the API, and the geocoders and URL sources after it).
    /// 429, 5xx, time-outs and dropped connections are tried again after the policy's wait;
    /// `request` makes each attempt's request (fresh headers: a new token). On a 401,
    /// `retryUnauthorized` is asked once whether trying again can help.
    /// Returns the answer and whether an earlier attempt may have been applied (it got no answer,
    /// or the connection was replaced).
    /// - Throws: `RetriesExhausted` after the last retry; `CancellationError` when the transfer
    ///   was aborted or the task cancelled; what `request` throws.
    func exchange(
        policy: RetryPolicy, timeoutSeconds: Double, request: () async throws -> HTTPRequest,
        retryUnauthorized: (() -> Bool)? = nil, onAttempt: (() -> Void)? = nil,
        onRetry: ((RetryNotice) -> Void)? = nil
    ) async throws -> (response: HTTPResponse, uncertain: Bool) {
        var attempt = 0
        var uncertain = false
        var refreshed = false
        while true {
            let made = try await request()
            onAttempt?()
            let reason: String
            var status: Int?
            var retryAfter: String?
            switch await send(made) {
            case .success(let response):
                if response.reconnected { uncertain = true }
                if response.status == 401 && !refreshed, let retryUnauthorized, retryUnauthorized() {
                    refreshed = true
                    continue
                }
                guard RetryPolicy.isRetryable(status: response.status) else { return (response, uncertain) }
                status = response.status
                retryAfter = response.retryAfter
                reason = response.status == 429 ? "rate limited (HTTP 429)" : "HTTP \(response.status)"
            case .failure(let error):
                if error.kind == .aborted { throw CancellationError() }
                if error.kind == .certificate {
                    throw RetriesExhausted(attempts: attempt + 1, reason: error.message, status: nil)
                }
                if error.kind != .connect { uncertain = true }
                reason = error.kind == .timeout ? "no answer within \(timeoutSeconds.formatted()) s" : error.message
            }
            guard attempt < policy.maxRetries else {
                throw RetriesExhausted(attempts: attempt + 1, reason: reason, status: status)
            }
            if Task.isCancelled { throw CancellationError() }
            attempt += 1
            let delay = policy.delay(attempt: attempt, retryAfter: retryAfter)
            onRetry?(
                RetryNotice(
                    attempt: attempt, maxRetries: policy.maxRetries, delaySeconds: delay, reason: reason, status: status
                ))
            try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
        }
    }
}
