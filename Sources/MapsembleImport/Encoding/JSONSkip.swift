/// Past one JSON value in bytes without reading it: brackets and strings (with their escapes)
/// followed, a number or literal ending before the `,`, `]`, `}` or space after it. Values are
/// not checked; used to find members by their byte ranges.
enum JSONSkip {
    /// Moves `index` (at the value's first byte) past the value, not beyond `end`; false when the
    /// bytes end inside it.
    static func value(_ bytes: UnsafeRawBufferPointer, _ index: inout Int, end: Int) -> Bool {
        guard index < end else { return false }
        var depth = 0
        var inString = false
        while index < end {
            let byte = bytes[index]
            index += 1
            if inString {
                if byte == 0x5C {
                    index += 1
                } else if byte == 0x22 {
                    inString = false
                    if depth == 0 { return true }
                }
                continue
            }
            switch byte {
            case 0x22: inString = true
            case 0x7B, 0x5B: depth += 1
            case 0x7D, 0x5D:
                if depth == 0 {
                    index -= 1
                    return true
                }
                depth -= 1
                if depth == 0 { return true }
            case 0x2C, 0x20, 0x0A, 0x0D, 0x09:
                if depth == 0 {
                    index -= 1
                    return true
                }
            default: break
            }
        }
        return depth == 0 && !inString && index <= end
    }
}
