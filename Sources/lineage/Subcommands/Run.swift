import ArgumentParser
import ArtifactStore
import Foundation
import Pipeline

/// `lineage run`: run the stages that changed, restore the rest.
struct Run: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "run", 
    abstract: "Run stages (and their ancestors) whose definition or inputs changed; restore the rest.")

  @OptionGroup var options: RecipeOptions

  @Argument(help: "Stages or matrix groups to run, with their ancestors (default: all).")
  var stages: [String] = []

  @Option(name: .shortAndLong, help: "How many independent stages may run at once.")
  var jobs: Int = 1

  @Option(name: .long, help: "Run this stage even if it is cached (repeatable).")
  var force: [String] = []

  @Flag(name: .long, help: "Print the plan and run nothing.")
  var dryRun = false

  @Flag(name: .shortAndLong, help: "Show every log line of running stages.")
  var verbose = false

  @Flag(name: .long, help: "Fail at once if another run holds the store, instead of waiting.")
  var noWait = false

  @Option(name: .long, help: "Seconds between the checkpoints of training stages (also saved on Ctrl-C).")
  var checkpointEvery: Double = 30

  @Option(name: .long, help: ArgumentHelp(
    "Run training stages that set no `ranks:` on N MPI processes (mpirun; results are the same bits on any N).",
    valueName: "N"))
  var ranks: Int = 1

  func run() async throws {
    Allocator.keepFreedMemory()
    let recipe = try options.loadRecipe()
    let targets: [String]
    let forced: [String]
    do {
      targets = try recipe.resolveTargets(stages)
      forced = try recipe.resolveTargets(force)
    } catch {
      throw ExitCode(Console.report(error))
    }
    guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
    guard (1...Ranks.maximum).contains(ranks), ranks & (ranks - 1) == 0 else {
      throw ValidationError("--ranks must be a power of two from 1 to \(Ranks.maximum)")
    }
    let lock = dryRun ? nil : try options.lockStore(noWait: noWait)
    defer { withExtendedLifetime(lock) {} }
    let store = try options.openStore()
    if dryRun {
      try Status.printPlan(recipe: recipe, lockfile: options.loadLockfile(recipe), store: store,
                           targets: targets, forced: Set(forced), json: false)
      return
    }
    let lockfile = try options.loadLockfile(recipe)  // a damaged lockfile stops the run before anything executes

    let control = RunControl()
    let interrupts = InterruptHandler(control: control)
    defer { interrupts.stop() }
    let printer = ProgressPrinter(terminal: Console.isTerminal, verbose: verbose)
    var executor = Executor(recipe: recipe, store: store, events: printer, jobs: jobs, forced: Set(forced),
                            control: control, commandLine: CommandLine.arguments.joined(separator: " "))
    executor.checkpointSeconds = max(0, checkpointEvery)
    executor.lockfile = lockfile
    executor.defaultRanks = ranks
    executor.workerExecutable = WorkerProgram.path
    let summary = try await executor.run(targets: targets)
    printReports(summary, store: store)

    var parts: [String] = []
    if !summary.executed.isEmpty { parts.append("\(summary.executed.count) ran") }
    if !summary.restored.isEmpty { parts.append("\(summary.restored.count) restored from cache") }
    parts.append("\(summary.upToDate.count) up to date")
    if !summary.failed.isEmpty { parts.append("\(summary.failed.count) failed: " + summary.failed.joined(separator: ", ")) }
    if !summary.skipped.isEmpty { parts.append("\(summary.skipped.count) skipped") }
    if !summary.cancelled.isEmpty { parts.append("\(summary.cancelled.count) interrupted") }
    let memory = PeakMemory.bytes.map { ", peak memory \(byteCount($0))" } ?? ""
    Console.error(parts.joined(separator: ", ") + " (\(Console.duration(summary.seconds))\(memory))")
    if !summary.cancelled.isEmpty || control.isCancelled { throw ExitCode(ExitStatus.interrupted) }
    if !summary.failed.isEmpty { throw ExitCode(ExitStatus.stageFailed) }
  }
}

extension Run {
  /// Prints the report of every stage that ran (the eval table), whole, under a heading naming the
  /// stage and output, on standard output: it is the run's result, not its progress.
  func printReports(_ summary: Executor.Summary, store: Store) {
    let reports: [StageReport]
    do {
      reports = try summary.reports(from: store)
    } catch {
      Console.error("error: cannot read a stage's report: \(error) (`lineage fsck` checks the store)")
      return
    }
    for report in reports {
      var text = report.text
      if text.hasSuffix("\n") { text.removeLast() }
      Console.out("== \(report.stage): \(report.output) ==\n\(text)\n")
    }
  }
}

/// Ctrl-C asks running stages to checkpoint and stop; a second Ctrl-C exits at once.
final class InterruptHandler: @unchecked Sendable {  // the sources are only touched on `queue`
  private let queue = DispatchQueue(label: "lineage.signals")
  private var sources: [DispatchSourceSignal] = []

  init(control: RunControl) {
    for sig in [SIGINT, SIGTERM] {
      signal(sig, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
      var count = 0
      source.setEventHandler {
        count += 1
        if count > 1 {
          RunningJobs.shared.terminateAll()  // a stage's MPI ranks run in a group of their own
          _exit(ExitStatus.interrupted)
        }
        Console.error("interrupting: running stages save a checkpoint and stop (Ctrl-C again to quit at once)")
        control.cancel()
      }
      source.resume()
      sources.append(source)
    }
  }

  func stop() {
    queue.sync {
      for source in sources { source.cancel() }
    }
    signal(SIGINT, SIG_DFL)
    signal(SIGTERM, SIG_DFL)
  }
}

/// This program's own path, for `mpirun` to start as the ranks of a stage.
enum WorkerProgram {
  static var path: String? {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? Bundle.main.executablePath
  }
}
