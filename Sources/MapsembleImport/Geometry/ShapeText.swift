import MapsembleJSON

/// Why a cell is not a geometry we can send, as the reject code and one sentence.
struct ShapeProblem: Error, Equatable {
    var code: RejectCode
    var message: String

    static func invalid(_ message: String) -> ShapeProblem { ShapeProblem(code: .invalidGeometry, message: message) }
    static func unsupported(_ message: String) -> ShapeProblem {
        ShapeProblem(code: .unsupportedGeometry, message: message)
    }
}

/// Reads a geometry column's cell into a `Shape`: WKT, EWKT (`SRID=n;WKT`), hex WKB or EWKB as
/// PostGIS exports it, or a GeoJSON geometry or Feature. Z and M values are dropped
/// (`Shape.droppedDimensions`). Structure is checked here (rings closed and of 4 positions or
/// more, lines of 2 or more); what needs geometry (self-intersections) is `ShapeChecker`'s.
///
/// Written by hand rather than with GEOS's readers: GEOS's WKT reader takes 3.0 s for 100,000
/// polygons of 50 vertices (38 MB/s) where this one keeps up with the CSV reader, and its
/// messages do not say where in the cell the text went wrong. GEOS reads the same text in the
/// differential tests.
enum ShapeText {
    /// The format a cell is in, by its first bytes.
    enum Format: Equatable {
        case wkt, hexWKB, geoJSON
    }

    static func format(of cell: UnsafeRawBufferPointer) -> Format {
        let trimmed = CoordinateText.trimmed(cell)
        guard let first = trimmed.first else { return .wkt }
        if first == UInt8(ascii: "{") { return .geoJSON }
        // The byte-order byte first (00 or 01): a WKT cell is told apart at its first letter.
        if trimmed.count >= 18, trimmed[0] == UInt8(ascii: "0"),
            trimmed[1] == UInt8(ascii: "0") || trimmed[1] == UInt8(ascii: "1"), trimmed.count % 2 == 0,
            trimmed.allSatisfy({ hexValue($0) != nil })
        {
            return .hexWKB
        }
        return .wkt
    }

    /// Reads `cell` into `shape` (reset first).
    static func read(_ cell: UnsafeRawBufferPointer, into shape: inout Shape) throws(ShapeProblem) {
        shape.reset()
        switch format(of: cell) {
        case .wkt:
            var parser = WKTParser(bytes: cell)
            try parser.read(into: &shape)
        case .hexWKB:
            var parser = WKBParser(hex: CoordinateText.trimmed(cell))
            try parser.read(into: &shape)
        case .geoJSON:
            try readGeoJSON(cell, into: &shape)
        }
        if shape.vertexCount == 0 {
            throw ShapeProblem(code: .missingCoordinate, message: "the geometry has no positions")
        }
        try checkStructure(shape)
    }

    // MARK: Structure

    /// Lines of 2 positions or more; rings closed, of 4 positions or more.
    static func checkStructure(_ shape: Shape) throws(ShapeProblem) {
        if shape.kind.isLinear {
            for path in shape.pathEnds.indices where shape.pathRange(path).count < 2 {
                throw .invalid(
                    "\(ordinalName(path, of: shape.pathEnds.count, "line"))has \(shape.pathRange(path).count) position; a line needs at least 2"
                )
            }
        }
        guard shape.kind.isPolygonal else { return }
        for polygon in shape.polygonEnds.indices {
            let rings = shape.polygonRange(polygon)
            for path in rings {
                let range = shape.pathRange(path)
                let ringName =
                    (shape.polygonEnds.count > 1 ? "polygon \(polygon + 1): " : "")
                    + (path == rings.lowerBound ? "the exterior ring " : "hole \(path - rings.lowerBound) ")
                if range.count < 4 {
                    throw .invalid(
                        "\(ringName)has \(range.count) position\(range.count == 1 ? "" : "s"); a ring needs at least 4, the last equal to the first"
                    )
                }
                let first = 2 * range.lowerBound
                let last = 2 * (range.upperBound - 1)
                if shape.xy[first] != shape.xy[last] || shape.xy[first + 1] != shape.xy[last + 1] {
                    throw .invalid(
                        "\(ringName)is not closed: it starts at \(pointText(shape.xy[first], shape.xy[first + 1])) and ends at \(pointText(shape.xy[last], shape.xy[last + 1]))"
                    )
                }
            }
        }
    }

