import Foundation
import Models
@testable import Recipes
import Testing

/// `word_arithmetic`: prompts in English or Spanish, reasoning in words of the prompt's language, the
/// prompt's language reaching the rollout, and the mixed-language share rl reports.
@Suite struct LanguageTaskTests {
  @Test func numbersInWords() {
    let english = [0: "zero", 7: "seven", 13: "thirteen", 20: "twenty", 24: "twenty-four", 100: "one hundred",
                   101: "one hundred one", 729: "seven hundred twenty-nine", -7: "minus seven"]
    for (n, words) in english { #expect(NumberWords.english(n) == words) }
    let spanish = [0: "cero", 16: "dieciséis", 21: "veintiuno", 22: "veintidós", 24: "veinticuatro", 30: "treinta",
                   35: "treinta y cinco", 100: "cien", 101: "ciento uno", 500: "quinientos",
                   729: "setecientos veintinueve", -81: "menos ochenta y uno"]
    for (n, words) in spanish { #expect(NumberWords.spanish(n) == words) }
  }

  @Test func aProblemIsWorkedInWordsOfItsPromptsLanguage() throws {
    let task = WordArithmeticTask(englishReasoning: 0)
    var e = TaskExample(task: "word_arithmetic", split: .train, prompt: "", reasoning: "", answer: "")
    let steps = WordArithmeticTask.steps([3, 8, 5], ["*", "+"])
    e.reasoning = steps.map(WordArithmeticTask.Phrasing.spanish.step).joined(separator: "\n")
    #expect(e.reasoning == "tres por ocho son veinticuatro\nveinticuatro más cinco son veintinueve")
    #expect(steps.map(WordArithmeticTask.Phrasing.english.step).joined(separator: "\n")
            == "three times eight is twenty-four\ntwenty-four plus five is twenty-nine")
    #expect(WordArithmeticTask.Phrasing.spanish.prompt([3, 8, 5], ["*", "+"]) == "¿Cuánto es 3 por 8 más 5?")
    #expect(WordArithmeticTask.Phrasing.spanish.step(.init(left: 3, operation: "-", right: 2, result: 1)) == "tres menos dos es uno")
    #expect(WordArithmeticTask.Phrasing.spanish.step(.init(left: 2, operation: "-", right: 2, result: 0)) == "dos menos dos es cero")

    var rng = TaskRandom(seed: 3, stream: "w")
    var spanish = 0
    let n = 2000
    for _ in 0..<n {
      let e = task.example(split: .train, using: &rng)
      let language = task.language(of: e)
      if language == .spanish { spanish += 1 }
      #expect(e.prompt.hasPrefix(language == .spanish ? "¿Cuánto es " : "What is "))
      // Every step has words, all of them the prompt's language's.
      for line in e.reasoning.split(separator: "\n") {
        #expect(LanguageIdentifier.share(of: language, in: String(line)) == 1, "\(e.prompt): \(line)")
      }
      #expect(LanguageIdentifier.share(of: language, in: e.prompt) == 1, "\(e.prompt)")
      // The answer is the one `arithmetic` gives for the same expression, in digits.
      let digits = e.prompt.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .punctuationCharacters)) }
      let words = ["plus": "+", "minus": "-", "times": "*", "más": "+", "menos": "-", "por": "*"] as [String: Character]
      let operators = e.prompt.split(separator: " ").compactMap { words[String($0)] }
      #expect(e.answer == String(ArithmeticTask.solve(digits, operators).answer))
      #expect(task.score(e.answer, for: e) == 1 && task.score("tres", for: e) == 0)
    }
    #expect((0.46...0.54).contains(Double(spanish) / Double(n)), "\(spanish) of \(n) prompts in Spanish")
  }

  /// `englishReasoning`: that share of Spanish training prompts carry English steps (translated prompts,
  /// untranslated traces); English prompts and every held-out example keep their prompt's language.
  @Test func aShareOfSpanishTrainingPromptsCarriesEnglishSteps() {
    let task = WordArithmeticTask()   // the default, 0.3
    for split in [Split.train, .heldout] {
      var rng = TaskRandom(seed: 5, stream: "mix/\(split.rawValue)")
      var spanish = 0, english = 0
      for _ in 0..<2000 {
        let e = task.example(split: split, using: &rng)
        let language = task.language(of: e)
        let inPromptLanguage = LanguageIdentifier.share(of: language, in: e.reasoning) ?? 1
        if language == .english { #expect(inPromptLanguage == 1, "\(e.prompt): \(e.reasoning)"); continue }
        spanish += 1
        if inPromptLanguage < 0.5 { english += 1 }
      }
      let share = Double(english) / Double(spanish)
      if split == .train {
        #expect(abs(share - 0.3) < 4 * (0.3 * 0.7 / Double(spanish)).squareRoot(), "\(english) of \(spanish)")
      } else {
        #expect(english == 0, "held-out Spanish prompts with English steps: \(english)")
      }
    }
  }

  @Test func spanishPromptsGetSpanishInTheRollout() throws {
    let mixture = TaskMixture(weights: ["word_arithmetic": 1, "arithmetic": 1], world: 1)
    let prompts = ReinforcementLearningOp.prompts(batch: 3, count: 40, mixture: mixture, seed: 9)
    #expect(prompts.map(\.example) == ReinforcementLearningOp.prompts(batch: 3, count: 40, mixture: mixture, seed: 9).map(\.example))
    let spanish = prompts.filter { $0.example.prompt.hasPrefix("¿") }
    #expect(!spanish.isEmpty && spanish.count < prompts.count)
    for p in prompts { #expect(p.language == (p.example.prompt.hasPrefix("¿") ? .spanish : .english), "\(p.example.prompt)") }
    // And on to what the reward reads: English words in the reasoning of a Spanish prompt cost reward.
    let prompt = try #require(spanish.first)
    let sampled = ConversationRollouts.Sampled(tokens: [], trained: [], turn: prompt.example,
                                               response: "<think>tres times ocho is veinticuatro</think><answer>24</answer>",
                                               finished: true)
    let rollout = GRPOObjective.rollout(sampled, of: prompt)
    #expect(rollout.language == .spanish)
    let language = RewardFunction(terms: [.init(component: .language, weight: 1)])
    #expect(language.score(rollout).total == 0.5)
    var consistent = sampled
    consistent.response = "<think>tres por ocho son veinticuatro</think><answer>24</answer>"
    #expect(language.score(GRPOObjective.rollout(consistent, of: prompt)).total == 1)
  }

  @Test func theMixedLanguageShareOnHandWrittenResponses() {
    typealias M = ResponseMeasures
    #expect(!M.isMixedLanguage("<think>tres por ocho son veinticuatro</think><answer>24</answer>", language: .spanish))
    #expect(M.isMixedLanguage("<think>tres times ocho is veinticuatro</think><answer>24</answer>", language: .spanish))
    #expect(M.isMixedLanguage("<think>tres por ocho son veinticuatro</think><answer>24</answer>", language: .english))
    // Plain form: the reasoning is what comes before `Answer: `, whose English word does not count.
    #expect(!M.isMixedLanguage("tres por ocho son veinticuatro\nAnswer: 24", language: .spanish))
    #expect(M.isMixedLanguage("three times eight is twenty-four\nAnswer: 24", language: .spanish))
    // Digits carry no language: not mixed, as the language reward scores them 1.
    #expect(!M.isMixedLanguage("<think>3 * 8 = 24</think><answer>24</answer>", language: .spanish))
    // The threshold: one English word among ten Spanish ones is 10/11 ≥ 0.9; two are 10/12 < 0.9.
    let ten = "tres por ocho son veinticuatro y dos más dos son cuatro"
    #expect(LanguageIdentifier.share(of: .spanish, in: ten) == 1)
    #expect(!M.isMixedLanguage("<think>\(ten) then</think>", language: .spanish))
    #expect(M.isMixedLanguage("<think>\(ten) then add</think>", language: .spanish))
    let share = M.mixedLanguageShare([("<think>tres times ocho</think>", .spanish), ("<think>tres por ocho</think>", .spanish),
                                      ("<think>three times eight</think>", .english), ("24", .spanish)])
    #expect(share.value == 0.25 && share.count == 4)
    #expect(abs(share.standardError - (0.25 * 0.75 / 4).squareRoot()) < 1e-12)
    #expect(M.mixedLanguageShare([]).count == 0)
  }

  @Test func wordArithmeticProbesHeldOutSpanishPrompts() throws {
    let probe = try #require(WordArithmeticTask().responseProbes.first)
    #expect(probe.measure == .mixedLanguage)
    let examples = Evaluator.distinctHeldout(probe.prompts, count: 30, seed: 1, stream: "probe")
    #expect(examples.count == 30 && examples.allSatisfy { $0.split == .heldout && probe.prompts.promptLanguage(of: $0) == .spanish })
    #expect(ArithmeticTask(digits: 1, operations: 2).promptLanguage(of: examples[0]) == .english, "other tasks say English")
  }
}
