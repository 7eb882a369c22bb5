/// Column names made unique, as ogr2ogr and pandas do: the first column given a name keeps it, the
/// later ones are read as `NAME_2`, `NAME_3`, … (a suffix the header already uses is passed over).
/// Empty names stay empty: such a column is named by no setting and imported by none (Excel's
/// trailing `,,,` of unnamed columns), as a single one always was.
public enum HeaderNames {
    /// The names to read the columns under, and for each name given more than once, the names its
    /// columns got, in order.
    public static func unique(_ names: [String]) -> (names: [String], duplicates: [String: [String]]) {
        var taken = Set<String>()
        var repeated = false
        for name in names where !name.isEmpty && !taken.insert(name).inserted { repeated = true }
        guard repeated else { return (names, [:]) }
        var used = Set<String>()
        var next: [String: Int] = [:]
        var result: [String] = []
        var duplicates: [String: [String]] = [:]
        result.reserveCapacity(names.count)
        for name in names {
            if name.isEmpty || used.insert(name).inserted {
                result.append(name)
                continue
            }
            var suffix = next[name, default: 2]
            while taken.contains("\(name)_\(suffix)") || used.contains("\(name)_\(suffix)") { suffix += 1 }
            next[name] = suffix + 1
            let renamed = "\(name)_\(suffix)"
            used.insert(renamed)
            result.append(renamed)
            duplicates[name, default: [name]].append(renamed)
        }
        return (result, duplicates)
    }

    /// What `-v` and `inspect` say of the renamed columns.
    public static func note(_ duplicates: [String: [String]]) -> String? {
        guard !duplicates.isEmpty else { return nil }
        let each = duplicates.keys.sorted().map { name in
            "\"\(name)\" \(duplicates[name]!.count) times, read as "
                + duplicates[name]!.map { "\"\($0)\"" }.joined(separator: ", ")
        }
        return "the header names \(each.joined(separator: "; "))"
    }
}
