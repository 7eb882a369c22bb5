import Dispatch

/// Runs blocking work (file reads, libcsv parsing) on a thread of its own instead of Swift's
/// cooperative pool, which has as many threads as cores (two on a two-core machine): a read from a
/// slow pipe there would stall every other stage.
final class BlockingExecutor: Sendable {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label, qos: .userInitiated)
    }

    /// Runs `body` on this executor's thread and waits for it without blocking the caller's thread.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}
