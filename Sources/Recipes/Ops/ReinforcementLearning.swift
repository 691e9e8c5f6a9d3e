import Foundation
import Models
import Pipeline
import Tensors

/// `rl`: GRPO with rule-based rewards (DeepSeek-R1-Zero's recipe), from a model stage.
///
/// Each step samples `group` responses to each of `prompts` training prompts drawn from the task
/// mixture (`temperature`, `max_new_tokens`), scores them with the weighted rewards, and takes the
/// clipped-ratio update with a k3 KL penalty to the input model (`GRPOObjective`); `inner_steps`
/// updates reuse one batch of rollouts. The curves of every reward component, KL, response length,
/// the share of groups with zero reward variance and the clipped share land in the metrics, with
/// held-out pass@1 (greedy, the `accuracy` reward's check) before and after, with standard errors, and
/// what the mixture's tasks probe (`ProbedTask`): the share of mixed-language reasoning on held-out
/// Spanish `word_arithmetic` prompts, the toxicity rate on held-out provocative `chat` prompts.
///
/// Each prompt carries its language (`TaskGenerator.promptLanguage(of:)`) to the `language` reward;
/// `dialogue` prompts are conversations, sampled turn by turn against the simulated user (`GRPOObjective`).
/// A `reward_model:` stage with a `rewards.reward_model` weight adds a learned reward beside the rules
/// (the hybrid reward), scored for a whole rollout batch in one forward pass.
struct ReinforcementLearningOp: TypedOperation {
  let name = "rl"
  let version = 1
  let summary = "GRPO with rule-based rewards from a model stage (R1-Zero)"

  struct Settings: SettingsGroup {
    var tasks: [String: Double] = [:]
    var rewards = RewardSettings()
    var group = 8
    var prompts = 16
    var clip = 0.2
    var kl = 0.02
    var innerSteps = 1
    var temperature = 0.7
    var maxNewTokens = 64
    var world = Int(BuiltinCorpus.defaultWorld)
    var heldoutExamples = 96
    var microBatch: Int?
    var train = RLTrainSettings()
    static let fields: [SettingField<Self>] = [
      .taskWeights(\.tasks, doc: "Task → share of the prompts"),
      .group("rewards", \.rewards, doc: "Reward components and their weights"),
      .int("group", \.group, range: 2...256, doc: "Samples per prompt (the group the advantage is taken within)"),
      .int("prompts", \.prompts, range: 1...4096, doc: "Prompts per rollout batch"),
      .float("clip", \.clip, range: 0...10, doc: "ε of the clipped ratio"),
      .float("kl", \.kl, range: 0...100, doc: "Coefficient of the k3 KL penalty to the input model"),
      .int("inner_steps", \.innerSteps, range: 1...64, doc: "Updates per batch of rollouts"),
      .float("temperature", \.temperature, range: 0.01...5, doc: "Sampling temperature of the rollouts"),
      .int("max_new_tokens", \.maxNewTokens, range: 1...65_536, doc: "Longest response"),
      .world(\.world),
      .int("heldout_examples", \.heldoutExamples, range: 0...10_000,
           doc: "Distinct held-out prompts per task for greedy pass@1 before and after (0: none)"),
      .int("micro_batch", \.microBatch, range: 1...4096,
           doc: "Prompts per micro-batch: each micro-batch's groups are sampled from their own stream and learned from alone, so that `ranks` can share the rollouts; default: the whole batch at once"),
      .group("train", \.train, doc: "Optimisation settings"),
    ]

    var microBatching: MicroBatching {
      MicroBatching(batch: prompts, microBatch: microBatch, path: "", batchName: "prompts", items: "prompts, with their groups,")
    }
    var microBatches: Int { microBatching.count }
  }

  var splitsOverRanks: Bool { true }

  func rankProblem(ranks: Int, settings: Settings) -> String? { settings.microBatching.rankProblem(ranks: ranks) }

