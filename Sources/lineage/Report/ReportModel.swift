import Foundation

/// Everything `lineage report` draws, gathered from the recipe, the lockfile, the store and its last
/// run record (`ReportModel+Loading.swift`), so that the page can be rendered, and tested, from
/// values alone — synthetic metrics for ops that do not exist yet included.
struct ReportModel {
  /// The recipe folder, as the page's title.
  var title: String
  /// In topological order; `dependencies` index into this array.
  var stages: [StageSummary]
  var lastRun: LastRun?
  /// When the report was made, seconds since 1970 (the page says so; nothing else depends on it).
  var generatedAt: Double

  /// What the store's last run record says, for the page's header.
  struct LastRun {
    var id: Int
    var finishedAt: Double
    var command: String
  }
}

/// One stage as the report shows it.
struct StageSummary {
  var name: String
  var op: String
  var doc: String?
  var dependencies: [Int]
  var state: StageState
  /// Why the stage is stale, as `lineage status` words it; empty for cached stages.
  var reasons: [String]
  /// The stage's metrics artifact (and headline metrics), when a result of it is in the store.
  var metrics: StageMetrics?
  /// True when `metrics` belong to the lockfile's earlier result, not to the stage as defined now.
  var metricsAreFromEarlierResult = false
  /// For `eval` stages: the models compared, in the order the stage lists them (the table's rows).
  var models: [String] = []
  /// For `eval` stages: the table's columns in the order the eval printed them, when its table artifact
  /// is readable (the metrics artifact's keys are sorted, which would shuffle related columns apart).
  var columnOrder: [String] = []
}
