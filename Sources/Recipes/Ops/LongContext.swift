import Foundation
import Models
import Pipeline
import Tensors

/// `long_context` (V2): extends a model's context (RoPE scaling: linear, NTK or YaRN), optionally turns
/// some layers into retrieval layers that attend beyond the sliding window (full attention, or blocks
/// chosen by content), and adapts it on long documents with passkeys hidden in them.
///
/// Reports passkey-retrieval accuracy at each of `passkey_lengths` tokens on held-out passkeys and
/// filler (with its standard error); held-out perplexity on long library documents by position, for
/// the input model and the extended one; and what attention costs per token at each length (the bytes
/// of saved attention weights and the query–key products, block scoring included). Measured times go
/// to the log (they vary from run to run, so they are kept out of the artifacts).
struct LongContextOp: MicroBatchedTraining {
  let name = "long_context"
  /// 2: reports the held-out long-document loss before and after.
  /// 3: its packed task examples changed (QA, summarisation and entailment split by fact; new sentiment
  /// and entailment).
  /// 4: retrieval layers; held-out passkeys and filler disjoint from training; perplexity by position
  /// and attention cost by length.
  let version = 4
  let summary = "Extend the context with RoPE scaling and retrieval layers; adapt on long documents; passkey eval (V2)"

  struct Settings: SettingsGroup {
    var context = 8192
    var ropeScaling = RopeScalingSettings()
    var retrieval: RetrievalSettings?
    var passkeyShare = 0.5
    var tasks: [String: Double] = [:]
    var taskShare = 0.3
    var world = Int(BuiltinCorpus.defaultWorld)
    var passkeyLengths = [1024, 2048, 4096, 8192]
    var passkeyExamples = 32
    var perplexityDocuments = 2
    var train = TrainSettings(steps: 20, batch: 1, lr: 3e-4, warmup: 2)
    static let fields: [SettingField<Self>] = [
      .int("context", \.context, range: 16...1_048_576, doc: "The new context in tokens"),
      .group("rope_scaling", \.ropeScaling, doc: "How RoPE stretches to the longer context"),
      .optionalGroup("retrieval", \.retrieval, fieldDefaults: RetrievalSettings(),
                     doc: "Layers that attend beyond the input's pattern (omit to keep every layer's pattern)"),
      .float("passkey_share", \.passkeyShare, range: 0...1, doc: "Share of training sequences that are passkey documents"),
      .taskWeights(\.tasks, required: false,
                   doc: "Task → weight of packed task sequences, so short-task skills survive the change"),
      .float("task_share", \.taskShare, range: 0...1,
             doc: "Share of training sequences packed with task examples (when tasks: is given)"),
      .world(\.world),
      .ints("passkey_lengths", \.passkeyLengths, count: 1...16, doc: "Lengths (tokens) at which passkey retrieval is measured"),
      .int("passkey_examples", \.passkeyExamples, range: 1...1000, doc: "Held-out passkeys per length"),
      .int("perplexity_documents", \.perplexityDocuments, range: 0...64,
           doc: "Held-out library sequences of the full context for perplexity by position (0: none)"),
      .group("train", \.train, doc: "Optimisation settings"),
    ]
  }

  /// `rope_scaling:` — how positions past the trained context are reached.
  struct RopeScalingSettings: SettingsGroup {
    enum Kind: String, SettingChoice { case none, linear, ntk, yarn }
    var kind = Kind.yarn
    var factor: Double?
    static let fields: [SettingField<Self>] = [
      .choice("kind", \.kind, doc: "Position interpolation, NTK-aware base change, or YaRN"),
      .float("factor", \.factor, range: 1...1024, doc: "Stretch factor; default: new context ÷ old context"),
    ]

    func scaling(from oldContext: Int, to newContext: Int) -> RoPEScaling {
      let factor = Float(self.factor ?? Double(newContext) / Double(oldContext))
      switch kind {
      case .none: return .none
      case .linear: return .linear(factor: factor)
      case .ntk: return .ntk(factor: factor)
      case .yarn: return .yarn(factor: factor, originalContext: oldContext)
      }
    }
  }