  let defaults = Settings()
  let inputs = [InputSlot("from", kinds: [.model], doc: "The starting policy, also the KL reference"),
                InputSlot("reward_model", kinds: [.model], required: false,
                          doc: "A reward_model stage, scoring the rewards' reward_model component")]
  let outputs = [OutputSpec("model", kind: .model, doc: "The trained policy"),
                 OutputSpec("metrics", kind: .metrics, doc: "Reward components, KL, response length, held-out pass@1")]

  func problems(in settings: Settings) -> [ParameterProblem] {
    var problems = TaskTraining.problems(settings.tasks)
    if settings.rewards.terms(blockList: .builtin).isEmpty && settings.rewards.rewardModel == 0 {
      problems.append(ParameterProblem(path: "rewards", "give at least one reward component a non-zero weight"))
    }
    return problems + settings.microBatching.problems
  }

  func problems(in settings: Settings, filledSlots: Set<String>) -> [ParameterProblem] {
    var problems = problems(in: settings)
    if settings.rewards.rewardModel != 0 && !filledSlots.contains("reward_model") {
      problems.append(ParameterProblem(path: "rewards.reward_model",
                                       "a reward_model weight needs 'reward_model:' naming a reward_model stage"))
    }
    return problems
  }

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    let start = try ModelArtifact.input("from", of: context)
    let model = start.model, tokenizer = start.tokenizer
    let mixture = TaskMixture(weights: settings.tasks, world: UInt64(settings.world))
    let blockList = try BlockList.named(settings.rewards.blockList, in: context)
    let reward = RewardFunction(terms: settings.rewards.terms(blockList: blockList, rewardModel: try rewardModel(context, settings)))
    guard settings.maxNewTokens < model.config.contextLength else {
      throw StageFailure("max_new_tokens \(settings.maxNewTokens) leaves no room for a prompt in the model's context of \(model.config.contextLength)")
    }
    let reference = try TransformerLM(config: model.config, tensors: model.tensors)
    let prompts: (Int) -> [RLPrompt] = { index in
      ReinforcementLearningOp.prompts(batch: index, count: settings.prompts, mixture: mixture, seed: context.seed)
    }
    let sampling = SamplingSettings(temperature: Float(settings.temperature), maxNewTokens: settings.maxNewTokens)
    let objective = GRPOObjective(
      prompts: prompts, reward: reward, reference: reference, tokenizer: tokenizer,
      settings: .init(group: settings.group, innerSteps: settings.innerSteps, clip: Float(settings.clip),
                      kl: Float(settings.kl), sampling: sampling, microBatches: settings.microBatches),
      seed: context.seed, processes: context.processes)

    // Distinct prompts, as `eval` draws them: a repeated one would shrink the standard error.
    let heldout = zip(mixture.names, mixture.generators).map { name, generator in
      Evaluator.distinctHeldout(generator, count: settings.heldoutExamples, seed: context.seed, stream: "rl/report/\(name)")
    }
    // A sampler reads the weights as they are when it is made: one before training, one after.
    func passRates() throws -> [BinomialScore] {
      try zip(mixture.generators, heldout).map { generator, examples in
        try PolicyCheck.greedyAccuracy(ModelArtifact(model: model, tokenizer: tokenizer), task: generator,
                                       examples: examples, maxNewTokens: settings.maxNewTokens)
      }
    }
    let before = try passRates()
    // What the mixture's tasks probe in whole responses (mixed-language reasoning on held-out Spanish
    // prompts, the toxicity rate on held-out provocative ones), before and after like pass@1.
    typealias Probed = (task: String, probe: ResponseProbe, examples: [TaskExample])
    let probes: [Probed] = settings.heldoutExamples == 0 ? [] : zip(mixture.names, mixture.generators).flatMap { name, generator in
      ((generator as? any ProbedTask)?.responseProbes ?? []).map { probe -> Probed in
        (task: name, probe: probe,
         examples: Evaluator.distinctHeldout(probe.prompts, count: settings.heldoutExamples, seed: context.seed,
                                             stream: "rl/report/\(name)/\(probe.measure.rawValue)"))
      }
    }
    func probeRates() throws -> [BinomialScore] {
      try probes.map { probe in
        try PolicyCheck.rate(probe.probe, ModelArtifact(model: model, tokenizer: tokenizer), examples: probe.examples,
                             blockList: blockList, maxNewTokens: settings.maxNewTokens)
      }
    }
    let probedBefore = try probeRates()

