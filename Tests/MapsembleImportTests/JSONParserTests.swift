import Foundation
import MapsembleJSON
import Testing

@Suite("JSONParser: the sandbox's request bodies and the uploader's answers")
struct JSONParserTests {
    private func number(_ text: String) -> Double? {
        guard case .array(let values)? = JSONParser.parse(Array("[\(text)]".utf8)), values.count == 1 else {
            return nil
        }
        return values[0].number
    }

    @Test(
        "numbers read as strtod reads them, whole ones without it",
        arguments: [
            "0", "-0", "7", "-7", "42", "500", "123456789012345", "-123456789012345", "1234567890123456",
            "12345678901234567890", "9007199254740993", "0.5", "-0.25", "13.404954", "52.520008", "1e3", "1E-3",
            "-2.5e+10", "1.7976931348623157e308", "5e-324",
        ])
    func numbers(text: String) throws {
        let parsed = try #require(number(text))
        let expected = strtod(text, nil)
        #expect(parsed == expected)
        #expect(parsed.sign == expected.sign, "the sign of \(text)")
    }

    @Test("what is not a JSON number is refused", arguments: ["01", "-", "+1", "1.", ".5", "1e", "1e+", "--1", "0x10"])
    func badNumbers(text: String) {
        #expect(number(text) == nil)
    }

    @Test("an answer of counts and failures")
    func answer() throws {
        let text =
            #"{"created":499,"updated":0,"deleted":0,"failed":[{"index":3,"code":"invalid","message":"bad \"x\" \u00e9"}]}"#
        let value = try #require(JSONParser.parse(Array(text.utf8)))
        #expect(value["created"]?.integer == 499)
        #expect(value["updated"]?.integer == 0)
        let failed = try #require(value["failed"]?.array)
        #expect(failed.count == 1)
        #expect(failed[0]["index"]?.integer == 3)
        #expect(failed[0]["message"]?.string == "bad \"x\" é")
        #expect(value.members?.map(\.0) == ["created", "updated", "deleted", "failed"])
    }

    @Test(
        "text that is not one JSON value is refused",
        arguments: ["", "{", "[1,]", "{\"a\" 1}", "[1] 2", "\"\u{01}\"", "tru"])
    func malformed(text: String) {
        #expect(JSONParser.parse(Array(text.utf8)) == nil)
    }
}