    private static func ordinalName(_ index: Int, of count: Int, _ noun: String) -> String {
        count > 1 ? "\(noun) \(index + 1) " : "the \(noun) "
    }

    /// `x y` as a message shows a position.
    static func pointText(_ x: Double, _ y: Double) -> String {
        var out: [UInt8] = []
        CoordinateText.appendShortest(x, to: &out)
        out.append(UInt8(ascii: " "))
        CoordinateText.appendShortest(y, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    // MARK: GeoJSON

    static func readGeoJSON(_ cell: UnsafeRawBufferPointer, into shape: inout Shape) throws(ShapeProblem) {
        // A plain geometry object straight from its bytes (numbers kept as written); anything
        // else, or anything wrong, through the JSON tree, which says what is wrong.
        var fast = GeoJSONBytes(bytes: cell)
        if fast.geometry(into: &shape) { return }
        shape.reset()
        guard let json = JSONParser.parse(Array(cell)) else {
            throw .invalid("the cell starts with { but is not JSON")
        }
        try readGeoJSON(json, into: &shape)
    }

    /// A GeoJSON geometry, or a Feature's geometry.
    static func readGeoJSON(_ json: JSONValue, into shape: inout Shape) throws(ShapeProblem) {
        guard case .object = json else { throw .invalid("a GeoJSON geometry must be an object") }
        guard let type = json["type"]?.string else {
            throw .invalid("the GeoJSON object has no \"type\" member")
        }
        switch type {
        case "Feature":
            guard let geometry = json["geometry"] else {
                throw .invalid("the Feature has no \"geometry\" member")
            }
            if geometry == .null {
                throw ShapeProblem(code: .missingCoordinate, message: "the Feature's geometry is null")
            }
            return try readGeoJSON(geometry, into: &shape)
        case "GeometryCollection", "FeatureCollection":
            throw .unsupported(
                "a \(type) is not a geometry the map takes (Point, LineString, Polygon and their Multi forms)")
        default: break
        }
        guard let kind = Shape.Kind.allCases.first(where: { $0.name == type }) else {
            throw .invalid(
                "\"\(type)\" is not a GeoJSON geometry type (Point, LineString, Polygon, MultiPoint, MultiLineString, MultiPolygon; the case matters)"
            )
        }
        guard let coordinates = json["coordinates"] else {
            throw .invalid("the \(type) has no \"coordinates\" member")
        }
        if let bbox = json["bbox"], let problem = bboxProblem(bbox) { throw .invalid(problem) }
        shape.kind = kind
        var reader = GeoJSONCoordinates(shape: Shape(), type: type)
        swap(&reader.shape, &shape)
        defer { swap(&reader.shape, &shape) }
        switch kind {
        case .point:
            try reader.position(coordinates, "coordinates")
            reader.shape.endPath()
        case .lineString:
            try reader.path(coordinates, "coordinates")
        case .multiPoint:
            try reader.each(coordinates, "coordinates", "positions") { (reader, item, path) throws(ShapeProblem) in
                try reader.position(item, path)
                reader.shape.endPath()
            }
        case .multiLineString:
            try reader.each(coordinates, "coordinates", "lines") { (reader, item, path) throws(ShapeProblem) in
                try reader.path(item, path)
            }
        case .polygon:
            try reader.polygon(coordinates, "coordinates")
        case .multiPolygon:
            try reader.each(coordinates, "coordinates", "polygons") { (reader, item, path) throws(ShapeProblem) in
                try reader.polygon(item, path)
            }
        }
        if reader.shape.vertexCount == 0 {
            throw ShapeProblem(code: .missingCoordinate, message: "the \(type) is empty")
        }
    }

    /// RFC 7946 5: a bounding box is 4 or 6 numbers.
    static func bboxProblem(_ bbox: JSONValue) -> String? {
        guard let numbers = bbox.array, numbers.count == 4 || numbers.count == 6,
            numbers.allSatisfy({ $0.number != nil })
        else { return "the bbox must be an array of 4 numbers (or 6 with heights)" }
        return nil
    }

    private struct GeoJSONCoordinates {
        var shape: Shape
        let type: String
        /// Numbers per position, from the first.
        var dimensions = 0

        func describe(_ value: JSONValue) -> String {
            switch value {
            case .null: "null"
            case .bool: "a boolean"
            case .number: "a number"
            case .string: "a string"
            case .array: "an array"
            case .object: "an object"
            }
        }

        mutating func position(_ value: JSONValue, _ path: String) throws(ShapeProblem) {
            guard case .array(let numbers) = value else {
                throw .invalid(
                    "\(path) of the \(type) must be a position ([longitude, latitude]), found \(describe(value))")
            }
            guard numbers.count >= 2 else {
                throw .invalid(
                    "\(path) of the \(type) has \(numbers.count) number\(numbers.count == 1 ? "" : "s"); a position needs 2 ([longitude, latitude])"
                )
            }
            for (index, number) in numbers.enumerated() {
                guard case .number(let value) = number else {
                    throw .invalid("\(path)[\(index)] of the \(type) must be a number, found \(describe(number))")
                }
                if index < 2 { shape.xy.append(value) }
            }
            if numbers.count > 2 { shape.droppedDimensions = true }
            if dimensions == 0 {
                dimensions = numbers.count
            } else if numbers.count != dimensions {
                throw .invalid(
                    "\(path) of the \(type) has \(numbers.count) numbers where the positions before it have \(dimensions)"
                )
            }
        }

        mutating func each(
            _ value: JSONValue, _ path: String, _ what: String,
            _ body: (inout GeoJSONCoordinates, JSONValue, String) throws(ShapeProblem) -> Void
        ) throws(ShapeProblem) {
            guard case .array(let items) = value else {
                throw .invalid("\(path) of the \(type) must be an array of \(what), found \(describe(value))")
            }
            for (index, item) in items.enumerated() { try body(&self, item, "\(path)[\(index)]") }
        }

        mutating func path(_ value: JSONValue, _ path: String) throws(ShapeProblem) {
            try each(value, path, "positions") { (reader, item, path) throws(ShapeProblem) in
                try reader.position(item, path)
            }
            shape.endPath()
        }

        mutating func polygon(_ value: JSONValue, _ path: String) throws(ShapeProblem) {
            try each(value, path, "rings") { (reader, item, path) throws(ShapeProblem) in
                try reader.path(item, path)
            }
            shape.polygonEnds.append(shape.pathEnds.count)
        }
    }
}

// MARK: WKT

/// WKT and EWKT, case-insensitive: `POINT (1 2)`, `POINT Z (1 2 3)`, `POINTZ(1 2 3)`,
/// `POINT(1 2 3)`, `MULTIPOINT (1 2, 3 4)` or `((1 2), (3 4))`, `SRID=4326;POLYGON ((…))`.
private struct WKTParser {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    /// Numbers per position: 0 until the first position says.
    var dimensions = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private static let kinds: [(String, Shape.Kind)] = [
        ("POINT", .point), ("LINESTRING", .lineString), ("POLYGON", .polygon), ("MULTIPOINT", .multiPoint),
        ("MULTILINESTRING", .multiLineString), ("MULTIPOLYGON", .multiPolygon),
    ]
    private static let unsupported: Set<String> = [
        "GEOMETRYCOLLECTION", "CIRCULARSTRING", "COMPOUNDCURVE", "CURVEPOLYGON", "MULTICURVE", "MULTISURFACE",
        "TRIANGLE", "TIN", "POLYHEDRALSURFACE", "GEOMETRY",
    ]

    /// 1-based, as a message names it.
    var character: Int { index + 1 }

    mutating func skipSpaces() {
        while index < bytes.count,
            bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0A
                || bytes[index] == 0x0D
        {
            index += 1
        }
    }

    /// Letters from here, upper-cased.
    mutating func word() -> String {
        skipSpaces()
        let start = index
        while index < bytes.count, (bytes[index] | 0x20) >= UInt8(ascii: "a"),
            (bytes[index] | 0x20) <= UInt8(ascii: "z")
        {
            index += 1
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self).uppercased()
    }

    func found() -> String {
        guard index < bytes.count else { return "the end of the text" }
        let end = min(bytes.count, index + 12)
        return "\"\(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[index..<end]), as: UTF8.self))\""
    }

    func expected(_ what: String) -> ShapeProblem {
        .invalid("not WKT: expected \(what) at character \(character), found \(found())")
    }

    mutating func expect(_ byte: UInt8) throws(ShapeProblem) {
        skipSpaces()
        guard index < bytes.count, bytes[index] == byte else {
            throw expected("\"\(String(UnicodeScalar(byte)))\"")
        }
        index += 1
    }

    /// `,` (true) or `)` (false), consumed.
    mutating func commaOrClose() throws(ShapeProblem) -> Bool {
        skipSpaces()
        if index < bytes.count {
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                return true
            }
            if bytes[index] == UInt8(ascii: ")") {
                index += 1
                return false
            }
        }
        throw expected("\",\" or \")\"")
    }

    mutating func read(into shape: inout Shape) throws(ShapeProblem) {
        skipSpaces()
        // EWKT: SRID=n;
        var tag = word()
        if tag == "SRID" {
            try expect(UInt8(ascii: "="))
            skipSpaces()
            var srid = 0
            let start = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39, index - start < 9 {
                srid = srid * 10 + Int(bytes[index] - 0x30)
                index += 1
            }
            guard index > start else { throw expected("an SRID number after SRID=") }
            try expect(UInt8(ascii: ";"))
            shape.srid = srid
            tag = word()
        }
        guard !tag.isEmpty else {
            throw .invalid(
                "not a geometry: expected WKT (such as POLYGON ((…))), EWKT, hex WKB or GeoJSON, found \(found())")
        }
        // The type, and a dimension written onto it (POINTZ, POINTM, POINTZM).
        let (base, attached) =
            ["", "ZM", "Z", "M"].lazy.filter { tag.hasSuffix($0) }
            .map { (String(tag.dropLast($0.count)), $0) }
            .first { base, _ in Self.kinds.contains { $0.0 == base } || Self.unsupported.contains(base) }
            ?? (tag, "")
        var suffix = attached
        guard let kind = Self.kinds.first(where: { $0.0 == base })?.1 else {
            if Self.unsupported.contains(base) {
                throw .unsupported(
                    "a \(base) is not a geometry the map takes (Point, LineString, Polygon and their Multi forms)")
            }
            throw .invalid(
                "not WKT: \"\(tag)\" is not a geometry type, expected POINT, LINESTRING, POLYGON or a MULTI form")
        }
        shape.kind = kind
        let mark = index
        var next = suffix.isEmpty ? word() : ""
        if next == "Z" || next == "M" || next == "ZM" {
            suffix = next
            next = word()
        } else if !suffix.isEmpty {
            next = word()
        }
        if next == "EMPTY" {
            throw ShapeProblem(
                code: .missingCoordinate, message: "the geometry is empty (\(kind.name.uppercased()) EMPTY)")
        }
        if !next.isEmpty {
            index = mark
            throw expected("\"(\"")
        }
        switch suffix {
        case "Z", "M": dimensions = 3
        case "ZM": dimensions = 4
        default: dimensions = 0
        }
        try body(kind, &shape)
        skipSpaces()
        if index < bytes.count {
            throw .invalid("not WKT: unexpected text after the geometry at character \(character): \(found())")
        }
    }

    mutating func body(_ kind: Shape.Kind, _ shape: inout Shape) throws(ShapeProblem) {
        switch kind {
        case .point:
            try expect(UInt8(ascii: "("))
            try position(&shape)
            try expect(UInt8(ascii: ")"))
            shape.endPath()
        case .lineString:
            try path(&shape)
        case .polygon:
            try polygon(&shape)
        case .multiPoint:
            try expect(UInt8(ascii: "("))
            repeat {
                skipSpaces()
                if index < bytes.count, bytes[index] == UInt8(ascii: "(") {
                    index += 1
                    try position(&shape)
                    try expect(UInt8(ascii: ")"))
                } else {
                    try position(&shape)
                }
                shape.endPath()
            } while try commaOrClose()
        case .multiLineString:
            try expect(UInt8(ascii: "("))
            repeat { try path(&shape) } while try commaOrClose()
        case .multiPolygon:
            try expect(UInt8(ascii: "("))
            repeat { try polygon(&shape) } while try commaOrClose()
        }
    }

    mutating func path(_ shape: inout Shape) throws(ShapeProblem) {
        try expect(UInt8(ascii: "("))
        repeat { try position(&shape) } while try commaOrClose()
        shape.endPath()
    }

    mutating func polygon(_ shape: inout Shape) throws(ShapeProblem) {
        try expect(UInt8(ascii: "("))
        repeat { try path(&shape) } while try commaOrClose()
        shape.polygonEnds.append(shape.pathEnds.count)
    }

    /// Numbers separated by spaces, up to `,` or `)`.
    mutating func position(_ shape: inout Shape) throws(ShapeProblem) {
        var count = 0
        while true {
            skipSpaces()
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == 0x20 || byte == UInt8(ascii: ",") || byte == UInt8(ascii: ")") || byte == 0x09
                    || byte == UInt8(ascii: "(") || byte == 0x0A || byte == 0x0D
                {
                    break
                }
                index += 1
            }
            if start == index {
                if count >= 2 { break }
                throw expected(count == 0 ? "a position (two numbers)" : "a second number")
            }
            let token = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
            switch NumberText.parse(token) {
            case .success(let number):
                if count < 2 {
                    shape.xy.append(number.value)
                    if let json = number.json {
                        shape.texts.append(Int32(start + json.lowerBound))
                        shape.texts.append(Int32(start + json.upperBound))
                    } else {
                        shape.texts.append(-1)
                        shape.texts.append(-1)
                    }
                }
                count += 1
            case .failure(.nonFinite):
                throw ShapeProblem(
                    code: .nonFiniteNumber,
                    message:
                        "\"\(String(decoding: token, as: UTF8.self))\" at character \(start + 1) is not a finite number"
                )
            case .failure:
                index = start
                throw expected(count == 0 ? "a position (two numbers)" : "a number")
            }
            if count > 4 {
                index = start
                throw expected("\",\" or \")\" after at most 4 numbers")
            }
        }
        if dimensions == 0 {
            dimensions = count
        } else if count != dimensions {
            throw .invalid(
                "not WKT: the position ending at character \(index) has \(count) numbers where the others have \(dimensions)"
            )
        }
        if count > 2 { shape.droppedDimensions = true }
    }
}

