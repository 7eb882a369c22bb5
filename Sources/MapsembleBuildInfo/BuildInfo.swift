/// What the build knows of itself: the git commit built, written by the `BuildCommit` plugin into
/// this small module alone, so that a new commit recompiles nothing else.
public enum BuildInfo {
    /// The full commit hash when built from a git checkout, else nil.
    public static func commit() -> String? { BuildCommit.hash }
}
