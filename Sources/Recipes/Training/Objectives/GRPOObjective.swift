import Foundation
import Models
import Pipeline
import Tensors

/// One prompt of a reinforcement-learning batch.
struct RLPrompt {
  /// The task's example; for a `MultiTurnTask`, the conversation's final turn as the task drew it, whose
  /// opening turn is what is sampled (`ConversationRollouts`).
  var example: TaskExample
  var task: any TaskGenerator
  /// The language of the prompt, which the `language` reward wants the reasoning in.
  var language: PromptLanguage
}

/// GRPO (DeepSeekMath, R1): per prompt, a group of samples from the current policy; each sample's
/// reward against its group's (`GroupAdvantage`); the clipped ratio objective with the k3 KL to a
/// frozen reference (`Variable.clippedPolicyLoss`), averaged over response tokens.
///
/// Training step s uses rollout batch s / `innerSteps`: the batch is sampled at its first step (with
/// the policy of that moment, whose log-probabilities become π_old) and reused for the next
/// `innerSteps − 1` updates, where the ratio can move away from 1 and the clip can bind. The batch in
/// use is the objective's `state`, saved with the loop's checkpoints, so a run resumed between two
/// inner steps goes on with the same rollouts, bit for bit.
///
/// Multi-turn tasks (`dialogue`) are sampled turn by turn against their simulated user; a row then
/// holds the whole conversation, with the user's tokens out of the loss, and the reward scores the
/// final turn. The batch's encoding is the same either way.
final class GRPOObjective: TrainingObjective {
  struct Settings {
    var group = 8
    var innerSteps = 1
    var clip: Float = 0.2
    var kl: Float = 0.02
    var sampling: SamplingSettings
    /// Micro-batches of each rollout batch (`micro_batch`): each is sampled from its own stream, scored
    /// and learned from alone, so ranks can share them. 1: the whole batch at once.
    var microBatches = 1
  }

  private let prompts: (Int) -> [RLPrompt]
  private let reward: RewardFunction
  private let reference: TransformerLM
  private let tokenizer: TextTokenizer
  private let settings: Settings
  private let seed: UInt64
  private var batch: RolloutBatch?
  /// With micro-batches: the rollouts of batch `partsIndex`, by micro-batch (this rank's share).
  private var parts: [Int: RolloutBatch] = [:]
  private var partsIndex: Int?
  /// The ranks sharing the micro-batches (their rollouts are gathered for a checkpoint).
  private let processes: (any ProcessGroup)?
  var microBatches: Int { settings.microBatches }
  /// Seconds spent generating and learning so far (for the log; never in the metrics, which must be
  /// the same on every run).
  private(set) var generationSeconds = 0.0, learningSeconds = 0.0
  /// The part of `generationSeconds` spent on the reference's log-probabilities (`lineage bench rl`
  /// counts it as learning, as its PyTorch peer does).
  private(set) var referenceSeconds = 0.0

  /// - Parameters:
  ///   - prompts: the prompts of rollout batch b; must depend only on b.
  ///   - reference: the frozen model of the KL penalty (the stage's input model); never trained.
  init(prompts: @escaping (Int) -> [RLPrompt], reward: RewardFunction, reference: TransformerLM,
       tokenizer: TextTokenizer, settings: Settings, seed: UInt64, processes: (any ProcessGroup)? = nil) {
    self.processes = processes
    self.prompts = prompts
    self.reward = reward
    self.reference = reference
    reference.trainable = .only([])
    self.tokenizer = tokenizer
    self.settings = settings
    self.seed = seed
  }

