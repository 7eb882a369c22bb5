import Foundation

/// A spreadsheet service's share or edit link, turned into the URL of its export.
///
/// A `source.path` copied from a browser's address bar or a service's Share button opens a web
/// page, not the data; the link of a known service is swapped for the URL of its download:
///
/// - Google Sheets, `https://docs.google.com/spreadsheets/d/{ID}/edit#gid={N}` (also `/edit?gid=N`,
///   `/edit?usp=sharing`, `/view`, `/htmlview`, `/preview`, no suffix, and `/spreadsheets/u/0/d/…`):
///   the sheet as CSV, `…/d/{ID}/export?format=csv&gid={N}`, without `gid` (the first sheet) when
///   the link names none. Published links, `…/d/e/{PUBID}/pubhtml` or `/pub`: `…/pub?output=csv`,
///   with `&gid=N&single=true` for one sheet. An export URL already is kept as it is.
/// - Dropbox, `https://www.dropbox.com/s/{key}/{name}?dl=0` and `/scl/fi/{id}/{name}?rlkey=…&dl=0`:
///   the same link with `dl=1`. Only files whose name says a format the import reads.
/// - OneDrive, `https://1drv.ms/x/s!…`, `https://1drv.ms/x/c/…` and `https://onedrive.live.com/…?resid=…`:
///   the content of the shared item through the OneDrive shares API.
/// - SharePoint and OneDrive for Business, `https://{tenant}.sharepoint.com/:x:/{r|g|s}/…`: the same
///   link with `download=1`.
///
/// Query items that may carry an access key (Dropbox's `rlkey`, SharePoint's `e`, Google's
/// `resourcekey`, …) are kept; only those a rule replaces go.
enum ShareLink {
    /// What to download in place of a share link.
    struct Export: Equatable, Sendable {
        /// The URL to download.
        var url: String
        /// `csv` or `xlsx` (a Dropbox file's own extension, such as `ods` or `csv.gz`): what the
        /// export holds, the file name extension the download gets.
        var format: String
        /// The service, for messages: `Google Sheets`, `OneDrive`, `SharePoint`, `Dropbox`.
        var service: String
    }

    /// The export of `link`, or nil when it is not a share link of a known service (then the URL is
    /// downloaded as it is). Hosts are compared without regard to case; a link with a user,
    /// password or port is not a share link.
    static func export(_ link: String) -> Export? {
        let link = link.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let parts = URLComponents(string: link), let scheme = parts.scheme?.lowercased(),
            scheme == "https" || scheme == "http", let host = parts.host?.lowercased(),
            parts.user == nil, parts.password == nil, parts.port == nil
        else { return nil }
        let path = parts.percentEncodedPath.split(separator: "/").map(String.init)
        let query = items(parts.percentEncodedQuery)
        switch host {
        case "docs.google.com":
            return googleSheets(link, path: path, query: query, fragment: parts.percentEncodedFragment)
        case "dropbox.com", "www.dropbox.com":
            return dropbox(host: host, path: path, query: query)
        case "1drv.ms", "onedrive.live.com":
            return oneDrive(link, host: host, path: parts.percentEncodedPath, query: query)
        case _ where host.hasSuffix(".sharepoint.com"):
            return sharePoint(host: host, path: path, query: query)
        default:
            return nil
        }
    }

    // MARK: - Google Sheets