  /// `retrieval:` — the layers that reach the whole context. The other layers keep the input's
  /// pattern (a sliding window is cheap and local); these see every earlier token (`dense`) or, at
  /// less cost, their own block, the first and the `top_blocks` earlier blocks whose mean key best
  /// matches the query (`block_sparse`).
  struct RetrievalSettings: SettingsGroup {
    enum Kind: String, SettingChoice {
      case dense
      case blockSparse = "block_sparse"
    }
    /// What the adaptation updates.
    enum Trains: String, SettingChoice {
      /// Only the retrieval layers: the rest of the model is frozen, so short-task skill can change
      /// only through them (and the backward pass stops at the lowest of them).
      case retrieval
      /// Every weight.
      case all
    }
    var layers: [Int] = [3]
    var kind = Kind.dense
    var block = 64
    var topBlocks = 4
    var trains = Trains.retrieval
    static let fields: [SettingField<Self>] = [
      .ints("layers", \.layers, count: 1...64, doc: "Indices of the retrieval layers (0 is the first)"),
      .choice("kind", \.kind, doc: "Full attention, or blocks chosen by content"),
      .choice("trains", \.trains, doc: "Update only the retrieval layers, or every weight"),
      .int("block", \.block, range: 1...65_536, doc: "block_sparse: tokens per block"),
      .int("top_blocks", \.topBlocks, range: 0...65_536, doc: "block_sparse: earlier blocks chosen per query"),
    ]

    var pattern: AttentionPattern {
      switch kind {
      case .dense: return .dense
      case .blockSparse: return .blockSparse(block: block, topBlocks: topBlocks)
      }
    }
  }

  /// Tokens a passkey answer may take ("Answer: " and five digits, with room to spare); the prompt
  /// leaves them room within the measured length.
  static let answerTokens = 12

  let defaults = Settings()
  let inputs = [
    InputSlot("from", kinds: [.model], doc: "The model to extend (sparse attention keeps long sequences cheap)"),
    InputSlot("corpus", kinds: [.corpus], literals: [BuiltinCorpus.libraryName],
              doc: "Text the long training documents are made of"),
  ]
  let outputs = [OutputSpec("model", kind: .model, doc: "The model with the longer context"),
                 OutputSpec("metrics", kind: .metrics,
                            doc: "Passkey accuracy by length, perplexity by position, attention cost by length, loss curve")]

  func trainSettings(_ settings: Settings) -> TrainSettings { settings.train }

  func problems(in settings: Settings) -> [ParameterProblem] {
    let context = settings.context
    var problems = settings.train.problems()
    if let too = settings.passkeyLengths.first(where: { $0 > context || $0 < 64 }) {
      problems.append(ParameterProblem(path: "passkey_lengths", "passkey length \(too) must be between 64 and the context \(context)"))
    }
    if let sequence = settings.train.sequence, sequence > context {
      problems.append(ParameterProblem(path: "train.sequence", "train.sequence \(sequence) exceeds context \(context)"))
    }
    if let retrieval = settings.retrieval {
      if let negative = retrieval.layers.first(where: { $0 < 0 }) {
        problems.append(ParameterProblem(path: "retrieval.layers", "layer \(negative) is not a layer index (0 is the first)"))
      }
      if Set(retrieval.layers).count != retrieval.layers.count {
        problems.append(ParameterProblem(path: "retrieval.layers", "a layer is listed twice"))
      }
    }
    return problems
  }

  /// The extended model's configuration: the new context and RoPE scaling, and the retrieval layers'
  /// pattern in place of the input's.
  ///
  /// - Throws: `StageFailure` when a retrieval layer is past the model's last layer.
  static func extended(_ input: ModelConfig, settings: Settings) throws -> ModelConfig {
    var config = input
    config.ropeScaling = settings.ropeScaling.scaling(from: input.contextLength, to: settings.context)
    config.contextLength = settings.context
    if let retrieval = settings.retrieval {
      if let beyond = retrieval.layers.first(where: { $0 >= input.layerCount }) {
        throw StageFailure("retrieval.layers: layer \(beyond) does not exist (the model has \(input.layerCount) layers, 0–\(input.layerCount - 1))")
      }
      var patterns = input.attentionByLayer
      for layer in retrieval.layers { patterns[layer] = retrieval.pattern }
      config.layerAttention = patterns
    }
    return config
  }

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    let start = try ModelArtifact.input("from", of: context)
    let tokenizer = start.tokenizer
    let oldContext = start.model.config.contextLength, newContext = settings.context
    let config = try Self.extended(start.model.config, settings: settings)
    let model = try TransformerLM(config: config, tensors: start.model.tensors)
    let patterns = config.attentionByLayer.map { "\($0)" }.joined(separator: ", ")
    context.log("context \(oldContext) → \(newContext), RoPE \(config.ropeScaling), attention by layer [\(patterns)]")