  /// The rollouts a resumed run needs after step `step` (0-based), as bytes: the batch in use, or, with
  /// micro-batches, every micro-batch's rollouts gathered from the ranks (a collective call: every rank
  /// makes it) — none when the next step samples a new batch anyway.
  func state(after step: Int) throws -> [UInt8] {
    guard microBatches > 1 else { return batch?.encoded ?? [] }
    guard (step + 1) % settings.innerSteps != 0 else { return [] }
    var mine = SectionWriter()
    for m in parts.keys.sorted() { mine.append(parts[m]!.encoded + withUnsafeBytes(of: UInt64(m).littleEndian) { Array($0) }) }
    let all = try processes?.allGather(mine.bytes) ?? [mine.bytes]
    var out = SectionWriter()
    for bytes in all {
      var reader = SectionReader(bytes)
      while !reader.isAtEnd { out.append(try reader.next()) }
    }
    return out.bytes
  }

  /// Restores what `state(after:)` held.
  func restore(_ bytes: [UInt8]) throws {
    guard microBatches > 1 else {
      batch = bytes.isEmpty ? nil : try RolloutBatch(decoding: bytes)
      return
    }
    parts = [:]
    partsIndex = nil
    var reader = SectionReader(bytes)
    while !reader.isAtEnd {
      let record = try reader.next()
      guard record.count >= 8 else { throw StageFailure("the saved rollouts are damaged") }
      let m = Int(record.suffix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
      let part = try RolloutBatch(decoding: Array(record.dropLast(8)))
      guard partsIndex == nil || partsIndex == part.index else { throw StageFailure("the saved rollouts mix two batches") }
      partsIndex = part.index
      // Only this rank's share: the others' would be gathered again, and grow, at every save.
      if FixedTree.share(of: microBatches, rank: processes?.rank ?? 0, ranks: processes?.size ?? 1).contains(m) {
        parts[m] = part
      }
    }
  }

  /// Micro-batch `index` of the step's rollout batch: its prompts' groups, sampled from a stream of
  /// their own (so the rollouts never depend on which rank samples them), its loss a per-token mean
  /// over its own responses, divided by the micro-batch count (the step's loss is the micro-batches'
  /// mean).
  func loss(step: Int, microBatch m: Int, model: TransformerLM) throws -> ObjectiveStep {
    let index = step / settings.innerSteps
    if partsIndex != index {
      parts = [:]
      partsIndex = index
    }
    if parts[m] == nil {
      let all = prompts(index)
      guard all.count % microBatches == 0 else {
        throw StageFailure("\(all.count) prompts do not split into \(microBatches) micro-batches")
      }
      let size = all.count / microBatches
      let started = Date()
      parts[m] = rollouts(index, prompts: Array(all[(m * size)..<((m + 1) * size)]),
                          substream: UInt32(truncatingIfNeeded: index &* microBatches &+ m), model: model)
      generationSeconds += Date().timeIntervalSince(started)
    }
    var part = parts[m]!
    let outcome = learn(&part, model: model)
    parts[m] = part
    return ObjectiveStep(loss: outcome.loss.scaled(by: 1 / Float(microBatches)), tokens: outcome.tokens, metrics: outcome.metrics)
  }

  func loss(step: Int, model: TransformerLM) throws -> ObjectiveStep {
    let index = step / settings.innerSteps
    if batch?.index != index {
      let started = Date()
      batch = rollouts(index, prompts: prompts(index), substream: UInt32(truncatingIfNeeded: index), model: model)
      generationSeconds += Date().timeIntervalSince(started)
    }
    var b = batch!
    let outcome = learn(&b, model: model)
    batch = b
    return outcome
  }

  /// The clipped policy loss on a batch of rollouts (filling its π_old at its first update).
  private func learn(_ b: inout RolloutBatch, model: TransformerLM) -> ObjectiveStep {
    let started = Date()
    defer { learningSeconds += Date().timeIntervalSince(started) }
    let inputs = b.rows.map { Array($0.dropLast()) }
    let targets = b.rows.flatMap { $0.dropFirst() }
    let logits = model.logits(inputs)
    if b.oldLogProbabilities.isEmpty {
      // The batch's first update: the policy that sampled it is the model as it is now.
      b.oldLogProbabilities = logits.value.tokenLogProbabilities(targets: targets)
    }
    let tokens = PolicyTokens(targets: targets, weights: b.weights, advantages: b.tokenAdvantages,
                              oldLogProbabilities: b.oldLogProbabilities,
                              referenceLogProbabilities: settings.kl > 0 ? b.referenceLogProbabilities : nil)
    let (loss, statistics) = logits.clippedPolicyLoss(tokens, clip: settings.clip, klCoefficient: settings.kl)
    var metrics = b.metrics
    metrics.append(("kl", statistics.kl))
    metrics.append(("clipped_share", statistics.clippedShare))
    return ObjectiveStep(loss: loss, tokens: b.rows.reduce(0) { $0 + $1.count - 1 }, metrics: metrics)
  }

  /// Samples rollout batch `index` from the model as it is, scores it and computes the reference's
  /// log-probabilities.
  ///
  /// A prompt of a `MultiTurnTask` is a conversation, sampled turn by turn (`ConversationRollouts`): its
  /// row holds every reply and the simulated user's words between them, the user's tokens weighted 0,
  /// and its reward scores the last reply.
  private func rollouts(_ index: Int, prompts batchPrompts: [RLPrompt], substream: UInt32, model: TransformerLM) -> RolloutBatch {
    let generator = Generator(model: model)
    let contextLength = model.config.contextLength
    let sampler = ConversationRollouts(tokenizer: tokenizer, room: max(1, contextLength - settings.sampling.maxNewTokens))
    var random = RandomStream(seed: seed, purpose: .sampling, substream: substream)
    let group = settings.group
    let sampled = sampler.sample(batchPrompts, group: group) { contexts in
      generator.generate(prompts: contexts, settings: settings.sampling, tokenizer: tokenizer, random: &random)
    }
    let eos = tokenizer.id(of: .eos)
    // All of the batch at once: a reward model scores every rollout in one forward pass.
    let scores = reward.scores(sampled.enumerated().map { i, conversation in
      GRPOObjective.rollout(conversation, of: batchPrompts[i / group])
    })
    let advantage = GroupAdvantage(rewards: scores.map(\.total), groupSize: group)
    // Rows: the conversation (prompt, replies, the user's words), padded to one length; weights 1 on the
    // targets the model wrote.
    let conversations = sampled.map { $0.row(length: contextLength) }
    let length = conversations.map(\.tokens.count).max() ?? 1
    var rows: [[Int32]] = [], weights: [Float] = [], tokenAdvantages: [Float] = []
    for (i, conversation) in conversations.enumerated() {
      let row = conversation.tokens
      rows.append(row + [Int32](repeating: eos, count: length - row.count))
      // Target t predicts row[t + 1].
      for t in 0..<(length - 1) {
        weights.append(t + 1 < row.count && conversation.trained[t + 1] ? 1 : 0)
        tokenAdvantages.append(advantage.advantages[i])
      }
    }
    let inputs = rows.map { Array($0.dropLast()) }
    let referenceStarted = Date()
    let reference = self.reference.logits(inputs).value.tokenLogProbabilities(targets: rows.flatMap { $0.dropFirst() })
    referenceSeconds += Date().timeIntervalSince(referenceStarted)
    // What the batch reports (repeated for each of its inner steps).
    var metrics: [(name: String, value: Double)] = []
    let n = Double(scores.count)
    metrics.append(("reward", scores.reduce(0) { $0 + $1.total } / n))
    for term in reward.terms {
      let name = term.component.name
      metrics.append(("reward/\(name)", scores.reduce(0) { $0 + ($1.parts[name] ?? 0) } / n))
    }
    metrics.append(("response_length", Double(sampled.reduce(0) { $0 + $1.modelTokens }) / n))
    metrics.append(("zero_variance_share", advantage.zeroVarianceShare))
    return RolloutBatch(index: index, rows: rows, weights: weights, tokenAdvantages: tokenAdvantages,
                        oldLogProbabilities: [], referenceLogProbabilities: reference, metrics: metrics)
  }
}

extension GRPOObjective {
  /// What the reward reads of a sampled conversation: its last turn and last reply, with the prompt's
  /// task and language.
  static func rollout(_ conversation: ConversationRollouts.Sampled, of prompt: RLPrompt) -> Rollout {
    Rollout(example: conversation.turn, task: prompt.task, language: prompt.language,
            response: conversation.response, finished: conversation.finished)
  }
}

/// The rollouts of one GRPO batch, with everything the updates on it need.
struct RolloutBatch {
  var index: Int
  /// Prompt + response tokens, padded to one length.
  var rows: [[Int32]]
  /// Per target (row by row, `length − 1` each): 1 on response tokens, 0 on prompt and padding.
  var weights: [Float]
  /// Per target: its sample's advantage.
  var tokenAdvantages: [Float]
  /// Per target: log π_old, filled at the batch's first update.
  var oldLogProbabilities: [Float]
  var referenceLogProbabilities: [Float]
  var metrics: [(name: String, value: Double)]

