import Models
import Pipeline
import Tensors

/// The `model:`, `train:` and `attention:` groups that several ops share, and their
/// translation into engine settings.
enum Specs {
  // MARK: - model

  static let model = ParameterSpec("model", .record([
    ParameterSpec("d_model", .int, default: .int(128), range: 8...4096, doc: "Width of the residual stream"),
    ParameterSpec("layers", .int, default: .int(4), range: 1...64, doc: "Transformer blocks"),
    ParameterSpec("heads", .int, default: .int(4), range: 1...64, doc: "Attention heads"),
    ParameterSpec("kv_heads", .int, range: 1...64, doc: "Key/value heads (grouped-query attention); default: heads"),
    ParameterSpec("mlp_hidden", .int, range: 8...65_536, doc: "SwiGLU hidden size; default 8/3 · d_model"),
    ParameterSpec("context", .int, default: .int(256), range: 8...65_536, doc: "Longest sequence in tokens"),
    ParameterSpec("rope_base", .float, default: .float(10_000), range: 100...10_000_000, doc: "RoPE base frequency"),
    ParameterSpec("tied", .bool, default: .bool(false), doc: "LM head shares the embedding table"),
    ParameterSpec("experts", .record([
      ParameterSpec("routed", .int, default: .int(8), range: 1...256, doc: "Routed experts"),
      ParameterSpec("shared", .int, default: .int(1), range: 0...16, doc: "Shared experts every token uses"),
      ParameterSpec("top_k", .int, default: .int(2), range: 1...64, doc: "Routed experts per token"),
      ParameterSpec("hidden", .int, range: 8...65_536, doc: "Hidden size of one expert; default 2 · d_model"),
      ParameterSpec("gate", .choice(["softmax", "sigmoid"]), default: .string("softmax"), doc: "Gate scores"),
      ParameterSpec("balancing", .choice(["aux_loss", "aux_free"]), default: .string("aux_free"),
                    doc: "Auxiliary balance loss, or DeepSeek-V3's bias adjustment"),
      ParameterSpec("balance_rate", .float, default: .float(1e-3), range: 0...1,
                    doc: "Aux-loss weight, or the bias update rate"),
    ]), default: .null, doc: "Mixture of Experts in place of the dense MLP (omit for dense)"),
  ]), doc: "The transformer's shape")

  /// Problems of a `model:` group the schema cannot see alone (heads dividing d_model, …).
  static func problems(ofModel p: ParamValue, vocabulary: Int = 512) -> [ParameterProblem] {
    guard p.map != nil else { return [] }
    return modelConfig(p, vocabulary: vocabulary).problems.map { ParameterProblem(path: "model", $0) }
  }

  static func modelConfig(_ p: ParamValue, vocabulary: Int) -> ModelConfig {
    let d = p["d_model"].int!
    var moe: MoEConfig?
    if p["experts"].map != nil {
      let e = p["experts"], rate = Float(e["balance_rate"].double!)
      moe = MoEConfig(routedExperts: e["routed"].int!, sharedExperts: e["shared"].int!, topK: e["top_k"].int!,
                      expertHiddenDim: e["hidden"].int ?? 2 * d,
                      gate: e["gate"].string == "sigmoid" ? .sigmoid : .softmax,
                      balancing: e["balancing"].string == "aux_loss" ? .auxiliaryLoss(weight: rate)
                                                                      : .auxiliaryLossFree(biasUpdateRate: rate))
    }
    return ModelConfig(vocabularySize: vocabulary, modelDim: d, layerCount: p["layers"].int!,
                       headCount: p["heads"].int!, kvHeadCount: p["kv_heads"].int, mlpHiddenDim: p["mlp_hidden"].int,
                       contextLength: p["context"].int!, ropeBase: Float(p["rope_base"].double!),
                       tiedEmbeddings: p["tied"].bool!, moe: moe)
  }

  // MARK: - train

