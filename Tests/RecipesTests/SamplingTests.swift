import Foundation
import Models
@testable import Recipes
import Tensors
import Testing

/// The sampling module: batched generation for many prompts, every sample judged by its verifier.
@Suite struct SamplingTests {
  private let model = ModelArtifact(
    model: TransformerLM(config: ModelConfig(vocabularySize: 263, modelDim: 16, layerCount: 1, headCount: 2,
                                             contextLength: 64), seed: 3),
    tokenizer: .bytes)

  private func prompts(_ n: Int) -> [SamplePrompt] {
    var rng = TaskRandom(seed: 9, stream: "sampling-test")
    let task = ArithmeticTask(digits: 1, operations: 1)
    return (0..<n).map { _ in SamplePrompt(example: task.example(split: .train, using: &rng), verifier: Verifier(task: task)) }
  }

  @Test func everyPromptGetsItsSamplesInOrderEachJudged() throws {
    let sampler = BatchedSampler(model, settings: SamplingSettings(temperature: 1, maxNewTokens: 6), batchSize: 4)
    var random = RandomStream(seed: 1, purpose: .sampling)
    let input = prompts(5)
    let samples = try sampler.sample(input, samplesPerPrompt: 3, random: &random)
    #expect(samples.map(\.prompt) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])
    for sample in samples {
      #expect(sample.tokens <= 6)
      #expect(sample.verdict == input[sample.prompt].verifier.judge(sample.completion, finished: sample.finished,
                                                                     for: input[sample.prompt].example))
    }
    #expect(Set(samples.map(\.completion)).count > 1, "temperature 1 gives different samples")
  }

  @Test func theSameStreamGivesTheSameSamples() throws {
    let sampler = BatchedSampler(model, settings: SamplingSettings(temperature: 0.8, maxNewTokens: 8))
    var a = RandomStream(seed: 4, purpose: .sampling), b = RandomStream(seed: 4, purpose: .sampling)
    let first = try sampler.sample(prompts(6), samplesPerPrompt: 2, random: &a).map(\.completion)
    let second = try sampler.sample(prompts(6), samplesPerPrompt: 2, random: &b).map(\.completion)
    #expect(first == second)
  }

  @Test func cancellationStopsBeforeTheNextBatch() {
    let sampler = BatchedSampler(model, settings: SamplingSettings(maxNewTokens: 4), batchSize: 2)
    var random = RandomStream(seed: 1, purpose: .sampling)
    var batches = 0
    #expect(throws: CancellationError.self) {
      _ = try sampler.sample(prompts(8), random: &random, progress: { _, _ in batches += 1 }, isCancelled: { batches >= 2 })
    }
    #expect(batches == 2)
  }

  @Test func scoredTasksAcceptAtTheirThresholdAndExactTasksOnlyWhenRight() {
    var rng = TaskRandom(seed: 2, stream: "verifier")
    let translation = TaskSuite.generator("translation", world: 1)
    let example = translation.example(split: .train, using: &rng)
    let exact = "reasoning\n\(TaskFormat.answerMarker)\(example.answer)"
    #expect(Verifier(task: translation, minScore: 0.99).judge(exact, finished: true, for: example).accepted)
    let wrong = "\(TaskFormat.answerMarker)zzz"
    let verdict = Verifier(task: translation, minScore: 0.5).judge(wrong, finished: true, for: example)
    #expect(!verdict.accepted && verdict.score < 0.5)
    #expect(Verifier(task: translation, minScore: 0).judge(wrong, finished: true, for: example).accepted,
            "a threshold of 0 accepts any finished sample of a scored task")
  }
}
