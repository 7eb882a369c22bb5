import Foundation

/// Thrown to a producer of a `BoundedHandoff` that takes no more: its consumer stopped it (let go
/// before the end), or the hand-off was finished.
struct HandoffStopped: Error, Equatable {}

/// Elements passed, in order, from producer threads to a consumer thread through a buffer of at
/// most `capacity` waiting elements: `put` waits while it is full, `take` while it is empty.
///
/// The producer ends the stream with `finish`, with an error when it failed: the consumer takes
/// the elements put before it, then `nil` (or that error, again at every later `take`). The
/// consumer going away calls `stop`: the waiting elements are dropped and a producer waiting in
/// `put` or `waitForRoom` (or calling them later) gets `HandoffStopped`, so it ends instead of
/// waiting forever. `startProducer` runs a producer on a thread of its own and finishes the
/// hand-off however that producer ends.
///
/// Used by the read-ahead of a `.gz` input (`RawInput`), the sheet scanner (`XLSXReader`), and
/// `ThreadExecutor`, whose thread takes its jobs from one of unbounded capacity.
final class BoundedHandoff<Element: Sendable>: @unchecked Sendable {  // every `var` is guarded by `condition`
    /// Elements waiting at most; `Int.max`: `put` never waits.
    let capacity: Int

    private let condition = NSCondition()
    /// The waiting elements; the hand-off holds no element it has handed over.
    private var buffer = FIFOBuffer<Element>()
    private var finished = false
    private var failure: (any Error)?
    private var stopped = false

    init(capacity: Int) {
        precondition(capacity > 0, "a hand-off holds at least one element")
        self.capacity = capacity
    }

    /// Waiting elements (under `condition`).
    private var count: Int { buffer.count }

    // MARK: The producer's side

    /// Hands `element` over, waiting while `capacity` elements wait already. Throws
    /// `HandoffStopped` (and drops `element`) once the consumer stopped or the hand-off finished.
    func put(_ element: Element) throws {
        condition.lock()
        defer { condition.unlock() }
        try waitForRoomLocked()
        buffer.append(element)
        condition.broadcast()
    }

    /// Waits until fewer than `capacity` elements wait, without handing one over: a producer that
    /// calls it before making its next element (a buffer to fill) keeps at most `capacity` made
    /// ahead of the consumer's current one. Throws `HandoffStopped` like `put`.
    func waitForRoom() throws {
        condition.lock()
        defer { condition.unlock() }
        try waitForRoomLocked()
    }

    private func waitForRoomLocked() throws {
        while count >= capacity && !stopped && !finished { condition.wait() }
        if stopped || finished { throw HandoffStopped() }
    }

    /// Ends the stream: after the elements put so far, `take` returns nil, or throws `error`.
    /// Only the first call counts.
    func finish(throwing error: (any Error)? = nil) {
        condition.lock()
        defer { condition.unlock() }
        guard !finished else { return }
        finished = true
        failure = error
        condition.broadcast()
    }

    /// Runs `produce` on a new thread named `name` as this hand-off's producer, and finishes the
    /// hand-off when it ends: quietly when it returns or stops on `HandoffStopped`, with its error
    /// when it throws another one (the consumer gets it after the elements put before).
    func startProducer(named name: String, _ produce: @escaping @Sendable () throws -> Void) {
        let thread = Thread { [self] in
            do {
                try produce()
                finish()
            } catch is HandoffStopped {
                finish()
            } catch {
                finish(throwing: error)
            }
        }
        thread.name = name
        thread.start()
    }

    // MARK: The consumer's side

    /// Waits for the next element; nil at the end of the stream (or once stopped). Throws the
    /// producer's error, once the elements before it are taken, at this call and every later one.
    func take() throws -> Element? {
        var taken: [Element] = []
        _ = try taking(all: false, into: &taken)
        return taken.first
    }

    /// Waits for elements and takes every one waiting, in order, into `elements` (emptied first):
    /// one lock for many, for a consumer that runs what it takes (`ThreadExecutor`). False at the
    /// end of the stream (or once stopped); throws like `take`.
    func takeAll(into elements: inout [Element]) throws -> Bool {
        elements.removeAll(keepingCapacity: true)
        return try taking(all: true, into: &elements)
    }

    /// Waits until an element waits or the stream ends, then takes the first element (or all)
    /// into `taken`, waking the producer when the buffer was full. False at the end.
    private func taking(all: Bool, into taken: inout [Element]) throws -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while count == 0 && !finished && !stopped { condition.wait() }
        guard count > 0 else {
            if !stopped, let failure { throw failure }
            return false
        }
        let wasFull = count >= capacity
        repeat {
            guard let element = buffer.popFirst() else { break }
            taken.append(element)
        } while all
        // Only a full buffer has producers waiting for room.
        if wasFull { condition.broadcast() }
        return true
    }

    /// The consumer goes away: drops the waiting elements, and makes the producer's waiting or
    /// next `put` (or `waitForRoom`) throw `HandoffStopped`. With `waitingForProducer`, returns
    /// once the producer has called `finish` (`startProducer` calls it as its thread ends): for a
    /// producer using something the caller is about to release, such as a file descriptor.
    func stop(waitingForProducer: Bool = false) {
        condition.lock()
        defer { condition.unlock() }
        stopped = true
        buffer.removeAll()
        condition.broadcast()
        if waitingForProducer {
            while !finished { condition.wait() }
        }
    }
}
