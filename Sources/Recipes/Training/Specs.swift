import Models
import Pipeline
import Tensors

// The `model:`, `train:` and `attention:` groups several ops share, declared once each: the declaration
// is both the schema and the typed value, and each group turns itself into engine settings.

// MARK: - model

/// The transformer's shape (`model:`).
struct ModelSettings: SettingsGroup {
  var modelDim = 128
  var layers = 4
  var heads = 4
  var kvHeads: Int?
  var mlpHidden: Int?
  var context = 256
  var ropeBase = 10_000.0
  var tied = false
  var experts: ExpertSettings?

  static let fields: [SettingField<Self>] = [
    .int("d_model", \.modelDim, range: 8...4096, doc: "Width of the residual stream"),
    .int("layers", \.layers, range: 1...64, doc: "Transformer blocks"),
    .int("heads", \.heads, range: 1...64, doc: "Attention heads"),
    .int("kv_heads", \.kvHeads, range: 1...64, doc: "Key/value heads (grouped-query attention); default: heads"),
    .int("mlp_hidden", \.mlpHidden, range: 8...65_536, doc: "SwiGLU hidden size; default 8/3 · d_model"),
    .int("context", \.context, range: 8...65_536, doc: "Longest sequence in tokens"),
    .float("rope_base", \.ropeBase, range: 100...10_000_000, doc: "RoPE base frequency"),
    .bool("tied", \.tied, doc: "LM head shares the embedding table"),
    .optionalGroup("experts", \.experts, fieldDefaults: ExpertSettings(),
                   doc: "Mixture of Experts in place of the dense MLP (omit for dense)"),
  ]

  func config(vocabulary: Int) -> ModelConfig {
    ModelConfig(vocabularySize: vocabulary, modelDim: modelDim, layerCount: layers, headCount: heads,
                kvHeadCount: kvHeads, mlpHiddenDim: mlpHidden, contextLength: context, ropeBase: Float(ropeBase),
                tiedEmbeddings: tied, moe: experts?.config(modelDim: modelDim))
  }

  /// Problems the schema cannot see alone (heads dividing d_model, …), as `model.…` paths.
  func problems(vocabulary: Int = 512) -> [ParameterProblem] {
    config(vocabulary: vocabulary).problems.map { ParameterProblem(path: "model", $0) }
  }
}

/// `model.experts:` — a DeepSeekMoE layer in place of every dense MLP.
struct ExpertSettings: SettingsGroup {
  enum Gate: String, SettingChoice { case softmax, sigmoid }
  enum Balancing: String, SettingChoice {
    case auxLoss = "aux_loss"
    case auxFree = "aux_free"
  }

  var routed = 8
  var shared = 1
  var topK = 2
  var hidden: Int?
  var gate = Gate.softmax
  var balancing = Balancing.auxFree
  var balanceRate = 1e-3

  static let fields: [SettingField<Self>] = [
    .int("routed", \.routed, range: 1...256, doc: "Routed experts"),
    .int("shared", \.shared, range: 0...16, doc: "Shared experts every token uses"),
    .int("top_k", \.topK, range: 1...64, doc: "Routed experts per token"),
    .int("hidden", \.hidden, range: 8...65_536, doc: "Hidden size of one expert; default 2 · d_model"),
    .choice("gate", \.gate, doc: "Gate scores"),
    .choice("balancing", \.balancing, doc: "Auxiliary balance loss, or DeepSeek-V3's bias adjustment"),
    .float("balance_rate", \.balanceRate, range: 0...1, doc: "Aux-loss weight, or the bias update rate"),
  ]

  func config(modelDim: Int) -> MoEConfig {
    let rate = Float(balanceRate)
    let gate: MoEConfig.Gate
    switch self.gate {
    case .softmax: gate = .softmax
    case .sigmoid: gate = .sigmoid
    }
    let balancing: MoEConfig.Balancing
    switch self.balancing {
    case .auxLoss: balancing = .auxiliaryLoss(weight: rate)
    case .auxFree: balancing = .auxiliaryLossFree(biasUpdateRate: rate)
    }
    return MoEConfig(routedExperts: routed, sharedExperts: shared, topK: topK, expertHiddenDim: hidden ?? 2 * modelDim,
                     gate: gate, balancing: balancing)
  }
}

