/// What one distinct address is looked up and cached by: 128 bits of a stable hash of its
/// normalised text (`AddressText.normalised`; structured parts named), seeded by the scope the
/// answer holds in (the provider, its address, the countries asked). Two addresses that differ
/// only in case, spacing or punctuation have one key; the same address asked of another geocoder
/// has another. 128 bits: a collision between two of a billion distinct addresses has odds of
/// about 10⁻²¹.
struct AddressKey: Hashable, Sendable {
    var primary: Int64
    var check: Int64
}

/// Computes address keys straight from a row's bytes, as `AddressQuery.address(_:of:)` then
/// `Address.key` would, without making a String for the common case (ASCII, and the letters of
/// U+0080–U+07FF: Latin, Greek, Cyrillic, Hebrew, Arabic); other text goes through
/// `AddressText.normalised`. A warm rerun of a large file spends most of its geocoding time here.
struct AddressKeyer: Sendable {
    let query: AddressQuery
    private let seed: (UInt64, UInt64)
    /// The block digests' seed: the scope and the whole address query (its literal text, columns
    /// and part names), which the digest's column bytes alone do not tell apart.
    private let digestSeed: (UInt64, UInt64)

    init(query: AddressQuery, scope: String) {
        self.query = query
        let scoped = stableHash128(seed: (0x6D61_7073_656D_626C, 0x6765_6F63_6F64_6521), Array(scope.utf8))
        seed = (scoped.0, scoped.1)
        func describe(_ template: [PropertyMapping.LabelPart]) -> String {
            template.map { piece in
                switch piece {
                case .literal(let text): "L\(text.utf8.count):\(text)"
                case .column(let column): "C\(column)"
                }
            }.joined()
        }
        let shape =
            query.freeForm.map { "free " + describe($0) }
            ?? "parts " + query.parts.map { "\($0.part.rawValue)=\(describe($0.template))" }.joined(separator: "|")
        digestSeed = stableHash128(seed: (seed.0 ^ 0x626C_6F63_6B73_2121, seed.1), Array(shape.utf8))
    }

    /// The key of record `record`'s address, or nil when it has none (`missing_address`).
    /// `scratch` is reused between calls.
    func key(_ record: Int, of block: RecordBlock, bytes: UnsafeRawBufferPointer, scratch: inout AddressBytes)
        -> AddressKey?
    {
        scratch.out.removeAll(keepingCapacity: true)
        if let freeForm = query.freeForm {
            scratch.start()
            append(freeForm, record, block, bytes, &scratch)
            if scratch.slow {
                scratch.out = Array(AddressText.normalised(render(freeForm, record, block)).utf8)
            }
        } else {
            for (part, template) in query.parts {
                let mark = scratch.out.count
                if mark > 0 { scratch.out.append(UInt8(ascii: "|")) }
                scratch.out += Array(part.rawValue.utf8)
                scratch.out.append(UInt8(ascii: "="))
                let valueStart = scratch.out.count
                scratch.start()
                append(template, record, block, bytes, &scratch)
                if scratch.slow {
                    scratch.out.removeSubrange(valueStart...)
                    scratch.out += Array(AddressText.normalised(render(template, record, block)).utf8)
                }
                if scratch.out.count == valueStart { scratch.out.removeSubrange(mark...) }
            }
        }
        guard !scratch.out.isEmpty else { return nil }
        let hash = stableHash128(seed: seed, scratch.out)
        return AddressKey(primary: Int64(bitPattern: hash.0), check: Int64(bitPattern: hash.1))
    }

    /// What identifies a block's addresses for the block memo (`GeocodeCache.memo`): a hash of
    /// the raw bytes of each row's address pieces, and of which rows need a point (`needed`), so
    /// that an unchanged block of an unchanged file is recognised without a key per row.
    func digest(_ block: ValidatedBlock, needed: (Int) -> Bool, scratch: inout [UInt8]) -> AddressKey {
        scratch.removeAll(keepingCapacity: true)
        let templates = query.freeForm.map { [$0] } ?? query.parts.map(\.template)
        block.records.bytes.withUnsafeBytes { bytes in
            for (position, record) in block.accepted.enumerated() {
                guard needed(position) else {
                    scratch.append(0)
                    continue
                }
                scratch.append(1)
                for template in templates {
                    for piece in template {
                        if case .column(let column) = piece {
                            scratch.append(contentsOf: bytes[block.records.fieldRange(record, column)])
                        }
                        scratch.append(0x1F)
                    }
                    scratch.append(0x1E)
                }
            }
        }
        let hash = stableHash128(seed: digestSeed, scratch)
        return AddressKey(primary: Int64(bitPattern: hash.0), check: Int64(bitPattern: hash.1))
    }