// MARK: WKB

/// Hex WKB and EWKB (PostGIS's SRID, Z and M flags; ISO's 1000/2000/3000 type codes), either
/// byte order, decoded from the hex text as it is read.
private struct WKBParser {
    let hex: UnsafeRawBufferPointer
    /// In bytes (two hex digits each).
    var offset = 0
    var count: Int { hex.count / 2 }

    init(hex: UnsafeRawBufferPointer) { self.hex = hex }

    func truncated(_ what: String) -> ShapeProblem {
        .invalid("not WKB: the text ends at byte \(offset) where \(what) was expected")
    }

    mutating func byte() throws(ShapeProblem) -> UInt8 {
        guard offset < count else { throw truncated("a byte") }
        defer { offset += 1 }
        return ShapeText.hexValue(hex[2 * offset])! << 4 | ShapeText.hexValue(hex[2 * offset + 1])!
    }

    /// `width` bytes as an unsigned integer in the geometry's byte order.
    mutating func unsigned(_ width: Int, _ little: Bool, _ what: String) throws(ShapeProblem) -> UInt64 {
        guard offset + width <= count else { throw truncated(what) }
        var value: UInt64 = 0
        for shift in 0..<width {
            let next = UInt64(try byte())
            value |= little ? next << (8 * shift) : next << (8 * (width - 1 - shift))
        }
        return value
    }

