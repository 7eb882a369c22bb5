import ArgumentParser
import Foundation
import MapsembleImport
import Synchronization

/// Runs a pipeline for a command: Ctrl-C handling, progress, the closing line, the exit code.
struct PipelineRunner {
    let options: PipelineOptions
    let command: String

    func run() async throws {
        let console = Console(format: options.logFormat, quiet: options.quiet)
        let config: PipelineConfig
        do {
            config = try options.config()
        } catch let error as ImportError {
            console.fail(error)
            throw ExitCode(error.exitCode)
        }
        var runOptions = RunOptions()
        runOptions.output = options.output
        runOptions.outputBatches = options.outputBatches
        let pipeline = Pipeline(config: config, options: runOptions)
        let showProgress =
            !options.quiet
            && (options.progress == .always || (options.progress == .auto && isatty(2) == 1))
        let meter = showProgress ? ProgressMeter(totalBytes: inputSize(config.source.path)) : nil

        let report: (@Sendable (MapsembleImport.Progress) -> Void)? =
            if let meter { { meter.update($0) } } else { nil }
        let verbose = options.verbose && !options.quiet
        let task = Task {
            try await pipeline.run(progress: report, log: verbose ? { console.info($0) } : nil)
        }
        let interrupts = Interrupts { task.cancel() }
        defer { interrupts.stop() }
        let summary: RunSummary
        do {
            summary = try await task.value
        } catch let error as ImportError {
            meter?.clear()
            console.fail(error)
            throw ExitCode(error.exitCode)
        }
        meter?.clear()
        if let reason = summary.abortReason { console.fail(reason) }
        console.closing(summary, dryRun: true, reportDir: config.report.dir)
        throw ExitCode(summary.exitCode)
    }

    private func inputSize(_ path: String?) -> Int? {
        guard let path, path != "-" else { return nil }
        return (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
    }
}

/// Turns the first SIGINT/SIGTERM into cancellation of the run (reports still get written, exit
/// 130); a second one ends the process at once.
final class Interrupts: @unchecked Sendable {  // sources are only touched in init and stop()
    private let sources: [any DispatchSourceSignal]
    private final class Counter: Sendable { let value = Atomic<Int>(0) }

    init(onInterrupt: @escaping @Sendable () -> Void) {
        var sources: [any DispatchSourceSignal] = []
        let count = Counter()
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if count.value.add(1, ordering: .relaxed).newValue > 1 { Foundation.exit(130) }
                onInterrupt()
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    func stop() {
        for source in sources { source.cancel() }
    }
}
