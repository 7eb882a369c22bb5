import Testing

@testable import MapsembleImport

/// Runs the validator over one `lon,lat` pair given as text.
private func check(
    lon: String, lat: String, swapped: PipelineConfig.SwappedPolicy = .reject, bounds: [Double]? = nil,
    separator: UInt8 = UInt8(ascii: ".")
) -> (code: RejectCode?, coordinates: String?, column: String?) {
    var block = RecordBlock()
    block.append(fields: [lon, lat], line: 2)
    let validator = Validator(
        longitudeColumn: 0, latitudeColumn: 1, header: ["lon", "lat"], swapped: swapped, bounds: bounds,
        decimalSeparator: separator)
    let result = validator.validate(block)
    if let rejection = result.records.rejections.first {
        #expect(rejection.line == 2)
        #expect(rejection.fields == [lon, lat])
        return (rejection.code, nil, rejection.column)
    }
    return (nil, String(decoding: result.coordinates, as: UTF8.self), nil)
}

@Suite("Validator: coordinates")
struct ValidatorTests {
    @Test(
        "every boundary of the valid range is accepted, one step past it is not",
        arguments: [
            ("180", "90", nil), ("-180", "-90", nil), ("0", "0", RejectCode.nullIsland), ("0.0", "0.5", nil),
            ("179.999999", "89.999999", nil),
            ("180.000001", "0", .longitudeOutOfRange), ("-180.0001", "0", .longitudeOutOfRange),
            ("0", "90.000001", .coordinatesSwapped), ("0", "-90.5", .coordinatesSwapped),
            ("100", "90.000001", .latitudeOutOfRange), ("0", "180.5", .latitudeOutOfRange),
        ] as [(String, String, RejectCode?)])
    func ranges(lon: String, lat: String, expected: RejectCode?) {
        #expect(check(lon: lon, lat: lat).code == expected)
    }

    @Test(
        "numbers are read strictly, each failure with its own code",
        arguments: [
            ("", RejectCode.missingCoordinate), ("   ", .missingCoordinate), ("abc", .invalidNumber),
            ("1.2.3", .invalidNumber), ("0x10", .invalidNumber), ("12,5", .invalidNumber), ("1e", .invalidNumber),
            ("--1", .invalidNumber), (".", .invalidNumber), ("NaN", .nonFiniteNumber), ("inf", .nonFiniteNumber),
            ("-Infinity", .nonFiniteNumber), ("1e999", .nonFiniteNumber),
        ] as [(String, RejectCode)])
    func strictNumbers(text: String, expected: RejectCode) {
        #expect(check(lon: text, lat: "10").code == expected)
        #expect(check(lon: "10", lat: text).code == expected)
        #expect(check(lon: "10", lat: text).column == "lat")
    }

    @Test(
        "coordinates are written as JSON numbers with the file's digits",
        arguments: [
            ("13.404954", "52.520008", "13.404954,52.520008"), ("+7.5", "-0.5", "7.5,-0.5"),
            (".5", "-.25", "0.5,-0.25"), ("007", "5.", "7,5"), (" 1.5 ", "\t2", "1.5,2"),
            ("1e1", "2.5E-1", "1e1,2.5e-1"),
            ("-0", "1.000", "-0,1.000"),
        ])
    func jsonText(lon: String, lat: String, json: String) {
        #expect(check(lon: lon, lat: lat).coordinates == json)
    }

    @Test("(0, 0) is null_island unless allowed, in both the fast and the general path")
    func nullIsland() {
        var block = RecordBlock()
        block.append(fields: ["0", "0"], line: 2)
        block.append(fields: ["0°", "0.0"], line: 3)
        var validator = Validator(longitudeColumn: 0, latitudeColumn: 1, header: ["lon", "lat"])
        #expect(validator.validate(block).records.rejections.map(\.code) == [.nullIsland, .nullIsland])
        validator.allowNullIsland = true
        #expect(validator.validate(block).accepted == [0, 1])
    }

    @Test("output is always [longitude, latitude]; swapped columns are rejected, fixed or left alone")
    func swappedPolicy() {
        #expect(check(lon: "52.5", lat: "120.1").code == .coordinatesSwapped)
        #expect(check(lon: "52.5", lat: "120.1", swapped: .fix).coordinates == "120.1,52.5")
        #expect(check(lon: "52.5", lat: "120.1", swapped: .off).code == .latitudeOutOfRange)
    }