    let train = settings.train
    let loop = TrainingLoop(context: context, model: model, objective: objective, settings: train.optimizer,
                            steps: train.steps)
    try loop.run(restore: { try objective.restore($0) }, afterStep: { step, _ in loop.opState = try objective.state(after: step) })
    context.log(String(format: "rollouts %.1f s, learning %.1f s (this run's steps)",
                       objective.generationSeconds, objective.learningSeconds))
    let after = try passRates()
    let probedAfter = try probeRates()

    var metrics = MetricsArtifact()
    metrics.setCurve("loss", loop.losses)
    for (name, curve) in loop.curves.sorted(by: { $0.key < $1.key }) { metrics.setCurve(name, curve.map { Float($0) }) }
    var headline: [String: Double] = [:]
    loop.recordExpertMetrics(into: &metrics, headline: &headline)
    for (i, task) in mixture.names.enumerated() where settings.heldoutExamples > 0 {
      metrics.set("heldout_pass@1_before/\(task)", before[i].value)
      metrics.set("heldout_pass@1_before_se/\(task)", before[i].standardError)
      metrics.set("heldout_pass@1/\(task)", after[i].value)
      metrics.set("heldout_pass@1_se/\(task)", after[i].standardError)
      metrics.set("heldout_examples/\(task)", Double(after[i].count))
      headline["heldout_pass@1_before/\(task)"] = before[i].value
      headline["heldout_pass@1/\(task)"] = after[i].value
      context.log(String(format: "%@: held-out pass@1 %.3f ± %.3f → %.3f ± %.3f", task, before[i].value,
                         before[i].standardError, after[i].value, after[i].standardError))
    }
    for (i, (task, probe, _)) in probes.enumerated() {
      let measure = probe.measure.rawValue
      metrics.set("heldout_\(measure)_before/\(task)", probedBefore[i].value)
      metrics.set("heldout_\(measure)_before_se/\(task)", probedBefore[i].standardError)
      metrics.set("heldout_\(measure)/\(task)", probedAfter[i].value)
      metrics.set("heldout_\(measure)_se/\(task)", probedAfter[i].standardError)
      metrics.set("heldout_\(measure)_examples/\(task)", Double(probedAfter[i].count))
      headline["heldout_\(measure)/\(task)"] = probedAfter[i].value
      context.log(String(format: "%@: held-out %@ %.3f ± %.3f → %.3f ± %.3f", task, measure, probedBefore[i].value,
                         probedBefore[i].standardError, probedAfter[i].value, probedAfter[i].standardError))
    }
    for name in ["reward", "kl", "zero_variance_share"] {
      if let curve = loop.curves[name], !curve.isEmpty {
        let tail = curve.suffix(max(1, curve.count / 10))
        headline["final_\(name)"] = tail.reduce(0, +) / Double(tail.count)
      }
    }
    return StageOutput(artifacts: ["model": ModelArtifact(model: model, tokenizer: tokenizer).bytes, "metrics": metrics.bytes],
                       metrics: headline)
  }
}

extension ReinforcementLearningOp {
  /// The prompts of rollout batch `index`, drawn from the mixture's training split with a stream of
  /// their own, each with its prompt's language (`TaskGenerator.promptLanguage(of:)`: Spanish for a
  /// Spanish `word_arithmetic` prompt, English for every task that does not say).
  static func prompts(batch index: Int, count: Int, mixture: TaskMixture, seed: UInt64) -> [RLPrompt] {
    var rng = TaskRandom(seed: seed, stream: "rl/prompts/\(index)")
    return (0..<count).map { _ in
      let generator = mixture.generators[mixture.drawTask(using: &rng)]
      let example = generator.example(split: .train, using: &rng)
      return RLPrompt(example: example, task: generator, language: generator.promptLanguage(of: example))
    }
  }
}

