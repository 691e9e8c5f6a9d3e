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

  @Test func theTableListsModelsInOrderWithPercentagesAndPerplexity() {
    var table = ScoreTable()
    table.set(model: "v1", column: "qa/exact_match", 0.25)
    table.set(model: "v1", column: "perplexity", 12.345)
    table.set(model: "v2", column: "qa/exact_match", 0.5)
    let lines = table.rendered.split(separator: "\n").map(String.init)
    #expect(lines.count == 4)
    #expect(lines[0].hasPrefix("model") && lines[0].contains("qa/exact_match") && lines[0].hasSuffix("perplexity"))
    #expect(lines[2].hasPrefix("v1") && lines[2].contains("25.0") && lines[2].hasSuffix("12.35"))
    #expect(lines[3].hasPrefix("v2") && lines[3].contains("50.0") && lines[3].hasSuffix("-"))
    #expect(table.cells.count == 3)
  }
}
