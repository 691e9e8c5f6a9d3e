import Models
import Pipeline

/// `pretrain` (V1): trains a transformer LM from scratch on a corpus.
///
/// Each step draws `train.batch` windows of `train.sequence` tokens at random places in the corpus
/// (documents as `<s>…</s>`, one stream); the step's stream is seeded by the stage seed and the step, so
/// a resumed run draws exactly what an uninterrupted one would.
struct PretrainOp: MicroBatchedTraining {
  init() {}

  let name = "pretrain"
  let version = 1
  let summary = "Train a dense or MoE transformer from scratch on a corpus (V1)"

  struct Settings: SettingsGroup {
    var model = ModelSettings()
    var train = TrainSettings(steps: 500, batch: 16, lr: 3e-3, warmup: 50)
    static let fields: [SettingField<Self>] = [
      .group("model", \.model, doc: "The transformer's shape"),
      .group("train", \.train, doc: "Optimisation settings"),
    ]
  }

  let defaults = Settings()
  let inputs = [
    InputSlot("corpus", kinds: [.corpus], literals: [BuiltinCorpus.libraryName],
              doc: "The text: a corpus stage, or builtin:library at its default size"),
    InputSlot("tokenizer", kinds: [.tokenizer], required: false, literals: ["bytes"],
              doc: "A tokenizer stage, or bytes (the default)"),
  ]
  let outputs = [OutputSpec("model", kind: .model, doc: "Weights (safetensors) with config and tokenizer"),
                 OutputSpec("metrics", kind: .metrics, doc: "Loss curve, parameter counts, expert load")]

  func trainSettings(_ settings: Settings) -> TrainSettings { settings.train }

  func problems(in settings: Settings) -> [ParameterProblem] {
    var problems = settings.model.problems() + settings.train.problems()
    if let sequence = settings.train.sequence, sequence > settings.model.context {
      problems.append(ParameterProblem(path: "train.sequence", "train.sequence \(sequence) exceeds model.context \(settings.model.context)"))
    }
    return problems
  }

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    let tokenizer = try TextTokenizer.from(context)
    let config = settings.model.config(vocabulary: tokenizer.vocabularySize)
    let documents = try CorpusText.documents(slot: "corpus", of: context)
    let stream = TokenStream(documents: documents, tokenizer: tokenizer)
    guard stream.tokens.count > 1 else { throw StageFailure("the corpus holds no text") }
    context.log("corpus: \(documents.count) documents, \(stream.tokens.count) tokens; model: "
                + "\(config.parameterCount) parameters (\(config.activeParameterCount) active)")

    let model = TransformerLM(config: config, seed: context.seed)
    let train = settings.train
    let length = (train.sequence ?? config.contextLength) + 1
    let batch = train.batch
    let objective = LanguageModelObjective(microBatches: train.microBatches, batch: { step in
      var rng = TaskRandom(seed: context.seed, stream: "pretrain/step/\(step)")
      return TrainingBatch(tokens: stream.windows(batch, length: length, using: &rng), weights: nil)
    })
    let loop = TrainingLoop(context: context, model: model, objective: objective, settings: train.optimizer, steps: train.steps)
    try loop.run()

    var metrics = MetricsArtifact()
    metrics.setCurve("loss", loop.losses)
    metrics.set("final_loss", Double(loop.finalLoss))
    metrics.set("parameters", Double(config.parameterCount))
    metrics.set("active_parameters", Double(config.activeParameterCount))
    metrics.set("corpus_tokens", Double(stream.tokens.count))
    var headline: [String: Double] = ["final_loss": Double(loop.finalLoss), "parameters": Double(config.parameterCount)]
    loop.recordExpertMetrics(into: &metrics, headline: &headline)
    if let moe = config.moe {
      // Each expert's share of the routed tokens of one fixed batch, summed over layers.
      var rng = TaskRandom(seed: context.seed, stream: "pretrain/expert-load")
      _ = model.logits(stream.windows(batch, length: length - 1, using: &rng))
      var load = [Int](repeating: 0, count: moe.routedExperts)
      for layer in model.lastExpertLoad { for (e, n) in layer.enumerated() { load[e] += n } }
      let total = Double(max(1, load.reduce(0, +)))
      metrics["expert_load"] = .list(load.map { .float(Double($0) / total) })
      headline["expert_load_min"] = Double(load.min() ?? 0) / total
      headline["active_parameters"] = Double(config.activeParameterCount)
    }
    return StageOutput(artifacts: ["model": ModelArtifact(model: model, tokenizer: tokenizer).bytes,
                                   "metrics": metrics.bytes],
                       metrics: headline)
  }
}
