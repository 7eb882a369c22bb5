import Foundation

/// A thread of its own for work that blocks, so that it never holds one of the cooperative pool's
/// threads (as many as cores, and on a two-core machine a blocked one stalls every other stage).
///
/// Two ways in, both run on that thread in the order they arrive:
/// - as a `TaskExecutor`: a task preferring it (`executorPreference:`) runs its jobs here. An
///   upload worker's task does, so its blocking `curl_easy_perform` costs no hop to another
///   thread and back (measured on 2,000 requests: about half the context switches of handing
///   each request to a queue);
/// - `run`: one blocking call (a read from a pipe, the next block of a workbook) awaited by a task
///   running elsewhere.
///
/// The thread ends once the work queued so far has run, after `shutdown` or when the last
/// reference to the executor goes (queued work holds one, so it always runs).
final class ThreadExecutor: TaskExecutor {
    private enum Work: Sendable {
        /// A job of a task preferring this executor; the executor is kept alive until it has run.
        case job(UnownedJob, ThreadExecutor)
        case call(@Sendable () -> Void)
    }

    private let queue = BoundedHandoff<Work>(capacity: .max)

    /// - Parameter name: the thread's name (e.g. `mapsemble-import.upload-0`).
    init(name: String) {
        let queue = self.queue
        let thread = Thread {
            // Ends when the queue is finished (`shutdown`, `deinit`) and empty. Takes what waits
            // in one go: a request's jobs often come several at once.
            var batch: [Work] = []
            while (try? queue.takeAll(into: &batch)) == true {
                for work in batch {
                    switch work {
                    case .job(let job, let executor): job.runSynchronously(on: executor.asUnownedTaskExecutor())
                    case .call(let body): body()
                    }
                }
            }
        }
        thread.name = name
        thread.start()
    }

    deinit { queue.finish() }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        do {
            try queue.put(.job(job, self))
        } catch {
            // Shut down already: the job runs on the shared pool rather than never.
            globalConcurrentExecutor.enqueue(ExecutorJob(job))
        }
    }

    /// Runs `body` on this executor's thread and waits for it without blocking the caller's
    /// thread; returns what it returns, throws what it throws. Not cancellable: `body` runs to its
    /// end (cancellation is for `body` to check). After `shutdown`, throws `CancellationError`.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            do {
                try queue.put(.call { continuation.resume(with: Result { try body() }) })
            } catch {
                continuation.resume(throwing: CancellationError())
            }
        }
    }

    /// Lets the thread end once the work queued so far has run.
    func shutdown() {
        queue.finish()
    }
}
