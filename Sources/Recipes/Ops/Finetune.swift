import Foundation
import Models
import Pipeline
import Tensors

/// `finetune` (V3): adaptive fine-tuning on synthetic data that a model stage generates, mixed with
/// real task data.
///
/// 1. The generator model answers training prompts until each task has its share of `count` verified
///    samples (shares by the initial task weights), or has sampled `max_attempts` times its share;
///    answers are kept only when the task's verifier accepts them (right, or, for translation and
///    summarisation, a score of at least `min_score`). What is kept is the model's own text.
/// 2. Each training row is, with probability `synthetic_share`, a kept synthetic sample of the drawn
///    task, else a real example.
/// 3. Adaptive mixture: every `adaptive.every` steps each task's loss on validation examples (drawn
///    from the train split; the held-out split stays unseen) moves its weight:
///    wᵢ ← wᵢ · exp(rate · (Lᵢ − L̄) / L̄), then renormalised with a floor of `adaptive.min_weight`,
///    so the tasks the model is worst at get more of the batch. The weights over time are in the metrics.
struct FinetuneOp: MicroBatchedTraining {
  let name = "finetune"
  /// 2: samples until each task has its share of `count` verified samples (or reaches `max_attempts`).
  /// 3: its task examples and prompts changed (QA, summarisation and entailment split by fact; new
  /// sentiment and entailment).
  let version = 3
  let summary = "Adaptive fine-tuning on verified synthetic data from a model stage (V3)"

  struct Settings: SettingsGroup {
    var tasks: [String: Double] = [:]
    var count = 256
    var maxAttempts = 4
    var syntheticShare = 0.5
    var minScore = 0.5
    var temperature = 0.0
    var adaptive = Adaptive()
    var corpusShare = 0.0
    var world = Int(BuiltinCorpus.defaultWorld)
    var heldoutExamples = 64
    var train = TrainSettings(steps: 200, batch: 16, lr: 5e-4, warmup: 10)
    static let fields: [SettingField<Self>] = [
      .taskWeights(\.tasks, doc: "Task → initial mixture weight"),
      .int("count", \.count, range: 0...1_000_000,
           doc: "Verified synthetic samples wanted, shared among the tasks by their initial weights (0: none)"),
      .int("max_attempts", \.maxAttempts, range: 1...1000,
           doc: "Prompts a task may sample, as a multiple of its share of count, before it stops short"),
      .float("synthetic_share", \.syntheticShare, range: 0...1, doc: "Share of rows taken from the kept synthetic samples"),
      .float("min_score", \.minScore, range: 0...1,
             doc: "Keep a translation/summary sample whose score reaches this (others must be right)"),
      .float("temperature", \.temperature, range: 0...5, doc: "Generation temperature (0: greedy)"),
      .group("adaptive", \.adaptive, doc: "How the mixture adapts"),
      .corpusShare(\.corpusShare),
      .world(\.world),
      .heldoutExamples(\.heldoutExamples),
      .group("train", \.train, doc: "Optimisation settings"),
    ]
  }

  /// `adaptive:` — how the task mixture follows the validation losses.
  struct Adaptive: SettingsGroup {
    var every = 25
    var rate = 1.0
    var minWeight = 0.05
    var validation = 16
    static let fields: [SettingField<Self>] = [
      .int("every", \.every, range: 0...1_000_000, doc: "Steps between weight updates (0: fixed)"),
      .float("rate", \.rate, range: 0...100, doc: "How strongly losses move the weights"),
      .float("min_weight", \.minWeight, range: 0...0.5, doc: "Floor of a task's share"),
      .int("validation", \.validation, range: 1...10_000, doc: "Validation examples per task"),
    ]
  }

  let defaults = Settings()
  let inputs = [
    InputSlot("from", kinds: [.model], doc: "The model to fine-tune"),
    InputSlot("generator", kinds: [.model], doc: "The model that writes the synthetic data"),
    Slots.mixedCorpus,
  ]
  let outputs = [OutputSpec("model", kind: .model, doc: "The fine-tuned model"),
                 OutputSpec("metrics", kind: .metrics, doc: "Synthetic yield, mixture weights over time, losses")]

  func trainSettings(_ settings: Settings) -> TrainSettings { settings.train }

  func problems(in settings: Settings) -> [ParameterProblem] { TaskTraining.problems(settings.tasks) + settings.train.problems() }

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    let train = settings.train
    let start = try ModelArtifact.input("from", of: context)
    let model = start.model, tokenizer = start.tokenizer
    var mixture = TaskMixture(weights: settings.tasks, world: UInt64(settings.world))
    let initialWeights = mixture.weights
    let maxTokens = min(train.sequence ?? model.config.contextLength, model.config.contextLength)

