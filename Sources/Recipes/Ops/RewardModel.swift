import Foundation
import Models
import Pipeline
import Tensors

/// `reward_model`: a Bradley–Terry reward model (InstructGPT's RLHF reward model; with `labeler: ai`,
/// RLAIF) trained on preference pairs of a policy's own responses.
///
/// 1. For each of `pairs` training prompts (and `heldout_pairs` held-out ones) drawn from the task
///    mixture, the `policy:` model samples two responses (`temperature`, `max_new_tokens`, seeded).
/// 2. A labeler says which response it prefers. `labeler: human` is the rule-based stand-in for
///    annotators (`HumanRater`: non-toxic, correct, well-formed, same language, shorter, in that
///    order, flipped with probability `noise`); each pair it looks at is one human label, and it stops
///    after `budget` of them on the training pairs (the held-out pairs, which measure the result, are
///    labelled in full and counted apart, `human_labels_heldout`). `labeler: ai` is AI feedback (`AIFeedback`): the `judge:` model answers
///    each prompt greedily, a response agreeing with it wins, and recomputed reasoning steps decide
///    the rest, at zero human labels. Pairs the labeler cannot decide are skipped and counted.
/// 3. The model of `from:` gets a scalar value head (if it has none; it starts at 0, so every pair
///    starts at P = ½) and learns −log σ(s⁺ − s⁻) on the value head's score of prompt + response
///    (`BradleyTerryObjective`, `RewardModelScorer`).
///
/// `trains: all` (the default) updates the transformer and the value head, as InstructGPT fine-tunes
/// its whole reward model: the features that tell a right sum from a wrong one are not in a small
/// language model's final hidden state until it learns them. `trains: value_head` fits only the head
/// on the frozen model (a linear probe: cheaper, and enough when the preference shows on the surface,
/// such as length or a blocked word). The LM head is never trained: the score does not read it.
///
/// The metrics hold the loss curve, the pairwise accuracy on the held-out pairs against the labeler's
/// labels and, separately, against the noise-free human rule (the accuracy that matters, which a
/// noisy or mistaken labeler cannot show), each with its binomial standard error, how often the
/// training labels agree with that rule, and the labels used: `human_labels`, `pairs_labelled`,
/// `ties_skipped`, `pairs_over_budget`.
struct RewardModelOp: TypedOperation {
  let name = "reward_model"
  let version = 1
  let summary = "Bradley–Terry reward model on preference pairs of a policy's responses (RLHF / RLAIF)"

  /// What the preference loss updates (`trains:`).
  enum Trained: String, SettingChoice {
    case all
    case valueHead = "value_head"

    var selection: ParameterSelection {
      switch self {
      case .all: return .allExcept([.lmHead])
      case .valueHead: return .only([.valueHead])
      }
    }
  }

  struct Settings: SettingsGroup {
    var tasks: [String: Double] = [:]
    var labeler = PreferenceLabeler.Kind.human
    var pairs = 256
    var heldoutPairs = 64
    var budget: Int?
    var noise = 0.0
    var temperature = 1.0
    var maxNewTokens = 64
    var trains = Trained.all
    var blockList: String?
    var world = Int(BuiltinCorpus.defaultWorld)
    var train = RewardModelTrainSettings()
    static let fields: [SettingField<Self>] = [
      .taskWeights(\.tasks, doc: "Task → share of the prompts"),
      .choice("labeler", \.labeler, doc: "human: the rule-based rater (one human label per pair); ai: the judge: model's answer and step checks"),
      .int("pairs", \.pairs, range: 1...1_000_000, doc: "Training prompts, one pair of responses each"),
      .int("heldout_pairs", \.heldoutPairs, range: 0...100_000,
           doc: "Held-out prompts, one pair each, for the pairwise accuracy (0: none)"),
      .int("budget", \.budget, range: 0...10_000_000,
           doc: "labeler human: most human labels of training pairs; later pairs stay unlabelled (default: no limit)"),
      .float("noise", \.noise, range: 0...1, doc: "labeler human: probability the rater flips a label"),
      .float("temperature", \.temperature, range: 0.01...5, doc: "Sampling temperature of the policy's responses"),
      .int("max_new_tokens", \.maxNewTokens, range: 1...65_536, doc: "Longest response (and judge answer)"),
      .choice("trains", \.trains, doc: "all: transformer and value head; value_head: the head on the frozen model"),
      .blockList(\.blockList),
      .world(\.world),
      .group("train", \.train, doc: "Optimisation settings"),
    ]
  }

