/// What happens during a run, as values: the library emits them, the CLI turns them into text.
public enum RunEvent: Sendable {
  /// The run starts: how many stages will execute and how many come from the cache.
  case planned(execute: [String], restore: [String], upToDate: [String])
  case stageStarted(stage: String, reasons: [StaleReason])
  case stageProgress(stage: String, progress: StageProgress)
  case stageLog(stage: String, line: String)
  case stageResumed(stage: String, step: Int, total: Int)
  case stageRestored(stage: String)
  /// A stage ran to the end; `reports` names its outputs of kind `report`, which the CLI shows when
  /// the run ends (`Executor.Summary.reports(from:)`).
  case stageFinished(stage: String, seconds: Double, metrics: [String: Double], reports: [String])
  case stageFailed(stage: String, message: String)
  case stageSkipped(stage: String, failedDependency: String)
  case stageCancelled(stage: String)
}

/// A training stage's progress: step of total, named scalars (loss, tokens/s), elapsed seconds.
public struct StageProgress: Sendable, Equatable {
  public var step: Int
  public var total: Int
  public var scalars: [Scalar]
  public var elapsedSeconds: Double

  public struct Scalar: Sendable, Equatable {
    public var name: String
    public var value: Double
    public init(_ name: String, _ value: Double) {
      self.name = name
      self.value = value
    }
  }

  public init(step: Int, total: Int, scalars: [Scalar], elapsedSeconds: Double) {
    self.step = step
    self.total = total
    self.scalars = scalars
    self.elapsedSeconds = elapsedSeconds
  }

  /// Seconds left if the remaining steps go as fast as those done in this process.
  public func estimatedSecondsLeft(sinceStep firstStep: Int) -> Double? {
    let done = step - firstStep
    guard done > 0, total > step else { return total == step ? 0 : nil }
    return elapsedSeconds / Double(done) * Double(total - step)
  }
}

/// Where a run's events go. Implementations must be safe to call from several threads.
public protocol EventSink: Sendable {
  func emit(_ event: RunEvent)
}

/// Drops every event (tests, `--quiet`).
public struct NullEventSink: EventSink {
  public init() {}
  public func emit(_ event: RunEvent) {}
}
