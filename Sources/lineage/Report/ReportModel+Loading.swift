import ArtifactStore
import Foundation
import Pipeline

extension ReportModel {
  /// Gathers the report of a recipe: each stage's state from the planner (as `lineage status` sees
  /// it) and the store's last run record, and its metrics from its current result, or else from the
  /// lockfile's earlier result while the store still holds it (a stale stage keeps its curves, marked
  /// as earlier). Reads only; a metrics artifact that cannot be read is left out and named in
  /// `warnings`, so one damaged blob does not cost the whole page.
  static func load(recipe: Recipe, lockfile: Lockfile, store: Store, now: Double = Date().timeIntervalSince1970)
    throws -> (model: ReportModel, warnings: [String]) {
    var planner = Planner(recipe: recipe, lockfile: lockfile, cache: store)
    let statuses = Dictionary(uniqueKeysWithValues: try planner.status().map { ($0.stage, $0) })
    let lastRun = try store.read { try $0.runs() }.last
    let executed = Set(lastRun?.executed ?? []), failed = Set(lastRun?.failed ?? [])

    let graph = recipe.graph
    let order = graph.topologicalOrder()
    let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
    var warnings: [String] = []
    var stages: [StageSummary] = []
    for i in order {
      let stage = recipe.stages[i]
      let status = statuses[stage.name]
      let current = try status?.key.flatMap { try store.cachedResult(for: $0) }
      let entry = lockfile.stages[stage.name]
      let state = StageState.of(isCurrent: current != nil && status?.state != .stale, hasLockfileEntry: entry != nil,
                                executedInLastRun: executed.contains(stage.name), failedInLastRun: failed.contains(stage.name))
      var summary = StageSummary(
        name: stage.name, op: stage.op.name, doc: stage.doc,
        dependencies: graph.dependencies[i].compactMap { position[$0] }.sorted(), state: state,
        reasons: state == .cached || state == .ran ? [] : (status?.reasons.map(\.description) ?? []))
      summary.models = stage.inputs["models"]?.map(\.stage) ?? []

      // The current result's outputs, else the lockfile's earlier ones.
      let outputs = current?.outputs ?? entry?.outputs ?? [:]
      let headline = current?.metrics ?? entry?.metrics ?? [:]
      summary.metricsAreFromEarlierResult = current == nil && entry != nil
      do {
        if let ref = outputs.values.first(where: { $0.kind == "metrics" }), try store.hasBlob(ref.hash) {
          summary.metrics = try StageMetrics(json: try store.blob(ref.hash), headline: headline)
        } else if !headline.isEmpty {
          summary.metrics = StageMetrics(scalars: headline)
        }
      } catch {
        warnings.append("\(stage.name)'s metrics could not be read (\(error)); the report leaves them out")
      }
      // Only the columns' order comes from the table: when it cannot be read, they are sorted by name.
      if let ref = outputs["table"], ref.kind == "report", let bytes = try? store.blob(ref.hash) {
        summary.columnOrder = EvalTable.columns(inMarkdownTable: String(decoding: bytes, as: UTF8.self))
      }
      stages.append(summary)
    }
    let model = ReportModel(title: recipe.directory, stages: stages,
                            lastRun: lastRun.map { LastRun(id: $0.id, finishedAt: $0.finishedAt, command: $0.command) },
                            generatedAt: now)
    return (model, warnings)
  }
}