  let defaults = Settings()
  let inputs = [
    InputSlot("from", kinds: [.model], doc: "The model the reward model starts from (given a value head if it has none)"),
    InputSlot("policy", kinds: [.model], doc: "The model whose responses are compared"),
    InputSlot("judge", kinds: [.model], required: false, doc: "labeler ai: the model that re-derives each answer"),
  ]
  let outputs = [OutputSpec("model", kind: .model, doc: "The reward model (a model with a scalar value head)"),
                 OutputSpec("metrics", kind: .metrics, doc: "Loss, held-out pairwise accuracy, labels used")]

  func problems(in settings: Settings) -> [ParameterProblem] {
    TaskTraining.problems(settings.tasks) + settings.train.microBatching.problems
  }

  var splitsOverRanks: Bool { true }

  func rankProblem(ranks: Int, settings: Settings) -> String? { settings.train.microBatching.rankProblem(ranks: ranks) }

  func problems(in settings: Settings, filledSlots: Set<String>) -> [ParameterProblem] {
    var problems = problems(in: settings)
    if settings.labeler == .ai && !filledSlots.contains("judge") {
      problems.append(ParameterProblem(path: "labeler", "labeler: ai needs 'judge:' naming the model stage that judges"))
    }
    return problems
  }

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    let start = try ModelArtifact.input("from", of: context)
    let policy = try ModelArtifact.input("policy", of: context)
    var judge: ModelArtifact?
    switch settings.labeler {
    case .ai:
      judge = try ModelArtifact.input("judge", of: context)
      if settings.budget != nil || settings.noise > 0 { context.log("budget and noise are the human rater's: labeler ai ignores them") }
    case .human: if context.input("judge") != nil { context.log("judge: is not read with labeler: human") }
    }
    for (slot, artifact) in [("policy", policy), ("judge", judge)] {
      guard let artifact, settings.maxNewTokens >= artifact.model.config.contextLength else { continue }
      throw StageFailure("max_new_tokens \(settings.maxNewTokens) leaves no room for a prompt in the \(slot) model's context of \(artifact.model.config.contextLength)")
    }
    let mixture = TaskMixture(weights: settings.tasks, world: UInt64(settings.world))
    let rule = HumanRater(blockList: try BlockList.named(settings.blockList, in: context), noise: 0)
    var rater = rule
    rater.noise = settings.noise
    let labeler: PreferenceLabeler = settings.labeler == .human ? .human(rater) : .ai(AIFeedback())

    // Prompts, their response pairs, the judge's answers, the labels.
    let trainPrompts = Self.prompts(mixture, count: settings.pairs, split: .train, seed: context.seed,
                                    stream: "reward_model/prompts")
    let heldoutPrompts = Self.prompts(mixture, count: settings.heldoutPairs, split: .heldout, seed: context.seed,
                                      stream: "reward_model/heldout")
    let sampling = SamplingSettings(temperature: Float(settings.temperature), maxNewTokens: settings.maxNewTokens)
    let trainPairs = try Self.responsePairs(policy, trainPrompts, sampling: sampling, seed: context.seed, substream: 0, context)
    let heldoutPairs = try Self.responsePairs(policy, heldoutPrompts, sampling: sampling, seed: context.seed, substream: 1, context)
    let judged = try judge.map { try Self.judgeAnswers($0, trainPrompts + heldoutPrompts, maxNewTokens: settings.maxNewTokens, context) }
    let trainLabels = PreferenceLabels(trainPairs, judgeAnswers: Array((judged ?? []).prefix(trainPrompts.count)),
                                       labeler: labeler, truth: rule, budget: settings.budget, seed: context.seed,
                                       stream: "reward_model/noise/train")
    let heldoutLabels = PreferenceLabels(heldoutPairs, judgeAnswers: Array((judged ?? []).dropFirst(trainPrompts.count)),
                                         labeler: labeler, truth: rule, budget: nil, seed: context.seed,
                                         stream: "reward_model/noise/heldout")
    context.log("labelled \(trainLabels.decided) of \(trainPairs.count) training pairs (\(trainLabels.ties) ties, \(trainLabels.overBudget) over the budget), \(trainLabels.humanLabels + heldoutLabels.humanLabels) human labels")
    guard trainLabels.decided > 0 else {
      throw StageFailure("no training pair could be labelled (\(trainLabels.ties) ties, \(trainLabels.overBudget) over the budget): raise pairs, budget or temperature")
    }

