/// Writes `NAME.rejected.csv`: one row per rejected input row, in input order.
///
/// Columns: `_error_line`, `_error_code`, `_error_column`, `_error_message`, then the original
/// columns under the original header, unchanged and quoted only where CSV needs it, with the input's
/// delimiter, so the file can be fixed and fed back with the same pipeline (columns starting with
/// `_error_` are ignored on input). A row the parser could not split carries its raw line in the
/// first original column. Written even when no row is rejected (header only).
public final class RejectedRowsWriter {
    private let writer: ByteWriter
    private let delimiter: UInt8
    private var line: [UInt8] = []
    public private(set) var count = 0
    public private(set) var byCode: [RejectCode: Int] = [:]

    public init(path: String, header: [String], delimiter: UInt8) throws {
        writer = try ByteWriter(path: path)
        self.delimiter = delimiter
        try writeRow(["_error_line", "_error_code", "_error_column", "_error_message"] + header)
    }

    public func write(_ rejection: Rejection) throws {
        try writeRow(
            [String(rejection.line), rejection.code.rawValue, rejection.column, rejection.message] + rejection.fields)
        count += 1
        byCode[rejection.code, default: 0] += 1
    }

    private func writeRow(_ fields: [String]) throws {
        line.removeAll(keepingCapacity: true)
        for (index, field) in fields.enumerated() {
            if index > 0 { line.append(delimiter) }
            let bytes = Array(field.utf8)
            let needsQuotes =
                bytes.contains { $0 == delimiter || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }
                || bytes.first == 0x20 || bytes.last == 0x20
            if needsQuotes {
                line.append(0x22)
                for byte in bytes {
                    if byte == 0x22 { line.append(0x22) }
                    line.append(byte)
                }
                line.append(0x22)
            } else {
                line.append(contentsOf: bytes)
            }
        }
        line.append(0x0A)
        try writer.write(line)
    }

    public func close() throws { try writer.close() }
}
