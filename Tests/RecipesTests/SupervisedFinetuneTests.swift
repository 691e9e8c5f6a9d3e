import Foundation
import Pipeline
@testable import Recipes
import Testing

/// `sft` and the response formats it writes.
@Suite struct SupervisedFinetuneTests {
  static let example = TaskExample(task: "arithmetic", split: .train, prompt: "What is 2 + 3 * 4?",
                                   reasoning: "3 * 4 = 12\n2 + 12 = 14", answer: "14")

  @Test func theThinkAnswerFormWrapsTheStepsAndTheAnswer() {
    #expect(TaskFormat.completion(Self.example, as: .thinkAnswer)
      == "<think>3 * 4 = 12\n2 + 12 = 14</think><answer>14</answer></s>")
    #expect(TaskFormat.completion(Self.example) == "3 * 4 = 12\n2 + 12 = 14\nAnswer: 14</s>", "plain is unchanged")
    // The answer is read back from either form; a tagged response's last answer block wins.
    #expect(TaskFormat.answer(in: "<think>x</think><answer>14</answer></s>") == "14")
    #expect(TaskFormat.answer(in: "<think>Answer: 3</think><answer>14</answer>") == "14")
    #expect(TaskFormat.answer(in: "steps\nAnswer: 14") == "14")
    // Only the response is trained: the prompt's tokens weigh 0, the tagged response's weigh 1.
    let (tokens, weights) = TaskFormat.encode(Self.example, with: .bytes, maxTokens: 1000, as: .thinkAnswer)
    let prompt = TextTokenizer.bytes.encode(TaskFormat.prompt(Self.example)).count
    #expect(weights.prefix(prompt).allSatisfy { $0 == 0 } && weights.dropFirst(prompt).allSatisfy { $0 == 1 })
    #expect(TextTokenizer.bytes.decode(Array(tokens.dropFirst(prompt))).hasPrefix("<think>"))
  }

  /// `worked_steps`: the share of task rows that keep their steps; the others carry an empty think block.
  @Test(arguments: [(0.0, 0, 0.0), (1.0, 1, 1.0), (0.5, 0.35, 0.65)])
  func workedStepsSetTheShareOfRowsWithTheirSteps(share: Double, low: Double, high: Double) {
    var batches = TaskBatches(mixture: TaskMixture(weights: ["arithmetic": 1], world: 1), corpus: nil, corpusShare: 0,
                              tokenizer: .bytes, batch: 50, maxTokens: 200, seed: 3, purpose: "test")
    batches.response = .thinkAnswer
    batches.workedSteps = share
    let rows = (0..<8).flatMap { batches.batch($0).tokens }.map { TextTokenizer.bytes.decode($0) }
    let withSteps = Double(rows.filter { !$0.contains("<think></think>") }.count) / Double(rows.count)
    #expect(rows.count == 400 && withSteps >= low && withSteps <= high, "\(withSteps) of rows keep their steps")
    #expect(rows.allSatisfy { $0.contains("<answer>") })
  }

  @Test func sftLowersTheHeldOutLossOfTheTaggedResponses() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": TrainingOpsTests.pretrain + """
        cold:
          op: sft
          from: v1
          tasks: {arithmetic: 1}
          heldout_examples: 16
          train: {steps: 30, batch: 8, lr: 5e-3}

      """])
    try await h.run()
    let m = try h.metrics("cold")
    let before = try #require(m["heldout_loss_before/arithmetic"] as? Double)
    let after = try #require(m["heldout_loss/arithmetic"] as? Double)
    #expect(after < 0.7 * before, "held-out loss of <think>…</think><answer>…</answer> responses: \(before) → \(after)")
  }

  @Test func aDatasetShareWithoutDatasetsFailsClearly() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": TrainingOpsTests.pretrain + """
        cold:
          op: sft
          from: v1
          tasks: {arithmetic: 1}
          dataset_share: 0.5
          train: {steps: 3}

      """])
    let summary = try await Executor(recipe: try h.recipe(), store: h.store, events: NullEventSink()).run()
    guard case .failed(let message)? = summary.outcomes["cold"] else {
      Issue.record("sft with dataset_share and no dataset stage must fail")
      return
    }
    #expect(message.contains("no dataset: stage"), "\(message)")
  }
}
