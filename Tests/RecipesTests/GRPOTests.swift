import Models
@testable import Recipes
import Tensors
import Testing

/// GRPO end to end on a tiny task: a byte-level model answers with one token, and the reward is 1 when
/// that token is a letter (about one token in five at initialisation). The clipped objective must raise
/// the mean reward well above where it starts, and the rollout batch must survive a save and restore.
@Suite struct GRPOTests {
  static let letters = BlockList(terms: (UnicodeScalar("a").value...UnicodeScalar("z").value).map { String(UnicodeScalar($0)!) })
  static var reward: RewardFunction { RewardFunction(terms: [.init(component: .toxicity(letters), weight: 1)]) }

  static func objective(reference: TransformerLM, innerSteps: Int = 1) -> GRPOObjective {
    let task = ArithmeticTask(digits: 1, operations: 1)
    let prompts: (Int) -> [RLPrompt] = { index in
      var rng = TaskRandom(seed: 11, stream: "grpo-test-\(index)")
      return (0..<8).map { _ in RLPrompt(example: task.example(split: .train, using: &rng), task: task, language: .english) }
    }
    let sampling = SamplingSettings(temperature: 1, maxNewTokens: 1)
    return GRPOObjective(prompts: prompts, reward: reward, reference: reference, tokenizer: .bytes,
                         settings: .init(group: 8, innerSteps: innerSteps, clip: 0.2, kl: 0.02, sampling: sampling), seed: 5)
  }

  static let config = ModelConfig(vocabularySize: TextTokenizer.bytes.vocabularySize, modelDim: 32, layerCount: 1,
                                  headCount: 2, contextLength: 64)

  @Test func theMeanRewardRisesOnATinyTask() throws {
    let model = TransformerLM(config: Self.config, seed: 3), reference = TransformerLM(config: Self.config, seed: 3)
    let objective = Self.objective(reference: reference)
    let optimizer = AdamW(parameters: model.parameters, settings: .init(
      schedule: LearningRateSchedule(peak: 3e-2, warmupSteps: 0, totalSteps: 30, shape: .constant), weightDecay: 0))
    var rewards: [Double] = []
    for step in 0..<30 {
      model.zeroGradients()
      let outcome = try objective.loss(step: step, model: model)
      outcome.loss.backward()
      optimizer.update()
      rewards.append(outcome.metrics.first { $0.name == "reward" }!.value)
      let kl = outcome.metrics.first { $0.name == "kl" }!.value
      #expect(kl >= 0, "k3 is never negative")
    }
    let first = rewards[0], last = rewards.suffix(5).reduce(0, +) / 5
    #expect(first < 0.35, "a letter starts at about one token in five (\(first))")
    #expect(last > first + 0.3, "mean reward \(first) → \(last): \(rewards)")
  }

  @Test func innerStepsReuseTheBatchAndItSurvivesASaveAndRestore() throws {
    let model = TransformerLM(config: Self.config, seed: 3), reference = TransformerLM(config: Self.config, seed: 3)
    let objective = Self.objective(reference: reference, innerSteps: 2)
    let optimizer = AdamW(parameters: model.parameters, settings: .init(
      schedule: LearningRateSchedule(peak: 3e-2, warmupSteps: 0, totalSteps: 4, shape: .constant), weightDecay: 0))
    model.zeroGradients()
    let first = try objective.loss(step: 0, model: model)
    #expect(first.metrics.first { $0.name == "clipped_share" }!.value == 0, "at the batch's first update the ratio is 1")
    first.loss.backward()
    optimizer.update()
    let saved = try objective.state(after: 0)
    let second = try objective.loss(step: 1, model: model)
    // A fresh objective restored from the bytes computes the same loss for the same weights.
    let restored = Self.objective(reference: reference, innerSteps: 2)
    try restored.restore(saved)
    let again = try restored.loss(step: 1, model: model)
    #expect(again.loss.value.scalars == second.loss.value.scalars)
    #expect(again.metrics.map(\.value) == second.metrics.map(\.value))
    #expect(second.metrics.first { $0.name == "reward" }!.value == first.metrics.first { $0.name == "reward" }!.value,
            "the second inner step reuses the first one's rollouts")
    #expect(throws: (any Error).self) { try restored.restore(Array(saved.dropLast(3))) }
  }
}
