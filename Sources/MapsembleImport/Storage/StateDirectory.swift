import Foundation

/// Where the state kept between runs lives (the geocoding cache, and later the run history):
/// `--state-dir DIR`, else `$MAPSEMBLE_STATE_DIR`, else `$XDG_STATE_HOME/mapsemble-import`, else
/// `~/.local/state/mapsemble-import` (spec/cli.md).
public enum StateDirectory {
    /// The folder, by the rule above; `override` is `--state-dir`.
    public static func path(
        override: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String {
        if let override, !override.isEmpty { return override }
        if let dir = environment["MAPSEMBLE_STATE_DIR"], !dir.isEmpty { return dir }
        if let state = environment["XDG_STATE_HOME"], !state.isEmpty { return state + "/mapsemble-import" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.local/state/mapsemble-import"
    }

    /// Makes the folder when it is missing, readable by its owner only (it holds what was looked
    /// up, and later what ran). Returns its path.
    @discardableResult
    static func create(_ path: String) throws -> String {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ImportError(.output, "cannot create the state folder", file: path)
        }
        return path
    }
}