  var encoded: [UInt8] {
    var out = SectionWriter()
    out.append(withUnsafeBytes(of: UInt64(index).littleEndian) { Array($0) })
    out.append(withUnsafeBytes(of: UInt64(rows.first?.count ?? 0).littleEndian) { Array($0) })
    out.append(rows.flatMap { $0 }.withUnsafeBytes { Array($0) })
    for floats in [weights, tokenAdvantages, oldLogProbabilities, referenceLogProbabilities] {
      out.append(floats.withUnsafeBytes { Array($0) })
    }
    out.append(Curves.encode(Dictionary(uniqueKeysWithValues: metrics.map { ($0.name, [$0.value]) })))
    out.append(Array(metrics.map(\.name).joined(separator: "\n").utf8))
    return out.bytes
  }

  init(index: Int, rows: [[Int32]], weights: [Float], tokenAdvantages: [Float], oldLogProbabilities: [Float],
       referenceLogProbabilities: [Float], metrics: [(name: String, value: Double)]) {
    self.index = index
    self.rows = rows
    self.weights = weights
    self.tokenAdvantages = tokenAdvantages
    self.oldLogProbabilities = oldLogProbabilities
    self.referenceLogProbabilities = referenceLogProbabilities
    self.metrics = metrics
  }

  init(decoding bytes: [UInt8]) throws {
    var reader = SectionReader(bytes)
    func integer(_ b: [UInt8]) throws -> Int {
      guard b.count == 8 else { throw StageFailure("the saved rollout batch is damaged") }
      return Int(b.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
    }
    func floats(_ b: [UInt8]) throws -> [Float] {
      guard b.count % 4 == 0 else { throw StageFailure("the saved rollout batch is damaged") }
      return b.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
    index = try integer(try reader.next())
    let length = try integer(try reader.next())
    let flat: [Int32] = try reader.next().withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
    guard length > 0, flat.count % length == 0 else { throw StageFailure("the saved rollout batch is damaged") }
    rows = stride(from: 0, to: flat.count, by: length).map { Array(flat[$0..<($0 + length)]) }
    weights = try floats(try reader.next())
    tokenAdvantages = try floats(try reader.next())
    oldLogProbabilities = try floats(try reader.next())
    referenceLogProbabilities = try floats(try reader.next())
    let values = try Curves.decode(try reader.next())
    let names = String(decoding: try reader.next(), as: UTF8.self).split(separator: "\n").map(String.init)
    metrics = try names.map { name in
      guard let v = values[name]?.first else { throw StageFailure("the saved rollout batch is damaged") }
      return (name, v)
    }
    let targets = rows.count * (length - 1)
    guard weights.count == targets, tokenAdvantages.count == targets, referenceLogProbabilities.count == targets,
          oldLogProbabilities.isEmpty || oldLogProbabilities.count == targets else {
      throw StageFailure("the saved rollout batch is damaged")
    }
  }
}