    let stream = TokenStream(documents: try CorpusText.documents(slot: "corpus", of: context), tokenizer: tokenizer)
    let passkeys = PasskeyDocuments(tokenizer: tokenizer)
    let train = settings.train
    let sequence = train.sequence ?? newContext
    let share = settings.passkeyShare
    let mixture = settings.tasks.isEmpty ? nil : TaskMixture(weights: settings.tasks, world: UInt64(settings.world))
    let taskShare = mixture == nil ? 0 : settings.taskShare

    // Held-out long library documents, the full context each: perplexity by position before and after.
    let perplexityRows = LongDocuments.heldout(count: settings.perplexityDocuments, tokens: newContext,
                                               tokenizer: tokenizer, world: UInt64(settings.world), seed: context.seed)
    let buckets = PositionBuckets(context: newContext)
    var before = start.model.config
    before.contextLength = newContext  // the input as it is, only allowed to read further
    let beforeModel = try TransformerLM(config: before, tensors: start.model.tensors)
    let perplexityBefore = buckets.perplexity(of: beforeModel, on: perplexityRows)

    var trains = ParameterSelection.all
    if let retrieval = settings.retrieval, retrieval.trains == .retrieval { trains = .layers(Set(retrieval.layers)) }
    let objective = LanguageModelObjective(trains: trains, microBatches: train.microBatches, batch: { step in
      var rng = TaskRandom(seed: context.seed, stream: "long_context/step/\(step)")
      var rows: [(tokens: [Int32], weights: [Float])] = []
      for _ in 0..<train.batch {
        let draw = Double.random(in: 0..<1, using: &rng)
        if draw < share {
          let length = Int.random(in: min(256, sequence)...sequence, using: &rng)
          rows.append(passkeys.row(tokens: length, split: .train, using: &rng))
        } else if let mixture, draw < share + (1 - share) * taskShare {
          rows.append(TaskPacking.row(mixture, tokens: sequence + 1, tokenizer: tokenizer, using: &rng))
        } else {
          let window = stream.windows(1, length: sequence + 1, using: &rng)[0]
          rows.append((window, [Float](repeating: 1, count: window.count)))
        }
      }
      return paddedBatch(rows, pad: tokenizer.id(of: .pad))
    })
    let loop = TrainingLoop(context: context, model: model, objective: objective, settings: train.optimizer, steps: train.steps)
    try loop.run()

    var metrics = MetricsArtifact()
    metrics.setCurve("loss", loop.losses)
    metrics.set("final_loss", Double(loop.finalLoss))
    var headline: [String: Double] = ["final_loss": Double(loop.finalLoss)]
    loop.recordExpertMetrics(into: &metrics, headline: &headline)

    let perplexityAfter = buckets.perplexity(of: model, on: perplexityRows)
    for (index, range) in buckets.ranges.enumerated() where !perplexityRows.isEmpty {
      let label = buckets.label(index)
      metrics.set("perplexity_before/\(label)", perplexityBefore[index])
      metrics.set("perplexity/\(label)", perplexityAfter[index])
      context.log("held-out perplexity at positions \(range.lowerBound)–\(range.upperBound): "
                  + String(format: "%.3f → %.3f", perplexityBefore[index], perplexityAfter[index]))
    }
    if let last = perplexityAfter.last, !perplexityRows.isEmpty { headline["perplexity@\(buckets.label(buckets.ranges.count - 1))"] = last }

