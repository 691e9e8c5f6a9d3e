import Models
import Pipeline

/// `multitask` (V2): continues a model on a weighted mixture of tasks, plus an optional share of
/// corpus text.
///
/// Reports each task's held-out loss before (the input model) and after, on held-out examples no
/// training stage sees.
public struct MultitaskOp: StageOperation {
  public init() {}

  public let name = "multitask"
  public let version = 1
  public let summary = "Continue a model on a weighted mixture of tasks (V2)"

  public let schema = OpSchema(
    parameters: [
      ParameterSpec("tasks", .map(keys: TaskSuite.names, values: .float), required: true,
                    doc: "Task → mixture weight, e.g. {translation: 0.4, qa: 0.3, summarization: 0.3}"),
      Specs.corpusShare,
      ParameterSpec("dataset_share", .float, default: .float(0.25), range: 0...1,
                    doc: "Share of rows taken from the dataset: stages, when given"),
      Specs.world,
      Specs.heldoutExamples,
      Specs.train(steps: 300, batch: 16, lr: 1e-3, warmup: 20),
    ],
    inputs: [
      InputSlot("from", kinds: [.model], doc: "The model to continue"),
      Specs.mixedCorpus,
      InputSlot("dataset", kinds: [.dataset], required: false, multiple: true,
                doc: "Dataset stages (e.g. your JSONL examples) mixed in at dataset_share"),
    ],
    outputs: [OutputSpec("model", kind: .model, doc: "The continued model"),
              OutputSpec("metrics", kind: .metrics, doc: "Loss curve and held-out loss per task, before and after")])

  public func validate(_ parameters: ParamValue) -> [ParameterProblem] {
    TaskTraining.problems(parameters)
  }

  public func run(_ context: StageContext) throws -> StageOutput {
    let p = context.parameters
    let start = try ModelArtifact.input("from", of: context)
    let mixture = TaskMixture(weights: TaskTraining.weights(p["tasks"]), world: UInt64(p["world"].int!))
    return try TaskTraining.run(context, start: start, mixture: mixture, purpose: "multitask")
  }
}

/// What `multitask` and similar task-training ops share: checks, the loop and the before/after report.
enum TaskTraining {
  static func problems(_ p: ParamValue) -> [ParameterProblem] {
    var problems: [ParameterProblem] = []
    let weights = weights(p["tasks"])
    if weights.isEmpty || weights.values.allSatisfy({ $0 <= 0 }) {
      problems.append(ParameterProblem(path: "tasks", "give at least one task a positive weight"))
    }
    if weights.values.contains(where: { $0 < 0 }) {
      problems.append(ParameterProblem(path: "tasks", "task weights cannot be negative"))
    }
    return problems
  }

  static func weights(_ tasks: ParamValue) -> [String: Double] {
    (tasks.map ?? [:]).compactMapValues { $0.double }
  }

  /// The training-split examples of the stage's `dataset:` inputs.
  static func datasets(_ context: StageContext) throws -> [TaskExample] {
    try context.inputs("dataset").flatMap { input in
      try TaskExamples.parse(try context.bytes(of: input), named: input.stage).filter { $0.split == .train }
    }
  }

  static func corpus(_ context: StageContext, tokenizer: TextTokenizer) throws -> TokenStream? {
    guard context.input("corpus") != nil || context.parameters["corpus"].string != nil else { return nil }
    return TokenStream(documents: try CorpusText.documents(slot: "corpus", of: context), tokenizer: tokenizer)
  }

  /// Trains `start` on the mixture and reports held-out losses before and after.
  ///
  /// - Parameters:
  ///   - extraMetrics: adds the op's own metrics (and headline scalars) once training is done.
  static func run(_ context: StageContext, start: ModelArtifact, mixture: TaskMixture, purpose: String,
                  extraMetrics: (inout MetricsArtifact, inout [String: Double]) -> Void = { _, _ in }) throws -> StageOutput {
    let p = context.parameters, train = p["train"]
    let model = start.model, tokenizer = start.tokenizer
    let maxTokens = min(train["sequence"].int ?? model.config.contextLength, model.config.contextLength)
    let heldoutCount = p["heldout_examples"].int ?? 0
    let heldout = mixture.names.indices.map {
      mixture.examples($0, count: heldoutCount, split: .heldout, seed: context.seed, stream: "\(purpose)/report")
    }
    let before = heldout.map { TaskLoss.mean(model, tokenizer: tokenizer, examples: $0, maxTokens: maxTokens) }

    let corpus = try corpus(context, tokenizer: tokenizer)
    if corpus == nil && (p["corpus_share"].double ?? 0) > 0 {
      throw StageFailure("corpus_share is \(p["corpus_share"].double!) but no corpus: is given")
    }
    var batches = TaskBatches(mixture: mixture, corpus: corpus,
                              corpusShare: p["corpus_share"].double ?? 0, tokenizer: tokenizer,
                              batch: train["batch"].int!, maxTokens: maxTokens, seed: context.seed, purpose: purpose)
    batches.datasets = try datasets(context)
    batches.datasetShare = p["dataset_share"].double ?? 0
    if !batches.datasets.isEmpty { context.log("\(batches.datasets.count) training examples from dataset stages") }
    let loop = TrainingLoop(context: context, model: model, settings: Specs.optimizer(train), steps: train["steps"].int!)
    try loop.run(batch: { batches.batch($0) })

    let after = heldout.map { TaskLoss.mean(model, tokenizer: tokenizer, examples: $0, maxTokens: maxTokens) }
    var metrics = MetricsArtifact()
    metrics.setCurve("loss", loop.losses)
    metrics.set("final_loss", Double(loop.finalLoss))
    var headline: [String: Double] = ["final_loss": Double(loop.finalLoss)]
    for (i, task) in mixture.names.enumerated() where heldoutCount > 0 {
      metrics.set("heldout_loss_before/\(task)", before[i])
      metrics.set("heldout_loss/\(task)", after[i])
      headline["heldout_loss/\(task)"] = after[i]
      context.log("\(task): held-out loss \(String(format: "%.4f", before[i])) → \(String(format: "%.4f", after[i]))")
    }
    extraMetrics(&metrics, &headline)
    return StageOutput(artifacts: ["model": ModelArtifact(model: model, tokenizer: tokenizer).bytes,
                                   "metrics": metrics.bytes],
                       metrics: headline)
  }
}