    @Test("bounds reject points outside and catch pairs that fit only when swapped")
    func bounds() {
        let hamburg = [8.0, 53.0, 11.0, 54.5]
        #expect(check(lon: "9.99", lat: "53.55", bounds: hamburg).code == nil)
        #expect(check(lon: "2.35", lat: "48.85", bounds: hamburg).code == .outsideBounds)
        #expect(check(lon: "53.55", lat: "9.99", bounds: hamburg).code == .coordinatesSwapped)
        #expect(check(lon: "53.55", lat: "9.99", swapped: .fix, bounds: hamburg).coordinates == "9.99,53.55")
    }

    @Test("a decimal comma is read when the pipeline says so")
    func decimalComma() {
        #expect(
            check(lon: "6,959677", lat: "50,943029", separator: UInt8(ascii: ",")).coordinates == "6.959677,50.943029")
        #expect(check(lon: "6.9", lat: "50,9", separator: UInt8(ascii: ",")).code == .invalidNumber)
    }
}

@Suite("NumberText: strict decimal numbers")
struct NumberTextTests {
    @Test("the one-pass path reads what it takes exactly as the general one does")
    func plainPath() {
        // Random coordinates as files write them, and random strings of number characters.
        var state: UInt64 = 42
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var texts = ["0", "-0", "-0.0", "0.5", "5", "-5.25", "00.5", "5.", ".5", "-", "1234567890.12345", "1e5"]
        for _ in 0..<20_000 {
            let degrees = String(next(181))
            let fraction = String(repeating: "0", count: next(3)) + String(next(1_000_000))
            texts.append((next(2) == 0 ? "-" : "") + degrees + (next(8) == 0 ? "" : "." + fraction))
            texts.append(String((0..<(1 + next(18))).map { _ in Array("0123456789-.+e, ")[next(16)] }))
        }
        var taken = 0
        for text in texts {
            var bytes = Array(text.utf8)
            bytes.withUnsafeMutableBytes { raw in
                let bytes = UnsafeRawBufferPointer(raw)
                guard let plain = NumberText.parsePlain(bytes) else { return }
                taken += 1
                guard case .success(let general) = NumberText.parseAny(bytes, separator: UInt8(ascii: ".")) else {
                    Issue.record("\(text): the one-pass path took what the general one refuses")
                    return
                }
                #expect(plain.value.bitPattern == general.value.bitPattern, "\(text)")
                #expect(plain.negative == general.negative, "\(text)")
                #expect(plain.integer == general.integer, "\(text)")
                #expect(plain.fraction == general.fraction, "\(text)")
                #expect(plain.exponent == general.exponent && !plain.exponentNegative, "\(text)")
                #expect(plain.json == general.json, "\(text)")
            }
        }
        // Every coordinate-shaped text but the long ones takes the one-pass path.
        #expect(taken > 20_000)
    }

    @Test(
        "values match strtod, including long mantissas and exponents",
        arguments: [
            "0", "1", "-1", "52.520008", "-170.996128", "0.1", "123456789012345678", "1.7976931348623157e308",
            "4.9e-324", "0.30000000000000004", "89.99999999999999999", "1e22", "1e23", "-0.000001",
        ])
    func values(text: String) throws {
        let number = try text.utf8.withContiguousStorageIfAvailable { buffer in
            try NumberText.parse(UnsafeRawBufferPointer(buffer)).get()
        }!
        #expect(number.value == Double(text)!)
    }

    @Test(
        "a number already written as JSON is copied as it is, any other is normalised digit by digit",
        arguments: [
            ("52.520008", ".", "52.520008", true), ("-170.996128", ".", "-170.996128", true), ("0", ".", "0", true),
            ("-0.0", ".", "-0.0", true), ("0.5", ".", "0.5", true), (" 7.25\t", ".", "7.25", true),
            ("+7.50", ".", "7.50", false), ("007", ".", "7", false), ("00.5", ".", "0.5", false),
            (".5", ".", "0.5", false),
            ("-.5", ".", "-0.5", false), ("5.", ".", "5", false), ("1E+5", ".", "1e5", false),
            ("2e-3", ".", "2e-3", false),
            ("12,5", ",", "12.5", false), ("12", ",", "12", true), ("-000", ".", "-0", false),
        ])
    func json(text: String, separator: String, expected: String, copied: Bool) throws {
        var out: [UInt8] = []
        var normalised: [UInt8] = []
        var isCopy = false
        try text.utf8.withContiguousStorageIfAvailable { buffer in
            let bytes = UnsafeRawBufferPointer(buffer)
            var number = try NumberText.parse(bytes, separator: separator.utf8.first!).get()
            isCopy = number.json != nil
            number.appendJSON(from: bytes, to: &out)
            number.json = nil
            number.appendJSON(from: bytes, to: &normalised)
        }!
        #expect(String(decoding: out, as: UTF8.self) == expected)
        #expect(out == normalised)
        #expect(isCopy == copied)
    }
}