    let generator = Generator(model: model)
    for length in settings.passkeyLengths {
      if context.isCancelled { throw CancellationError() }
      var rng = TaskRandom(seed: context.seed, stream: "long_context/passkey/\(length)")
      var correct = 0
      let started = Date()
      var tokens = 0
      for _ in 0..<settings.passkeyExamples {
        let (prompt, answer) = passkeys.prompt(tokens: length - Self.answerTokens, split: .heldout, using: &rng)
        tokens += prompt.count
        var random = RandomStream(seed: context.seed, purpose: .evaluation)
        let out = generator.generate(prompts: [prompt], settings: SamplingSettings(maxNewTokens: Self.answerTokens),
                                     tokenizer: tokenizer, random: &random)[0]
        if TextMetrics.exactMatch(TaskFormat.answer(in: out.text), answer) { correct += 1 }
      }
      let seconds = Date().timeIntervalSince(started)
      let n = Double(settings.passkeyExamples)
      let accuracy = Double(correct) / n
      metrics.set("passkey_accuracy/\(length)", accuracy)
      metrics.set("passkey_accuracy/\(length)_se", (accuracy * (1 - accuracy) / n).squareRoot())
      headline["passkey@\(length)"] = accuracy
      context.log("passkey at \(length) tokens: \(correct)/\(settings.passkeyExamples) retrieved; "
                  + String(format: "%.1f µs per prompt token", seconds / Double(max(1, tokens)) * 1e6))
    }
    for length in AttentionCost.lengths(upTo: newContext) {
      let cost = AttentionCost(config: config, length: length)
      metrics.set("attention_bytes_per_token/\(length)", cost.bytesPerToken)
      metrics.set("attention_flops_per_token/\(length)", cost.flopsPerToken)
      context.log("attention at \(length) tokens: " + String(format: "%.1f KiB saved and %.2f MFLOP per token",
                                                             cost.bytesPerToken / 1024, cost.flopsPerToken / 1e6))
    }
    return StageOutput(artifacts: ["model": ModelArtifact(model: model, tokenizer: tokenizer).bytes,
                                   "metrics": metrics.bytes],
                       metrics: headline)
  }
}

/// What attention costs a model per token of a sequence, summed over its layers: the attention weights
/// a training step saves for the backward pass (heads × the most keys a query sees, 4 bytes each, as
/// the kernels allocate), and the forward pass's floating-point operations (q·k and p·v over the
/// attended pairs, 2 · headDim each; q·mean(k) for each block score of block-sparse layers).
struct AttentionCost {
  var bytesPerToken: Double
  var flopsPerToken: Double

  init(config: ModelConfig, length: Int) {
    var bytes = 0.0, flops = 0.0
    for pattern in config.attentionByLayer {
      bytes += Double(config.headCount * pattern.maximumKeys(length: length) * 4)
      // q·k and p·v over the attended pairs; q·mean(k) over the block scores.
      let products = 4 * pattern.attendedPairs(length: length) + 2 * pattern.blockScores(length: length)
      flops += Double(config.headCount * config.headDim) * Double(products) / Double(length)
    }
    bytesPerToken = bytes
    flopsPerToken = flops
  }

  /// 512, 1024, … up to `context` (and `context` itself).
  static func lengths(upTo context: Int) -> [Int] {
    var out: [Int] = []
    var length = 512
    while length < context { out.append(length); length *= 2 }
    return out + [context]
  }
}

/// Positions of a long sequence in doubling buckets: 0–1k, 1–2k, 2–4k, 4–8k, … up to the context.
struct PositionBuckets {
  let ranges: [Range<Int>]

  init(context: Int) {
    var ranges: [Range<Int>] = []
    var low = 0, high = min(1024, context)
    while low < context {
      ranges.append(low..<high)
      low = high
      high = min(context, high * 2)
    }
    self.ranges = ranges
  }

  /// The bucket's positions in metric names: "0k-1k", "1k-2k", … (a bound that is not a whole number
  /// of 1,024 tokens in tokens: "1k-1536").
  func label(_ index: Int) -> String {
    func k(_ n: Int) -> String { n % 1024 == 0 ? "\(n / 1024)k" : "\(n)" }
    return "\(k(ranges[index].lowerBound))-\(k(ranges[index].upperBound))"
  }