    /// `/spreadsheets[/u/{n}]/d/{ID}[/{view}]` → the sheet as CSV; `/spreadsheets/d/e/{PUBID}/…` →
    /// `published`; `/spreadsheets/d/{ID}/export?format=csv|xlsx` → itself. Other pages (a copy
    /// prompt, the legacy `ccc?key=` links) are not exports we know.
    private static func googleSheets(_ link: String, path: [String], query: [String], fragment: String?)
        -> Export?
    {
        var rest = path[...]
        guard rest.popFirst() == "spreadsheets" else { return nil }
        // A signed-in account's number: `/spreadsheets/u/0/d/…`.
        if rest.first == "u", let account = rest.dropFirst().first, isDigits(account) {
            rest = rest.dropFirst(2)
        }
        guard rest.popFirst() == "d", let id = rest.popFirst(), isToken(id) else { return nil }
        let gid = sheetID(fragment: fragment, query: query)
        let service = "Google Sheets"
        if id == "e" {
            return published(path: Array(rest), query: query, gid: gid, link: link)
        }
        switch Array(rest) {
        case ["export"]:
            guard let format = value("format", in: query), ["csv", "xlsx"].contains(format) else { return nil }
            return Export(url: link, format: format, service: service)
        case [], ["edit"], ["view"], ["htmlview"], ["preview"]:
            var url = "https://docs.google.com/spreadsheets/d/\(id)/export?format=csv"
            if let gid { url += "&gid=\(gid)" }
            // The key of a file shared by link before Google's 2021 security update.
            if let key = value("resourcekey", in: query) { url += "&resourcekey=\(key)" }
            return Export(url: url, format: "csv", service: service)
        default:
            return nil
        }
    }

    /// A sheet published to the web, `/d/e/{PUBID}/pubhtml`, `/pubhtml/sheet` or `/pub`: its CSV,
    /// `/d/e/{PUBID}/pub?output=csv`, plus `&gid=N&single=true` for one sheet. A `pub?output=xlsx`
    /// link is a download already and is kept as it is.
    private static func published(path: [String], query: [String], gid: String?, link: String) -> Export? {
        guard let id = path.first, isToken(id) else { return nil }
        let page = Array(path.dropFirst())
        guard [["pub"], ["pubhtml"], ["pubhtml", "sheet"]].contains(page) else { return nil }
        let service = "Google Sheets"
        switch value("output", in: query) {
        case "xlsx"? where page == ["pub"]:
            return Export(url: link, format: "xlsx", service: service)
        case nil, "csv"?, "html"?:
            var url = "https://docs.google.com/spreadsheets/d/e/\(id)/pub?output=csv"
            if let gid { url += "&gid=\(gid)&single=true" }
            return Export(url: url, format: "csv", service: service)
        default:
            return nil
        }
    }

    /// The sheet a Google link shows: `gid` in the fragment (`#gid=N`, what the browser's tab
    /// says) or else in the query; nil when neither holds a number.
    private static func sheetID(fragment: String?, query: [String]) -> String? {
        let candidates = [value("gid", in: items(fragment)), value("gid", in: query)]
        return candidates.compactMap { $0 }.first(where: isDigits)
    }

    // MARK: - Dropbox

    /// `/s/{key}/{name}` or `/scl/fi/{id}/{name}` → the same link with `dl=1` in place of `dl=0`
    /// (or added), other items kept in their order. Folders (`/sh/…`, `/scl/fo/…`) and files of a
    /// format the import does not read are not exports we know.
    private static func dropbox(host: String, path: [String], query: [String]) -> Export? {
        let isFile = (path.count == 3 && path[0] == "s") || (path.count == 4 && path[0] == "scl" && path[1] == "fi")
        guard isFile, let name = path.last?.removingPercentEncoding, let format = fileFormat(name) else {
            return nil
        }
        let items = setting("dl=1", replacing: ["dl"], in: query)
        let url = "https://\(host)/\(path.joined(separator: "/"))?\(items.joined(separator: "&"))"
        return Export(url: url, format: format, service: "Dropbox")
    }

