/// The waiting elements of a queue, first in first out: appended at the back, taken from the front
/// without moving the rest. A taken slot is cleared at once (the queue holds nothing it has handed
/// over), and the taken slots are dropped once they are half the storage, so a queue that never
/// runs empty does not grow with what went through it. Not synchronised: its owner's lock guards it.
struct FIFOBuffer<Element> {
    private var storage: [Element?] = []
    private var head = 0

    /// Elements waiting.
    var count: Int { storage.count - head }

    /// Slots held, taken ones included.
    var slots: Int { storage.count }

    mutating func append(_ element: Element) { storage.append(element) }

    /// Takes the first element, or nil when none waits.
    mutating func popFirst() -> Element? {
        guard head < storage.count else { return nil }
        let element = storage[head]
        storage[head] = nil
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 16 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return element
    }

    mutating func removeAll() {
        storage.removeAll()
        head = 0
    }
}

extension FIFOBuffer: Sendable where Element: Sendable {}