    mutating func uint32(_ little: Bool) throws(ShapeProblem) -> UInt32 {
        UInt32(try unsigned(4, little, "a 4-byte integer"))
    }

    mutating func double(_ little: Bool) throws(ShapeProblem) -> Double {
        Double(bitPattern: try unsigned(8, little, "an 8-byte number"))
    }

    mutating func read(into shape: inout Shape) throws(ShapeProblem) {
        let kind = try geometry(&shape, expected: nil)
        shape.kind = kind
        if offset != count {
            throw .invalid("not WKB: \(count - offset) bytes left after the geometry ends at byte \(offset)")
        }
    }

    /// One geometry with its header; `expected` for the members of a multi geometry.
    mutating func geometry(_ shape: inout Shape, expected: Shape.Kind?) throws(ShapeProblem) -> Shape.Kind {
        let order = try byte()
        guard order <= 1 else {
            throw .invalid("not WKB: byte \(offset - 1) should be 0 or 1 (the byte order), found \(order)")
        }
        let little = order == 1
        var type = try uint32(little)
        var dimensions = 2
        if type & 0x8000_0000 != 0 { dimensions += 1 }
        if type & 0x4000_0000 != 0 { dimensions += 1 }
        if type & 0x2000_0000 != 0 {
            let srid = Int(try uint32(little))
            if expected == nil { shape.srid = srid }
        }
        type &= 0x0FFF_FFFF
        switch type / 1000 {
        case 1, 2: dimensions += 1
        case 3: dimensions += 2
        default: break
        }
        type %= 1000
        if dimensions > 2 { shape.droppedDimensions = true }
        let kinds: [UInt32: Shape.Kind] = [
            1: .point, 2: .lineString, 3: .polygon, 4: .multiPoint, 5: .multiLineString, 6: .multiPolygon,
        ]
        guard let kind = kinds[type] else {
            if type == 7 || (8...17).contains(type) {
                throw .unsupported(
                    "WKB type \(type) (\(type == 7 ? "GeometryCollection" : "a curve or surface")) is not a geometry the map takes (Point, LineString, Polygon and their Multi forms)"
                )
            }
            throw .invalid("not WKB: \(type) is not a geometry type")
        }
        if let expected, kind != expected {
            throw .invalid("not WKB: a \(kind.name) inside a Multi\(expected.name)")
        }
        switch kind {
        case .point:
            let x = try double(little)
            let y = try double(little)
            for _ in 2..<dimensions { _ = try double(little) }
            if x.isNaN && y.isNaN {
                throw ShapeProblem(code: .missingCoordinate, message: "the geometry is empty (POINT EMPTY)")
            }
            try append(x, y, &shape)
            shape.endPath()
        case .lineString:
            try points(little, dimensions, &shape)
            shape.endPath()
        case .polygon:
            try rings(little, dimensions, &shape)
        case .multiPoint, .multiLineString, .multiPolygon:
            let members = Int(try uint32(little))
            // Each member takes 9 bytes or more: a count the text cannot hold is a damaged file.
            guard members <= (count - offset) / 9 else { throw truncated("\(members) members") }
            let member: Shape.Kind = kind == .multiPoint ? .point : kind == .multiLineString ? .lineString : .polygon
            for _ in 0..<members { _ = try geometry(&shape, expected: member) }
        }
        return kind
    }

