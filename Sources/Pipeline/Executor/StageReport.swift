import ArtifactStore

/// Text a stage wrote for people to read (an output of kind `report`, like the eval table), to show
/// when the run ends rather than bury in a log line.
public struct StageReport: Sendable, Equatable {
  public var stage: String
  /// The output's name in the op's schema (`table`).
  public var output: String
  /// The report's bytes as UTF-8 text (invalid sequences shown as U+FFFD).
  public var text: String
}

extension Executor.Summary {
  /// The reports of the stages this run executed, in the summary's order (dependencies first), each
  /// stage's outputs by name.
  ///
  /// Restored and up-to-date stages are left out: their reports were shown when they ran, and the
  /// store keeps them.
  ///
  /// - Throws: store errors reading a report (a corrupt blob is named, not skipped).
  public func reports(from store: Store) throws -> [StageReport] {
    var out: [StageReport] = []
    for stage in order {
      guard case .executed(let record)? = outcomes[stage] else { continue }
      for (output, ref) in record.outputs.sorted(by: { $0.key < $1.key }) where ref.kind == ArtifactKind.report.rawValue {
        out.append(StageReport(stage: stage, output: output, text: String(decoding: try store.blob(ref.hash), as: UTF8.self)))
      }
    }
    return out
  }
}