  /// Perplexity of each bucket's next-token predictions (position t predicts token t + 1) over `rows`,
  /// through the generation path (no autograd graph, so an 8k sequence needs no saved attention weights).
  func perplexity(of model: TransformerLM, on rows: [[Int32]]) -> [Double] {
    var sums = [Double](repeating: 0, count: ranges.count), counts = [Int](repeating: 0, count: ranges.count)
    let generator = Generator(model: model)
    let vocabulary = model.config.vocabularySize
    for row in rows {
      let inputs = Array(row.dropLast())
      let logits = generator.incrementalLogits(inputs, prefix: inputs.count)
      for (bucket, range) in ranges.enumerated() {
        for t in range where t < inputs.count {
          let rowLogits = logits[(t * vocabulary)..<((t + 1) * vocabulary)]
          let m = rowLogits.max()!
          let logSum = Double(m) + log(rowLogits.reduce(0.0) { $0 + exp(Double($1 - m)) })
          sums[bucket] += logSum - Double(logits[t * vocabulary + Int(row[t + 1])])
          counts[bucket] += 1
        }
      }
    }
    return zip(sums, counts).map { exp($0 / Double(max(1, $1))) }
  }
}

/// Long sequences of held-out library documents (never in a training corpus: the library keeps one
/// document in ten out, by a hash of its text), joined until each row holds `tokens + 1` tokens; at
/// most `count` rows, from at most `maximumDocuments` documents.
enum LongDocuments {
  static func heldout(count: Int, tokens: Int, tokenizer: TextTokenizer, world: UInt64, seed: UInt64) -> [[Int32]] {
    guard count > 0 else { return [] }
    // The library's held-out documents come in a fixed order (a longer draw starts with a shorter
    // one), so draw a few and double until they fill the rows: one in ten drawn documents is held
    // out, and two 8k rows need about fifty, not the cap of 400.
    var drawn = 32
    while true {
      let documents = BuiltinCorpus.library(documents: drawn, world: world, split: .heldout, seed: seed)
      var rows: [[Int32]] = []
      var current: [Int32] = []
      for document in documents where rows.count < count {
        current += tokenizer.encode(document + "\n\n")
        if current.count >= tokens + 1 {
          rows.append(Array(current.prefix(tokens + 1)))
          current = []
        }
      }
      if rows.count == count || drawn >= maximumDocuments { return rows }
      drawn = min(2 * drawn, maximumDocuments)
    }
  }

  /// The most held-out documents drawn; rows they cannot fill are left out.
  static let maximumDocuments = 400
}

/// Passkey documents measured in tokens of a given tokenizer.
struct PasskeyDocuments {
  let tokenizer: TextTokenizer
  /// Bytes per token of passkey filler text under this tokenizer.
  let bytesPerToken: Double

  init(tokenizer: TextTokenizer) {
    self.tokenizer = tokenizer
    var rng = TaskRandom(seed: 0, stream: "passkey/calibration")
    let sample = PasskeyTask(length: 4096).example(split: .train, using: &rng)
    bytesPerToken = Double(sample.prompt.utf8.count) / Double(tokenizer.encode(sample.prompt).count)
  }

  /// A prompt of about `tokens` tokens (never more) and its passkey.
  func prompt(tokens: Int, split: Split, using rng: inout TaskRandom) -> (tokens: [Int32], answer: String) {
    let example = PasskeyTask(length: max(64, Int(Double(tokens) * bytesPerToken * 0.97))).example(split: split, using: &rng)
    return (Array(tokenizer.encode(TaskFormat.prompt(example)).suffix(tokens)), example.answer)
  }

  /// A training row of about `tokens` tokens: the passkey document (masked) and its answer.
  func row(tokens: Int, split: Split, using rng: inout TaskRandom) -> (tokens: [Int32], weights: [Float]) {
    let example = PasskeyTask(length: max(64, Int(Double(tokens) * bytesPerToken * 0.95))).example(split: split, using: &rng)
    return TaskFormat.encode(example, with: tokenizer, maxTokens: tokens + 1)
  }
}

/// Task examples packed one after another into one long training sequence (each prompt masked).
enum TaskPacking {
  static func row(_ mixture: TaskMixture, tokens: Int, tokenizer: TextTokenizer,
                  using rng: inout TaskRandom) -> (tokens: [Int32], weights: [Float]) {
    var out: [Int32] = [], weights: [Float] = []
    while out.count < tokens {
      let task = mixture.drawTask(using: &rng)
      let example = mixture.generators[task].example(split: .train, using: &rng)
      let (t, w) = TaskFormat.encode(example, with: tokenizer, maxTokens: tokens)
      out += t
      weights += w
    }
    return (Array(out.prefix(tokens)), Array(weights.prefix(tokens)))
  }
}
