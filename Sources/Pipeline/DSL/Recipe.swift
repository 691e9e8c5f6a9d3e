/// A validated recipe: every stage resolved against its op's schema, references checked, no cycles.
///
/// Made only by `RecipeLoader`; a `Recipe` value is always runnable.
public struct Recipe: Sendable {
  /// The recipe folder (absolute).
  public var directory: String
  /// Recipe-wide seed (`seed:` in recipe.yaml), used by stages that set none.
  public var seed: UInt64
  /// `remote:` in recipe.yaml, for push and pull.
  public var remote: String?
  /// `data_roots:` in recipe.yaml: absolute folders outside the recipe folder that `path` parameters
  /// were allowed to name (bundles still refuse them: such files cannot travel with the recipe).
  public var dataRoots: [String]
  /// `mpi:` in recipe.yaml: how stages with `ranks` are launched.
  public var mpi = MPISettings()
  /// The `--set` overrides it was loaded with (a stage's ranks load it again with the same ones).
  public var overrides: [String] = []
  /// Stages in definition order: files by name, stages in the order written.
  public var stages: [Stage]
  /// Matrix groups: base name → expanded stage names.
  public var groups: [String: [String]]
  public var graph: StageGraph

  public func stage(_ name: String) -> Stage? {
    graph.index[name].map { stages[$0] }
  }

  /// Stage names a user may give on the command line: a stage, or a matrix group (all its stages).
  public func resolveTargets(_ names: [String]) throws(RecipeError) -> [String] {
    var out: [String] = []
    var problems: [Diagnostic] = []
    for name in names {
      if graph.index[name] != nil {
        out.append(name)
      } else if let members = groups[name] {
        out += members
      } else {
        problems.append(Diagnostic(
          "no stage named '\(name)'\(Suggestion.phrase(for: name, among: stages.map(\.name)))", at: nil))
      }
    }
    guard problems.isEmpty else { throw RecipeError(problems) }
    return out
  }
}

/// One stage of a recipe, ready to plan and run.
public struct Stage: Sendable {
  public var name: String
  public var op: any StageOperation
  public var doc: String?
  /// Resolved parameters: a map with every schema parameter (defaults filled in), literal inputs
  /// (`tokenizer: bytes`) under their slot name.
  public var parameters: ParamValue
  /// Leaf path (`train.lr`) → where its value came from.
  public var origins: [String: ValueOrigin]
  /// Input slot → the outputs that fill it, in the order written.
  public var inputs: [String: [StageReference]]
  /// Dotted paths of `path` parameters, whose file contents belong to the stage's key.
  public var pathParameters: [String]
  public var seed: UInt64
  /// `ranks:`: the MPI processes the stage runs on (nil: one, or `lineage run --ranks`). Not part of the
  /// cache key: an op that accepts ranks gives the same bits on any number of them.
  public var ranks: Int?
  /// Where the stage's name is written.
  public var location: SourceLocation
  /// The matrix group a stage was expanded from, with its matrix values.
  public var matrixGroup: String?

  /// Stages this one reads from, without repetition, in slot order.
  public var dependencies: [String] {
    // Asked of every stage by the graph and the planner: the common shapes (no input, one) without
    // building the sorted, de-duplicated list.
    if inputs.isEmpty { return [] }
    if inputs.count == 1, let only = inputs.first?.value, only.count <= 1 { return only.map(\.stage) }
    var seen = Set<String>()
    return inputs.keys.sorted().flatMap { inputs[$0]! }.map(\.stage).filter { seen.insert($0).inserted }
  }
}

/// A reference to one output of a stage (`v1.model`).
public struct StageReference: Hashable, Sendable, CustomStringConvertible {
  public var stage: String
  public var output: String
  public var location: SourceLocation?

  public init(stage: String, output: String, location: SourceLocation? = nil) {
    self.stage = stage
    self.output = output
    self.location = location
  }

  public var description: String { "\(stage).\(output)" }

  public static func == (a: StageReference, b: StageReference) -> Bool {
    a.stage == b.stage && a.output == b.output
  }
  public func hash(into hasher: inout Hasher) {
    hasher.combine(stage)
    hasher.combine(output)
  }
}

/// `mpi:` in recipe.yaml: how `mpirun` starts the ranks of a stage that sets `ranks` (Open MPI).
public struct MPISettings: Sendable, Equatable {
  /// `hostfile:`: Open MPI's host file (absolute, or relative to the recipe folder); nil: this machine.
  public var hostfile: String?
  /// `oversubscribe:`: allow more ranks than a host has slots (cores).
  public var oversubscribe = false
  /// `arguments:`: further `mpirun` arguments, written before the program (e.g. `[--mca, btl, tcp,self]`).
  public var arguments: [String] = []
  /// `threads_per_rank:`: kernel threads in each rank; nil: this machine's cores divided by the ranks
  /// (at least 1) when there is no host file, else each rank's own default.
  public var threadsPerRank: Int?
  /// `stall_timeout:`: seconds without a progress or log line from rank 0 after which the stage is
  /// stopped as hung (a rank blocked on a peer that will never answer).
  public var stallTimeout = 600.0

  public init() {}
}