  /// A `train:` group with the op's own defaults (continued training wants a lower rate than pretraining).
  static func train(steps: Int, batch: Int, lr: Double, warmup: Int) -> ParameterSpec {
    ParameterSpec("train", .record([
      ParameterSpec("steps", .int, default: .int(steps), range: 1...10_000_000, doc: "Optimizer steps"),
      ParameterSpec("batch", .int, default: .int(batch), range: 1...4096, doc: "Sequences per step"),
      ParameterSpec("lr", .float, default: .float(lr), range: 1e-7...1, doc: "Peak learning rate"),
      ParameterSpec("warmup", .int, default: .int(warmup), range: 0...10_000_000, doc: "Linear warm-up steps"),
      ParameterSpec("schedule", .choice(["cosine", "constant"]), default: .string("cosine"),
                    doc: "After warm-up: cosine decay to 10% of the peak, or constant"),
      ParameterSpec("weight_decay", .float, default: .float(0.1), range: 0...10, doc: "Decoupled weight decay"),
      ParameterSpec("grad_clip", .float, default: .float(1), range: 0...1000, doc: "Global gradient-norm clip (0: none)"),
      ParameterSpec("sequence", .int, range: 8...65_536,
                    doc: "Tokens per training sequence; default: the model's context"),
    ]), doc: "Optimisation settings")
  }

  static func optimizer(_ p: ParamValue) -> AdamW.Settings {
    let steps = p["steps"].int!
    let schedule = LearningRateSchedule(peak: Float(p["lr"].double!), warmupSteps: min(p["warmup"].int!, steps),
                                        totalSteps: steps, shape: p["schedule"].string == "constant" ? .constant : .cosine)
    return AdamW.Settings(schedule: schedule, weightDecay: Float(p["weight_decay"].double!),
                          gradientClip: Float(p["grad_clip"].double!))
  }

  // MARK: - attention

  static let attention = ParameterSpec("attention", .record([
    ParameterSpec("kind", .choice(["dense", "sliding_window", "block_sparse"]), default: .string("sliding_window"),
                  doc: "Which keys each query sees"),
    ParameterSpec("window", .int, default: .int(64), range: 1...1_000_000, doc: "sliding_window: tokens back, itself included"),
    ParameterSpec("global_tokens", .int, default: .int(4), range: 0...1_000_000, doc: "sliding_window: first tokens every query sees"),
    ParameterSpec("block", .int, default: .int(32), range: 1...1_000_000, doc: "block_sparse: tokens per block"),
    ParameterSpec("top_blocks", .int, default: .int(2), range: 0...100_000, doc: "block_sparse: earlier blocks chosen per query"),
  ]), doc: "The attention pattern")

  static func attentionPattern(_ p: ParamValue) -> AttentionPattern {
    switch p["kind"].string {
    case "sliding_window": return .slidingWindow(window: p["window"].int!, globalTokens: p["global_tokens"].int!)
    case "block_sparse": return .blockSparse(block: p["block"].int!, topBlocks: p["top_blocks"].int!)
    default: return .dense
    }
  }

  // MARK: - Shared by the task-training ops

  static let world = ParameterSpec("world", .int, default: .int(Int(BuiltinCorpus.defaultWorld)), range: 0...1_000_000,
                                   doc: "The seeded world of the QA, summarisation, entailment and library tasks")
  static let heldoutExamples = ParameterSpec("heldout_examples", .int, default: .int(64), range: 0...10_000,
                                             doc: "Held-out examples per task for the before/after loss")
  static let corpusShare = ParameterSpec("corpus_share", .float, default: .float(0), range: 0...0.95,
                                         doc: "Share of rows that are corpus text (needs corpus:)")
  static let mixedCorpus = InputSlot("corpus", kinds: [.corpus], required: false, literals: [BuiltinCorpus.libraryName],
                                     doc: "Corpus text mixed in at corpus_share")
}
