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
public struct LongContextOp: StageOperation {
  public init() {}

  public let name = "long_context"
  /// 2: reports the held-out long-document loss before and after.
  public let version = 2
  public let summary = "Extend the context with RoPE scaling and adapt on long documents; passkey eval (V2)"

  public let schema = OpSchema(
    parameters: [
      ParameterSpec("context", .int, default: .int(8192), range: 16...1_048_576, doc: "The new context in tokens"),
      ParameterSpec("rope_scaling", .record([
        ParameterSpec("kind", .choice(["none", "linear", "ntk", "yarn"]), default: .string("yarn"),
                      doc: "Position interpolation, NTK-aware base change, or YaRN"),
        ParameterSpec("factor", .float, range: 1...1024, doc: "Stretch factor; default: new context ÷ old context"),
      ]), doc: "How RoPE stretches to the longer context"),
      ParameterSpec("passkey_share", .float, default: .float(0.5), range: 0...1,
                    doc: "Share of training sequences that are passkey documents"),
      ParameterSpec("tasks", .map(keys: TaskSuite.names, values: .float), default: .map([:]),
                    doc: "Task → weight of packed task sequences, so short-task skills survive the change"),
      ParameterSpec("task_share", .float, default: .float(0.3), range: 0...1,
                    doc: "Share of training sequences packed with task examples (when tasks: is given)"),
      Specs.world,
      ParameterSpec("passkey_lengths", .list(.int), default: .list([1024, 2048, 4096, 8192].map { .int($0) }),
                    range: 1...16, doc: "Lengths (tokens) at which passkey retrieval is measured"),
      ParameterSpec("passkey_examples", .int, default: .int(8), range: 1...1000, doc: "Passkeys per length"),
      Specs.train(steps: 20, batch: 1, lr: 3e-4, warmup: 2),
    ],
    inputs: [
      InputSlot("from", kinds: [.model], doc: "The model to extend (sparse attention keeps long sequences cheap)"),
      InputSlot("corpus", kinds: [.corpus], literals: [BuiltinCorpus.libraryName],
                doc: "Text the long training documents are made of"),
    ],
    outputs: [OutputSpec("model", kind: .model, doc: "The model with the longer context"),
              OutputSpec("metrics", kind: .metrics, doc: "Passkey accuracy by length, attention memory, loss curve")])

  public func validate(_ parameters: ParamValue) -> [ParameterProblem] {
    let context = parameters["context"].int ?? 0
    var problems: [ParameterProblem] = []
    if let too = parameters["passkey_lengths"].list?.compactMap(\.int).first(where: { $0 > context || $0 < 64 }) {
      problems.append(ParameterProblem(path: "passkey_lengths", "passkey length \(too) must be between 64 and the context \(context)"))
    }
    if let sequence = parameters[path: "train.sequence"].int, sequence > context {
      problems.append(ParameterProblem(path: "train.sequence", "train.sequence \(sequence) exceeds context \(context)"))
    }
    return problems
  }

  public func run(_ context: StageContext) throws -> StageOutput {
    let p = context.parameters
    let start = try ModelArtifact.input("from", of: context)
    let tokenizer = start.tokenizer
    var config = start.model.config
    let oldContext = config.contextLength, newContext = p["context"].int!
    let factor = Float(p[path: "rope_scaling.factor"].double ?? Double(newContext) / Double(oldContext))
    switch p[path: "rope_scaling.kind"].string {
    case "linear": config.ropeScaling = .linear(factor: factor)
    case "ntk": config.ropeScaling = .ntk(factor: factor)
    case "yarn": config.ropeScaling = .yarn(factor: factor, originalContext: oldContext)
    default: config.ropeScaling = .none
    }
    config.contextLength = newContext
    let model = try TransformerLM(config: config, tensors: start.model.tensors)
    context.log("context \(oldContext) → \(newContext), RoPE \(config.ropeScaling), attention \(config.attention)")

    let stream = TokenStream(documents: try CorpusText.documents(slot: "corpus", of: context), tokenizer: tokenizer)
    let passkeys = PasskeyDocuments(tokenizer: tokenizer)
    let train = p["train"]
    let sequence = train["sequence"].int ?? newContext
    let share = p["passkey_share"].double!
    let weights = TaskTraining.weights(p["tasks"])
    let mixture = weights.isEmpty ? nil : TaskMixture(weights: weights, world: UInt64(p["world"].int!))
    let taskShare = mixture == nil ? 0 : p["task_share"].double!
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

    let loop = TrainingLoop(context: context, model: model, settings: Specs.optimizer(train), steps: train["steps"].int!)
    try loop.run(batch: { step in
      var rng = TaskRandom(seed: context.seed, stream: "long_context/step/\(step)")
      var rows: [(tokens: [Int32], weights: [Float])] = []
      for _ in 0..<train["batch"].int! {
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

    let after = heldoutLoss()
    context.log("held-out long-document loss at \(sequence) tokens: \(String(format: "%.4f", before)) → \(String(format: "%.4f", after))")
    var metrics = MetricsArtifact()
    metrics.setCurve("loss", loop.losses)
    metrics.set("final_loss", Double(loop.finalLoss))
    metrics.set("heldout_loss_before", before)
    metrics.set("heldout_loss", after)
    var headline: [String: Double] = ["final_loss": Double(loop.finalLoss), "heldout_loss": after]
    let generator = Generator(model: model)
    for length in p["passkey_lengths"].list!.map({ $0.int! }) {
      if context.isCancelled { throw CancellationError() }
      var rng = TaskRandom(seed: context.seed, stream: "long_context/passkey/\(length)")
      var correct = 0
      let started = Date()
      var tokens = 0
      for _ in 0..<p["passkey_examples"].int! {
        let (prompt, answer) = passkeys.prompt(tokens: length - 8, split: .heldout, using: &rng)
        tokens += prompt.count
        var random = RandomStream(seed: context.seed, purpose: .evaluation)
        let out = generator.generate(prompts: [prompt], settings: SamplingSettings(maxNewTokens: 8),
                                     tokenizer: tokenizer, random: &random)[0]
        if TextMetrics.exactMatch(TaskFormat.answer(in: out.text), answer) { correct += 1 }
      }
      let seconds = Date().timeIntervalSince(started)
      let accuracy = Double(correct) / Double(p["passkey_examples"].int!)
      // Attention probabilities of one layer for a whole prompt: heads × length × attended keys.
      let attentionBytes = config.headCount * length * config.attention.maximumKeys(length: length) * 4
      metrics.set("passkey_accuracy/\(length)", accuracy)
      metrics.set("attention_bytes_per_layer/\(length)", Double(attentionBytes))
      headline["passkey@\(length)"] = accuracy
      context.log("passkey at \(length) tokens: \(correct)/\(p["passkey_examples"].int!) retrieved; "
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