    let synthetic = try SyntheticData.generate(
      context, generator: try ModelArtifact.input("generator", of: context), mixture: mixture, count: settings.count,
      maxAttempts: settings.maxAttempts, temperature: Float(settings.temperature), minScore: settings.minScore)
    var metrics = MetricsArtifact()
    for (i, task) in mixture.names.enumerated() {
      let made = synthetic.generated[i], kept = synthetic.kept[i].count
      metrics.set("synthetic_wanted/\(task)", Double(synthetic.wanted[i]))
      metrics.set("synthetic_generated/\(task)", Double(made))
      metrics.set("synthetic_kept/\(task)", Double(kept))
      context.log("\(task): kept \(kept) of \(made) synthetic samples (wanted \(synthetic.wanted[i]))")
    }

    let adaptive = settings.adaptive, every = adaptive.every
    let validation = mixture.names.indices.map {
      mixture.examples($0, count: adaptive.validation, split: .train, seed: context.seed, stream: "finetune/validation")
    }
    let heldoutCount = settings.heldoutExamples
    let heldout = mixture.names.indices.map {
      mixture.examples($0, count: heldoutCount, split: .heldout, seed: context.seed, stream: "finetune/report")
    }
    let before = heldout.map { TaskLoss.mean(model, tokenizer: tokenizer, examples: $0, maxTokens: maxTokens) }

    let corpus = try TaskTraining.corpus(context, tokenizer: tokenizer)
    let corpusShare = settings.corpusShare
    if corpus == nil && corpusShare > 0 { throw StageFailure("corpus_share is \(corpusShare) but no corpus: is given") }
    let share = settings.syntheticShare
    var history: [[Double]] = [[0] + mixture.weights]   // [step, weights…]
    let objective = LanguageModelObjective(microBatches: train.microBatches, batch: { step in
      var rng = TaskRandom(seed: context.seed, stream: "finetune/step/\(step)")
      var rows: [(tokens: [Int32], weights: [Float])] = []
      for _ in 0..<train.batch {
        if let corpus, Double.random(in: 0..<1, using: &rng) < corpusShare {
          let window = corpus.windows(1, length: min(maxTokens, 128), using: &rng)[0]
          rows.append((window, [Float](repeating: 1, count: window.count)))
          continue
        }
        let task = mixture.drawTask(using: &rng)
        let kept = synthetic.kept[task]
        if !kept.isEmpty && Double.random(in: 0..<1, using: &rng) < share {
          rows.append(TaskFormat.encode(kept[Int.random(in: 0..<kept.count, using: &rng)], with: tokenizer, maxTokens: maxTokens))
        } else {
          let example = mixture.generators[task].example(split: .train, using: &rng)
          rows.append(TaskFormat.encode(example, with: tokenizer, maxTokens: maxTokens))
        }
      }
      return paddedBatch(rows, pad: tokenizer.id(of: .pad))
    })
    let loop = TrainingLoop(context: context, model: model, objective: objective, settings: train.optimizer, steps: train.steps)
    try loop.run(restore: { state in
      history = try AdaptiveState.decode(state, tasks: mixture.names.count)
      mixture.setWeights(Array(history.last!.dropFirst()))
    }, afterStep: { step, _ in
      guard every > 0, (step + 1) % every == 0, step + 1 < train.steps else { return }
      let losses = validation.map { TaskLoss.mean(model, tokenizer: tokenizer, examples: $0, maxTokens: maxTokens) }
      mixture.setWeights(AdaptiveState.update(mixture.weights, losses: losses, rate: adaptive.rate,
                                              floor: adaptive.minWeight))
      history.append([Double(step + 1)] + mixture.weights)
      loop.opState = AdaptiveState.encode(history)
      context.log("step \(step + 1): mixture " + zip(mixture.names, mixture.weights)
        .map { "\($0) \(String(format: "%.3f", $1))" }.joined(separator: ", "))
    })

    let after = heldout.map { TaskLoss.mean(model, tokenizer: tokenizer, examples: $0, maxTokens: maxTokens) }
    metrics.setCurve("loss", loop.losses)
    metrics.set("final_loss", Double(loop.finalLoss))
    metrics["mixture_weights"] = .list(history.map { row in .list(row.map { .float($0) }) })
    metrics["mixture_tasks"] = .list(mixture.names.map { .string($0) })
    var headline: [String: Double] = ["final_loss": Double(loop.finalLoss)]
    loop.recordExpertMetrics(into: &metrics, headline: &headline)
    for (i, task) in mixture.names.enumerated() {
      metrics.set("initial_weight/\(task)", initialWeights[i] / initialWeights.reduce(0, +))
      metrics.set("final_weight/\(task)", mixture.weights[i] / mixture.weights.reduce(0, +))
      headline["synthetic_kept/\(task)"] = Double(synthetic.kept[i].count)
      headline["synthetic_generated/\(task)"] = Double(synthetic.generated[i])
      guard heldoutCount > 0 else { continue }
      metrics.set("heldout_loss_before/\(task)", before[i])
      metrics.set("heldout_loss/\(task)", after[i])
      headline["heldout_loss/\(task)"] = after[i]
    }
    return StageOutput(artifacts: ["model": ModelArtifact(model: model, tokenizer: tokenizer).bytes,
                                   "metrics": metrics.bytes],
                       metrics: headline)
  }
}

