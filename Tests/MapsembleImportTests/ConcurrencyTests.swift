import Foundation
import Synchronization
import Testing

@testable import MapsembleImport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

private struct Boom: Error, Equatable {}

/// Counters and flags the threads of a test set and the test reads.
private final class Probe: Sendable {
    let puts = Atomic<Int>(0)
    /// The producer got `HandoffStopped`.
    let stopped = Atomic<Bool>(false)
    /// The producer's thread got to its end.
    let ended = Atomic<Bool>(false)
    /// A call that may wait forever returned.
    let returned = Atomic<Bool>(false)
    /// The producer had ended when that call returned.
    let endedFirst = Atomic<Bool>(false)
}

/// Waits (up to 5 s) until `condition` holds; returns whether it did.
private func eventually(_ condition: () -> Bool) -> Bool {
    for _ in 0..<500 {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// The thread running the caller, comparable across calls.
private func currentThread() -> ObjectIdentifier { ObjectIdentifier(Thread.current) }

@Suite("Bounded hand-off")
struct BoundedHandoffTests {
    @Test("elements arrive in order through a buffer of two, never more than two ahead of the consumer")
    func ordered() throws {
        let handoff = BoundedHandoff<Int>(capacity: 2)
        let probe = Probe()
        handoff.startProducer(named: "test.producer") {
            for value in 0..<2_000 {
                try handoff.put(value)
                probe.puts.add(1, ordering: .sequentiallyConsistent)
            }
        }
        var received: [Int] = []
        while let value = try handoff.take() {
            received.append(value)
            // Give the producer time to fill the buffer now and then: it must stop at two waiting.
            if received.count % 250 == 0 { usleep(20_000) }
            #expect(probe.puts.load(ordering: .sequentiallyConsistent) <= received.count + 2)
        }
        #expect(received == Array(0..<2_000))
        #expect(try handoff.take() == nil)
    }

    @Test("takeAll takes every waiting element in order, many at a time, and ends with the stream")
    func takeAll() throws {
        let handoff = BoundedHandoff<Int>(capacity: 64)
        handoff.startProducer(named: "test.producer") {
            for value in 0..<5_000 { try handoff.put(value) }
        }
        var received: [Int] = []
        var batch: [Int] = []
        var takes = 0
        while try handoff.takeAll(into: &batch) {
            #expect(!batch.isEmpty && batch.count <= 64)
            received += batch
            takes += 1
            if takes % 10 == 0 { usleep(2_000) }  // let elements pile up now and then
        }
        #expect(received == Array(0..<5_000))
        #expect(takes < 5_000, "some takes took several")
        #expect(try handoff.takeAll(into: &batch) == false && batch.isEmpty)
    }

    @Test("a producer's error reaches the consumer after the elements put before it, and stays")
    func failure() throws {
        let handoff = BoundedHandoff<Int>(capacity: 2)
        handoff.startProducer(named: "test.producer") {
            for value in 1...5 { try handoff.put(value) }
            throw Boom()
        }
        var received: [Int] = []
        var thrown: (any Error)?
        do {
            while let value = try handoff.take() { received.append(value) }
        } catch {
            thrown = error
        }
        #expect(received == [1, 2, 3, 4, 5])
        #expect(thrown is Boom)
        #expect(throws: Boom.self) { try handoff.take() }
    }

    @Test("the consumer stopping unblocks a producer waiting on a full buffer, which ends")
    func stopUnblocksProducer() throws {
        let handoff = BoundedHandoff<Int>(capacity: 2)
        let probe = Probe()
        let thread = Thread {
            do {
                for value in 0..<1_000 {
                    try handoff.put(value)
                    probe.puts.add(1, ordering: .sequentiallyConsistent)
                }
            } catch is HandoffStopped {
                probe.stopped.store(true, ordering: .sequentiallyConsistent)
            } catch {}
            handoff.finish()
            probe.ended.store(true, ordering: .sequentiallyConsistent)
        }
        thread.start()
        #expect(try handoff.take() == 0)
        // 0 taken, 1 and 2 waiting: the put of 3 waits for room.
        #expect(eventually { probe.puts.load(ordering: .sequentiallyConsistent) == 3 })
        usleep(50_000)
        #expect(probe.puts.load(ordering: .sequentiallyConsistent) == 3)
        handoff.stop()
        #expect(
            eventually { probe.ended.load(ordering: .sequentiallyConsistent) }, "the producer still waits after stop")
        let stopped = probe.stopped.load(ordering: .sequentiallyConsistent)
        #expect(stopped)
        #expect(try handoff.take() == nil)
    }

    @Test("stop waiting for the producer returns once its thread has ended")
    func stopWaitsForProducer() {
        let handoff = BoundedHandoff<Int>(capacity: 1)
        let probe = Probe()
        handoff.startProducer(named: "test.producer") {
            defer { probe.ended.store(true, ordering: .sequentiallyConsistent) }
            var value = 0
            while true {
                try handoff.waitForRoom()
                usleep(1_000)
                try handoff.put(value)
                probe.puts.add(1, ordering: .sequentiallyConsistent)
                value += 1
            }
        }
        #expect(eventually { probe.puts.load(ordering: .sequentiallyConsistent) == 1 })
        // On a thread of its own, so that a stop that never returns fails the test instead of hanging it.
        Thread {
            handoff.stop(waitingForProducer: true)
            let ended = probe.ended.load(ordering: .sequentiallyConsistent)
            probe.endedFirst.store(ended, ordering: .sequentiallyConsistent)
            probe.returned.store(true, ordering: .sequentiallyConsistent)
        }.start()
        #expect(
            eventually { probe.returned.load(ordering: .sequentiallyConsistent) },
            "stop(waitingForProducer:) did not return")
        let endedFirst = probe.endedFirst.load(ordering: .sequentiallyConsistent)
        #expect(endedFirst)
    }
}

@Suite("Thread executor")
struct ThreadExecutorTests {
    @Test("run returns the body's value from the executor's own thread, and rethrows its error")
    func run() async throws {
        let executor = ThreadExecutor(name: "mapsemble-import.test")
        let product = try await executor.run { 6 * 7 }
        #expect(product == 42)
        let first = try await executor.run { currentThread() }
        let second = try await executor.run { currentThread() }
        #expect(first == second)
        let elsewhere = await Task.detached { currentThread() }.value
        #expect(first != elsewhere)
        await #expect(throws: Boom.self) {
            try await executor.run { () throws -> Int in throw Boom() }
        }
        // Still usable after an error.
        let after = try await executor.run { "after" }
        #expect(after == "after")
    }

    @Test("a task preferring the executor runs on its thread")
    func preference() async throws {
        let executor = ThreadExecutor(name: "mapsemble-import.test")
        let thread = try await executor.run { currentThread() }
        let preferring = await Task(executorPreference: executor) { currentThread() }.value
        #expect(preferring == thread)
    }

    @Test("after shutdown, run throws instead of waiting forever")
    func shutdown() async throws {
        let executor = ThreadExecutor(name: "mapsemble-import.test")
        let before = try await executor.run { 1 }
        #expect(before == 1)
        executor.shutdown()
        await #expect(throws: CancellationError.self) { try await executor.run { 2 } }
    }
}