/// `rewards:` — the weight of each component (0 leaves it out; negative is a penalty): the rule-based
/// ones, and `reward_model`, whose weight beside them makes the hybrid reward.
struct RewardSettings: SettingsGroup {
  var accuracy = 1.0
  var format = 0.1
  var language = 0.0
  var toxicity = 0.0
  var random = 0.0
  var rewardModel = 0.0
  var blockList: String?

  static let fields: [SettingField<Self>] = [
    .float("accuracy", \.accuracy, range: -100...100, doc: "The <answer> checked by the task (1 right, 0 wrong)"),
    .float("format", \.format, range: -100...100, doc: "Exactly one <think>…</think> then one <answer>…</answer>"),
    .float("language", \.language, range: -100...100, doc: "Share of the reasoning's words in the prompt's language"),
    .float("toxicity", \.toxicity, range: -100...100, doc: "1 when the response has a blocked term (use a negative weight)"),
    .float("random", \.random, range: -100...100, doc: "A fair coin blind to the answer (the control of an RL run)"),
    .float("reward_model", \.rewardModel, range: -100...100, doc: "σ of the reward_model: input's score of prompt + response (0…1)"),
    .blockList(\.blockList),
  ]

  func terms(blockList: BlockList) -> [RewardFunction.Term] {
    let all: [(RewardFunction.Component, Double)] = [(.accuracy, accuracy), (.format, format), (.language, language),
                                                    (.toxicity(blockList), toxicity), (.random, random)]
    return all.filter { $0.1 != 0 }.map { RewardFunction.Term(component: $0.0, weight: $0.1) }
  }

  /// The rule-based terms and, with a non-zero weight, the reward model's.
  func terms(blockList: BlockList, rewardModel scorer: RewardModelScorer?) -> [RewardFunction.Term] {
    guard rewardModel != 0, let scorer else { return terms(blockList: blockList) }
    return terms(blockList: blockList) + [RewardFunction.Term(component: .rewardModel(scorer), weight: rewardModel)]
  }


}

extension ReinforcementLearningOp {
  /// The scorer of the `reward_model:` input, or nil when the stage has none.
  ///
  /// - Throws: `StageFailure` when the weight is non-zero without the input (the loader refuses that
  ///   first), or when the input's model has no value head.
  func rewardModel(_ context: StageContext, _ settings: Settings) throws -> RewardModelScorer? {
    guard let input = context.input("reward_model") else {
      guard settings.rewards.rewardModel == 0 else {
        throw StageFailure("rewards.reward_model is \(settings.rewards.rewardModel) but no 'reward_model:' stage is given")
      }
      return nil
    }
    guard settings.rewards.rewardModel != 0 else {
      context.log("reward_model: \(input.stage) is not read: rewards.reward_model is 0")
      return nil
    }
    return try RewardModelScorer(try ModelArtifact(bytes: try context.bytes(of: input), source: input.stage),
                                 source: input.stage)
  }
}

/// The optimiser settings a `train:` group shares when the op decides what a step's batch is (`rl`'s
/// rollouts, `reward_model`'s pairs): declared once here, each group adding its own keys.
protocol OptimizerSettingsGroup: SettingsGroup {
  var steps: Int { get set }
  var learningRate: Double { get set }
  var warmup: Int { get set }
  var schedule: TrainSettings.Schedule { get set }
  var weightDecay: Double { get set }
  var gradientClip: Double { get set }
}

