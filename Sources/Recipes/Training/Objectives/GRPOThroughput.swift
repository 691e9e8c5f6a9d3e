import Foundation
import Models
import Tensors

/// Timed GRPO steps for `lineage bench rl`: the `rl` op's objective (`GRPOObjective`), rewards and
/// optimiser on a fresh model, one step at a time, each split into generation and learning.
///
/// A step is what `TrainingLoop` does with the objective: zero the gradients, the objective's loss
/// (rollouts when a new batch starts, then the policy's forward pass and the clipped loss), backward,
/// AdamW. Prompts are the PyTorch prototype's (`../shared/bench/torch_grpo.py`): the sum of
/// `operands` numbers of `digits` digits, written `Q:123+456+789`, which with `<s>` and the newline
/// of `TaskFormat.prompt` is 15 tokens, as the peer's `<bos>Q:123+456+789=` is. Responses can be
/// forced to a fixed length (no stop at EOS), so that both engines generate the same tokens.
public final class GRPOThroughput {
  public struct Settings: Sendable {
    public var prompts: Int
    public var group: Int
    /// Tokens generated per response.
    public var responseTokens: Int
    /// Generate every one of `responseTokens` even after an EOS (the peer's untrained model never
    /// stops early either); false stops at EOS as the `rl` op does.
    public var fixedLength: Bool
    public var temperature: Float
    public var operands: Int
    public var digits: Int
    public var seed: UInt64

    public init(prompts: Int = 16, group: Int = 8, responseTokens: Int = 74, fixedLength: Bool = true,
                temperature: Float = 0.7, operands: Int = 3, digits: Int = 3, seed: UInt64 = 0) {
      self.prompts = prompts
      self.group = group
      self.responseTokens = responseTokens
      self.fixedLength = fixedLength
      self.temperature = temperature
      self.operands = operands
      self.digits = digits
      self.seed = seed
    }
  }

  /// One step's wall-clock split.
  public struct Step: Sendable {
    /// Sampling the rollouts and scoring them (prompts, the KV-cache generator, rewards, advantages).
    public var generationSeconds: Double
    /// The reference's log-probabilities, the policy's forward and backward passes and the update.
    public var learningSeconds: Double
    /// Generated tokens (every response's, EOS included).
    public var generatedTokens: Int
    /// Tokens of the rows the policy learns on (prompt + response, padded; inputs only).
    public var learnedTokens: Int

    public var seconds: Double { generationSeconds + learningSeconds }
  }

  public let model: TransformerLM
  public let settings: Settings
  private let objective: GRPOObjective
  private let optimizer: AdamW
  private var stepIndex = 0

  /// A fresh model of `config` (byte tokenizer: `config.vocabularySize` must be at least its 263 ids)
  /// with the `rl` op's defaults: clip 0.2, k3 KL 0.02 to a frozen copy, one update per batch, rewards
  /// accuracy 1 + format 0.1, AdamW at lr 1e-4 with gradient clip 1.
  public init(config: ModelConfig, settings: Settings) {
    precondition(config.vocabularySize >= ByteTokenizer().vocabularySize, "the byte tokenizer needs 263 ids")
    self.settings = settings
    model = TransformerLM(config: config, seed: settings.seed)
    let reference = TransformerLM(config: config, seed: settings.seed)   // the same weights, never trained
    let task = ArithmeticTask(digits: settings.digits, operations: settings.operands - 1)
    let (seed, operands, digits, count) = (settings.seed, settings.operands, settings.digits, settings.prompts)
    let prompts: (Int) -> [RLPrompt] = { index in
      var rng = TaskRandom(seed: seed, stream: "bench/rl/prompts/\(index)")
      let high = (0..<digits).reduce(1) { acc, _ in acc * 10 }
      return (0..<count).map { _ in
        let values = (0..<operands).map { _ in Int.random(in: (high / 10)..<high, using: &rng) }
        let example = TaskExample(task: ArithmeticTask.name, split: .train,
                                  prompt: "Q:" + values.map(String.init).joined(separator: "+"),
                                  reasoning: "", answer: String(values.reduce(0, +)))
        return RLPrompt(example: example, task: task, language: .english)
      }
    }
    let rl = ReinforcementLearningOp.Settings()
    let reward = RewardFunction(terms: rl.rewards.terms(blockList: .builtin))
    let sampling = SamplingSettings(temperature: settings.temperature, maxNewTokens: settings.responseTokens,
                                    stopAtEOS: !settings.fixedLength)
    objective = GRPOObjective(
      prompts: prompts, reward: reward, reference: reference, tokenizer: .bytes,
      settings: .init(group: settings.group, innerSteps: rl.innerSteps, clip: Float(rl.clip), kl: Float(rl.kl),
                      sampling: sampling),
      seed: settings.seed)
    model.trainable = objective.trains
    optimizer = AdamW(parameters: model.parameters, settings: rl.train.optimizer, trains: objective.trains)
  }

  /// Runs the next GRPO step (a new batch of rollouts, one update) and says where its time went.
  public func step() throws -> Step {
    let generationBefore = objective.generationSeconds, referenceBefore = objective.referenceSeconds
    let started = Date()
    model.zeroGradients()
    let outcome = try objective.loss(step: stepIndex, model: model)
    outcome.loss.backward()
    _ = optimizer.update()
    let seconds = Date().timeIntervalSince(started)
    stepIndex += 1
    let generation = (objective.generationSeconds - generationBefore) - (objective.referenceSeconds - referenceBefore)
    let rows = settings.prompts * settings.group
    let generated = outcome.metrics.first { $0.name == "response_length" }.map { Int(($0.value * Double(rows)).rounded()) } ?? 0
    return Step(generationSeconds: generation, learningSeconds: seconds - generation, generatedTokens: generated,
                learnedTokens: outcome.tokens)
  }
}
