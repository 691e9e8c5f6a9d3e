import ArtifactStore

/// What changed between two lockfiles, stage by stage: parameters old → new, which outputs changed,
/// and every metric old → new — what `dvc params diff` and `dvc metrics diff` give together, for a
/// whole lineage.
public struct LockfileDiff: Sendable, Equatable {
  /// One stage that is in either lockfile and differs between them.
  public struct StageChange: Sendable, Equatable {
    public enum Kind: String, Sendable {
      /// Only in the new lockfile.
      case added
      /// Only in the old one.
      case removed
      /// In both, with some difference.
      case changed
    }

    /// A value in the old and the new lockfile (nil where it is absent).
    public struct Change<Value: Sendable & Equatable>: Sendable, Equatable {
      public var name: String
      public var old: Value?
      public var new: Value?
    }

    public var stage: String
    public var kind: Kind
    /// Leaf parameters whose value differs, by dotted path (`train.lr`), rendered as the lockfile shows them.
    public var parameters: [Change<String>]
    /// Outputs whose content hash differs (or that exist on one side only).
    public var outputs: [Change<String>]
    /// Metrics whose value differs.
    public var metrics: [Change<Double>]
    /// The op's version, when it moved.
    public var opVersion: Change<Int>?
  }

  /// The stages that differ, in name order.
  public var changes: [StageChange]
  /// Stages present in both lockfiles and identical in parameters, outputs and metrics.
  public var unchanged: Int

  public init(old: Lockfile, new: Lockfile) {
    var changes: [StageChange] = []
    var unchanged = 0
    for stage in Set(old.stages.keys).union(new.stages.keys).sorted() {
      let before = old.stages[stage], after = new.stages[stage]
      let kind: StageChange.Kind = before == nil ? .added : after == nil ? .removed : .changed
      let parameters = LockfileDiff.changes(
        before.map { LockfileDiff.leaves($0.parameters) } ?? [:], after.map { LockfileDiff.leaves($0.parameters) } ?? [:])
      let outputs = LockfileDiff.changes(before?.outputs.mapValues(\.hash.hex) ?? [:], after?.outputs.mapValues(\.hash.hex) ?? [:])
      let metrics = LockfileDiff.changes(before?.metrics ?? [:], after?.metrics ?? [:])
      var version: StageChange.Change<Int>?
      if let before, let after, before.opVersion != after.opVersion {
        version = .init(name: "op_version", old: before.opVersion, new: after.opVersion)
      }
      if kind == .changed && parameters.isEmpty && outputs.isEmpty && metrics.isEmpty && version == nil {
        unchanged += 1
        continue
      }
      changes.append(StageChange(stage: stage, kind: kind, parameters: parameters, outputs: outputs, metrics: metrics,
                                 opVersion: version))
    }
    self.changes = changes
    self.unchanged = unchanged
  }

  private static func leaves(_ parameters: ParamValue) -> [String: String] {
    Dictionary(parameters.flattened().map { ($0.path, $0.value.displayText) }, uniquingKeysWith: { first, _ in first })
  }

  private static func changes<Value: Equatable>(_ old: [String: Value], _ new: [String: Value]) -> [StageChange.Change<Value>] {
    Set(old.keys).union(new.keys).sorted().compactMap { name in
      old[name] == new[name] ? nil : StageChange.Change(name: name, old: old[name], new: new[name])
    }
  }
}
