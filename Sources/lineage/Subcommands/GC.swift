import ArgumentParser
import ArtifactStore
import Pipeline

/// `lineage gc`: delete what neither the current recipe nor the lockfile references.
struct GC: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "gc",
    abstract: "Delete cached results and blobs that no stage of the current recipe nor the lockfile references.")

  @OptionGroup var options: RecipeOptions

  @Flag(name: .long, help: "Show what would be deleted, delete nothing.")
  var dryRun = false

  @Flag(name: .long, help: "Fail at once if another run holds the store, instead of waiting.")
  var noWait = false

  func run() async throws {
    let recipe = try options.loadRecipe()
    let lockfile = try options.loadLockfile(recipe)
    let lock = dryRun ? nil : try options.lockStore(noWait: noWait)
    defer { withExtendedLifetime(lock) {} }
    let store = try options.openStore()
    var planner = Planner(recipe: recipe, lockfile: lockfile, cache: store)
    let current = try planner.status().compactMap(\.key)
    let keepActions = Set(current + lockfile.stages.values.map(\.key))
    let keepBlobs = Set(lockfile.stages.values.flatMap { $0.outputs.values.map(\.hash) })
    let report = try store.collectGarbage(keepingActions: keepActions, keepingBlobs: keepBlobs, dryRun: dryRun)
    Console.out(GC.describe(report, dryRun: dryRun))
  }

  static func describe(_ report: GCReport, dryRun: Bool) -> String {
    let verb = dryRun ? "would delete" : "deleted"
    return "\(verb) \(report.actionsDeleted) cached result\(report.actionsDeleted == 1 ? "" : "s") and "
      + "\(report.blobsDeleted) blob\(report.blobsDeleted == 1 ? "" : "s") (\(byteCount(report.bytesFreed))); "
      + "kept \(report.actionsKept) result\(report.actionsKept == 1 ? "" : "s") and \(report.blobsKept) blob\(report.blobsKept == 1 ? "" : "s")"
  }
}