/// The adaptive mixture's update rule and its checkpointed history.
enum AdaptiveState {
  /// wᵢ · exp(rate · (Lᵢ − L̄) / L̄), normalised, each at least `floor`, normalised again.
  static func update(_ weights: [Double], losses: [Double], rate: Double, floor: Double) -> [Double] {
    let valid = losses.filter(\.isFinite)
    guard !valid.isEmpty else { return weights }
    let mean = valid.reduce(0, +) / Double(valid.count)
    var next = zip(weights, losses).map { w, l in l.isFinite && mean > 0 ? w * exp(rate * (l - mean) / mean) : w }
    var total = next.reduce(0, +)
    next = next.map { max(floor, $0 / total) }
    total = next.reduce(0, +)
    return next.map { $0 / total }
  }

  static func encode(_ history: [[Double]]) -> [UInt8] {
    var out: [UInt8] = []
    for row in history { for x in row { withUnsafeBytes(of: x.bitPattern.littleEndian) { out += $0 } } }
    return out
  }

  static func decode(_ bytes: [UInt8], tasks: Int) throws -> [[Double]] {
    let width = (tasks + 1) * 8
    guard !bytes.isEmpty, bytes.count % width == 0 else { throw StageFailure("the adaptive mixture state is damaged") }
    return stride(from: 0, to: bytes.count, by: width).map { start in
      (0...tasks).map { j in
        var bits: UInt64 = 0
        for b in 0..<8 { bits |= UInt64(bytes[start + j * 8 + b]) << (8 * UInt64(b)) }
        return Double(bitPattern: bits)
      }
    }
  }
}

/// Synthetic samples a generator model writes for training prompts, kept when the task's verifier
/// accepts them.
///
/// Each task wants its share of `count` accepted samples (by the initial mixture weights). Prompts are
/// drawn in rounds, each round asking every unfinished task for as many prompts as it still lacks
/// samples, until each task has its share or has used `maxAttempts` × its share in prompts: a task the
/// generator cannot do yet stops at the cap instead of sampling forever, and its count says so.
struct SyntheticData {
  /// Per task (mixture order): accepted samples wanted, prompts sampled, and the kept samples
  /// (prompt + the model's own completion).
  var wanted: [Int]
  var generated: [Int]
  var kept: [[TaskExample]]

  static func generate(_ context: StageContext, generator: ModelArtifact, mixture: TaskMixture, count: Int,
                       maxAttempts: Int, temperature: Float, minScore: Double) throws -> SyntheticData {
    let tasks = mixture.names.count
    let total = mixture.weights.reduce(0, +)
    let wanted = mixture.weights.map { Int((Double(count) * $0 / total).rounded()) }
    var data = SyntheticData(wanted: wanted, generated: [Int](repeating: 0, count: tasks),
                             kept: [[TaskExample]](repeating: [], count: tasks))
    guard count > 0 else { return data }
    let maxNew = min(96, generator.model.config.contextLength / 2)
    let sampler = BatchedSampler(generator, settings: SamplingSettings(temperature: temperature, maxNewTokens: maxNew))
    let verifiers = mixture.generators.map { Verifier(task: $0, minScore: minScore) }
    var rng = TaskRandom(seed: context.seed, stream: "finetune/synthetic")
    var random = RandomStream(seed: context.seed, purpose: .sampling)
    let cap = wanted.map { $0 * maxAttempts }
    var round = 0
    while true {
      var prompts: [(task: Int, prompt: SamplePrompt)] = []
      for t in 0..<tasks {
        let lacking = min(wanted[t] - data.kept[t].count, cap[t] - data.generated[t])
        for _ in 0..<max(0, lacking) {
          prompts.append((t, SamplePrompt(example: mixture.generators[t].example(split: .train, using: &rng),
                                          verifier: verifiers[t])))
        }
      }
      guard !prompts.isEmpty else { break }
      round += 1
      let samples = try sampler.sample(prompts.map(\.prompt), random: &random,
                                       progress: { done, all in context.progress(step: done, of: all) },
                                       isCancelled: { context.isCancelled })
      for sample in samples {
        let (task, prompt) = prompts[sample.prompt]
        data.generated[task] += 1
        if sample.verdict.accepted && data.kept[task].count < wanted[task] {
          data.kept[task].append(sample.example(from: prompt.example))
        }
      }
      context.log("synthetic round \(round): " + mixture.names.indices.map {
        "\(mixture.names[$0]) \(data.kept[$0].count)/\(wanted[$0]) kept of \(data.generated[$0])"
      }.joined(separator: ", "))
    }
    return data
  }
}
