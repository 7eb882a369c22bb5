import MapsembleBuildInfo

/// The tool's version: the one place it is written. `--version` prints it, every request names
/// it in `User-Agent`, and summaries, HTML reports and the run history record it.
public enum ToolVersion {
    public static let number = "0.24.0"
    /// The git commit built (12 hex digits) when built from a checkout, else nil.
    public static let commit: String? = BuildInfo.commit().map { String($0.prefix(12)) }
    /// What `--version` prints: `0.24.0 (commit 0123456789ab)`.
    public static var described: String { number + (commit.map { " (commit \($0))" } ?? "") }

    /// `mapsemble-import/VERSION`, the `User-Agent` of every request.
    public static var userAgent: String { "mapsemble-import/\(number)" }
}
