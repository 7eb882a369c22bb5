import Synchronization

/// A flag one thread sets and another polls (e.g. curl's progress callback).
public final class AbortFlag: Sendable {
    private let value = Atomic<Bool>(false)

    public init() {}

    public var isSet: Bool { value.load(ordering: .relaxed) }

    public func set() { value.store(true, ordering: .relaxed) }
}
