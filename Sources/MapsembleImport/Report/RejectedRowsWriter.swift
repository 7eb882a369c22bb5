import Foundation
import MapsembleJSON
import NIOConcurrencyHelpers

/// Writes `NAME.rejected.csv`: one row per rejected input row, in input order.
///
/// Columns: `_error_line`, `_error_code`, `_error_column`, `_error_message`, then the original
/// columns under the original header, unchanged and quoted only where CSV needs it, with the input's
/// delimiter, so the file can be fixed and fed back with the same pipeline (columns starting with
/// `_error_` are ignored on input). The cells are the input's bytes, spaces and tabs around values
/// included (a cell starting or ending with one is quoted, so that it reads back the same). A row the parser could not split carries its raw line in the
/// first original column. Written even when no row is rejected (header only).
///
/// With `spreadsheetSafe` (`report.spreadsheet_safe: true`), a cell that a spreadsheet would run
/// as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return, and not a plain
/// number such as `-7.5`) gets a leading `'`, so the report opens in Excel or LibreOffice without
/// running anything; such a report is for reading, no longer byte-for-byte the input's rows.
///
/// Rows come in input order from the validating stages; rows the server refuses come later and out
/// of order (`writeLate`). Those are held, and merged into place by `close()`, which copies the
/// in-order part by byte ranges it noted while writing. Safe to call from several tasks.
public final class RejectedRowsWriter: Sendable {
    /// Only touched under the lock, which is what makes its writer safe to share.
    private struct State: @unchecked Sendable {
        var writer: ByteWriter
        var path: String
        var delimiter: UInt8
        var line: [UInt8] = []
        var count = 0
        var byCode: [RejectCode: Int] = [:]
        /// For each row written in order: its input line and where it starts in the file.
        var index: [(line: Int, offset: Int)] = []
        var late: [Rejection] = []
        var spreadsheetSafe = false
        /// GeoJSON input: each row is its feature's text (the last field), with the error members
        /// added to its properties, one feature per line (GeoJSONSeq).
        var features = false
    }

    private let state: NIOLockedValueBox<State>
    /// Told of each rejected row as it is reported (for log lines).
    private let observer: (@Sendable (Rejection) -> Void)?

    public init(
        path: String, header: [String], delimiter: UInt8, spreadsheetSafe: Bool = false, features: Bool = false,
        observer: (@Sendable (Rejection) -> Void)? = nil
    ) throws {
        self.observer = observer
        var state = State(writer: try ByteWriter(path: path), path: path, delimiter: delimiter)
        state.spreadsheetSafe = spreadsheetSafe
        state.features = features
        if !features {
            try Self.writeRow(["_error_line", "_error_code", "_error_column", "_error_message"] + header, &state)
        }
        self.state = NIOLockedValueBox(state)
    }

    /// Rejected rows so far.
    public var count: Int { state.withLockedValue { $0.count } }
    /// Rejected rows so far, by code.
    public var byCode: [RejectCode: Int] { state.withLockedValue { $0.byCode } }

    /// Writes a rejection that comes in input order.
    public func write(_ rejection: Rejection) throws {
        try state.withLockedValue { state in
            state.index.append((rejection.line, state.writer.bytesWritten))
            try Self.writeRow(Self.fields(rejection), &state)
            state.count += 1
            state.byCode[rejection.code, default: 0] += 1
        }
        observer?(rejection)
    }

    /// Records a rejection that comes after later rows were written (a server's answer).
    public func writeLate(_ rejection: Rejection) {
        state.withLockedValue { state in
            state.late.append(rejection)
            state.count += 1
            state.byCode[rejection.code, default: 0] += 1
        }
        observer?(rejection)
    }

    private static func fields(_ rejection: Rejection) -> [String] {
        [String(rejection.line), rejection.code.rawValue, rejection.column, rejection.message] + rejection.fields
    }

    private static func writeRow(_ fields: [String], _ state: inout State) throws {
        if state.features {
            try state.writer.write(feature(fields, into: &state.line))
            return
        }
        let cells = state.spreadsheetSafe ? fields.map(neutralised) : fields
        try state.writer.write(encode(cells, delimiter: state.delimiter, into: &state.line))
    }

