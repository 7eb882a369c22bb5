import Foundation

/// The stages of one run, built from the config and the input's header before any row moves.
/// Every mismatch between pipeline.yml and the file (a column that is not there, a setting this
/// version cannot honour) is found here, as one `ImportError` naming the file, line and column.
struct PipelinePlan {
    var reader: any RecordReader
    var validator: Validator
    var mapping: PropertyMapping
    var readerOptions: ReaderOptions
    var inputName: String
    /// What was decided and how, for `--verbose`.
    var notes: [String] = []
    /// What the user must hear of even without `--verbose` (a decision that changes the data).
    var notices: [String] = []
    /// The map's geocode field, when the map geocodes (`geocode.provider: mapsemble`).
    var geocodeField: String?

    init(config: PipelineConfig, blockBytes: Int = ReaderOptions().blockBytes) throws {
        guard let path = config.source.path else {
            throw ImportError(.usage, "no input: give --input FILE or source.path in pipeline.yml")
        }
        inputName =
            config.source.origin.map { RemoteSource.isURL($0) ? RemoteSource.displayName($0) : $0 }
            ?? (path == "-" ? "stdin" : path)
        try Self.checkSupported(config)

        var options = ReaderOptions()
        options.quote = config.source.quote == "none" ? nil : config.source.quote.utf8.first
        options.hasHeader = config.source.header != "false"
        options.blockBytes = blockBytes
        options.maxRecordBytes = config.source.maxRecordBytes
        options.maxColumns = config.source.maxColumns
        if config.source.encoding != "auto" {
            guard let encoding = SourceEncoding(setting: config.source.encoding) else {
                throw ImportError(
                    .config,
                    "source.encoding \"\(config.source.encoding)\" is not one this version reads; use auto, "
                        + SourceEncoding.allCases.map(\.rawValue).joined(separator: ", "))
            }
            options.encoding = encoding
        }
        let workbookFormat = try WorkbookFormat.of(format: config.source.format, path: path)
        let workbook = workbookFormat != nil
        let headerRow = Int(config.source.header)
        if headerRow != nil && !workbook {
            throw ImportError(
                .config,
                "source.header \(config.source.header) names a row, which only a workbook's header can be; for CSV use true or false",
                file: inputName)
        }
        let geoJSON = GeoJSONReader.kind(format: config.source.format, path: path)
        var defaultGeometry: String?
        if let geoJSON {
            options.delimiter = UInt8(ascii: ",")
            readerOptions = options
            let featureReader = try GeoJSONReader(path: path, kind: geoJSON, blockBytes: blockBytes, name: inputName)
            reader = featureReader
            defaultGeometry = featureReader.geometryColumn
            notes.append(
                "reading \(inputName): \(geoJSON == .collection ? "a GeoJSON FeatureCollection" : "GeoJSON features, one per line"), \(featureReader.header.count - 1) columns besides the geometry"
            )
        } else if let workbookFormat {
            options.delimiter = UInt8(ascii: ",")
            readerOptions = options
            let opened = try workbookFormat.reader(
                path: path, sheet: config.source.sheet, hasHeader: options.hasHeader, headerRow: headerRow,
                blockBytes: blockBytes, name: inputName, maxRecordBytes: config.source.maxRecordBytes)
            reader = opened.reader
            notes.append(
                "reading \(inputName): \(workbookFormat.rawValue) sheet \"\(opened.sheet)\", \(opened.reader.header.count) columns\(options.hasHeader ? "" : " (no header row)")"
            )
        } else {
            options.delimiter = try Self.delimiter(config.source.delimiter, path: path, quote: options.quote)
            options.delimiterFromHint = config.source.delimiter == "auto"
            let csv = try CSVReader(path: path, options: options, name: inputName)
            reader = csv
            options.delimiter = csv.delimiter
            readerOptions = options
            let encodingNote =
                "\(reader.encoding.rawValue)\(config.source.encoding == "auto" ? " (detected)" : "")"
            let auto = config.source.delimiter == "auto"
            var how = auto ? " (sniffed)" : ""
            if let hint = csv.hintLine {
                how =
                    auto
                    ? " (from the file's first line \(hint))"
                    : " (source.delimiter; the file's first line \(hint) is skipped)"
            }
            notes.append(
                "reading \(inputName) (\(encodingNote)): delimiter \(Self.delimiterName(options.delimiter))\(how), "
                    + "\(reader.header.count) columns\(options.hasHeader ? "" : " (no header row)")")
        }
        if let renamed = HeaderNames.note(reader.duplicateNames) { notes.append(renamed) }

        let header = reader.header
        let duplicateNames = reader.duplicateNames
        let headerLine = reader.headerLine
        let separator = config.source.decimal == "comma" ? UInt8(ascii: ",") : UInt8(ascii: ".")
        // auto: a decimal comma is read too where the comma is not the delimiter.
        let alternate: UInt8? =
            config.source.decimal == "auto" && options.delimiter != UInt8(ascii: ",") ? UInt8(ascii: ",") : nil
        // A coordinate holding a comma in a comma-delimited file was quoted: its comma is a
        // decimal one (`"52,5"`). Other numbers keep reading `"1,234"` as grouped digits.
        let coordinateAlternate: UInt8? = config.source.decimal == "auto" ? UInt8(ascii: ",") : nil
        if separator == options.delimiter {
            throw ImportError(
                .config, "source.decimal is comma but the delimiter is a comma too; use a \";\" or tab delimited file")
        }
        let name = inputName
        // A mapped name the header gives more than one column, then every mapped column the header
        // lacks, said at once.
        if let ambiguous = SchemaDrift.ambiguousColumns(
            config, duplicates: duplicateNames, file: name, line: headerLine)
        {
            throw ambiguous
        }
        if let drift = SchemaDrift.missingColumns(config, header: header, file: name, line: headerLine) { throw drift }
        func column(_ column: String, key: String) throws -> Int {
            guard let index = header.firstIndex(of: column) else {
                throw ImportError(
                    .config,
                    "\(key) names the column \"\(column)\", which the header does not have; its columns are: \(Self.listing(header))",
                    file: name, line: headerLine)
            }
            return index
        }
        // A column found by name whose name the header gives more than once: which is meant is not known.
        func foundOnce(_ index: Int, key: String, what: String) throws {
            guard let choices = duplicateNames[header[index]] else { return }
            throw ImportError(
                .config,
                "the \(what) column found by name, \"\(header[index])\", is in the header \(choices.count) times; set \(key) in pipeline.yml to one of: \(choices.map { "\"\($0)\"" }.joined(separator: ", "))",
                file: name, line: headerLine)
        }
        func detect(_ candidates: [String], key: String, what: String) throws -> Int {
            for candidate in candidates {
                if let index = header.firstIndex(where: { $0.trimmingSpaces.lowercased() == candidate }) {
                    try foundOnce(index, key: key, what: what)
                    return index
                }
            }
            throw ImportError(
                .config,
                "no \(what) column found; set \(key) in pipeline.yml to one of the columns: \(Self.listing(header))",
                file: name, line: headerLine)
        }
        // Deleting by remote id needs no coordinates; an update needs them only to move features.
        let coordinatesStated =
            config.coordinates.point != nil || config.coordinates.longitude != nil || config.coordinates.latitude != nil
            || config.coordinates.geometry != nil || defaultGeometry != nil
        // An update, or a pipeline that geocodes, may have no coordinate columns at all.
        let noCoordinates =
            (config.mode == .update || config.geocode != nil) && !coordinatesStated
            && !header.contains { Inspector.longitudeNames.contains($0.trimmingSpaces.lowercased()) }
        if config.mode == .delete || noCoordinates {
            if noCoordinates {
                notes.append(
                    config.geocode != nil
                        ? "coordinates: none in this file; every row is geocoded from its address"
                        : "coordinates: none in this file; the features keep their location")
            }
            validator = Validator(longitudeColumn: 0, latitudeColumn: 0, header: header, requireCoordinates: false)
        } else {
            // A GeoJSON input's geometries, unless the pipeline names point columns instead.
            let pointsStated =
                config.coordinates.point != nil || config.coordinates.longitude != nil
                || config.coordinates.latitude != nil
            if let geometry = config.coordinates.geometry ?? (pointsStated ? nil : defaultGeometry) {
                if config.coordinates.point != nil || config.coordinates.longitude != nil
                    || config.coordinates.latitude != nil
                {
                    throw ImportError(
                        .config,
                        "coordinates.geometry takes the place of coordinates.point, longitude and latitude: set one or the other"
                    )
                }
                let geometryColumn = try column(geometry, key: "coordinates.geometry")
                notes.append(
                    "coordinates: geometries from \"\(header[geometryColumn])\" (WKT, EWKT, hex WKB or GeoJSON)")
                validator = Validator(
                    longitudeColumn: geometryColumn, latitudeColumn: geometryColumn, header: header,
                    swapped: config.coordinates.swapped, bounds: config.coordinates.bounds)
                validator.geometryColumn = geometryColumn
                validator.geometry = .init(
                    makeValid: config.coordinates.makeValid, simplifyMetres: config.coordinates.simplifyMetres,
                    maxVertices: config.coordinates.maxVertices)
                validator.checker = ShapeChecker()
                validator.sridTransforms = SRIDTransforms()
            } else if let point = config.coordinates.point {
                let pointColumn = try column(point, key: "coordinates.point")
                notes.append(
                    config.coordinates.crsIsDegrees
                        ? "coordinates: both from \"\(header[pointColumn])\" (latitude first, or WKT, or ISO 6709)"
                        : "coordinates: both from \"\(header[pointColumn])\" (in the system's axis order, or WKT)")
                validator = Validator(
                    longitudeColumn: pointColumn, latitudeColumn: pointColumn, pointColumn: pointColumn, header: header,
                    swapped: config.coordinates.swapped, bounds: config.coordinates.bounds,
                    decimalSeparator: separator, alternateSeparator: coordinateAlternate)
            } else {
                let longitude =
                    try config.coordinates.longitude.map { (n) in try column(n, key: "coordinates.longitude") }
                    ?? detect(Inspector.longitudeNames, key: "coordinates.longitude", what: "longitude")
                let latitude =
                    try config.coordinates.latitude.map { (n) in try column(n, key: "coordinates.latitude") }
                    ?? detect(Inspector.latitudeNames, key: "coordinates.latitude", what: "latitude")
                let found =
                    (config.coordinates.longitude == nil || config.coordinates.latitude == nil)
                    ? " (found by name)" : ""
                notes.append(
                    "coordinates: longitude from \"\(header[longitude])\", latitude from \"\(header[latitude])\"\(found)"
                )
                if longitude == latitude {
                    throw ImportError(
                        .config,
                        "coordinates.longitude and coordinates.latitude name the same column \"\(header[latitude])\"; for one column holding both, use coordinates.point",
                        file: name, line: headerLine)
                }
                validator = Validator(
                    longitudeColumn: longitude, latitudeColumn: latitude, header: header,
                    swapped: config.coordinates.swapped, bounds: config.coordinates.bounds, decimalSeparator: separator,
                    alternateSeparator: coordinateAlternate)
            }
            validator.allowNullIsland = config.coordinates.allowNullIsland
            // A GeoJSON file's own `crs` member, unless the pipeline says otherwise.
            var coordinates = config.coordinates
            if coordinates.crs == nil, let declared = (reader as? GeoJSONReader)?.declaredCRS {
                coordinates.crs = declared
                notes.append("coordinates: the file's crs member names \(declared)")
            }
            if let crs = coordinates.crs, !coordinates.crsIsDegrees {
                let transform = try CoordinateTransform(from: crs)
                validator.transform = transform
                notes.append(
                    "coordinates: in \(crs), reprojected to WGS 84 longitude and latitude"
                        + (transform.usesClosedForm
                            ? " (PROJ's inverse projection in closed form, checked against PROJ on every block)" : ""))
            }
            // Rows without coordinates pass: an update keeps their location, geocoding finds it.
            validator.optionalCoordinates = config.mode == .update || config.geocode != nil
            if path != "-" && validator.pointColumn == nil && validator.transform == nil
                && validator.geometryColumn == nil
            {
                if let note = try Self.checkColumns(
                    &validator, header: header, path: path, name: name, options: options, config: config,
                    workbook: workbookFormat)
                {
                    notices.append(note)
                }
            }
        }
        var label: [PropertyMapping.LabelPart]?
        if let setting = config.properties.label {
            switch PropertyMapping.labelParts(setting, header: header) {
            case .success(let parts): label = parts
            case .failure(let error): throw error.inFile(name)
            }
        } else if let index = header.firstIndex(where: { ["label", "name", "title"].contains($0.lowercased()) }) {
            try foundOnce(index, key: "properties.label", what: "label")
            label = [.column(index)]
        }
        let remoteID = try config.properties.remoteID.map { (n) in
            (column: try column(n, key: "properties.remote_id"), slug: config.properties.remoteFieldSlug)
        }
        var fields: [PropertyMapping.Field] = []
        for field in config.properties.fields {
            if field.slug == config.properties.remoteFieldSlug && remoteID != nil {
                throw ImportError(
                    .config,
                    "properties.fields.\(field.slug) uses the remote field's slug; the remote id is sent under it already"
                )
            }
            fields.append(
                .init(
                    slug: field.slug, column: try column(field.column, key: "properties.fields.\(field.slug)"),
                    isNumber: field.type == "number",
                    kind: FieldKind.from(type: field.type, formats: field.formats, separator: field.separator)))
        }
        notes.append(
            "mode \(config.mode.rawValue); label: \(config.properties.label ?? label.map { _ in "from a column called label, name or title" } ?? "none")"
                + (remoteID.map { "; remote id from \"\(header[$0.column])\" as \"\($0.slug)\"" } ?? "")
                + "; \(fields.count) mapped fields")
        mapping = PropertyMapping(
            label: label, remoteID: remoteID, fields: fields, header: header, decimalSeparator: separator,
            alternateSeparator: alternate,
            geometryless: config.mode == .delete)
        // Columns the pipeline uses nowhere, when it maps fields at all (a pipeline that maps none
        // wants none).
        newColumns = SchemaDrift.newColumns(self, config: config)
        if !config.properties.fields.isEmpty && !newColumns.isEmpty && config.mode != .delete {
            notices.append(
                "\(newColumns.count == 1 ? "a column" : "\(newColumns.count) columns") the pipeline does not map: \(Self.listing(newColumns)); to import \(newColumns.count == 1 ? "it" : "them"), map \(newColumns.count == 1 ? "it" : "them") under properties.fields and add the fields with `mapsemble-import fields add \(config.target.mapID ?? "MAP_ID") --from PIPELINE.yml`, or run with --create-fields, which does both for each run"
            )
        }
    }

    /// Header columns no setting uses (`SchemaDrift.newColumns`).
    var newColumns: [String] = []

    /// The pre-flight's findings applied: every mapped slug must be a field of the map (the server
    /// would drop an unknown one silently), remote ids go under the map's remote field, and number
    /// fields of the map are sent as JSON numbers.
    mutating func apply(_ map: MapInfo, config: PipelineConfig) throws {
        let slugs = map.fields.map(\.slug)
        for index in mapping.fields.indices {
            let slug = mapping.fields[index].slug
            guard let field = map.fields.first(where: { $0.slug == slug }) else {
                throw ImportError(
                    .config,
                    "properties.fields.\(slug): map \(map.id) has no field \"\(slug)\"; its fields are: \(slugs.joined(separator: ", "))"
                )
            }
            mapping.fields[index].isNumber = field.type == "number"
            let stated = config.properties.fields.first { $0.slug == slug }
            mapping.fields[index].kind = FieldKind.from(
                type: field.type, formats: stated?.formats ?? [], separator: stated?.separator ?? ",",
                options: field.options)
        }
        guard let remote = mapping.remoteID else { return }
        guard let remoteField = map.remoteField else {
            throw ImportError(
                .config,
                "map \(map.id) has no remote field (config.remoteField), which properties.remote_id needs: choose one in the map's settings on Mapsemble, or leave properties.remote_id out and use mode create"
            )
        }
        if let stated = config.properties.remoteField, stated != remoteField {
            throw ImportError(
                .config,
                "properties.remote_field is \"\(stated)\" but map \(map.id) uses \"\(remoteField)\" as its remote field"
            )
        }
        if mapping.fields.contains(where: { $0.slug == remoteField }) {
            throw ImportError(
                .config,
                "properties.fields.\(remoteField) is the map's remote field; the remote id is sent under it already")
        }
        mapping.remoteID = (remote.column, remoteField)
        notes.append("map \(map.id) (\(map.label)): \(map.fields.count) fields, remote field \"\(remoteField)\"")
    }

    /// Looks at the first rows before anything is sent: coordinates in metres (a projected system)
    /// stop the run with what they are; a latitude column running past ±90 beside a longitude
    /// column within ±90 means the two are swapped: `swapped: reject` stops with the evidence,
    /// `fix` swaps the columns (and says so), `off` leaves them.
    private static func checkColumns(
        _ validator: inout Validator, header: [String], path: String, name: String, options: ReaderOptions,
        config: PipelineConfig, workbook: WorkbookFormat?
    ) throws -> String? {
        let sample: any RecordReader =
            try workbook?.reader(
                path: path, sheet: config.source.sheet, hasHeader: options.hasHeader,
                headerRow: Int(config.source.header), blockBytes: options.blockBytes, name: name
            ).reader ?? CSVReader(path: path, options: options, name: name)
        var longitudes: [Double] = []
        var latitudes: [Double] = []
        reading: while let block = try sample.nextBlock() {
            try block.bytes.withUnsafeBytes { [validator] bytes in
                for record in 0..<block.count {
                    if latitudes.count == 1000 { return }
                    func value(_ column: Int) -> Double? {
                        let field = UnsafeRawBufferPointer(rebasing: bytes[block.fieldRange(record, column)])
                        switch validator.coordinate(field, column: column, axis: "") {
                        case .success(let coordinate): return coordinate.value
                        case .failure: return nil
                        }
                    }
                    guard let x = value(validator.longitudeColumn), let y = value(validator.latitudeColumn) else {
                        continue
                    }
                    longitudes.append(abs(x))
                    latitudes.append(abs(y))
                }
                try Task.checkCancellation()
            }
            if latitudes.count == 1000 { break reading }
        }
        guard latitudes.count >= 1 else { return nil }
        let lon = header[validator.longitudeColumn]
        let lat = header[validator.latitudeColumn]
        func share(_ values: [Double], _ test: (Double) -> Bool) -> Double {
            Double(values.filter(test).count) / Double(values.count)
        }
        func most(_ values: [Double]) -> String {
            let top = values.max() ?? 0
            return top > 1000 ? String(Int(top.rounded())) : Inspector.number(top)
        }
        if share(longitudes, { $0 > 1000 }) > 0.5 && share(latitudes, { $0 > 1000 }) > 0.5 {
            // The systems of PROJ's database that hold these points, for the line to add.
            let sample = zip(longitudes, latitudes).filter { $0.0 > 1000 && $0.1 > 1000 }
            let step = max(1, sample.count / 50)
            let points = stride(from: 0, to: sample.count, by: step).map { sample[$0] }
            let candidates = CoordinateTransform.likelySystems(x: points.map(\.0), y: points.map(\.1))
            let advice =
                candidates.isEmpty
                ? "set coordinates.crs to their reference system (e.g. crs: EPSG:2154) to reproject them"
                : "they fit \(candidates.map { "\($0.code) (\($0.name))" }.joined(separator: ", ")); add the right one to pipeline.yml, e.g. coordinates: { crs: \(candidates[0].code) }, to reproject them"
            throw ImportError(
                .config,
                "the columns \"\(lon)\" and \"\(lat)\" hold projected coordinates, not degrees (values up to \(most(longitudes)) and \(most(latitudes)) in the first \(latitudes.count) rows: metres or feet, e.g. Lambert-93, UTM or State Plane); \(advice), or map the columns that hold degrees",
                file: name)
        }
        guard config.coordinates.swapped != .off, share(latitudes, { $0 > 90 }) > 0.5,
            longitudes.allSatisfy({ $0 <= 90 })
        else { return nil }
        let evidence =
            "in the first \(latitudes.count) rows \"\(lat)\" runs to \(most(latitudes)), past ±90, while \"\(lon)\" stays within ±90 (up to \(most(longitudes)))"
        if config.coordinates.swapped == .reject {
            throw ImportError(
                .config,
                "the coordinate columns look swapped: \(evidence); set coordinates.swapped: fix to swap them, or name the columns the other way round",
                file: name)
        }
        swap(&validator.longitudeColumn, &validator.latitudeColumn)
        return
            "coordinates: the columns are swapped, longitude read from \"\(lat)\" and latitude from \"\(lon)\" (\(evidence))"
    }

    private static func checkSupported(_ config: PipelineConfig) throws {
        if !["auto", "csv", "xlsx", "ods", "xls", "geojson", "geojsonseq"].contains(config.source.format) {
            throw ImportError(
                .config,
                "source.format \"\(config.source.format)\" is not one this version reads; use auto, csv, xlsx, ods, xls, geojson or geojsonseq"
            )
        }
        switch config.mode {
        case .create: break
        case .upsert, .replace, .delete, .update, .sync:
            if config.properties.remoteID == nil {
                throw ImportError(
                    .config,
                    "mode \(config.mode.rawValue) needs properties.remote_id: the column holding each row's unique id")
            }
        }
    }

    /// The delimiter byte: the configured one, or for `auto` the candidate that splits the first
    /// line into the most fields (outside quotes), `,` when in doubt.
    static func delimiter(_ setting: String, path: String, quote: UInt8?) throws -> UInt8 {
        if setting != "auto" { return setting.utf8.first! }
        guard path != "-" else { return UInt8(ascii: ",") }
        let head = RawInput.head(path, 64 << 10)
        var counts: [UInt8: Int] = [:]
        var quoted = false
        var index = head.startIndex
        if head.starts(with: [0xEF, 0xBB, 0xBF]) { index += 3 }
        while index < head.endIndex {
            let byte = head[index]
            if let quote, byte == quote { quoted.toggle() }
            if !quoted {
                if byte == 0x0A { break }
                if [0x2C, 0x3B, 0x09, 0x7C].contains(byte) { counts[byte, default: 0] += 1 }
            }
            index += 1
        }
        let best = [UInt8(ascii: ","), UInt8(ascii: ";"), 0x09, UInt8(ascii: "|")]
            .max { counts[$0, default: 0] < counts[$1, default: 0] }!
        return counts[best, default: 0] > 0 ? best : UInt8(ascii: ",")
    }

    /// A delimiter as messages name it.
    static func delimiterName(_ delimiter: UInt8) -> String {
        delimiter == 0x09 ? "tab" : "\"\(Character(Unicode.Scalar(delimiter)))\""
    }

    /// Column names for a message: all of them, or the first 50 and how many more.
    static func listing(_ names: [String]) -> String {
        guard names.count > 50 else { return names.joined(separator: ", ") }
        return names.prefix(50).joined(separator: ", ") + " and \(names.count - 50) more"
    }
}
