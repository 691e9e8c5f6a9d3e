import Models
import Pipeline

/// What `multitask` and similar task-training ops share: checks, the loop and the before/after report.
enum TaskTraining {
  /// The settings of a task-training run that are not the mixture itself.
  struct Options {
    var train: TrainSettings
    /// Held-out examples per task for the before/after loss (0: no report).
    var heldoutExamples: Int
    var corpusShare: Double
    var datasetShare: Double = 0
    /// How the responses are written (the R-series' `sft` writes think/answer).
    var response = TaskFormat.Response.plain
    /// The share of task examples written with their worked steps (`TaskBatches.workedSteps`).
    var workedSteps = 1.0
  }

  static func problems(_ weights: [String: Double]) -> [ParameterProblem] {
    var problems: [ParameterProblem] = []
    if weights.isEmpty || weights.values.allSatisfy({ $0 <= 0 }) {
      problems.append(ParameterProblem(path: "tasks", "give at least one task a positive weight"))
    }
    if weights.values.contains(where: { $0 < 0 }) {
      problems.append(ParameterProblem(path: "tasks", "task weights cannot be negative"))
    }
    return problems
  }

  /// The training-split examples of the stage's `dataset:` inputs.
  static func datasets(_ context: StageContext) throws -> [TaskExample] {
    try context.inputs("dataset").flatMap { input in
      try TaskExamples.parse(try context.bytes(of: input), named: input.stage).filter { $0.split == .train }
    }
  }

  static func corpus(_ context: StageContext, tokenizer: TextTokenizer) throws -> TokenStream? {
    guard context.input("corpus") != nil || context.literal("corpus") != nil else { return nil }
    return TokenStream(documents: try CorpusText.documents(slot: "corpus", of: context), tokenizer: tokenizer)
  }

  /// Trains `start` on the mixture and reports held-out losses before and after.
  ///
  /// - Parameters:
  ///   - extraMetrics: adds the op's own metrics (and headline scalars) once training is done.
  ///   - objective: what each step minimises on the step's batch (default: next-token cross-entropy);
  ///     its per-step metrics become curves of the metrics artifact.
  static func run(_ context: StageContext, start: ModelArtifact, mixture: TaskMixture, options: Options, purpose: String,
                  extraMetrics: (inout MetricsArtifact, inout [String: Double]) -> Void = { _, _ in },
                  objective makeObjective: ((@escaping (Int) throws -> TrainingBatch) -> any TrainingObjective)? = nil) throws -> StageOutput {
    let train = options.train
    let model = start.model, tokenizer = start.tokenizer
    let maxTokens = min(train.sequence ?? model.config.contextLength, model.config.contextLength)
    let heldoutCount = options.heldoutExamples
    let heldout = mixture.names.indices.map {
      mixture.examples($0, count: heldoutCount, split: .heldout, seed: context.seed, stream: "\(purpose)/report")
    }
    let before = heldout.map {
      TaskLoss.mean(model, tokenizer: tokenizer, examples: $0, maxTokens: maxTokens, as: options.response)
    }

    let corpus = try corpus(context, tokenizer: tokenizer)
    if corpus == nil && options.corpusShare > 0 {
      throw StageFailure("corpus_share is \(options.corpusShare) but no corpus: is given")
    }
    var batches = TaskBatches(mixture: mixture, corpus: corpus,
                              corpusShare: options.corpusShare, tokenizer: tokenizer,
                              batch: train.batch, maxTokens: maxTokens, seed: context.seed, purpose: purpose)
    batches.datasets = try datasets(context)
    batches.datasetShare = options.datasetShare
    batches.response = options.response
    batches.workedSteps = options.workedSteps
    if !batches.datasets.isEmpty { context.log("\(batches.datasets.count) training examples from dataset stages") }
    let frozen = batches
    let batch: (Int) throws -> TrainingBatch = { frozen.batch($0) }
    let objective = makeObjective?(batch) ?? LanguageModelObjective(microBatches: train.microBatches, batch: batch)
    let loop = TrainingLoop(context: context, model: model, objective: objective, settings: train.optimizer, steps: train.steps)
    try loop.run()

    let after = heldout.map {
      TaskLoss.mean(model, tokenizer: tokenizer, examples: $0, maxTokens: maxTokens, as: options.response)
    }
    var metrics = MetricsArtifact()
    metrics.setCurve("loss", loop.losses)
    for (name, values) in loop.curves { metrics.setCurve(name, values.map { Float($0) }) }
    metrics.set("final_loss", Double(loop.finalLoss))
    var headline: [String: Double] = ["final_loss": Double(loop.finalLoss)]
    loop.recordExpertMetrics(into: &metrics, headline: &headline)
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

/// The settings of an op that trains on chat-format task batches (`sft`, `distill`): the mixture, how
/// responses are written, the dataset and corpus shares, the held-out report and `train:`. Declared
/// once here, so both ops read and validate them alike.
protocol ChatTrainingSettings: SettingsGroup {
  var tasks: [String: Double] { get set }
  var response: TaskFormat.Response { get set }
  var workedSteps: Double { get set }
  var datasetShare: Double { get set }
  var corpusShare: Double { get set }
  var world: Int { get set }
  var heldoutExamples: Int { get set }
  var train: TrainSettings { get set }
}

extension ChatTrainingSettings {
  /// `tasks`, `response`, `worked_steps`, `dataset_share`, `corpus_share`, `world`,
  /// `heldout_examples`, `train`, in that order.
  static func chatTrainingFields(tasksDoc: String) -> [SettingField<Self>] {
    [
      .taskWeights(\.tasks, doc: tasksDoc),
      .choice("response", \.response, doc: "How responses are written: <think>…</think><answer>…</answer>, or plain"),
      .float("worked_steps", \.workedSteps, range: 0...1,
             doc: "Share of task examples written with their worked steps; the others give the answer alone"),
      .float("dataset_share", \.datasetShare, range: 0...1, doc: "Share of rows taken from the dataset: stages"),
      .corpusShare(\.corpusShare),
      .world(\.world),
      .heldoutExamples(\.heldoutExamples),
      .group("train", \.train, doc: "Optimisation settings"),
    ]
  }

  /// The task mixture and the options of `TaskTraining.run`.
  ///
  /// - Throws: `StageFailure` when `dataset_share` asks for rows but no `dataset:` stage is given.
  func taskTraining(_ context: StageContext) throws -> (mixture: TaskMixture, options: TaskTraining.Options) {
    if datasetShare > 0 && context.inputs("dataset").isEmpty {
      throw StageFailure("dataset_share is \(datasetShare) but no dataset: stage is given")
    }
    var options = TaskTraining.Options(train: train, heldoutExamples: heldoutExamples, corpusShare: corpusShare,
                                       datasetShare: datasetShare)
    options.response = response
    options.workedSteps = workedSteps
    return (TaskMixture(weights: tasks, world: UInt64(world)), options)
  }
}
