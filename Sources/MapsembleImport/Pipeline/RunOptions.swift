/// What a command asks of a run beyond pipeline.yml.
public struct RunOptions: Sendable {
    /// No network: the batches go to `output` / `outputBatches` instead of the API.
    public var dryRun = true
    /// `--output FILE|-`: every feature as one GeoJSON FeatureCollection.
    public var output: String?
    /// `--output-batches FILE|-`: every request body, one per line.
    public var outputBatches: String?
    /// Field bytes per block handed between stages (smaller blocks: finer back-pressure).
    public var blockBytes = ReaderOptions().blockBytes
    /// First step of the exponential backoff between retries (when the server sets no `Retry-After`).
    public var backoffSeconds = 0.5
    /// The backoff between retries never grows past this (`RetryPolicy`).
    public var maxBackoffSeconds = 30.0
    /// With `dryRun`: still read the map and check the mapping against it (`validate` with credentials).
    public var checkMap = false
    /// Keep a resume journal (uploads of a file; not for a throwaway target such as `--sandbox`).
    public var journal = true
    /// `--fresh`: start over, ignoring (and replacing) a resume journal.
    public var fresh = false
    /// `--force-delete`: a sync deletes past `sync.max_delete`.
    public var forceDelete = false
    /// `--refresh-geocodes`: ask the geocoder again whatever the cache holds.
    public var refreshGeocodes = false
    /// `--create-fields`: columns the pipeline does not map become fields, and the mapped fields
    /// the map lacks are added to it before the first row is sent.
    public var createFields = false
    /// `--add-options`: values of select columns that are no option of their field are added
    /// as options (with `createFields`).
    public var addOptions = false
    /// `--backup FILE`: the map exported to FILE (`.csv`, else GeoJSON) before the run writes
    /// anything (a sync's deletions included).
    public var backup: String?
    /// `--state-dir`: where the state kept between runs goes (`StateDirectory`).
    public var stateDirectory: String?
    /// The run's id, written in its summary (`RunID.make()` when not given).
    public var runID: String?
    public init() {}
}
