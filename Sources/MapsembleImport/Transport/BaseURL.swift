import Foundation

/// The base URLs the tool sends requests to (the API, a geocoder): `https://` everywhere, plain
/// `http://` only to this machine, so that no key or data crosses a network in clear.
enum BaseURL {
    /// `text` without a trailing `/`, or an error naming the setting (`name`: "the API URL").
    static func checked(_ text: String, name: String, example: String) throws -> String {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased()
        else {
            throw ImportError(.config, "\(name) \"\(text)\" is not a URL such as \(example)")
        }
        guard scheme == "https" || (scheme == "http" && isLoopback(host)) else {
            throw ImportError(
                .config, "\(name) \"\(text)\" must use https:// (plain http:// is allowed only for localhost)")
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    /// `localhost`, `::1`, or an IPv4 address in 127.0.0.0/8 (a name such as `127.example.com` is
    /// not one).
    static func isLoopback(_ host: String) -> Bool {
        let host = host.lowercased()
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        var address = in_addr()
        guard inet_pton(AF_INET, host, &address) == 1 else { return false }
        return UInt32(bigEndian: address.s_addr) >> 24 == 127
    }
}
