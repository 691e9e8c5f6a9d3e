import ArgumentParser
import ArtifactStore
import Foundation
import Pipeline

/// `lineage status`: which stages would run, and why.
struct Status: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "status", 
    abstract: "Explain which stages are stale and why, and estimate what rerunning them costs.")

  @OptionGroup var options: RecipeOptions

  @Argument(help: "Stages to look at, with their ancestors (default: all).")
  var stages: [String] = []

  @Flag(name: .long, help: "Print JSON.")
  var json = false

  func run() async throws {
    let recipe = try options.loadRecipe()
    let targets: [String]
    do { targets = try recipe.resolveTargets(stages) } catch { throw ExitCode(Console.report(error)) }
    let store = try options.openStore()
    try Status.printPlan(recipe: recipe, lockfile: options.loadLockfile(recipe), store: store, targets: targets,
                         forced: [], json: json)
  }

  /// Prints each stage's state and reasons, and the estimated cost of the stale ones.
  static func printPlan(recipe: Recipe, lockfile: Lockfile, store: Store, targets: [String], forced: Set<String>,
                        json: Bool) throws {
    var planner = Planner(recipe: recipe, lockfile: lockfile, cache: store)
    let plan = try planner.status(targets: targets, forced: forced)
    let stale = plan.filter { $0.state == .stale }
    let known = stale.compactMap(\.lastDurationSeconds)
    let cost = known.reduce(0, +)
    if json {
      printJSON([
        "stages": plan.map { s -> [String: Any] in
          var entry: [String: Any] = ["stage": s.stage, "state": s.state.rawValue,
                                      "reasons": s.reasons.map(\.description)]
          if let key = s.key { entry["key"] = key.hex }
          if let d = s.lastDurationSeconds { entry["last_duration_seconds"] = d }
          return entry
        },
        "stale": stale.count,
        "estimated_seconds": cost,
        "stages_without_estimate": stale.count - known.count,
      ])
      return
    }
    let rows = plan.map { s -> [String] in
      switch s.state {
      case .upToDate: return [s.stage, "up to date", ""]
      case .restorable: return [s.stage, "cached", "restored from the store without running"]
      case .stale: return [s.stage, "stale", s.reasons.map(\.description).joined(separator: "; ")]
      }
    }
    Console.out(table(rows))
    guard !stale.isEmpty else {
      Console.out("Nothing to run.")
      return
    }
    var line = "\(stale.count) stage\(stale.count == 1 ? "" : "s") to run"
    if !known.isEmpty { line += ", about \(Console.duration(cost)) from their last recorded durations" }
    if known.count < stale.count { line += " (\(stale.count - known.count) never timed)" }
    Console.out(line + ".")
  }
}