extension OptimizerSettingsGroup {
  /// `steps`, `lr`, `warmup`, `schedule`, `weight_decay`, `grad_clip`, in that order.
  static func optimizerFields(learningRateDoc: String = "Peak learning rate") -> [SettingField<Self>] {
    [
      .int("steps", \.steps, range: 1...10_000_000, doc: "Optimizer steps"),
      .float("lr", \.learningRate, range: 1e-8...1, doc: learningRateDoc),
      .int("warmup", \.warmup, range: 0...10_000_000, doc: "Linear warm-up steps"),
      .choice("schedule", \.schedule, doc: "After warm-up: cosine decay to 10% of the peak, or constant"),
      .float("weight_decay", \.weightDecay, range: 0...10, doc: "Decoupled weight decay"),
      .float("grad_clip", \.gradientClip, range: 0...1000, doc: "Global gradient-norm clip (0: none)"),
    ]
  }

  var optimizer: AdamW.Settings {
    TrainSettings.optimizer(steps: steps, lr: learningRate, warmup: warmup, schedule: schedule,
                            weightDecay: weightDecay, gradientClip: gradientClip)
  }
}

/// `train:` of an RL stage: the optimiser only (the batch is `prompts × group` rollouts).
struct RLTrainSettings: OptimizerSettingsGroup {
  var steps = 60
  var learningRate = 1e-4
  var warmup = 0
  var schedule = TrainSettings.Schedule.constant
  var weightDecay = 0.0
  var gradientClip = 1.0

  static let fields = optimizerFields(learningRateDoc: "Peak learning rate (RL is unstable above about 1e-4 here)")
}

/// A share of n binary outcomes and its binomial standard error √(p(1 − p)/n).
struct BinomialScore: Equatable {
  var value: Double
  var count: Int
  var standardError: Double { count > 0 ? TextMetrics.binomialStandardError(accuracy: value, examples: count) : 0 }
}

/// Greedy answers to held-out prompts, checked like the `accuracy` reward (the `<answer>` block).
enum PolicyCheck {
  static func greedyAccuracy(_ artifact: ModelArtifact, task: any TaskGenerator, examples: [TaskExample],
                             maxNewTokens: Int) throws -> BinomialScore {
    guard !examples.isEmpty else { return BinomialScore(value: 0, count: 0) }
    let sampler = BatchedSampler(artifact, settings: SamplingSettings(maxNewTokens: maxNewTokens), batchSize: 32)
    var random = RandomStream(seed: 0, purpose: .evaluation)   // unused: greedy
    let samples = try sampler.sample(examples.map { SamplePrompt(example: $0, verifier: Verifier(task: task)) },
                                     random: &random)
    let check = RewardFunction(terms: [.init(component: .accuracy, weight: 1)])
    let right = zip(examples, samples).reduce(0.0) { total, pair in
      total + check.score(Rollout(example: pair.0, task: task, language: task.promptLanguage(of: pair.0), response: pair.1.completion,
                                  finished: pair.1.finished)).total
    }
    return BinomialScore(value: right / Double(examples.count), count: examples.count)
  }

  /// A probe's rate on greedy responses to its held-out `examples` (`ResponseMeasures`): the whole
  /// response is read, reasoning included, as the rewards read it.
  static func rate(_ probe: ResponseProbe, _ artifact: ModelArtifact, examples: [TaskExample], blockList: BlockList,
                   maxNewTokens: Int) throws -> BinomialScore {
    guard !examples.isEmpty else { return BinomialScore(value: 0, count: 0) }
    let sampler = BatchedSampler(artifact, settings: SamplingSettings(maxNewTokens: maxNewTokens), batchSize: 32)
    var random = RandomStream(seed: 0, purpose: .evaluation)   // unused: greedy
    let responses = try sampler.sample(examples.map { SamplePrompt(example: $0, verifier: Verifier(task: probe.prompts)) },
                                       random: &random).map(\.completion)
    switch probe.measure {
    case .mixedLanguage:
      return ResponseMeasures.mixedLanguageShare(zip(examples, responses).map { ($1, probe.prompts.promptLanguage(of: $0)) })
    case .toxicityRate:
      return ResponseMeasures.toxicityRate(responses, blockList: blockList)
    }
  }
}
