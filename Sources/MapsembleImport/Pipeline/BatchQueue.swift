import NIOConcurrencyHelpers

/// The hand-off from the chunker to the sink: a bounded queue of batches, taken by any number of
/// consumers (the upload workers) and filled by one producer (the chunker).
///
/// The producer waits when the queue holds `capacity` batches, and is woken only once consumers
/// have taken it down to `lowWater`. An upload takes about one batch per server answer; with a
/// channel, each take woke the chunker (a thread wake-up and a task hop per request), which then
/// cut one batch and waited again. Here it wakes once per `capacity - lowWater` batches and cuts
/// them back to back, and a worker that finds a batch waiting takes it without suspending.
///
/// With `capacity` 1 it behaves as a channel: the producer is at most one batch ahead.
/// A consumer whose task is cancelled gets `nil`, as from a channel; a producer whose task is
/// cancelled returns from `send` at once (its caller checks for cancellation).
public final class BatchQueue: AsyncSequence, Sendable {
    public typealias Element = Batch

    let capacity: Int
    let lowWater: Int

    private struct Waiter {
        var id: UInt64
        var continuation: UnsafeContinuation<Batch?, Never>
    }

    private struct State {
        var buffer = FIFOBuffer<Batch>()
        var finished = false
        var producer: UnsafeContinuation<Void, Never>?
        var producerCancelled = false
        var consumers: [Waiter] = []
        var cancelledConsumers: Set<UInt64> = []
        var nextID: UInt64 = 0

        var count: Int { buffer.count }

        /// Takes a queued batch, with the producer to wake when that brought the queue down to
        /// `lowWater`.
        mutating func takeQueued(lowWater: Int) -> (batch: Batch, producer: UnsafeContinuation<Void, Never>?)? {
            guard let batch = buffer.popFirst() else { return nil }
            guard count <= lowWater, let waiting = producer else { return (batch, nil) }
            producer = nil
            return (batch, waiting)
        }
    }

    private let state = NIOLockedValueBox(State())

    /// Slots the queue's buffer holds, taken ones included (for tests: it must not grow with the
    /// number of batches that went through).
    var slots: Int { state.withLockedValue { $0.buffer.slots } }

    /// `capacity` at least 1; the producer is woken again at `capacity / 2`.
    public init(capacity: Int = 1) {
        self.capacity = Swift.max(1, capacity)
        lowWater = self.capacity / 2
    }

    /// Queues `batch`, or hands it to a consumer waiting for one; waits while the queue is full.
    /// After `finish()` the batch is dropped.
    public func send(_ batch: Batch) async {
        enum Action {
            case done, suspend
            case hand(UnsafeContinuation<Batch?, Never>)
        }
        let action: Action = state.withLockedValue { state in
            if state.finished { return .done }
            if !state.consumers.isEmpty { return .hand(state.consumers.removeFirst().continuation) }
            state.buffer.append(batch)
            return state.count >= capacity && !state.producerCancelled ? .suspend : .done
        }
        switch action {
        case .done: return
        case .hand(let consumer): consumer.resume(returning: batch)
        case .suspend:
            await withTaskCancellationHandler {
                await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                    let waits = state.withLockedValue { state in
                        guard state.count > lowWater && !state.finished && !state.producerCancelled else {
                            return false
                        }
                        state.producer = continuation
                        return true
                    }
                    if !waits { continuation.resume() }
                }
            } onCancel: {
                let producer = state.withLockedValue { state in
                    state.producerCancelled = true
                    defer { state.producer = nil }
                    return state.producer
                }
                producer?.resume()
            }
        }
    }

    /// No more batches: consumers waiting get `nil`, and the rest take what is queued, then `nil`.
    public func finish() {
        let (consumers, producer) = state.withLockedValue { state in
            state.finished = true
            defer {
                state.consumers = []
                state.producer = nil
            }
            return (state.consumers, state.producer)
        }
        for consumer in consumers { consumer.continuation.resume(returning: nil) }
        producer?.resume()
    }

    /// The next batch, waiting for one; `nil` once the queue is finished and empty, or when the
    /// calling task is cancelled.
    public func next() async -> Batch? {
        if Task.isCancelled { return nil }
        if let batch = takeIfQueued() { return batch }
        let id = state.withLockedValue { state in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Batch?, Never>) in
                enum Outcome {
                    case waits
                    case now(Batch?, wake: UnsafeContinuation<Void, Never>?)
                }
                let outcome: Outcome = state.withLockedValue { state in
                    if state.cancelledConsumers.remove(id) != nil { return .now(nil, wake: nil) }
                    if let taken = state.takeQueued(lowWater: lowWater) {
                        return .now(taken.batch, wake: taken.producer)
                    }
                    if state.finished { return .now(nil, wake: nil) }
                    state.consumers.append(Waiter(id: id, continuation: continuation))
                    return .waits
                }
                if case .now(let batch, let producer) = outcome {
                    producer?.resume()
                    continuation.resume(returning: batch)
                }
            }
        } onCancel: {
            let waiter = state.withLockedValue { state -> Waiter? in
                if let index = state.consumers.firstIndex(where: { $0.id == id }) {
                    return state.consumers.remove(at: index)
                }
                state.cancelledConsumers.insert(id)
                return nil
            }
            waiter?.continuation.resume(returning: nil)
        }
    }

    /// Takes a queued batch without suspending, waking the producer at the low-water mark.
    private func takeIfQueued() -> Batch? {
        let taken = state.withLockedValue { $0.takeQueued(lowWater: lowWater) }
        taken?.producer?.resume()
        return taken?.batch
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let queue: BatchQueue
        public mutating func next() async -> Batch? { await queue.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(queue: self) }
}