    /// A rejected feature as one line: its text with `_error_line`, `_error_code`,
    /// `_error_column` and `_error_message` first in its properties; a text that is no feature
    /// goes whole under `_error_text` of a feature of its own.
    private static func feature(_ fields: [String], into line: inout [UInt8]) -> [UInt8] {
        line.removeAll(keepingCapacity: true)
        let text = fields.count > 4 ? fields[fields.count - 1] : ""
        var errors: [UInt8] = []
        for (index, key) in ["_error_line", "_error_code", "_error_column", "_error_message"].enumerated() {
            JSONValue.writeString(key, to: &errors)
            errors.append(UInt8(ascii: ":"))
            if index == 0, let number = Int(fields[0]) {
                errors += String(number).utf8
            } else {
                JSONValue.writeString(fields[index], to: &errors)
            }
            errors.append(UInt8(ascii: ","))
        }
        // One feature per line: the line breaks of a pretty-printed feature become spaces (JSON
        // has none inside its strings).
        let bytes = text.utf8.map { $0 == 0x0A || $0 == 0x0D ? 0x20 : $0 }
        if JSONParser.parse(bytes) != nil, let spot = FeatureText.propertiesStart(bytes) {
            // Into the feature's own properties object, the rest byte for byte.
            line += bytes[..<spot.insertAt]
            if spot.replacing.isEmpty {
                if spot.empty { errors.removeLast() }
                line += errors
            } else {
                line += Array("{".utf8) + errors.dropLast() + Array("}".utf8)
            }
            line += bytes[spot.replacing.isEmpty ? spot.insertAt... : spot.replacing.upperBound...]
        } else {
            line += Array(#"{"type":"Feature","geometry":null,"properties":{"#.utf8) + errors
            JSONValue.writeString("_error_text", to: &line)
            line.append(UInt8(ascii: ":"))
            JSONValue.writeString(text, to: &line)
            line += Array("}}".utf8)
        }
        line.append(0x0A)
        return line
    }

    /// A cell a spreadsheet would take for a formula, with a `'` before it.
    static func neutralised(_ cell: String) -> String {
        guard let first = cell.utf8.first, [0x3D, 0x2B, 0x2D, 0x40, 0x09, 0x0D].contains(first) else { return cell }
        if first == 0x2D || first == 0x2B,
            case .success = Array(cell.utf8).withUnsafeBytes({ NumberText.parse($0) })
        {
            return cell
        }
        return "'" + cell
    }

    static func encode(_ fields: [String], delimiter: UInt8, into line: inout [UInt8]) -> [UInt8] {
        line.removeAll(keepingCapacity: true)
        for (index, field) in fields.enumerated() {
            if index > 0 { line.append(delimiter) }
            let bytes = Array(field.utf8)
            let needsQuotes =
                bytes.contains { $0 == delimiter || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }
                || bytes.first == 0x20 || bytes.last == 0x20 || bytes.first == 0x09 || bytes.last == 0x09
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
        return line
    }

    /// Finishes the file, with late rows merged into input order.
    public func close() throws {
        try state.withLockedValue { state in
            try state.writer.close()
            guard !state.late.isEmpty else { return }
            let late = state.late.enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }
                .map(\.element)
            guard let input = FileHandle(forReadingAtPath: state.path) else {
                throw ImportError(
                    .output, "cannot read back the report to merge the server's rejections", file: state.path)
            }
            defer { try? input.close() }
            let output = try ByteWriter(path: state.path)
            let total = state.writer.bytesWritten
            var copied = 0
            var position = 0
            func copy(upTo offset: Int) throws {
                while copied < offset {
                    let chunk = input.readData(ofLength: min(1 << 20, offset - copied))
                    if chunk.isEmpty { break }
                    try output.write(Array(chunk))
                    copied += chunk.count
                }
            }
            var line: [UInt8] = []
            for rejection in late {
                while position < state.index.count && state.index[position].line <= rejection.line { position += 1 }
                try copy(upTo: position < state.index.count ? state.index[position].offset : total)
                let cells = Self.fields(rejection)
                try output.write(
                    Self.encode(
                        state.spreadsheetSafe ? cells.map(Self.neutralised) : cells, delimiter: state.delimiter,
                        into: &line))
            }
            try copy(upTo: total)
            try output.close()
        }
    }
}
