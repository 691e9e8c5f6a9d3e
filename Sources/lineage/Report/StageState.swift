/// Where a stage stands: the colour of its box in the graph.
enum StageState: String, CaseIterable {
  /// Executed by the store's last run, and still current.
  case ran
  /// Its current result is in the store; the last run restored it or did not need it.
  case cached
  /// It has an earlier result, but its definition or inputs changed since.
  case stale
  /// The last run tried it and it failed; it has no current result.
  case failed
  /// No result of it was ever recorded in the lockfile.
  case neverRun = "never-run"

  var label: String {
    switch self {
    case .ran: return "ran in the last run"
    case .cached: return "cached"
    case .stale: return "stale"
    case .failed: return "failed"
    case .neverRun: return "never run"
    }
  }

  /// The box's fill and border.
  var fill: String {
    switch self {
    case .ran: return "#d5f0df"
    case .cached: return "#dde8f6"
    case .stale: return "#fcebc6"
    case .failed: return "#f8d4d0"
    case .neverRun: return "#f1f1f3"
    }
  }

  var stroke: String {
    switch self {
    case .ran: return "#2f9e5f"
    case .cached: return "#4c7cc0"
    case .stale: return "#cc8a00"
    case .failed: return "#c23b2e"
    case .neverRun: return "#9a9aa3"
    }
  }

  /// The state of a stage from the planner's verdict and the store's last run: a current result is
  /// `ran` when that run executed it and `cached` otherwise; a stage that must run is `failed` when the
  /// last run failed it, `neverRun` when it has no lockfile entry, and `stale` otherwise.
  static func of(isCurrent: Bool, hasLockfileEntry: Bool, executedInLastRun: Bool, failedInLastRun: Bool) -> StageState {
    if isCurrent { return executedInLastRun ? .ran : .cached }
    if failedInLastRun { return .failed }
    return hasLockfileEntry ? .stale : .neverRun
  }
}