    // The reward model and its training.
    try ModelArtifact.refuseTraining(start.model)
    let model = try Self.withValueHead(start.model, seed: context.seed)
    let tokenizer = start.tokenizer, maxTokens = model.config.contextLength
    func sequence(_ r: Rollout) -> [Int32] {
      RewardModelScorer.sequence(r.example, response: r.response, finished: r.finished, tokenizer: tokenizer,
                                 maxTokens: maxTokens)
    }
    let training: [BradleyTerryObjective.Pair] = zip(trainPairs, trainLabels.labels).compactMap { pair, label in
      switch label {
      case .first?: return .init(preferred: sequence(pair.first), other: sequence(pair.second))
      case .second?: return .init(preferred: sequence(pair.second), other: sequence(pair.first))
      case .tie?, nil: return nil
      }
    }
    let objective = BradleyTerryObjective(pairs: training, batch: settings.train.batch, seed: context.seed,
                                          pad: tokenizer.id(of: .pad), trains: settings.trains.selection,
                                          microBatches: settings.train.microBatching.count)
    let loop = TrainingLoop(context: context, model: model, objective: objective, settings: settings.train.optimizer,
                            steps: settings.train.steps)
    try loop.run()

    // How well it ranks: held-out pairs against the labeler and against the noise-free rule.
    let scorer = try RewardModelScorer(ModelArtifact(model: model, tokenizer: tokenizer), source: context.stage)
    let heldoutScores = Self.pairScores(scorer, heldoutPairs)
    let labelled = Self.pairwiseAccuracy(heldoutScores, heldoutLabels.labels)
    let truth = Self.pairwiseAccuracy(heldoutScores, heldoutLabels.truth)
    let trainAccuracy = Self.pairwiseAccuracy(Self.pairScores(scorer, trainPairs), trainLabels.labels)
    let agreement = Self.agreement(trainLabels.labels, trainLabels.truth)

