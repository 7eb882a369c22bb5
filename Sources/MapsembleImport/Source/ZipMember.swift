import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A `.zip` holding a data file (`stores.csv`, `stores.xlsx`, …): the member is inflated to a
/// temporary file only its owner can read, removed once the run ends, and read as that file.
///
/// The member is the archive's one data file (folders, `__MACOSX/` and hidden files aside), or
/// the one `source.member` names. A ZIP bomb costs nothing: the member may not inflate past the
/// size its directory states, and that size must fit in the temporary folder's free space.
enum ZipMember {
    /// Whether `path` names a ZIP archive to unpack (by its extension: a workbook is a ZIP too).
    static func isZip(_ path: String) -> Bool { path.lowercased().hasSuffix(".zip") }

    /// The extensions of the files an import reads.
    static let dataExtensions = [
        ".csv", ".tsv", ".csv.gz", ".tsv.gz", ".xlsx", ".xlsm", ".ods", ".xls", ".geojson", ".json",
        ".geojsonl", ".geojsons", ".geojsonseq", ".ndjson", ".jsonl",
    ]

    /// Whether a file's name says it holds data the import reads (not a README or a licence).
    static func isDataName(_ name: String) -> Bool {
        let lower = name.lowercased()
        return dataExtensions.contains { lower.hasSuffix($0) }
    }

    /// The member to read: `wanted`, or the archive's only data file (by its extension, else its
    /// only file).
    static func choose(_ names: [String], wanted: String?, name: String) throws -> String {
        if let wanted {
            guard names.contains(wanted) else {
                throw ImportError(
                    .config,
                    "source.member \"\(wanted)\" is not in the archive; it holds: \(names.sorted().joined(separator: ", "))",
                    file: name)
            }
            return wanted
        }
        let files = names.filter { name in
            let last = name.split(separator: "/").last.map(String.init) ?? ""
            return !name.hasSuffix("/") && !name.hasPrefix("__MACOSX/") && !last.hasPrefix(".") && !last.isEmpty
        }.sorted()
        // A README, a licence or metadata beside the data is not a candidate.
        let named = files.filter(isDataName)
        let data = named.isEmpty ? files : named
        guard data.count == 1 else {
            throw ImportError(
                .config,
                data.isEmpty
                    ? "the archive holds no data file, expected one CSV, workbook or GeoJSON file"
                    : "the archive holds \(data.count) files (\(data.joined(separator: ", "))): set source.member to the one to read",
                file: name)
        }
        return data[0]
    }

    /// Inflates the member of the archive at `path` to a temporary file. `name` is how messages
    /// name the archive.
    static func extract(_ path: String, member wanted: String?, name: String) throws -> RemoteSource.Download {
        let archive: ZipParts
        do {
            archive = try ZipParts(path: path)
        } catch {
            throw ImportError(.unreadableInput, "is not a readable .zip archive (\(error))", file: name)
        }
        let member = try choose(Array(archive.parts.keys), wanted: wanted, name: name)
        let stated = archive.parts[member]!.uncompressedSize
        let base = member.split(separator: "/").last.map(String.init) ?? "member"
        let safe = SourceFetcher.safeName(base)
        let file = try SourceFetcher.temporaryFile(named: safe.isEmpty ? "member" : safe)
        var keep = false
        defer {
            close(file.fd)
            if !keep { SourceFetcher.discard(file) }
        }
        var space = statvfs()
        if fstatvfs(file.fd, &space) == 0 {
            let free = Int(space.f_bavail) * Int(space.f_frsize)
            guard stated <= free else {
                throw ImportError(
                    .unreadableInput,
                    "\(member) inflates to \(stated) bytes, more than the \(free) bytes free for temporary files (set TMPDIR to a larger folder)",
                    file: name)
            }
        }
        var written = 0
        do {
            try archive.read(member) { chunk in
                written += chunk.count
                guard written <= stated else {
                    throw ImportError(
                        .unreadableInput,
                        "\(member) inflates past the \(stated) bytes the archive states for it (a damaged or hostile archive)",
                        file: name)
                }
                var done = 0
                while done < chunk.count {
                    let result = Glibc.write(file.fd, chunk.baseAddress! + done, chunk.count - done)
                    if result < 0 && errno == EINTR { continue }
                    guard result > 0 else {
                        throw ImportError.system(.output, "cannot unpack \(member) to a temporary file", file: name)
                    }
                    done += result
                }
            }
        } catch let error as ImportError {
            throw error
        } catch {
            throw ImportError(.unreadableInput, "cannot unpack \(member) from the archive (\(error))", file: name)
        }
        guard written == stated else {
            throw ImportError(
                .unreadableInput, "\(member) is \(written) bytes once inflated, but the archive states \(stated)",
                file: name)
        }
        keep = true
        return RemoteSource.Download(
            path: file.path, lock: file.lock,
            validators: RemoteSource.Validators(etag: nil, lastModified: nil, digest: "", size: written))
    }
}
