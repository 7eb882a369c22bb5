import Foundation

extension InspectReport {
    /// A commented pipeline.yml that imports the file as inspected: the sniffed source settings,
    /// the coordinate columns, the label and remote id it suggests, and every other column mapped
    /// to a field slug made from its name. What it could not decide is said in a comment at the top.
    /// - Parameter path: the input as the pipeline should name it.
    public func starterPipeline(path: String) -> String {
        var out: [String] = []
        out.append("# pipeline.yml written by `mapsemble-import inspect --emit-config` from \(file)")
        out.append("# (\(sampledRows) rows read; about \(rows) rows in all). Check the mapping, then:")
        out.append("#   mapsemble-import validate pipeline.yml   (every row checked, nothing sent)")
        out.append("#   mapsemble-import run pipeline.yml --map MAP_ID")
        for note in notes { out.append("# NOTE: \(note)") }
        out.append("version: 1")
        out.append("")
        out.append("source:")
        out.append("  path: \(Self.quoted(path))")
        if let sheet {
            out.append("  format: \(workbookFormat)")
            out.append(
                "  sheet: \(Self.quoted(sheet))\(sheets.count > 1 ? "                 # of \(sheets.count): \(sheets.map(\.name).joined(separator: ", "))" : "")"
            )
        } else {
            out.append("  delimiter: \(delimiterSetting)")
        }
        out.append(
            "  header: \(hasHeader)\(hasHeader ? "" : "                 # no header row: columns are named 1, 2, 3, ...")"
        )
        if quoteNone {
            out.append("  quote: none                   # \" is data here: reading it as a quote breaks rows")
        }
        if decimalComma { out.append("  decimal: auto                 # reads 50,94 as well as 50.94") }
        if !encoding.hasPrefix("utf-8") && sheet == nil {
            let name = encoding.split(separator: " ").first.map(String.init) ?? encoding
            out.append(
                "  encoding: \(name)\(String(repeating: " ", count: max(1, 22 - name.count)))# not UTF-8: transcoded as it is read"
            )
        }
        out.append("")
        out.append("target:")
        out.append("  api_key: \"${MAPSEMBLE_API_KEY}\"")
        out.append("  map_id: \"${MAPSEMBLE_MAP_ID:-}\"     # the map's UUID, or --map MAP_ID")
        out.append(
            "  mode: \(remoteID == nil ? "create" : "upsert")\(remoteID == nil ? "                  # no unique id column found: every run adds the rows again" : "")"
        )
        out.append("")
        if let coordinates, let geometry = coordinates.geometry {
            out.append("coordinates:")
            out.append("  geometry: \(Self.quoted(columns[geometry].name))   # \(coordinates.notation)")
        } else if let coordinates, let point = coordinates.point {
            out.append("coordinates:")
            out.append(
                "  point: \(Self.quoted(columns[point].name))      # both in one column: \(coordinates.notation)")
        } else if let coordinates {
            out.append("coordinates:")
            out.append(
                "  longitude: \(Self.quoted(columns[coordinates.longitude].name))\(coordinates.foundBy == "values" ? "   # found by its values: check" : "")"
            )
            out.append("  latitude: \(Self.quoted(columns[coordinates.latitude].name))")
            if coordinates.looksSwapped {
                out.append("  swapped: fix                  # \(coordinates.evidence ?? "the columns look swapped")")
            }
            if let likeliest = coordinates.systems.first {
                let others = coordinates.systems.dropFirst()
                out.append(
                    "  crs: \(likeliest)               # projected: likeliest of PROJ's database\(others.isEmpty ? "" : ", else \(others.joined(separator: " or "))"); check"
                )
            }
        } else if address != nil {
            out.append("# no coordinate columns: every row is placed from its address (geocode: below)")
        } else {
            out.append(
                "coordinates: {}                 # no coordinate columns found: set longitude: COLUMN, latitude: COLUMN"
            )
        }
        out.append("")
        if let address, coordinates.map({ columns[$0.latitude].nulls > 0 || columns[$0.longitude].nulls > 0 }) ?? true {
            // Without coordinates the section is needed; with them, it is offered commented out, so
            // that the pipeline as written asks no geocoder on the network.
            var section = ["geocode:"]
            for (key, value) in address.settings(columns) {
                section.append("  \(key): \(Self.quoted(value))")
            }
            section.append(
                "  provider: nominatim             # or gazetteer (offline, a GeoNames file), photon, pelias,")
            section.append(
                "                                  # or mapsemble (the map geocodes: its config.geocodeField)")
            section.append("  url: \"${GEOCODER_URL:-https://nominatim.openstreetmap.org}\"")
            section.append(
                "  user_agent: \"${GEOCODER_USER_AGENT:-}\"   # Nominatim asks for an application and a contact")
            if coordinates != nil {
                out.append("# some rows have no coordinates: uncomment to place them from their address")
                out += section.map { "# " + $0 }
            } else {
                out += section
                out.append("  # country_codes: [de]           # limit the answers to these countries")
                out.append("  # min_confidence: 0.5           # reject weaker matches (geocode_low_confidence)")
            }
            out.append("")
        }
        out.append("properties:")
        if let label {
            out.append("  label: \(Self.quoted("{" + columns[label].name + "}"))")
        } else {
            out.append("  # label: \"{COLUMN}\"           # no name or title column found")
        }
        if let remoteID { out.append("  remote_id: \(Self.quoted(columns[remoteID].name))") }
        var used = Set<String>(["remote_id"])
        var fields: [String] = []
        for (index, column) in columns.enumerated() {
            if index == coordinates?.longitude || index == coordinates?.latitude || index == remoteID { continue }
            if column.holdsPoints { continue }
            var slug = Self.slug(column.name)
            if slug.isEmpty { slug = "field_\(index + 1)" }
            // `label` is built in: a column of that name is the label, not a field as well.
            if slug == "label" {
                if index == label { continue }
                slug = "label_\(index + 1)"
            }
            while !used.insert(slug).inserted { slug += "_\(index + 1)" }
            let number = column.kind == .number || (column.kind == .integer && !column.looksLikeCode)
            // Codes (postcodes, phone numbers, ids) stay text, whatever their digits.
            let code = column.kind == .integer && column.looksLikeCode
            fields.append(
                number
                    ? "    \(slug): { column: \(Self.quoted(column.name)), type: number }"
                    : code
                        ? "    \(slug): { column: \(Self.quoted(column.name)), type: text }   # a code, not a quantity"
                        : "    \(slug): \(Self.quoted(column.name))\(column.kind == .empty ? "   # empty in the rows read" : "")"
            )
        }
        if fields.isEmpty {
            out.append("  fields: {}")
        } else {
            out.append("  fields:                       # the map's field slug → the column")
            out.append(contentsOf: fields)
        }
        return out.joined(separator: "\n") + "\n"
    }

    var delimiterSetting: String {
        switch delimiter {
        case 0x09: return "tab"
        default: return Self.quoted(String(UnicodeScalar(delimiter)))
        }
    }

    /// A YAML double-quoted string.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "$": out += "$$"
            default:
                if scalar.value < 0x20 {
                    out += "\\x" + String(scalar.value, radix: 16).leftPadded(2)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// A field slug from a column name: lower case letters, digits and `_`.
    static func slug(_ name: String) -> String {
        var slug = ""
        var gap = false
        // Accents are dropped, not the letters that carry them: Libellé → libelle.
        for scalar in name.folding(options: [.diacriticInsensitive, .caseInsensitive], locale: nil).lowercased()
            .unicodeScalars
        {
            let ascii = scalar.isASCII && (("a"..."z").contains(scalar) || ("0"..."9").contains(scalar))
            if ascii {
                if gap && !slug.isEmpty { slug += "_" }
                slug.unicodeScalars.append(scalar)
                gap = false
            } else {
                gap = true
            }
        }
        return slug
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
