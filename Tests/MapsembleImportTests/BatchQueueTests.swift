import Synchronization
import Testing

@testable import MapsembleImport

/// Waits (up to 10 s) until `condition` holds; returns whether it did.
private func eventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<1000 {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// How many of a producer's sends have returned.
private final class SendCount: Sendable {
    let atomic = Atomic<Int>(0)
    var value: Int { atomic.load(ordering: .relaxed) }
}

/// A task sending batches 0..<count into `queue`, then finishing it.
private func produce(_ count: Int, into queue: BatchQueue) -> (task: Task<Void, Never>, sent: SendCount) {
    let sent = SendCount()
    let task = Task {
        for sequence in 0..<count {
            await queue.send(Batch(sequence: sequence))
            sent.atomic.add(1, ordering: .relaxed)
        }
        queue.finish()
    }
    return (task, sent)
}

extension Atomic where Value == Bool {
    var value: Bool { load(ordering: .relaxed) }
}

/// Lets the other tasks run for a while: what has not happened by then is taken as not happening.
private func settle() async { try? await Task.sleep(for: .milliseconds(100)) }

@Suite("BatchQueue: the chunker's hand-off to the sink")
struct BatchQueueTests {
    @Test("one consumer gets every batch once, in order, then nil", .timeLimit(minutes(1)))
    func order() async {
        let queue = BatchQueue(capacity: 4)
        let (producer, _) = produce(500, into: queue)
        var taken: [Int] = []
        for await batch in queue { taken.append(batch.sequence) }
        await producer.value
        #expect(taken == Array(0..<500))
        #expect(await queue.next()?.sequence == nil)
    }

    @Test("eight consumers share the batches: each taken exactly once", .timeLimit(minutes(1)))
    func consumers() async {
        let queue = BatchQueue(capacity: 16)
        let taken = await withTaskGroup(of: [Int].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var mine: [Int] = []
                    for await batch in queue {
                        mine.append(batch.sequence)
                        if batch.sequence % 7 == 0 { await Task.yield() }
                    }
                    return mine
                }
            }
            group.addTask {
                for sequence in 0..<2000 { await queue.send(Batch(sequence: sequence)) }
                queue.finish()
                return []
            }
            var all: [Int] = []
            for await part in group { all += part }
            return all
        }
        #expect(taken.sorted() == Array(0..<2000))
    }

    @Test("the producer waits when the queue is full, and is woken only at half", .timeLimit(minutes(1)))
    func lowWater() async {
        let queue = BatchQueue(capacity: 4)
        let (producer, sent) = produce(100, into: queue)
        // Three sends return; the fourth fills the queue and waits.
        #expect(await eventually { sent.value == 3 })
        await settle()
        #expect(sent.value == 3)
        // Taking one leaves three queued, above the low-water mark of two: the producer sleeps on.
        #expect(await queue.next()?.sequence == 0)
        await settle()
        #expect(sent.value == 3)
        // At two it is woken, and fills the queue again: the fourth send returns, the fifth
        // queues, the sixth fills it and waits.
        #expect(await queue.next()?.sequence == 1)
        #expect(await eventually { sent.value == 5 })
        await settle()
        #expect(sent.value == 5)
        var rest: [Int] = []
        while let batch = await queue.next() { rest.append(batch.sequence) }
        await producer.value
        #expect(rest == Array(2..<100))
    }

    @Test("a queue that never runs empty does not keep a slot per batch that went through", .timeLimit(minutes(1)))
    func neverEmpty() async {
        let queue = BatchQueue(capacity: 1000)
        for sequence in 0..<3 { await queue.send(Batch(sequence: sequence)) }
        var taken: [Int] = []
        for sequence in 3..<5000 {
            await queue.send(Batch(sequence: sequence))
            if let batch = await queue.next() { taken.append(batch.sequence) }
        }
        #expect(taken == Array(0..<4997))
        #expect(queue.slots <= 40)
    }

    @Test("capacity 1 keeps the producer at most one batch ahead", .timeLimit(minutes(1)))
    func channelLike() async {
        let queue = BatchQueue(capacity: 1)
        let (producer, sent) = produce(3, into: queue)
        await settle()
        #expect(sent.value == 0)
        #expect(await queue.next()?.sequence == 0)
        #expect(await eventually { sent.value == 1 })
        await settle()
        #expect(sent.value == 1)
        #expect(await queue.next()?.sequence == 1)
        #expect(await queue.next()?.sequence == 2)
        #expect(await queue.next()?.sequence == nil)
        await producer.value
    }

    @Test("a waiting consumer is handed the next batch, and gets nil at finish", .timeLimit(minutes(1)))
    func waitingConsumer() async {
        let queue = BatchQueue(capacity: 4)
        let first = Task { await queue.next()?.sequence }
        let second = Task { await queue.next()?.sequence }
        await settle()
        await queue.send(Batch(sequence: 41))
        queue.finish()
        let results = [await first.value, await second.value]
        #expect(results.compactMap { $0 } == [41])
        #expect(results.filter { $0 == nil }.count == 1)
        // Sent after the finish: dropped.
        await queue.send(Batch(sequence: 42))
        #expect(await queue.next()?.sequence == nil)
    }

    @Test("batches queued before finish are still taken", .timeLimit(minutes(1)))
    func drainAfterFinish() async {
        let queue = BatchQueue(capacity: 8)
        for sequence in 0..<3 { await queue.send(Batch(sequence: sequence)) }
        queue.finish()
        var taken: [Int] = []
        for await batch in queue { taken.append(batch.sequence) }
        #expect(taken == [0, 1, 2])
    }

    @Test("cancelling a waiting consumer or a waiting producer lets it go", .timeLimit(minutes(1)))
    func cancellation() async {
        let empty = BatchQueue(capacity: 2)
        let consumer = Task { await empty.next() }
        await settle()
        consumer.cancel()
        #expect(await consumer.value?.sequence == nil)

        let full = BatchQueue(capacity: 2)
        let returned = Atomic<Bool>(false)
        let producer = Task {
            await full.send(Batch(sequence: 0))
            await full.send(Batch(sequence: 1))
            returned.store(true, ordering: .relaxed)
        }
        await settle()
        #expect(returned.value == false)
        producer.cancel()
        await producer.value
        #expect(returned.value == true)
        // A consumer that is cancelled before it asks gets nil without waiting.
        let cancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await empty.next()
        }
        #expect(await cancelled.value?.sequence == nil)
    }
}
