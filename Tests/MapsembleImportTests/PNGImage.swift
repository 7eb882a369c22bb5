import CGzip
import Foundation

/// An 8-bit RGB or RGBA PNG decoded to pixels (what headless Chromium's screenshots are), for
/// pixel statistics in tests.
struct PNGImage {
    var width: Int
    var height: Int
    /// RGB bytes, row by row.
    var rgb: [UInt8]

    enum Failure: Error { case notPNG, unsupported(String), damaged }

    init(path: String) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        guard bytes.count > 8, bytes[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else {
            throw Failure.notPNG
        }
        var offset = 8
        var compressed: [UInt8] = []
        var channels = 0
        width = 0
        height = 0
        func integer(_ at: Int) -> Int {
            Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
        }
        while offset + 8 <= bytes.count {
            let length = integer(offset)
            let type = String(decoding: bytes[offset + 4..<offset + 8], as: UTF8.self)
            let data = offset + 8
            guard data + length <= bytes.count else { throw Failure.damaged }
            switch type {
            case "IHDR":
                width = integer(data)
                height = integer(data + 4)
                guard bytes[data + 8] == 8, bytes[data + 12] == 0 else { throw Failure.unsupported("bit depth") }
                switch bytes[data + 9] {
                case 2: channels = 3
                case 6: channels = 4
                default: throw Failure.unsupported("colour type \(bytes[data + 9])")
                }
            case "IDAT": compressed += bytes[data..<data + length]
            default: break
            }
            offset = data + length + 4
            if type == "IEND" { break }
        }
        let rowBytes = width * channels
        var raw = [UInt8](repeating: 0, count: height * (rowBytes + 1))
        var rawLength = uLongf(raw.count)
        let status = raw.withUnsafeMutableBufferPointer { out in
            compressed.withUnsafeBufferPointer { input in
                uncompress(out.baseAddress, &rawLength, input.baseAddress, uLong(input.count))
            }
        }
        guard status == Z_OK, Int(rawLength) == raw.count else { throw Failure.damaged }
        // Undo the per-row filters (None, Sub, Up, Average, Paeth).
        var pixels = [UInt8](repeating: 0, count: height * rowBytes)
        for row in 0..<height {
            let filter = raw[row * (rowBytes + 1)]
            let source = row * (rowBytes + 1) + 1
            let target = row * rowBytes
            for column in 0..<rowBytes {
                let x = raw[source + column]
                let a = column >= channels ? Int(pixels[target + column - channels]) : 0
                let b = row > 0 ? Int(pixels[target - rowBytes + column]) : 0
                let c = row > 0 && column >= channels ? Int(pixels[target - rowBytes + column - channels]) : 0
                let predicted: Int
                switch filter {
                case 0: predicted = 0
                case 1: predicted = a
                case 2: predicted = b
                case 3: predicted = (a + b) / 2
                case 4:
                    let p = a + b - c
                    let (pa, pb, pc) = (abs(p - a), abs(p - b), abs(p - c))
                    predicted = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: throw Failure.damaged
                }
                pixels[target + column] = UInt8(truncatingIfNeeded: Int(x) + predicted)
            }
        }
        rgb = []
        rgb.reserveCapacity(width * height * 3)
        for index in stride(from: 0, to: pixels.count, by: channels) {
            rgb += pixels[index..<index + 3]
        }
    }

    func pixel(_ x: Int, _ y: Int) -> (r: Int, g: Int, b: Int) {
        let at = (y * width + x) * 3
        return (Int(rgb[at]), Int(rgb[at + 1]), Int(rgb[at + 2]))
    }

    /// Pixels in a rectangle for which `test` holds.
    func count(x: Range<Int>, y: Range<Int>, where test: ((r: Int, g: Int, b: Int)) -> Bool) -> Int {
        var count = 0
        for row in y.clamped(to: 0..<height) {
            for column in x.clamped(to: 0..<width) where test(pixel(column, row)) { count += 1 }
        }
        return count
    }

    /// Distinct colours in the image.
    var colours: Int {
        var seen = Set<Int>()
        for index in stride(from: 0, to: rgb.count, by: 3) {
            seen.insert(Int(rgb[index]) << 16 | Int(rgb[index + 1]) << 8 | Int(rgb[index + 2]))
        }
        return seen.count
    }
}
