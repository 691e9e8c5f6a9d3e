import ArgumentParser
import ArtifactStore
import Foundation
import Pipeline

/// `lineage verify`: recompute stages in a scratch store and compare every output with `lineage.lock`.
struct Verify: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "verify", 
    abstract: "Rerun stages in a scratch store and compare every output hash with lineage.lock.",
    discussion: """
      With stage names, only those stages rerun: their inputs come from the lockfile's results in the \
      store (a missing one is recomputed too). Without names, every stage of the lockfile reruns from \
      nothing. Exit status 1 when any output differs or a stage fails.
      """)

  @OptionGroup var options: RecipeOptions

  @Argument(help: "Stages or matrix groups to verify (default: all).")
  var stages: [String] = []

  @Flag(name: .shortAndLong, help: "Show every log line of running stages.")
  var verbose = false

  @Option(name: .long, help: ArgumentHelp(
    "Recompute training stages that set no `ranks:` on N MPI processes: the hashes must still match.", valueName: "N"))
  var ranks: Int = 1

  func run() async throws {
    guard (1...Ranks.maximum).contains(ranks), ranks & (ranks - 1) == 0 else {
      throw ValidationError("--ranks must be a power of two from 1 to \(Ranks.maximum)")
    }
    Allocator.keepFreedMemory()
    let recipe = try options.loadRecipe()
    let lock = try options.loadLockfile(recipe)
    let targets: [String]
    do {
      targets = stages.isEmpty ? recipe.stages.map(\.name) : try recipe.resolveTargets(stages)
    } catch {
      throw ExitCode(Console.report(error))
    }
    let checked = targets.filter { lock.stages[$0] != nil }
    guard !checked.isEmpty else {
      Console.error("error: lineage.lock records none of these stages; run them first")
      throw ExitCode.failure
    }

    let scratchPath = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-verify-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: scratchPath) }
    let scratch: Store
    do {
      scratch = try Store(path: scratchPath)
      if !stages.isEmpty { try seedInputs(of: checked, recipe: recipe, lock: lock, into: scratch) }
    } catch {
      Console.error("error: cannot prepare a scratch store: \(error)")
      throw ExitCode.failure
    }

    let control = RunControl()
    let interrupts = InterruptHandler(control: control)
    defer { interrupts.stop() }
    var executor = Executor(recipe: recipe, store: scratch, events: ProgressPrinter(terminal: Console.isTerminal, verbose: verbose),
                            forced: Set(checked), control: control, commandLine: CommandLine.arguments.joined(separator: " "))
    executor.writesLockfile = false
    executor.defaultRanks = ranks
    executor.workerExecutable = WorkerProgram.path
    let summary = try await executor.run(targets: checked)
    if control.isCancelled { throw ExitCode(ExitStatus.interrupted) }

    var rows: [[String]] = []
    var mismatches = 0
    for name in checked {
      guard let locked = lock.stages[name] else { continue }
      guard let record = summary.outcomes[name]?.record else {
        rows.append([name, "-", "-", "-", "did not run"])
        mismatches += 1
        continue
      }
      for output in locked.outputs.keys.sorted() {
        let expected = locked.outputs[output]!.hash, got = record.outputs[output]?.hash
        let same = got == expected
        if !same { mismatches += 1 }
        rows.append([name, output, String(expected.hex.prefix(12)), got.map { String($0.hex.prefix(12)) } ?? "-",
                     same ? "ok" : "MISMATCH"])
      }
    }
    Console.out(table(rows, header: ["stage", "output", "lineage.lock", "recomputed", ""]))
    if mismatches > 0 {
      Console.error("\(mismatches) output\(mismatches == 1 ? "" : "s") differ from lineage.lock")
      throw ExitCode.failure
    }
    Console.error("every output of \(checked.count) stage\(checked.count == 1 ? "" : "s") matches lineage.lock")
  }

  /// Copies the lockfile's results of the stages the targets depend on (but not the targets) from the
  /// recipe's store into the scratch store, so that only the targets rerun.
  private func seedInputs(of targets: [String], recipe: Recipe, lock: Lockfile, into scratch: Store) throws {
    let graph = recipe.graph
    let targetSet = Set(targets)
    let closure = graph.closure(of: targets.compactMap { graph.index[$0] })
    let store = try options.openStore()
    for i in closure where !targetSet.contains(recipe.stages[i].name) {
      guard let entry = lock.stages[recipe.stages[i].name],
            let record = try store.action(for: entry.key) else { continue }
      let blobs = try record.outputs.values.map { ($0.hash, try store.blob($0.hash)) }
      try scratch.write { txn in
        for (hash, bytes) in blobs { try txn.putBlob(bytes, hash: hash) }
        try txn.putAction(record)
      }
    }
  }
}
