import ArtifactStore

/// Something a stage can name with `op:` — pretrain, rl, distill, dataset, tokenizer, ….
///
/// An op declares its schema (validated before anything runs) and a version: bump `version` whenever
/// a change to `run` can change its outputs, so that `lineage status` says "op X version 2 → 3" and every
/// stage of that op reruns. `run` is synchronous and may take hours: it reports progress, checks
/// `context.isCancelled` between steps and saves checkpoints through the context. It runs on a thread of
/// its own, never on the executor's.
public protocol StageOperation: Sendable {
  var name: String { get }
  var version: Int { get }
  /// One line for `lineage ops`.
  var summary: String { get }
  var schema: OpSchema { get }

  /// Checks that span several parameters (the schema checks each alone). Problems name a parameter
  /// path (`model.heads`) so the loader can point at its place in the stage file.
  func validate(_ parameters: ParamValue) -> [ParameterProblem]

  /// `validate(_:)` knowing which input slots the stage fills (with a reference or a literal): for a
  /// check that ties a parameter to an optional input (`labeler: ai` needs `judge:`), which would
  /// otherwise surface only when the stage runs, without a place in the stage file.
  func validate(_ parameters: ParamValue, filledSlots: Set<String>) -> [ParameterProblem]

  /// Computes the stage's outputs from its inputs and parameters.
  ///
  /// - Returns: bytes for every output the schema declares, and headline metrics.
  /// - Throws: `StageFailure` (or any error) to fail the stage; `CancellationError` when cancelled.
  func run(_ context: StageContext) throws -> StageOutput

  /// Why `ranks` processes cannot share this stage's work with these parameters, or nil when they can
  /// (`ranks: N`, `lineage run --ranks N`). By default an op runs on one process only.
  func rankProblem(ranks: Int, parameters: ParamValue) -> String?

  /// Whether the op can split its work over ranks at all: `lineage run --ranks N` applies to these ops'
  /// stages only (and says so when a stage's settings cannot be split N ways).
  var splitsOverRanks: Bool { get }
}

extension StageOperation {
  public func validate(_ parameters: ParamValue) -> [ParameterProblem] { [] }

  public func validate(_ parameters: ParamValue, filledSlots: Set<String>) -> [ParameterProblem] {
    validate(parameters)
  }

  public func rankProblem(ranks: Int, parameters: ParamValue) -> String? {
    ranks == 1 ? nil : "op \(name) runs on one process; only training ops split their work over ranks"
  }

  public var splitsOverRanks: Bool { false }
}

/// A cross-parameter problem an op found in its parameters.
public struct ParameterProblem: Equatable, Sendable {
  /// Dotted path of the parameter to point at (`model.heads`).
  public var path: String
  public var message: String
  public init(path: String, _ message: String) {
    self.path = path
    self.message = message
  }
}

/// What a successful stage produced.
public struct StageOutput: Sendable {
  /// Output name (as in the schema) → bytes.
  public var artifacts: [String: [UInt8]]
  /// Headline scalars for the lockfile, `lineage metrics` and `status`.
  public var metrics: [String: Double]

  public init(artifacts: [String: [UInt8]], metrics: [String: Double] = [:]) {
    self.artifacts = artifacts
    self.metrics = metrics
  }
}

/// A stage failed for a reason its op can explain.
public struct StageFailure: Error, Sendable, CustomStringConvertible {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// The ops a recipe may name, frozen when the program starts.
public struct OperationRegistry: Sendable {
  private let ops: [String: any StageOperation]

  public init(_ operations: [any StageOperation]) {
    var table: [String: any StageOperation] = [:]
    for op in operations {
      precondition(table[op.name] == nil, "two ops named \(op.name)")
      table[op.name] = op
    }
    ops = table
  }

  public subscript(name: String) -> (any StageOperation)? { ops[name] }
  /// Every op, by name.
  public var all: [any StageOperation] { ops.keys.sorted().map { ops[$0]! } }
  public var names: [String] { ops.keys.sorted() }
}
