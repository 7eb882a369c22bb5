import Foundation

/// A spreadsheet's numbers as the user sees them.
enum SpreadsheetValue {
    /// Appends the number stored as `raw` (`<v>` text) the way its style shows it: a date or a
    /// time as ISO 8601; otherwise its digits, without exponent, to the 15 significant digits a
    /// spreadsheet keeps (whole numbers up to 2^53 exactly).
    static func appendNumber(
        _ raw: [UInt8], style: XLSXWorkbook.NumberStyle, date1904: Bool, to out: inout [UInt8]
    ) {
        switch style {
        case .date(let time):
            if let value = Double(String(decoding: raw, as: UTF8.self)),
                let text = iso8601(value, time: time, date1904: date1904)
            {
                out += Array(text.utf8)
                return
            }
        case .time:
            if let value = Double(String(decoding: raw, as: UTF8.self)), value >= 0 {
                if value >= 1, let text = iso8601(value, time: true, date1904: date1904) {
                    out += Array(text.utf8)
                } else {
                    out += Array(clock(value).utf8)
                }
                return
            }
        case .general, .text: break
        }
        out += plain(raw)
    }

    /// Number text as written, unless it has an exponent (`1.5E-7`) or more digits after the
    /// point than the 15 significant ones a spreadsheet keeps (`13.404954000000001`, binary noise):
    /// then the value with 15 significant digits and no exponent.
    static func plain(_ raw: [UInt8]) -> [UInt8] {
        var digits = 0
        var leading = true
        var fraction = false
        var exponent = false
        for byte in raw {
            if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                exponent = true
                break
            }
            if byte == UInt8(ascii: ".") { fraction = true }
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { continue }
            if leading && byte == UInt8(ascii: "0") { continue }
            leading = false
            digits += 1
        }
        guard exponent || (fraction && digits > 15), let value = Double(String(decoding: raw, as: UTF8.self)),
            value.isFinite
        else { return raw }
        return Array(format(value).utf8)
    }

    /// `value` without exponent: whole numbers up to 2^53 exactly, others to 15 significant
    /// digits, no trailing zeros after the point.
    static func format(_ value: Double) -> String {
        if value == value.rounded() && abs(value) <= 9_007_199_254_740_992 { return String(Int64(value)) }
        // Swift's shortest round-trip text, when it has no exponent and at most 15 significant
        // digits, is what the rounding below gives (most cells: `2.35`), at a fraction of its cost.
        let shortest = value.description
        var significant = 0
        var leading = true
        var plain = true
        for byte in shortest.utf8 {
            if byte == UInt8(ascii: "e") {
                plain = false
                break
            }
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { continue }
            if leading && byte == UInt8(ascii: "0") { continue }
            leading = false
            significant += 1
        }
        if plain && significant <= 15 { return shortest }
        return rounded15(value)
    }

    /// `value` to 15 significant digits, without exponent or trailing zeros after the point.
    static func rounded15(_ value: Double) -> String {
        // "-1.23456789012346e+19": 15 significant digits and where the point goes.
        let scientific = String(format: "%.14e", value)
        guard let e = scientific.firstIndex(where: { $0 == "e" }),
            let exponent = Int(scientific[scientific.index(after: e)...])
        else { return scientific }
        let negative = scientific.hasPrefix("-")
        let digits = scientific[..<e].filter(\.isNumber)
        var whole: String
        var fraction: String
        if exponent >= 0 {
            let cut = min(digits.count, exponent + 1)
            whole = String(digits.prefix(cut)) + String(repeating: "0", count: exponent + 1 - cut)
            fraction = String(digits.dropFirst(cut))
        } else {
            whole = "0"
            fraction = String(repeating: "0", count: -exponent - 1) + digits
        }
        while fraction.hasSuffix("0") { fraction.removeLast() }
        let text = fraction.isEmpty ? whole : whole + "." + fraction
        return negative && text != "0" ? "-" + text : text
    }

    /// A date serial as ISO 8601: `YYYY-MM-DD`, with `THH:MM:SS` when `time`.
    static func iso8601(_ serial: Double, time: Bool, date1904: Bool) -> String? {
        guard serial >= 0, serial < 2_958_466 else { return nil }
        var seconds = Int((serial * 86_400).rounded())
        var days = seconds / 86_400
        seconds -= days * 86_400
        // Days from 1970-01-01. 1900 system: serial 1 is 1900-01-01 and serial 60 the
        // 29 February 1900 that never was (kept from Lotus 1-2-3).
        if date1904 {
            days += -24_107
        } else {
            if days >= 61 { days -= 1 }
            days += -25_568
        }
        let (year, month, day) = civil(days)
        let date = String(format: "%04d-%02d-%02d", year, month, day)
        return time ? date + "T" + clock(Double(seconds) / 86_400) : date
    }

    /// A fraction of a day as `HH:MM:SS`.
    static func clock(_ fraction: Double) -> String {
        let seconds = Int((fraction.truncatingRemainder(dividingBy: 1) * 86_400).rounded()) % 86_400
        return String(format: "%02d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60)
    }

    /// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
    static func civil(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPart = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthPart + 2) / 5 + 1
        let month = monthPart < 10 ? monthPart + 3 : monthPart - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