    /// The key of an address whose text is normalised already (`Address.key`): what `key(_:of:…)`
    /// computes from a row's bytes.
    func key(normalised text: String) -> AddressKey {
        let hash = stableHash128(seed: seed, Array(text.utf8))
        return AddressKey(primary: Int64(bitPattern: hash.0), check: Int64(bitPattern: hash.1))
    }

    private func append(
        _ template: [PropertyMapping.LabelPart], _ record: Int, _ block: RecordBlock,
        _ bytes: UnsafeRawBufferPointer, _ scratch: inout AddressBytes
    ) {
        for piece in template {
            switch piece {
            case .literal(let literal):
                var literal = literal
                literal.withUTF8 { scratch.append(UnsafeRawBufferPointer($0)) }
            case .column(let column):
                scratch.append(UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, column)]))
            }
        }
    }

    private func render(_ template: [PropertyMapping.LabelPart], _ record: Int, _ block: RecordBlock) -> String {
        var text = ""
        for piece in template {
            switch piece {
            case .literal(let literal): text += literal
            case .column(let column): text += block.string(record, column)
            }
        }
        return text
    }
}

/// `AddressText.normalised`, byte by byte: letters and digits kept (case folded), anything else
/// a word break, words joined by one space. Text it cannot fold here (combining marks, characters
/// of three or more UTF-8 bytes, invalid UTF-8) sets `slow`, and the caller normalises it as a
/// String instead.
struct AddressBytes {
    var out: [UInt8] = []
    /// Set when the text needs `AddressText.normalised`.
    private(set) var slow = false
    private var pendingSpace = false
    private var wordsStart = 0

    /// Starts a value at the end of `out`.
    mutating func start() {
        slow = false
        pendingSpace = false
        wordsStart = out.count
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard !slow else { return }
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            if byte < 0x80 {
                let lower = byte | 0x20
                if lower >= 0x61 && lower <= 0x7A {
                    word(lower)
                } else if byte >= 0x30 && byte <= 0x39 {
                    word(byte)
                } else {
                    pendingSpace = true
                }
                index += 1
                continue
            }
            guard byte >= 0xC2 && byte <= 0xDF, index + 1 < count, bytes[index + 1] & 0xC0 == 0x80 else {
                slow = true
                return
            }
            let scalar = Int(byte & 0x1F) << 6 | Int(bytes[index + 1] & 0x3F)
            switch Self.folds[scalar - 0x80] {
            case .separator:
                pendingSpace = true
            case .slow:
                slow = true
                return
            case .letters(let folded):
                if pendingSpace && out.count > wordsStart { out.append(0x20) }
                pendingSpace = false
                out += folded
            }
            index += 2
        }
    }

    @inline(__always)
    private mutating func word(_ byte: UInt8) {
        if pendingSpace && out.count > wordsStart { out.append(0x20) }
        pendingSpace = false
        out.append(byte)
    }

    enum Fold {
        case separator
        case letters([UInt8])
        case slow
    }

    /// U+0080…U+07FF, each as `AddressText.normalised` treats it: folded through upper case
    /// when a letter or a digit, a break otherwise; combining marks (which join the letter before
    /// them) and letters that fold into a mix are left to the String path.
    static let folds: [Fold] = (0x80...0x7FF).map { value in
        let scalar = Unicode.Scalar(UInt32(value))!
        if scalar.properties.generalCategory == .nonspacingMark
            || scalar.properties.generalCategory == .spacingMark
            || scalar.properties.generalCategory == .enclosingMark || scalar.properties.isGraphemeExtend
        {
            return .slow
        }
        let character = Character(scalar)
        guard character.isLetter || character.isNumber else { return .separator }
        let folded = String(character).uppercased().lowercased()
        guard folded.allSatisfy({ $0.isLetter || $0.isNumber }) else { return .slow }
        return .letters(Array(folded.utf8))
    }
}

/// Two 64-bit hashes of bytes, stable between runs and machines (unlike `Hasher`): eight bytes at
/// a time, each lane multiplied and shifted, the length mixed in, then a SplitMix64 finish.
func stableHash128(seed: (UInt64, UInt64), _ bytes: [UInt8]) -> (UInt64, UInt64) {
    var a = seed.0
    var b = seed.1
    bytes.withUnsafeBytes { raw in
        var index = 0
        while index + 8 <= raw.count {
            let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            a = (a ^ word) &* 0x9E37_79B9_7F4A_7C15
            a ^= a >> 32
            b = (b ^ word) &* 0xC2B2_AE3D_27D4_EB4F
            b ^= b >> 29
            index += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while index < raw.count {
            tail |= UInt64(raw[index]) << shift
            shift += 8
            index += 1
        }
        a = (a ^ tail ^ UInt64(raw.count)) &* 0x9E37_79B9_7F4A_7C15
        b = (b ^ tail ^ (UInt64(raw.count) << 32)) &* 0xC2B2_AE3D_27D4_EB4F
    }
    func finish(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    return (finish(a), finish(b ^ a))
}
