/// Why a stage must run again; `lineage status` prints each as is.
public enum StaleReason: Equatable, Sendable, CustomStringConvertible {
  case neverRun
  case parameterChanged(path: String, old: String, new: String)
  /// An input artifact's content differs from the one the last run used.
  case inputChanged(stage: String, output: String)
  /// A stage this one reads from must run first; its new output may or may not differ.
  case upstreamWillRerun(stage: String)
  case fileChanged(parameter: String, path: String)
  case opVersionChanged(op: String, old: Int, new: Int)
  case opChanged(old: String, new: String)
  case seedChanged(old: UInt64, new: UInt64)
  /// The cached result's artifacts are gone from the store (collected, or found corrupt).
  case outputsMissing
  case forced
  /// The key differs and no single change explains it (e.g. the lockfile was edited by hand).
  case definitionChanged

  public var description: String {
    switch self {
    case .neverRun: return "never run"
    case .parameterChanged(let path, let old, let new): return "params.\(path) \(old) → \(new)"
    case .inputChanged(let stage, let output): return "input \(stage).\(output) changed"
    case .upstreamWillRerun(let stage): return "upstream \(stage) reruns first"
    case .fileChanged(let parameter, let path): return "file \(path) (\(parameter)) changed"
    case .opVersionChanged(let op, let old, let new): return "op \(op) version \(old) → \(new)"
    case .opChanged(let old, let new): return "op \(old) → \(new)"
    case .seedChanged(let old, let new): return "seed \(old) → \(new)"
    case .outputsMissing: return "its locked result is not in this store"
    case .forced: return "forced"
    case .definitionChanged: return "definition changed"
    }
  }
}