    mutating func append(_ x: Double, _ y: Double, _ shape: inout Shape) throws(ShapeProblem) {
        guard x.isFinite, y.isFinite else {
            throw ShapeProblem(code: .nonFiniteNumber, message: "a position at byte \(offset) is not a finite number")
        }
        shape.xy.append(x)
        shape.xy.append(y)
    }

    mutating func points(_ little: Bool, _ dimensions: Int, _ shape: inout Shape) throws(ShapeProblem) {
        let points = Int(try uint32(little))
        guard points <= (count - offset) / (8 * dimensions) else { throw truncated("\(points) positions") }
        for _ in 0..<points {
            let x = try double(little)
            let y = try double(little)
            for _ in 2..<dimensions { _ = try double(little) }
            try append(x, y, &shape)
        }
    }

    mutating func rings(_ little: Bool, _ dimensions: Int, _ shape: inout Shape) throws(ShapeProblem) {
        let rings = Int(try uint32(little))
        guard rings <= (count - offset) / 4 else { throw truncated("\(rings) rings") }
        for _ in 0..<rings {
            try points(little, dimensions, &shape)
            shape.endPath()
        }
        shape.polygonEnds.append(shape.pathEnds.count)
    }
}

// MARK: GeoJSON from bytes

/// The common GeoJSON geometry (`{"type": "Polygon", "coordinates": [...]}`, members in any
/// order, no `bbox`, no escapes in strings) read straight from its bytes into a `Shape`, numbers
/// with `NumberText` and their text kept. False for anything else, valid or not: the JSON tree
/// path reads it and words what is wrong. Both give the same shape (tested).
private struct GeoJSONBytes {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    var dimensions = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func spaces() {
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            index += 1
        }
    }

    mutating func take(_ byte: UInt8) -> Bool {
        spaces()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// A string without escapes: its contents' range.
    mutating func string() -> Range<Int>? {
        guard take(0x22) else { return nil }
        let start = index
        while index < bytes.count, bytes[index] != 0x22 {
            if bytes[index] == 0x5C { return nil }
            index += 1
        }
        guard index < bytes.count else { return nil }
        index += 1
        return start..<(index - 1)
    }

    /// Past any value (`JSONSkip`).
    mutating func skip() -> Bool {
        spaces()
        return JSONSkip.value(bytes, &index, end: bytes.count)
    }

    mutating func geometry(into shape: inout Shape) -> Bool {
        guard take(0x7B) else { return false }
        var type: Range<Int>?
        var coordinates: Int?
        var parsed = false
        if take(0x7D) { return false }
        repeat {
            guard let key = string(), take(0x3A) else { return false }
            let name = UnsafeRawBufferPointer(rebasing: bytes[key])
            if name.elementsEqual("type".utf8) {
                guard let value = string() else { return false }
                type = value
            } else if name.elementsEqual("coordinates".utf8) {
                spaces()
                coordinates = index
                if let type, shape.vertexCount == 0, let kind = kind(type) {
                    // The type came first (as writers put it): read the positions now.
                    guard read(kind, into: &shape) else { return false }
                    parsed = true
                } else {
                    guard skip() else { return false }
                }
            } else if name.elementsEqual("bbox".utf8) || name.elementsEqual("geometries".utf8)
                || name.elementsEqual("geometry".utf8)
            {
                return false
            } else {
                guard skip() else { return false }
            }
        } while take(0x2C)
        guard take(0x7D) else { return false }
        spaces()
        guard index == bytes.count, let type, let coordinates, let kind = kind(type) else { return false }
        if parsed { return shape.vertexCount > 0 }
        index = coordinates
        return read(kind, into: &shape)
    }

    func kind(_ type: Range<Int>) -> Shape.Kind? {
        let name = UnsafeRawBufferPointer(rebasing: bytes[type])
        return Shape.Kind.allCases.first { name.elementsEqual($0.name.utf8) }
    }

    /// The coordinates of a `kind` from here.
    mutating func read(_ kind: Shape.Kind, into shape: inout Shape) -> Bool {
        shape.kind = kind
        let read: Bool
        switch kind {
        case .point:
            read =
                position(&shape)
                && {
                    shape.endPath(); return true
                }()
        case .lineString: read = path(&shape)
        case .multiPoint:
            read = list(&shape) { (me: inout GeoJSONBytes, shape: inout Shape) in
                guard me.position(&shape) else { return false }
                shape.endPath()
                return true
            }
        case .multiLineString: read = list(&shape) { $0.path(&$1) }
        case .polygon: read = polygon(&shape)
        case .multiPolygon: read = list(&shape) { $0.polygon(&$1) }
        }
        return read && shape.vertexCount > 0
    }

    /// `[` items `]`, at least one.
    mutating func list(_ shape: inout Shape, _ item: (inout GeoJSONBytes, inout Shape) -> Bool) -> Bool {
        guard take(0x5B) else { return false }
        repeat {
            guard item(&self, &shape) else { return false }
        } while take(0x2C)
        return take(0x5D)
    }

    mutating func path(_ shape: inout Shape) -> Bool {
        guard list(&shape, { $0.position(&$1) }) else { return false }
        shape.endPath()
        return true
    }

    mutating func polygon(_ shape: inout Shape) -> Bool {
        guard list(&shape, { $0.path(&$1) }) else { return false }
        shape.polygonEnds.append(shape.pathEnds.count)
        return true
    }

    /// `[x, y]` or with more numbers, as many as the positions before it.
    mutating func position(_ shape: inout Shape) -> Bool {
        guard take(0x5B) else { return false }
        var count = 0
        repeat {
            spaces()
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                guard
                    (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x2E || byte == 0x65 || byte == 0x45
                        || byte == 0x2B
                else { break }
                index += 1
            }
            // Plain JSON numbers only (an exponent, a `+`, a leading zero: the tree path).
            guard index > start,
                case .success(let number) = NumberText.parse(UnsafeRawBufferPointer(rebasing: bytes[start..<index])),
                let json = number.json
            else { return false }
            if count < 2 {
                shape.xy.append(number.value)
                shape.texts.append(Int32(start + json.lowerBound))
                shape.texts.append(Int32(start + json.upperBound))
            }
            count += 1
        } while take(0x2C)
        guard take(0x5D), count >= 2 else { return false }
        if dimensions == 0 {
            dimensions = count
        } else if count != dimensions {
            return false
        }
        if count > 2 { shape.droppedDimensions = true }
        return true
    }
}
