/// The tool's version: the one place it is written. `--version` prints it, every request names
/// it in `User-Agent`, and summaries, HTML reports and the run history record it.
public enum ToolVersion {
    public static let number = "0.24.0"

    /// `mapsemble-import/VERSION`, the `User-Agent` of every request.
    public static var userAgent: String { "mapsemble-import/\(number)" }
}