    /// The format a file name says, lowercased: `csv`, `tsv`, `xlsx`, `xlsm`, `xls`, `ods`, `zip`,
    /// `geojson`, `geojsonseq`, or a text format gzipped (`csv.gz`); nil for any other name.
    static func fileFormat(_ name: String) -> String? {
        let name = name.lowercased()
        let text: Set = ["csv", "tsv", "geojson", "geojsonseq"]
        let binary: Set = ["xlsx", "xlsm", "xls", "ods", "zip"]
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, let last = parts.last else { return nil }
        if last == "gz" {
            let inner = parts[parts.count - 2]
            return parts.count >= 3 && text.contains(inner) ? "\(inner).gz" : nil
        }
        return text.contains(last) || binary.contains(last) ? last : nil
    }

    // MARK: - OneDrive

    /// An Excel short link (`1drv.ms/x/s!…`, `1drv.ms/x/c/…`) or an `onedrive.live.com` link naming
    /// its item (`resid=`) → `https://api.onedrive.com/v1.0/shares/u!{link}/root/content`, the link
    /// in unpadded base64url (`+` → `-`, `/` → `_`). The format is xlsx, unless a long link's
    /// `ithint=file,{ext}` says another; links to other items (`1drv.ms/w/…`, `1drv.ms/u/…`, a
    /// folder) are not exports we know.
    private static func oneDrive(_ link: String, host: String, path: String, query: [String]) -> Export? {
        var format = "xlsx"
        if host == "1drv.ms" {
            guard path.hasPrefix("/x/s!") || path.hasPrefix("/x/c/") else { return nil }
        } else {
            guard value("resid", in: query) != nil else { return nil }
            if let hint = value("ithint", in: query)?.removingPercentEncoding?.lowercased() {
                guard hint.hasPrefix("file,"), let hinted = fileFormat("item.\(hint.dropFirst(5))") else {
                    return nil
                }
                format = hinted
            }
        }
        let token = Data(link.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .filter { $0 != "=" }
        return Export(
            url: "https://api.onedrive.com/v1.0/shares/u!\(token)/root/content", format: format, service: "OneDrive")
    }

    // MARK: - SharePoint

    /// `/:x:/{r|g|s}/…` on a `*.sharepoint.com` host → the same link with `download=1` in place of
    /// `web=1` (or added), `e=` and the other items kept.
    private static func sharePoint(host: String, path: [String], query: [String]) -> Export? {
        guard path.count >= 3, path[0] == ":x:", ["r", "g", "s"].contains(path[1]) else { return nil }
        let items = setting("download=1", replacing: ["download", "web"], in: query)
        let url = "https://\(host)/\(path.joined(separator: "/"))?\(items.joined(separator: "&"))"
        return Export(url: url, format: "xlsx", service: "SharePoint")
    }

    // MARK: - Query items

    /// A query's (or fragment's) items as written, `name=value` still percent-encoded, in order.
    private static func items(_ query: String?) -> [String] {
        (query ?? "").split(separator: "&").map(String.init)
    }

    /// An item's name: what comes before its `=`.
    private static func name(_ item: String) -> String {
        String(item.prefix { $0 != "=" })
    }

    /// The value of the first item called `name`, as written (`format=csv` → `csv`).
    private static func value(_ name: String, in items: [String]) -> String? {
        guard let item = items.first(where: { self.name($0) == name }) else { return nil }
        return String(item.dropFirst(name.count + 1))
    }

    /// `items` with `item` in place of the first one whose name is in `names` (the others of those
    /// names dropped), or at the end when there is none.
    private static func setting(_ item: String, replacing names: Set<String>, in items: [String]) -> [String] {
        guard let first = items.firstIndex(where: { names.contains(name($0)) }) else { return items + [item] }
        var result: [String] = []
        for (index, existing) in items.enumerated() {
            if index == first {
                result.append(item)
            } else if !names.contains(name(existing)) {
                result.append(existing)
            }
        }
        return result
    }

    /// Whether `text` is a run of ASCII digits.
    private static func isDigits(_ text: String) -> Bool {
        !text.isEmpty && text.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// Whether `text` can be a Google document's id: ASCII letters, digits, `-` and `_`.
    private static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }
}
