import ArgumentParser
import Foundation
import Tensors

/// `lineage`: define, run and share model-training lineages.
@main
struct LineageCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "lineage",
    abstract: "Define, run and share model-training lineages.",
    discussion: """
      A recipe is a folder of YAML stage files (default: Stages/). `lineage run` runs the stages whose \
      definition or inputs changed and restores the rest from the content-addressed store in .lineage/.
      Exit status: 0 success, 1 a stage failed, 2 the recipe is invalid, 130 interrupted.
      """,
    subcommands: [Run.self, Status.self, Dag.self, Show.self, Diff.self, Checkout.self, Export.self, Generate.self, Metrics.self, Report.self, Ops.self, GC.self, Fsck.self, Verify.self, Push.self, Pull.self,
                  BundleCommand.self, Bench.self, Worker.self])

  /// ArgumentParser's own entry point, after the allocator setting that must precede every thread.
  static func main() async {
    StartupReport.markMain()
    Allocator.shareOneArena()
    var failure: Error?
    do {
      var command = try parseAsRoot()
      if var asyncCommand = command as? AsyncParsableCommand {
        try await asyncCommand.run()
      } else {
        try command.run()
      }
    } catch {
      failure = error
    }
    ThreadReport.writeIfAsked()
    if let failure { exit(withError: failure) }
  }
}

/// With `LINEAGE_STARTUP_REPORT=1` in the environment, `lineage` prints to standard error the moment
/// `main` began (CLOCK_MONOTONIC, nanoseconds), first of all. `lineage bench pipeline` divides a
/// command's start-up with it: before `main` is exec, the dynamic loader and the runtimes' set-up;
/// after it is Lineage's own work.
enum StartupReport {
  static let variable = "LINEAGE_STARTUP_REPORT"
  static let prefix = "startup report: main at "

  static func markMain() {
    guard let value = getenv(variable), String(cString: value) == "1" else { return }
    Console.error(prefix + "\(now()) ns")
  }

  /// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine.
  static func now() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
  }
}

/// With `LINEAGE_THREAD_REPORT=1` in the environment, `lineage` ends by printing to standard error
/// whether the kernels' helper threads were started and how many threads the process has.
///
/// A command that computes nothing (`ops`, `--help`, `status`, a run with nothing to do) must start
/// none (`KernelThreads`); the CLI tests check that through this line, on the real binary.
enum ThreadReport {
  static let variable = "LINEAGE_THREAD_REPORT"

  static func writeIfAsked() {
    guard ProcessInfo.processInfo.environment[variable] == "1" else { return }
    let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
    Console.error("thread report: kernel helpers started: \(KernelThreads.isStarted), "
                  + "OpenBLAS helpers: \(KernelThreads.openBLASHelperCount), threads now: \(threads)")
  }
}

/// Options every command that reads a recipe shares.
struct RecipeOptions: ParsableArguments {
  @Option(name: .long, help: "The recipe folder.")
  var recipe: String = "Stages"

  @Option(name: .long, help: "The store folder (default: RECIPE/.lineage).")
  var store: String?

  @Option(name: .customLong("set"), help: ArgumentHelp(
    "Override a parameter: stage.key.sub=value (repeatable).", valueName: "stage.key=value"))
  var overrides: [String] = []

  var storePath: String { store ?? (recipe + "/.lineage") }
}

/// How the process ends: the documented exit statuses.
enum ExitStatus {
  static let stageFailed: Int32 = 1
  static let invalidRecipe: Int32 = 2
  static let interrupted: Int32 = 130
}
