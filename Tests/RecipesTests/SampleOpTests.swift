import Foundation
import Pipeline
@testable import Recipes
import Testing

/// `sample`: what a kept response becomes, each filter on hand-written responses, and the op's counts.
@Suite struct SampleOpTests {
  static let task = ArithmeticTask(digits: 2, operations: 1)
  static let prompt = TaskExample(task: "arithmetic", split: .heldout, prompt: "What is 12 + 21?", reasoning: "12 + 21 = 33",
                                  answer: "33")

  @Test func aKeptResponseBecomesATrainingExampleWithTheModelsOwnReasoning() {
    let tagged = SampleOp.example(Self.prompt, response: "<think>2 + 1 = 3\n1 + 2 = 3</think><answer> 33 </answer>")
    #expect(tagged.split == .train && tagged.reasoning == "2 + 1 = 3\n1 + 2 = 3" && tagged.answer == "33")
    let plain = SampleOp.example(Self.prompt, response: "units first\nAnswer: 33")
    #expect(plain.reasoning == "units first" && plain.answer == "33" && plain.prompt == Self.prompt.prompt)
    #expect(SampleOp.example(Self.prompt, response: "33").reasoning.isEmpty)
  }

  @Test func eachFilterRejectsWhatItShould() {
    func check(_ response: String, _ keep: SampleFilters, finished: Bool = true, language: PromptLanguage = .english) -> String? {
      let rollout = Rollout(example: Self.prompt, task: Self.task, language: language, response: response, finished: finished)
      let verdict = Verifier(task: Self.task).judge(response, finished: finished, for: Self.prompt)
      return SampleFilters.Checks(settings: keep, blockList: .builtin).firstFailure(rollout, verdict: verdict)
    }
    let all = SampleFilters()
    #expect(check("<think>12 + 21 = 33</think><answer>33</answer>", all) == nil)
    #expect(check("<think>12 + 21 = 34</think><answer>34</answer>", all) == "accuracy")
    #expect(check("<think>12 + 21 = 33</think><answer>33</answer>", all, finished: false) == "accuracy", "cut off")
    #expect(check("12 + 21 = 33\nAnswer: 33", all) == "format", "right, but not in the tags")
    var plain = all
    plain.format = false
    #expect(check("12 + 21 = 33\nAnswer: 33", plain) == nil, "the plain form's answer counts")
    #expect(check("<think>you idiot, 12 + 21 = 33</think><answer>33</answer>", all) == "toxicity")
    var spanish = all
    spanish.language = 0.9
    #expect(check("<think>the sum is 33</think><answer>33</answer>", spanish, language: .spanish) == "language")
    #expect(check("<think>la suma es 33</think><answer>33</answer>", spanish, language: .spanish) == nil)
  }

  @Test func theOpCountsWhatItGeneratedKeptAndDropped() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": TrainingOpsTests.pretrain + """
        rs:
          op: sample
          from: v1
          tasks: {arithmetic: 1}
          prompts: 6
          k: 3
          max_new_tokens: 8
          temperature: 0
          keep: {accuracy: false, format: false, toxicity: false}

      """])
    try await h.run()
    let m = try h.metrics("rs")
    let generated = try #require(m["generated/arithmetic"] as? Double)
    let kept = try #require(m["kept/arithmetic"] as? Double)
    let duplicates = try #require(m["duplicates/arithmetic"] as? Double)
    #expect(generated == 18)
    // Greedy: the k samples of a prompt are identical, so dedupe keeps one per distinct prompt.
    #expect(kept + duplicates == generated && kept <= 6 && kept >= 1, "kept \(kept), duplicates \(duplicates)")
    let lines = String(decoding: try h.store.blob(try h.hash("rs", "dataset")), as: UTF8.self).split(separator: "\n")
    #expect(Double(lines.count) == kept)
    #expect(lines.allSatisfy { $0.contains("\"split\":\"train\"") && $0.contains("\"task\":\"arithmetic\"") })
  }
}
