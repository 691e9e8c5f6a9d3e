import Foundation
import Models
import Pipeline
import Tensors

/// `sparse_attention` (V2): switches a model to a sparse attention pattern and adapts it with a short
/// training on its task mixture (and corpus text).
///
/// Reports the attention cost against dense at the stage's context (query–key dot products, which
/// time grows with: the attended pairs, plus for block_sparse the q · mean(k) block scores that choose
/// them, recorded on their own as `attention_block_scores`), and the held-out task loss of the dense
/// input, of the sparse model before adapting, and after.
struct SparseAttentionOp: MicroBatchedTraining {
  let name = "sparse_attention"
  /// 2: its task examples changed (QA, summarisation and entailment split by fact; new sentiment and
  /// entailment), so its model and held-out losses did.
  let version = 2
  let summary = "Switch a model to sliding-window or block-sparse attention and adapt it (V2)"

  struct Settings: SettingsGroup {
    var attention = AttentionSettings()
    var tasks: [String: Double] = [:]
    var corpusShare = 0.0
    var world = Int(BuiltinCorpus.defaultWorld)
    var heldoutExamples = 64
    var costContext: Int?
    var train = TrainSettings(steps: 100, batch: 16, lr: 5e-4, warmup: 10)
    static let fields: [SettingField<Self>] = [
      .group("attention", \.attention, doc: "The attention pattern"),
      .taskWeights(\.tasks, doc: "Task → weight of the adaptation mixture"),
      .corpusShare(\.corpusShare),
      .world(\.world),
      .heldoutExamples(\.heldoutExamples),
      .int("cost_context", \.costContext, range: 8...1_000_000,
           doc: "Sequence length of the cost report; default: the model's context"),
      .group("train", \.train, doc: "Optimisation settings"),
    ]
  }

  let defaults = Settings()
  let inputs = [
    InputSlot("from", kinds: [.model], doc: "The dense model to adapt"),
    Slots.mixedCorpus,
  ]
  let outputs = [OutputSpec("model", kind: .model, doc: "The model with sparse attention"),
                 OutputSpec("metrics", kind: .metrics, doc: "Attention cost and held-out losses")]

  func trainSettings(_ settings: Settings) -> TrainSettings { settings.train }

  func problems(in settings: Settings) -> [ParameterProblem] {
    var problems = TaskTraining.problems(settings.tasks) + settings.train.problems()
    if settings.attention.kind == .dense {
      problems.append(ParameterProblem(path: "attention.kind", "sparse_attention needs sliding_window or block_sparse"))
    }
    return problems
  }

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    let dense = try ModelArtifact.input("from", of: context)
    var config = dense.model.config
    let pattern = settings.attention.pattern
    config.attention = pattern
    let sparse = ModelArtifact(model: try TransformerLM(config: config, tensors: dense.model.tensors), tokenizer: dense.tokenizer)

    let length = settings.costContext ?? config.contextLength
    let densePairs = AttentionPattern.dense.scoredPairs(length: length)
    let sparsePairs = pattern.scoredPairs(length: length)
    // Only block_sparse scores blocks; the other patterns' metrics and log line stay as they were.
    let blockScores: Int?
    if case .blockSparse = pattern { blockScores = pattern.blockScores(length: length) } else { blockScores = nil }
    let ratio = Double(densePairs) / Double(sparsePairs)
    context.log("attention at \(length) tokens: \(sparsePairs) of \(densePairs) query–key pairs "
                + (blockScores.map { "(\($0) of them block scores) " } ?? "")
                + (ratio >= 1 ? String(format: "(%.1f× fewer)", ratio) : String(format: "(%.1f× more)", 1 / ratio)))

    let mixture = TaskMixture(weights: settings.tasks, world: UInt64(settings.world))
    let maxTokens = min(settings.train.sequence ?? config.contextLength, config.contextLength)
    let heldout = mixture.names.indices.map {
      mixture.examples($0, count: settings.heldoutExamples, split: .heldout, seed: context.seed, stream: "sparse_attention/report")
    }
    let denseLoss = heldout.map { TaskLoss.mean(dense.model, tokenizer: dense.tokenizer, examples: $0, maxTokens: maxTokens) }
    let options = TaskTraining.Options(train: settings.train, heldoutExamples: settings.heldoutExamples,
                                       corpusShare: settings.corpusShare)
    return try TaskTraining.run(context, start: sparse, mixture: mixture, options: options,
                                purpose: "sparse_attention") { metrics, headline in
      metrics.set("attention_pairs_dense", Double(densePairs))
      metrics.set("attention_pairs", Double(sparsePairs))
      if let blockScores { metrics.set("attention_block_scores", Double(blockScores)) }
      metrics.set("cost_context", Double(length))
      headline["attention_cost_reduction"] = Double(densePairs) / Double(sparsePairs)
      for (i, task) in mixture.names.enumerated() where !heldout[i].isEmpty {
        metrics.set("heldout_loss_dense/\(task)", denseLoss[i])
        let after = metrics["heldout_loss/\(task)"]?.double ?? .nan
        headline["heldout_loss_change/\(task)"] = after - denseLoss[i]
        context.log("\(task): held-out loss dense \(String(format: "%.4f", denseLoss[i])) → sparse adapted \(String(format: "%.4f", after))")
      }
    }
  }
}
