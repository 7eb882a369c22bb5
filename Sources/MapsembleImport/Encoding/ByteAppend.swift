extension Array where Element == UInt8 {
    /// Appends raw bytes with one copy. `append(contentsOf:)` on an `UnsafeRawBufferPointer` copies
    /// byte by byte through the generic sequence path; a typed buffer takes the contiguous one.
    @inline(__always)
    mutating func appendBytes(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        append(contentsOf: UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: bytes.count))
    }
}
