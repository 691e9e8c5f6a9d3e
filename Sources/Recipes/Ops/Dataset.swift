import Pipeline

/// `dataset`: generates a task dataset (JSONL) from a built-in generator and the stage seed.
///
/// Each line is one `TaskExample` (`task`, `split`, `prompt`, `reasoning`, `answer`). The held-out
/// split is disjoint from train by construction (`Split.of(problem:)`), so an evaluation on it never
/// sees a training problem.
public struct DatasetOp: StageOperation {
  public init() {}

  public let name = "dataset"
  public let version = 1
  public let summary = "Generate a task dataset (JSONL) from a built-in generator and the seed"

  public let schema = OpSchema(
    parameters: [
      ParameterSpec("generator", .choice(["arithmetic"]), required: true,
                    doc: "Which task to generate"),
      ParameterSpec("count", .int, default: .int(1000), range: 1...1_000_000, doc: "Number of examples"),
      ParameterSpec("split", .choice(["train", "heldout"]), default: .string("train"),
                    doc: "Training examples or the held-out split no training stage sees"),
      ParameterSpec("difficulty", .record([
        ParameterSpec("digits", .int, default: .int(2), range: 1...9, doc: "Digits per operand"),
        ParameterSpec("operations", .int, default: .int(2), range: 1...8, doc: "Operations per problem"),
      ]), doc: "How hard the problems are"),
    ],
    outputs: [OutputSpec("dataset", kind: .dataset, doc: "JSONL, one example per line")])

  /// Answers are exact 64-bit integers: at most 18 digits can multiply together.
  public func validate(_ parameters: ParamValue) -> [ParameterProblem] {
    guard let digits = parameters[path: "difficulty.digits"].int,
          let operations = parameters[path: "difficulty.operations"].int,
          digits * (operations + 1) > ArithmeticTask.maximumResultDigits else { return [] }
    return [ParameterProblem(path: "difficulty",
                             "digits × (operations + 1) is \(digits * (operations + 1)); at most \(ArithmeticTask.maximumResultDigits) keeps every answer exact")]
  }

  public func run(_ context: StageContext) throws -> StageOutput {
    let p = context.parameters
    let count = p["count"].int!
    let split = Split(rawValue: p["split"].string!)!
    let task = ArithmeticTask(digits: p[path: "difficulty.digits"].int!,
                              operations: p[path: "difficulty.operations"].int!)
    var rng = TaskRandom(seed: context.seed, stream: "\(ArithmeticTask.name)/\(split.rawValue)")
    var text = ""
    var steps = 0
    for i in 1...count {
      if context.isCancelled { throw CancellationError() }
      let example = task.example(split: split, using: &rng)
      steps += example.reasoning.split(separator: "\n").count
      text += example.jsonLine + "\n"
      if i % 1000 == 0 || i == count { context.progress(step: i, of: count) }
    }
    context.log("generated \(count) \(split.rawValue) examples of \(ArithmeticTask.name)")
    return StageOutput(artifacts: ["dataset": Array(text.utf8)],
                       metrics: ["examples": Double(count), "mean_steps": Double(steps) / Double(count)])
  }
}