// MARK: - train

/// Optimisation settings (`train:`); each op gives its own defaults.
struct TrainSettings: SettingsGroup {
  enum Schedule: String, SettingChoice { case cosine, constant }

  var steps: Int
  var batch: Int
  var learningRate: Double
  var warmup: Int
  var schedule = Schedule.cosine
  var weightDecay = 0.1
  var gradientClip = 1.0
  var sequence: Int?
  var microBatch: Int?

  init(steps: Int, batch: Int, lr: Double, warmup: Int) {
    self.steps = steps
    self.batch = batch
    self.learningRate = lr
    self.warmup = warmup
  }

  static let fields: [SettingField<Self>] = [
    .int("steps", \.steps, range: 1...10_000_000, doc: "Optimizer steps"),
    .int("batch", \.batch, range: 1...4096, doc: "Sequences per step"),
    .float("lr", \.learningRate, range: 1e-7...1, doc: "Peak learning rate"),
    .int("warmup", \.warmup, range: 0...10_000_000, doc: "Linear warm-up steps"),
    .choice("schedule", \.schedule, doc: "After warm-up: cosine decay to 10% of the peak, or constant"),
    .float("weight_decay", \.weightDecay, range: 0...10, doc: "Decoupled weight decay"),
    .float("grad_clip", \.gradientClip, range: 0...1000, doc: "Global gradient-norm clip (0: none)"),
    .int("sequence", \.sequence, range: 8...65_536, doc: "Tokens per training sequence; default: the model's context"),
    .int("micro_batch", \.microBatch, range: 1...4096,
         doc: "Sequences per micro-batch: the step's gradient is summed over micro-batches in a fixed tree, so that `ranks` can share it; default: the whole batch at once"),
  ]

  /// How `micro_batch` cuts the batch.
  var microBatching: MicroBatching {
    MicroBatching(batch: batch, microBatch: microBatch, path: "train", batchName: "batch", items: "sequences")
  }

  /// Micro-batches per step: 1 without `micro_batch` (the whole batch in one pass, as before it existed).
  var microBatches: Int { microBatching.count }

  func problems(at path: String = "train") -> [ParameterProblem] { microBatching.problems }

  func rankProblem(ranks: Int) -> String? { microBatching.rankProblem(ranks: ranks) }

  static func divisor(of n: Int, near wanted: Int) -> Int {
    (1...n).filter { n % $0 == 0 }.min { abs($0 - wanted) < abs($1 - wanted) } ?? 1
  }

  var optimizer: AdamW.Settings {
    TrainSettings.optimizer(steps: steps, lr: learningRate, warmup: warmup, schedule: schedule,
                            weightDecay: weightDecay, gradientClip: gradientClip)
  }

  /// AdamW with warm-up and the schedule: the one conversion every training op's `train:` group uses.
  static func optimizer(steps: Int, lr learningRate: Double, warmup: Int, schedule: Schedule, weightDecay: Double,
                        gradientClip: Double) -> AdamW.Settings {
    let shape: LearningRateSchedule.Shape
    switch schedule {
    case .cosine: shape = .cosine
    case .constant: shape = .constant
    }
    let rates = LearningRateSchedule(peak: Float(learningRate), warmupSteps: min(warmup, steps), totalSteps: steps, shape: shape)
    return AdamW.Settings(schedule: rates, weightDecay: Float(weightDecay), gradientClip: Float(gradientClip))
  }
}

/// A step's batch cut into micro-batches by a `micro_batch` setting: the one rule every training op's
/// split follows, and its messages.
struct MicroBatching {
  /// Items per step (sequences, prompts, pairs) and per micro-batch (nil: the whole batch at once).
  var batch: Int
  var microBatch: Int?
  /// Where the settings sit (`train`, or "" for the op's top level), the batch's key and what it holds.
  var path: String
  var batchName: String
  var items: String

  var count: Int { microBatch.map { max(1, batch / $0) } ?? 1 }

  private var key: String { path.isEmpty ? "micro_batch" : path + ".micro_batch" }

