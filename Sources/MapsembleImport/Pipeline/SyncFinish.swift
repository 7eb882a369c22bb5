import Foundation

extension Pipeline {
    /// The end of a sync: the map's features whose remote id no row of the file named are
    /// deleted, unless that is more than `sync.max_delete` (then nothing is, without
    /// `--force-delete`), or a rejected row's remote id could not be read. A dry run says what
    /// would be deleted.
    func finishSync(
        _ reconciler: MapReconciler, sink: any BatchSink, dryRun: Bool, log: (@Sendable (RunEvent) -> Void)?
    ) async throws {
        let diff = reconciler.diff
        func ids(_ list: [String]) -> String {
            list.prefix(10).joined(separator: ", ") + (list.count > 10 ? ", … (\(list.count - 10) more)" : "")
        }
        log?(
            RunEvent(
                .notice,
                "\(dryRun ? "would " : "")\(config.mode == .sync ? "sync" : "update"): \(diff.create.count) to create, \(diff.update.count) to update, \(diff.unchanged) unchanged"
                    + (config.mode == .sync ? ", \(diff.delete.count) to delete" : ""),
                event: "diff",
                fields: [
                    "create": .int(diff.create.count), "update": .int(diff.update.count),
                    "unchanged": .int(diff.unchanged),
                    "delete": .int(diff.delete.count),
                ]))
        if !diff.create.isEmpty { log?(RunEvent(.detail, "to create: \(ids(diff.create))", event: "diff")) }
        if !diff.update.isEmpty { log?(RunEvent(.detail, "to update: \(ids(diff.update))", event: "diff")) }
        guard config.mode == .sync, !diff.delete.isEmpty else { return }
        log?(RunEvent(.notice, "not in the file, to delete: \(ids(diff.delete))", event: "diff"))
        let listed = reconciler.listing.entries.count
        let unidentified = reconciler.unidentifiedRejections
        if unidentified > 0 && !options.forceDelete {
            throw ImportError(
                .uploadAborted,
                "\(unidentified) rejected rows could not be read far enough to know their remote id, so the sync deletes nothing (such a row may name a feature to keep); fix them (see the rejected rows report) or pass --force-delete"
            )
        }
        if config.sync.maxDelete.isExceeded(by: diff.delete.count, of: listed) && !options.forceDelete {
            let share = listed > 0 ? Double(diff.delete.count) * 100 / Double(listed) : 100
            let message =
                "the sync would delete \(diff.delete.count) of the map's \(listed) features (\(String(format: "%.1f", share)) %), more than sync.max_delete allows (\(config.sync.maxDelete.text))"
            if dryRun {
                log?(RunEvent(.notice, message + "; a run would refuse without --force-delete"))
                return
            }
            throw ImportError(
                .uploadAborted,
                message + "; nothing was deleted. If the file is complete, run again with --force-delete")
        }
        guard !dryRun else { return }
        let deleted = try await sink.delete(
            remoteIDs: diff.delete, remoteField: reconciler.remoteField, batchSize: config.upload.batchSize)
        log?(
            RunEvent(
                .detail, "deleted \(deleted) features no longer in the file", event: "delete",
                fields: ["deleted": .int(deleted)]))
    }
}
