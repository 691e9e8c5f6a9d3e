import Foundation
import Pipeline
@testable import Recipes
import Testing

@Suite struct EvaluationTests {
  let example = TaskExample(task: "arithmetic", split: .train, prompt: "What is 2 + 3 * 4?",
                            reasoning: "3 * 4 = 12\n2 + 12 = 14", answer: "14")

  @Test func answersAreReadAfterTheLastMarker() {
    #expect(TaskFormat.answer(in: "3 * 4 = 12\n2 + 12 = 14\nAnswer: 14") == "14")
    #expect(TaskFormat.answer(in: "Answer: 1\nAnswer: 2</s>") == "2")
    #expect(TaskFormat.answer(in: "no marker\nlast line") == "last line")
    #expect(TaskFormat.completion(example) == "3 * 4 = 12\n2 + 12 = 14\nAnswer: 14</s>")
    #expect(TaskFormat.prompt(example) == "<s>What is 2 + 3 * 4?\n")
  }

  @Test func promptsAreMaskedAndCompletionsTrained() {
    let (tokens, weights) = TaskFormat.encode(example, with: .bytes, maxTokens: 1000)
    let promptLength = TextTokenizer.bytes.encode(TaskFormat.prompt(example)).count
    #expect(tokens.count == weights.count)
    #expect(weights.prefix(promptLength).allSatisfy { $0 == 0 })
    #expect(weights.dropFirst(promptLength).allSatisfy { $0 == 1 })
    let cut = TaskFormat.encode(example, with: .bytes, maxTokens: 20)
    #expect(cut.tokens.count == 20 && cut.tokens.last == TextTokenizer.bytes.id(of: .eos), "the answer end survives")
  }

  @Test func onlyVerifiedFinishedSamplesAreKeptWithTheModelsOwnText() throws {
    let task = ArithmeticTask(digits: 1, operations: 2)
    let right = "3 * 4 = 12\n2 + 12 = 14\nAnswer: 14"
    let verifier = Verifier(task: task, minScore: 0.5)
    let verdict = verifier.judge(right, finished: true, for: example)
    #expect(verdict == Verdict(score: 1, accepted: true))
    let kept = Sample(prompt: 0, completion: right, tokens: 9, finished: true, verdict: verdict).example(from: example)
    #expect(kept.reasoning == "3 * 4 = 12\n2 + 12 = 14" && kept.answer == "14" && kept.prompt == example.prompt)
    #expect(Verifier(task: task, minScore: 0).judge("Answer: 15", finished: true, for: example).accepted == false)
    #expect(verifier.judge(right, finished: false, for: example).accepted == false,
            "a sample cut off by the length limit is not kept")
  }

  @Test func theTableIsMarkdownWithStandardErrorsBaselinesAndCounts() {
    var table = ScoreTable()
    table.add(ScoreTable.Column(name: "qa_closed/exact_match", scale: .percent, examples: 48))
    table.add(ScoreTable.Column(name: "sentiment/accuracy", scale: .percent, examples: 96, majorityClass: 0.5208))
    table.add(ScoreTable.Column(name: "perplexity", scale: .perplexity, examples: 48))
    table.set(model: "v1", column: "qa_closed/exact_match", Estimate(value: 0.25, standardError: 0.0631))
    table.set(model: "v1", column: "perplexity", Estimate(value: 12.345, standardError: 0.5))
    table.set(model: "v2", column: "qa_closed/exact_match", Estimate(value: 0.5, standardError: 0.0722))
    table.set(model: "v2", column: "sentiment/accuracy", Estimate(value: 0.75, standardError: 0.0442))
    #expect(table.rendered == """
      | model          | qa_closed/exact_match | sentiment/accuracy |   perplexity |
      | -------------- | --------------------: | -----------------: | -----------: |
      | v1             |            25.0 ± 6.3 |                  – | 12.35 ± 0.50 |
      | v2             |            50.0 ± 7.2 |         75.0 ± 4.4 |            – |
      | majority class |                     – |               52.1 |            – |
      | examples       |                    48 |                 96 |           48 |

      """)
    #expect(table.cells.count == 4)
    #expect(table.estimate(model: "v2", column: "sentiment/accuracy") == Estimate(value: 0.75, standardError: 0.0442))
  }
}