    var metrics = MetricsArtifact()
    metrics.setCurve("loss", loop.losses)
    for (name, curve) in loop.curves.sorted(by: { $0.key < $1.key }) { metrics.setCurve(name, curve.map { Float($0) }) }
    let humanLabels = trainLabels.humanLabels + heldoutLabels.humanLabels
    let counts: [(String, Int)] = [
      ("pairs", trainPairs.count), ("pairs_labelled", trainLabels.decided), ("ties_skipped", trainLabels.ties),
      ("pairs_over_budget", trainLabels.overBudget), ("human_labels", humanLabels),
      ("human_labels_train", trainLabels.humanLabels), ("human_labels_heldout", heldoutLabels.humanLabels),
      ("heldout_pairs", heldoutPairs.count), ("heldout_ties_skipped", heldoutLabels.ties),
    ]
    for (key, n) in counts { metrics.set(key, Double(n)) }
    var scores: [(String, BinomialScore)] = [("train_accuracy", trainAccuracy), ("label_agreement", agreement)]
    if !heldoutPairs.isEmpty { scores += [("heldout_accuracy", labelled), ("heldout_true_accuracy", truth)] }
    for (key, score) in scores {
      metrics.set(key, score.value)
      metrics.set("\(key)_se", score.standardError)
      metrics.set("\(key)_pairs", Double(score.count))
    }
    metrics.set("final_loss", Double(loop.finalLoss))
    var headline: [String: Double] = [
      "human_labels": Double(humanLabels), "pairs_labelled": Double(trainLabels.decided), "final_loss": Double(loop.finalLoss),
    ]
    loop.recordExpertMetrics(into: &metrics, headline: &headline)
    if !heldoutPairs.isEmpty {
      headline["heldout_accuracy"] = labelled.value
      headline["heldout_true_accuracy"] = truth.value
      context.log(String(format: "held-out pairwise accuracy %.3f ± %.3f (labeler), %.3f ± %.3f (noise-free rule)",
                         labelled.value, labelled.standardError, truth.value, truth.standardError))
    }
    context.log(String(format: "training labels agree with the noise-free rule on %.3f of %d pairs", agreement.value,
                       agreement.count))
    return StageOutput(artifacts: ["model": ModelArtifact(model: model, tokenizer: tokenizer).bytes, "metrics": metrics.bytes],
                       metrics: headline)
  }

  // MARK: - Steps

  /// `count` prompts of `split`, each from a task drawn by the mixture's weights.
  static func prompts(_ mixture: TaskMixture, count: Int, split: Split, seed: UInt64, stream: String) -> [SamplePrompt] {
    var rng = TaskRandom(seed: seed, stream: stream)
    return (0..<count).map { _ in
      let generator = mixture.generators[mixture.drawTask(using: &rng)]
      return SamplePrompt(example: generator.example(split: split, using: &rng), verifier: Verifier(task: generator))
    }
  }

  /// Two sampled responses per prompt, as pairs. The built-in prompts are English, so is the language
  /// the rater expects.
  static func responsePairs(_ policy: ModelArtifact, _ prompts: [SamplePrompt], sampling: SamplingSettings, seed: UInt64,
                            substream: UInt32, _ context: StageContext) throws -> [ResponsePair] {
    guard !prompts.isEmpty else { return [] }
    let sampler = BatchedSampler(policy, settings: sampling, batchSize: 32)
    var random = RandomStream(seed: seed, purpose: .sampling, substream: substream)
    let samples = try sampler.sample(prompts, samplesPerPrompt: 2, random: &random, isCancelled: { context.isCancelled })
    return prompts.indices.map { p in
      func rollout(_ sample: Sample) -> Rollout {
        Rollout(example: prompts[p].example, task: prompts[p].verifier.task, language: prompts[p].verifier.task.promptLanguage(of: prompts[p].example),
                response: sample.completion, finished: sample.finished)
      }
      return ResponsePair(first: rollout(samples[2 * p]), second: rollout(samples[2 * p + 1]))
    }
  }

  /// The judge's greedy answer to each prompt (nil when it ran out of tokens before finishing).
  static func judgeAnswers(_ judge: ModelArtifact, _ prompts: [SamplePrompt], maxNewTokens: Int,
                           _ context: StageContext) throws -> [String?] {
    let sampler = BatchedSampler(judge, settings: SamplingSettings(maxNewTokens: maxNewTokens), batchSize: 32)
    var random = RandomStream(seed: 0, purpose: .evaluation)   // unused: greedy
    return try sampler.sample(prompts, random: &random, isCancelled: { context.isCancelled }).map {
      $0.finished ? TaskFormat.answer(in: $0.completion) : nil
    }
  }

  /// `model` with a scalar value head: itself when it has one (training a reward model further),
  /// else a copy whose other weights are the model's and whose head is a fresh model's of `seed`
  /// (zeros: every score starts at 0).
  static func withValueHead(_ model: TransformerLM, seed: UInt64) throws -> TransformerLM {
    guard model.config.valueHead == nil else { return model }
    var config = model.config
    config.valueHead = .scalar
    let scored = TransformerLM(config: config, seed: seed)
    var tensors = model.tensorsByID
    tensors[.valueHead] = scored.parameter(.valueHead)?.value
    try scored.load(tensors)
    return scored
  }

  /// Each pair's two scores, 32 pairs per forward pass.
  static func pairScores(_ scorer: RewardModelScorer, _ pairs: [ResponsePair]) -> [(Float, Float)] {
    stride(from: 0, to: pairs.count, by: 32).flatMap { start in
      let chunk = pairs[start..<min(start + 32, pairs.count)]
      let scores = scorer.scores(chunk.flatMap { [$0.first, $0.second] })
      return chunk.indices.map { i in (scores[2 * (i - start)], scores[2 * (i - start) + 1]) }
    }
  }

  /// The share of decided pairs whose preferred response scores strictly higher.
  static func pairwiseAccuracy(_ scores: [(Float, Float)], _ labels: [Preference?]) -> BinomialScore {
    var right = 0, decided = 0
    for ((a, b), label) in zip(scores, labels) {
      switch label {
      case .first?: decided += 1; if a > b { right += 1 }
      case .second?: decided += 1; if b > a { right += 1 }
      case .tie?, nil: continue
      }
    }
    return BinomialScore(value: decided > 0 ? Double(right) / Double(decided) : 0, count: decided)
  }

  /// The share of pairs both decided where the labels equal the rule's.
  static func agreement(_ labels: [Preference?], _ truth: [Preference]) -> BinomialScore {
    var same = 0, both = 0
    for (label, rule) in zip(labels, truth) where rule != .tie {
      guard let label, label != .tie else { continue }
      both += 1
      if label == rule { same += 1 }
    }
    return BinomialScore(value: both > 0 ? Double(same) / Double(both) : 0, count: both)
  }
}

/// `train:` of a reward model: the optimiser and the pairs per step (sequences are the prompt and the
/// response, cut to the model's context).
struct RewardModelTrainSettings: OptimizerSettingsGroup {
  var steps = 200
  var batch = 16
  var learningRate = 1e-4
  var warmup = 10
  var schedule = TrainSettings.Schedule.cosine
  var weightDecay = 0.0
  var gradientClip = 1.0
  var microBatch: Int?

  static let fields: [SettingField<Self>] = {
    var fields = optimizerFields()
    fields.insert(.int("batch", \.batch, range: 1...4096, doc: "Labelled pairs per step"), at: 1)
    fields.append(.int("micro_batch", \.microBatch, range: 1...4096,
                       doc: "Pairs per micro-batch: the step's gradient is summed over micro-batches in a fixed tree, so that `ranks` can share it; default: the whole batch at once"))
    return fields
  }()

  var microBatching: MicroBatching {
    MicroBatching(batch: batch, microBatch: microBatch, path: "train", batchName: "batch", items: "pairs")
  }
}
