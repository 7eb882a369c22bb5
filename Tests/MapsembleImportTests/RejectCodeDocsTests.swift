import Foundation
import Testing

@testable import MapsembleImport

@Suite("docs/cli.md: the reject code table")
struct RejectCodeDocsTests {
    /// One row of the table: its code and its two text cells.
    struct Row {
        var code: String
        var meaning: String
        var fix: String
    }

    /// The rows of the table under `## Reject codes`: the lines of that section (up to the next
    /// heading) that start with "| `", split on " | " into code, meaning and fix.
    static func tableRows(_ markdown: String) throws -> [Row] {
        let lines = markdown.components(separatedBy: "\n")
        let start = try #require(
            lines.firstIndex { $0.trimmingCharacters(in: .whitespaces) == "## Reject codes" },
            "docs/cli.md has no \"## Reject codes\" section")
        let section = lines[(start + 1)...].prefix { !$0.hasPrefix("#") }
        var rows: [Row] = []
        for line in section where line.hasPrefix("| `") {
            #expect(line.hasSuffix(" |"), "a table row does not end with \" |\": \(line)")
            let inner = line.dropFirst(2).dropLast(line.hasSuffix(" |") ? 2 : 0)
            let cells = inner.components(separatedBy: " | ").map { $0.trimmingCharacters(in: .whitespaces) }
            try #require(cells.count == 3, "expected 3 cells (code, meaning, fix), found \(cells.count): \(line)")
            let code = cells[0]
            try #require(
                code.count > 2 && code.hasPrefix("`") && code.hasSuffix("`"),
                "the code cell is not one word in backticks: \(line)")
            rows.append(Row(code: String(code.dropFirst().dropLast()), meaning: cells[1], fix: cells[2]))
        }
        return rows
    }

    @Test("one row for every RejectCode, none for a code that does not exist, each with a meaning and a fix")
    func everyCodeHasARow() throws {
        let markdown = try String(contentsOfFile: projectDirectory + "/docs/cli.md", encoding: .utf8)
        let rows = try Self.tableRows(markdown)
        let documented = rows.map(\.code)
        let codes = Set(RejectCode.allCases.map(\.rawValue))

        #expect(Set(documented).count == documented.count, "a code has more than one row: \(documented)")
        let undocumented = codes.subtracting(documented).sorted()
        #expect(undocumented.isEmpty, "codes without a row in docs/cli.md: \(undocumented)")
        let unknown = Set(documented).subtracting(codes).sorted()
        #expect(unknown.isEmpty, "rows for codes RejectCode does not have: \(unknown)")
        for row in rows {
            #expect(!row.meaning.isEmpty, "`\(row.code)` has no meaning")
            #expect(!row.fix.isEmpty, "`\(row.code)` has no fix")
        }
    }

    @Test("the parser reads a table as rows, and finds what is missing from it")
    func parserFindsRows() throws {
        let markdown = """
            ## Reject codes
            | code | what it means | how to fix the row |
            |---|---|---|
            | `malformed_row` | The record cannot be split. | Quote the field. |
            | `no_such_code` | Gone. |  |

            ## Exit codes
            | `invalid_cell` | outside the section | not read |
            """
        let rows = try Self.tableRows(markdown)
        #expect(rows.map(\.code) == ["malformed_row", "no_such_code"])
        #expect(rows.first?.meaning == "The record cannot be split.")
        #expect(rows.first?.fix == "Quote the field.")
        #expect(rows.last?.fix == "")
    }
}