  /// `micro_batch` must divide the batch.
  var problems: [ParameterProblem] {
    guard let microBatch, batch % microBatch != 0 else { return [] }
    return [ParameterProblem(path: key, "micro_batch \(microBatch) does not divide \(batchName) \(batch); choose a divisor, e.g. \(TrainSettings.divisor(of: batch, near: microBatch))")]
  }

  /// Why `ranks` cannot share these steps, or nil.
  func rankProblem(ranks: Int) -> String? {
    guard ranks > 1 else { return nil }
    guard microBatch != nil else {
      return "ranks \(ranks) need the batch split into micro-batches: set \(key) (\(items) per micro-batch, dividing \(batchName) \(batch)). The gradient is then summed in one fixed tree, the same bits on any power-of-two ranks that divide the micro-batches"
    }
    return Ranks.problem(ranks: ranks, microBatches: count)
  }
}

/// A training op whose `train:` batch splits into micro-batches, and so over ranks.
protocol MicroBatchedTraining: TypedOperation {
  func trainSettings(_ settings: Settings) -> TrainSettings
}

extension MicroBatchedTraining {
  var splitsOverRanks: Bool { true }
  func rankProblem(ranks: Int, settings: Settings) -> String? { trainSettings(settings).rankProblem(ranks: ranks) }
}

// MARK: - attention

/// The attention pattern (`attention:`).
struct AttentionSettings: SettingsGroup {
  enum Kind: String, SettingChoice {
    case dense
    case slidingWindow = "sliding_window"
    case blockSparse = "block_sparse"
  }

  var kind = Kind.slidingWindow
  var window = 64
  var globalTokens = 4
  var block = 32
  var topBlocks = 2

  static let fields: [SettingField<Self>] = [
    .choice("kind", \.kind, doc: "Which keys each query sees"),
    .int("window", \.window, range: 1...1_000_000, doc: "sliding_window: tokens back, itself included"),
    .int("global_tokens", \.globalTokens, range: 0...1_000_000, doc: "sliding_window: first tokens every query sees"),
    .int("block", \.block, range: 1...1_000_000, doc: "block_sparse: tokens per block"),
    .int("top_blocks", \.topBlocks, range: 0...100_000, doc: "block_sparse: earlier blocks chosen per query"),
  ]

  var pattern: AttentionPattern {
    switch kind {
    case .dense: return .dense
    case .slidingWindow: return .slidingWindow(window: window, globalTokens: globalTokens)
    case .blockSparse: return .blockSparse(block: block, topBlocks: topBlocks)
    }
  }
}

// MARK: - Shared by the task-training ops

extension SettingField {
  /// `world:` — the seeded world of the QA, summarisation, entailment and library tasks.
  static func world(_ path: WritableKeyPath<Root, Int> & Sendable) -> Self {
    .int("world", path, range: 0...1_000_000,
         doc: "The seeded world of the QA, summarisation, entailment and library tasks")
  }

  static func heldoutExamples(_ path: WritableKeyPath<Root, Int> & Sendable) -> Self {
    .int("heldout_examples", path, range: 0...10_000, doc: "Held-out examples per task for the before/after loss")
  }

  /// `block_list:` of the rewards and filters that use the toxicity check.
  static func blockList(_ path: WritableKeyPath<Root, String?> & Sendable) -> Self {
    .path("block_list", path, doc: "Blocked terms, one per line (default: the built-in English and Spanish lists)")
  }

  static func corpusShare(_ path: WritableKeyPath<Root, Double> & Sendable) -> Self {
    .float("corpus_share", path, range: 0...0.95, doc: "Share of rows that are corpus text (needs corpus:)")
  }

  /// `tasks:` — task name → mixture weight.
  static func taskWeights(_ path: WritableKeyPath<Root, [String: Double]> & Sendable, required: Bool = true,
                          doc: String) -> Self {
    .weights("tasks", path, keys: TaskSuite.names, required: required, doc: doc)
  }
}

/// Slots several task-training ops share.
enum Slots {
  static let mixedCorpus = InputSlot("corpus", kinds: [.corpus], required: false, literals: [BuiltinCorpus.libraryName],
                                     doc: "Corpus text mixed in at corpus_share")
}
