@testable import Recipes
import Testing

/// Each reward component on hand-written responses, and GRPO's group advantage by hand.
@Suite struct RewardTests {
  static let arithmetic = ArithmeticTask(digits: 2, operations: 1)
  static let example = TaskExample(task: "arithmetic", split: .heldout, prompt: "What is 12 + 21?", reasoning: "12 + 21 = 33",
                                   answer: "33")

  func rollout(_ response: String, language: PromptLanguage = .english, finished: Bool = true) -> Rollout {
    Rollout(example: Self.example, task: Self.arithmetic, language: language, response: response, finished: finished)
  }

  let all = RewardFunction(terms: [.init(component: .accuracy, weight: 1), .init(component: .format, weight: 0.2),
                                   .init(component: .language, weight: 0.1), .init(component: .toxicity(.builtin), weight: -1)])

  @Test func aWellFormedRightAnswerEarnsEveryPositiveComponent() {
    let s = all.score(rollout("<think>first add the units: 2 plus 1 is 3</think><answer>33</answer>"))
    #expect(s.parts == ["accuracy": 1, "format": 1, "language": 1, "toxicity": 0])
    #expect(abs(s.total - 1.3) < 1e-12)
  }

  @Test(arguments: [
    ("<think>12 + 21 = 33</think><answer>34</answer>", 0.0, 1.0),              // wrong answer, right form
    ("<answer>33</answer>", 1, 0),                                               // no think block
    ("<think>a</think><think>b</think><answer>33</answer>", 1, 0),              // two think blocks
    ("<think>a</think><answer>33</answer> and more", 1, 0),                      // text after the answer
    ("<think>a</think>\n<answer>33</answer>\n", 1, 1),                           // white space is allowed
    ("<think>a</think><answer>3</answer><answer>33</answer>", 1, 0),            // the last answer counts, the form fails
    ("33", 0, 0),                                                                // nothing tagged
  ])
  func accuracyAndFormatAreJudgedSeparately(response: String, accuracy: Double, format: Double) {
    let s = all.score(rollout(response))
    #expect(s.parts["accuracy"] == accuracy && s.parts["format"] == format, "\(response)")
  }

  @Test func theRandomRewardIsAFairCoinBlindToTheAnswerAndRepeatable() {
    let coin = RewardFunction(terms: [.init(component: .random, weight: 1)])
    let responses = (0..<2000).map { "<think>12 + 21 = \($0)</think><answer>\($0)</answer>" }
    let scores = responses.map { coin.score(rollout($0)).total }
    #expect(Set(scores).isSubset(of: [0, 1]))
    let heads = scores.reduce(0, +)
    #expect(abs(heads - 1000) < 4 * (2000 * 0.25).squareRoot(), "\(heads) heads of 2000")   // 4 binomial SEs
    #expect(scores == responses.map { coin.score(rollout($0)).total })                     // the same text, the same coin
  }

  @Test func aCutOffResponseEarnsNeitherAccuracyNorFormat() {
    let s = all.score(rollout("<think>12 + 21 = 33</think><answer>33</answer>", finished: false))
    #expect(s.parts["accuracy"] == 0 && s.parts["format"] == 0)
  }

  @Test func languageIsTheShareOfReasoningWordsInThePromptsLanguage() {
    // Spanish prompt, reasoning half Spanish ("primero", "sumamos"? no: only known words count).
    let mixed = "<think>primero the units: dos plus uno</think><answer>33</answer>"
    // Known words: primero (es), the (en), units (neither), dos (es), plus (en), uno (es): 3 of 5 Spanish.
    #expect(all.score(rollout(mixed, language: .spanish)).parts["language"] == 3.0 / 5)
    #expect(all.score(rollout(mixed, language: .english)).parts["language"] == 2.0 / 5)
    // Digits and symbols carry no language: full marks in either.
    #expect(all.score(rollout("<think>12 + 21 = 33</think><answer>33</answer>", language: .spanish)).parts["language"] == 1)
  }

  @Test func toxicityMatchesWholeTermsIgnoringCaseAndAccents() {
    let list = BlockList.builtin
    #expect(list.matches(in: "You are an IDIOT.") == ["idiot"])
    #expect(list.matches(in: "eres un ESTUPIDO") == ["estupido"])
    #expect(list.matches(in: "please shut   up now") == ["shut up"])
    #expect(list.matches(in: "the idiotic plan").isEmpty, "a longer word is not the term")
    #expect(list.matches(in: "Shutters up").isEmpty)
    let custom = BlockList(fileContents: "# ours\n\nbanana split\n")
    #expect(custom.isToxic("a Banana-split please") && !custom.isToxic("banana"))
    let s = all.score(rollout("<think>you idiot, 12 + 21 = 33</think><answer>33</answer>"))
    #expect(s.parts["toxicity"] == 1 && abs(s.total - 0.3) < 1e-12, "the penalty weighs −1")
  }

  @Test func groupAdvantagesMatchTheHandComputedValues() {
    // One right answer of 8: mean 0.125, sample std √(0.125·0.875·8/7) = 0.35355.
    let a = GroupAdvantage(rewards: [1, 0, 0, 0, 0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], groupSize: 8)
    #expect(abs(a.advantages[0] - 2.4742) < 1e-3 && abs(a.advantages[1] + 0.35346) < 1e-3)
    #expect(a.advantages[8...].allSatisfy { $0 == 0 }, "a flat group teaches nothing")
    #expect(a.zeroVarianceShare == 0.5)
    #expect(abs(a.advantages[0..<8].reduce(0, +)) < 1e-5, "advantages sum to 0 within a group")
  }
}
