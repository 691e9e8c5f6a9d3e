import Foundation
import Models
import Pipeline
import Tensors

/// `long_context` (V2): extends a model's context (RoPE scaling: linear, NTK or YaRN) and adapts it on
/// long documents with passkeys hidden in them.
///
/// Reports passkey-retrieval accuracy at each of `passkey_lengths` tokens, and how attention memory
/// grows with length; the measured time per token goes to the log (it varies from run to run, so it is
/// kept out of the artifacts).
struct LongContextOp: TypedOperation {
  let name = "long_context"
  /// 2: reports the held-out long-document loss before and after.
  /// 3: its packed task examples changed (QA, summarisation and entailment split by fact; new sentiment
  /// and entailment).
  let version = 3
  let summary = "Extend the context with RoPE scaling and adapt on long documents; passkey eval (V2)"

  struct Settings: SettingsGroup {
    var context = 8192
    var ropeScaling = RopeScalingSettings()
    var passkeyShare = 0.5
    var tasks: [String: Double] = [:]
    var taskShare = 0.3
    var world = Int(BuiltinCorpus.defaultWorld)
    var passkeyLengths = [1024, 2048, 4096, 8192]
    var passkeyExamples = 8
    var train = TrainSettings(steps: 20, batch: 1, lr: 3e-4, warmup: 2)
    static let fields: [SettingField<Self>] = [
      .int("context", \.context, range: 16...1_048_576, doc: "The new context in tokens"),
      .group("rope_scaling", \.ropeScaling, doc: "How RoPE stretches to the longer context"),
      .float("passkey_share", \.passkeyShare, range: 0...1, doc: "Share of training sequences that are passkey documents"),
      .taskWeights(\.tasks, required: false,
                   doc: "Task → weight of packed task sequences, so short-task skills survive the change"),
      .float("task_share", \.taskShare, range: 0...1,
             doc: "Share of training sequences packed with task examples (when tasks: is given)"),
      .world(\.world),
      .ints("passkey_lengths", \.passkeyLengths, count: 1...16, doc: "Lengths (tokens) at which passkey retrieval is measured"),
      .int("passkey_examples", \.passkeyExamples, range: 1...1000, doc: "Passkeys per length"),
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

  let defaults = Settings()
  let inputs = [
    InputSlot("from", kinds: [.model], doc: "The model to extend (sparse attention keeps long sequences cheap)"),
    InputSlot("corpus", kinds: [.corpus], literals: [BuiltinCorpus.libraryName],
              doc: "Text the long training documents are made of"),
  ]
  let outputs = [OutputSpec("model", kind: .model, doc: "The model with the longer context"),
                 OutputSpec("metrics", kind: .metrics, doc: "Passkey accuracy by length, attention memory, loss curve")]

  func problems(in settings: Settings) -> [ParameterProblem] {
    let context = settings.context
    var problems: [ParameterProblem] = []
    if let too = settings.passkeyLengths.first(where: { $0 > context || $0 < 64 }) {
      problems.append(ParameterProblem(path: "passkey_lengths", "passkey length \(too) must be between 64 and the context \(context)"))
    }
    if let sequence = settings.train.sequence, sequence > context {
      problems.append(ParameterProblem(path: "train.sequence", "train.sequence \(sequence) exceeds context \(context)"))
    }
    return problems
  }

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    let start = try ModelArtifact.input("from", of: context)
    let tokenizer = start.tokenizer
    var config = start.model.config
    let oldContext = config.contextLength, newContext = settings.context
    config.ropeScaling = settings.ropeScaling.scaling(from: oldContext, to: newContext)
    config.contextLength = newContext
    let model = try TransformerLM(config: config, tensors: start.model.tensors)
    context.log("context \(oldContext) → \(newContext), RoPE \(config.ropeScaling), attention \(config.attention)")

    let stream = TokenStream(documents: try CorpusText.documents(slot: "corpus", of: context), tokenizer: tokenizer)
    let passkeys = PasskeyDocuments(tokenizer: tokenizer)
    let train = settings.train
    let sequence = train.sequence ?? newContext
    let share = settings.passkeyShare
    let mixture = settings.tasks.isEmpty ? nil : TaskMixture(weights: settings.tasks, world: UInt64(settings.world))
    let taskShare = mixture == nil ? 0 : settings.taskShare
    // Held-out passkey documents at the training length: their loss before and after adapting.
    var heldoutRng = TaskRandom(seed: context.seed, stream: "long_context/heldout")
    let heldout = (0..<4).map { _ in
      let row = passkeys.row(tokens: sequence, split: .heldout, using: &heldoutRng)
      return (tokens: row.tokens, weights: [Float](repeating: 1, count: row.tokens.count))  // every token, not only the key
    }
    let heldoutBatch = paddedBatch(heldout, pad: tokenizer.id(of: .pad))
    func heldoutLoss() -> Double {
      Double(model.loss(heldoutBatch.tokens, weights: heldoutBatch.weights).value.scalars[0])
    }
    let before = heldoutLoss()

    let objective = LanguageModelObjective(batch: { step in
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

    let after = heldoutLoss()
    context.log("held-out long-document loss at \(sequence) tokens: \(String(format: "%.4f", before)) → \(String(format: "%.4f", after))")
    var metrics = MetricsArtifact()
    metrics.setCurve("loss", loop.losses)
    metrics.set("final_loss", Double(loop.finalLoss))
    metrics.set("heldout_loss_before", before)
    metrics.set("heldout_loss", after)
    var headline: [String: Double] = ["final_loss": Double(loop.finalLoss), "heldout_loss": after]
    let generator = Generator(model: model)
    for length in settings.passkeyLengths {
      if context.isCancelled { throw CancellationError() }
      var rng = TaskRandom(seed: context.seed, stream: "long_context/passkey/\(length)")
      var correct = 0
      let started = Date()
      var tokens = 0
      for _ in 0..<settings.passkeyExamples {
        let (prompt, answer) = passkeys.prompt(tokens: length - 8, split: .heldout, using: &rng)
        tokens += prompt.count
        var random = RandomStream(seed: context.seed, purpose: .evaluation)
        let out = generator.generate(prompts: [prompt], settings: SamplingSettings(maxNewTokens: 8),
                                     tokenizer: tokenizer, random: &random)[0]
        if TextMetrics.exactMatch(TaskFormat.answer(in: out.text), answer) { correct += 1 }
      }
      let seconds = Date().timeIntervalSince(started)
      let accuracy = Double(correct) / Double(settings.passkeyExamples)
      // Attention probabilities of one layer for a whole prompt: heads × length × attended keys.
      let attentionBytes = config.headCount * length * config.attention.maximumKeys(length: length) * 4
      metrics.set("passkey_accuracy/\(length)", accuracy)
      metrics.set("attention_bytes_per_layer/\(length)", Double(attentionBytes))
      headline["passkey@\(length)"] = accuracy
      context.log("passkey at \(length) tokens: \(correct)/\(settings.passkeyExamples) retrieved; "
                  + String(format: "%.1f µs per prompt token; attention %.1f MiB per layer",
                           seconds / Double(max(1, tokens)) * 1e6, Double(attentionBytes) / 1_048_576))
    }
    return StageOutput(artifacts: ["model": ModelArtifact(model: model, tokenizer: tokenizer).bytes,
                                   "metrics": metrics.bytes],
                       metrics: headline)
  }
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
