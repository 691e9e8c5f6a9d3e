import Foundation
import Pipeline
@testable import Recipes
import Testing

/// Every built-in task: deterministic per seed, held-out split disjoint from train, its own answers
/// score 1 and wrong ones less.
@Suite struct TaskSuiteTests {
  static let tasks = TaskSuite.names

  @Test(arguments: tasks) func generationIsDeterministicPerSeed(_ name: String) {
    let g = TaskSuite.generator(name)
    var a = TaskRandom(seed: 3, stream: "t"), b = TaskRandom(seed: 3, stream: "t"), c = TaskRandom(seed: 4, stream: "t")
    let x = (0..<30).map { _ in g.example(split: .train, using: &a) }
    #expect(x == (0..<30).map { _ in g.example(split: .train, using: &b) })
    #expect(x != (0..<30).map { _ in g.example(split: .train, using: &c) })
    #expect(x.allSatisfy { $0.task == name })
  }

  @Test(arguments: tasks.filter { $0 != "passkey" }) func heldOutProblemsNeverAppearInTraining(_ name: String) {
    let g = TaskSuite.generator(name)
    var train = TaskRandom(seed: 1, stream: "train"), heldout = TaskRandom(seed: 1, stream: "heldout")
    let trainPrompts = Set((0..<2000).map { _ in g.example(split: .train, using: &train).prompt })
    let heldoutPrompts = Set((0..<200).map { _ in g.example(split: .heldout, using: &heldout).prompt })
    #expect(trainPrompts.isDisjoint(with: heldoutPrompts))
    #expect(heldoutPrompts.count > 20, "\(name): only \(heldoutPrompts.count) distinct held-out problems")
  }

  @Test(arguments: tasks) func referenceAnswersScoreOneAndWrongOnesLess(_ name: String) {
    let g = TaskSuite.generator(name)
    var rng = TaskRandom(seed: 2, stream: "s")
    for _ in 0..<100 {
      let e = g.example(split: .heldout, using: &rng)
      #expect(g.score(e.answer, for: e) == 1, "\(name): \(e.prompt) → \(e.answer)")
      #expect(g.score("", for: e) < 1)
      #expect(g.score("zzz qqq", for: e) < 0.5)
    }
  }

  @Test func classificationLabelsAreBalanced() {
    for name in ["sentiment", "entailment"] {
      let g = TaskSuite.generator(name)
      var rng = TaskRandom(seed: 6, stream: "b")
      let answers = (0..<1000).map { _ in g.example(split: .train, using: &rng).answer }
      let share = Double(answers.filter { $0 == "positive" || $0 == "yes" }.count) / 1000
      #expect((0.4...0.6).contains(share), "\(name): \(share)")
    }
  }

  @Test func worldAnswersAreTrue() {
    let world = World(seed: 1)
    let facts = Set(world.facts.map(World.english))
    var rng = TaskRandom(seed: 8, stream: "w")
    let qa = QuestionAnsweringTask(world: world, openBook: 0)
    for _ in 0..<300 {
      let e = qa.example(split: .train, using: &rng)
      let asked = world.facts.filter { "Question: " + World.question($0) == e.prompt }
      #expect(asked.count == 1 && asked[0].object == e.answer && facts.contains(World.english(asked[0])), "\(e.prompt) → \(e.answer)")
    }
    // Entailment labels follow from the premise, not from the world: HeldOutTests checks them.
  }

  @Test func theLibraryStatesOnlyTrueFactsInBothLanguages() {
    let world = World(seed: 1)
    let docs = Library.documents(world: world, count: 400, seed: 9)
    #expect(docs == Library.documents(world: world, count: 400, seed: 9))
    #expect(docs != Library.documents(world: World(seed: 2), count: 400, seed: 9))
    #expect(docs.allSatisfy { !$0.contains("\n\n") && (60...1500).contains($0.utf8.count) })
    let spanish = docs.filter { $0.contains(" vive en ") || $0.contains(" es un") || $0.contains(" es una") }
    #expect(spanish.count > 40 && spanish.count < 200, "\(spanish.count) Spanish documents of 400")
    let homes = Dictionary(uniqueKeysWithValues: world.people.map { ($0.name, world.places[$0.home].name) })
    var checked = 0
    for doc in docs {
      for sentence in doc.split(separator: ".") {
        let words = sentence.split(separator: " ")
        // "<Name> lives in <Place>" and "<Name> vive en <Place>"
        for (k, w) in words.enumerated() where (w == "lives" || w == "vive") && k > 0 && k + 2 < words.count {
          guard let home = homes[String(words[k - 1])] else { continue }
          #expect(String(words[k + 2]).trimmingCharacters(in: .punctuationCharacters) == home, "\(sentence)")
          checked += 1
        }
      }
    }
    #expect(checked > 50)
  }

  @Test func translationAgreesInGenderAndNumber() {
    let phrase = TranslationTask.NounPhrase(noun: Lexicon.objects.first { $0.english == "chair" }!,
                                            adjective: Lexicon.colors.first { $0.english == "red" }!,
                                            determiner: .definite, pluralDefinite: true)
    #expect(phrase.english == "the red chairs")
    #expect(phrase.spanish == "las sillas rojas")
    let two = TranslationTask.NounPhrase(noun: Lexicon.animals.first { $0.english == "fox" }!,
                                         adjective: Lexicon.sizes.first { $0.english == "small" }!, determiner: .two)
    #expect(two.english == "two small foxes" && two.spanish == "dos zorros pequeños")
    let one = TranslationTask.NounPhrase(noun: Lexicon.objects.first { $0.english == "clock" }!,
                                         adjective: Lexicon.colors.first { $0.english == "blue" }!, determiner: .indefinite)
    #expect(one.english == "a blue clock" && one.spanish == "un reloj azul")
    let g = TranslationTask(direction: .both)
    var rng = TaskRandom(seed: 1, stream: "x")
    for _ in 0..<200 {
      let e = g.example(split: .train, using: &rng)
      #expect(e.answer.hasSuffix(".") && e.answer.first!.isUppercase)
      #expect(e.prompt.split(separator: " ").count <= 15)
    }
    // A held-out sentence is never trained on in either direction.
    var train = TaskRandom(seed: 1, stream: "train"), heldout = TaskRandom(seed: 1, stream: "heldout")
    func sentences(_ e: TaskExample) -> Set<String> {
      [e.answer, String(e.prompt.drop { $0 != ":" }.dropFirst(2))].reduce(into: []) { $0.insert($1) }
    }
    var seen = Set<String>(), held = Set<String>()
    for _ in 0..<3000 { seen.formUnion(sentences(g.example(split: .train, using: &train))) }
    for _ in 0..<300 { held.formUnion(sentences(g.example(split: .heldout, using: &heldout))) }
    #expect(seen.isDisjoint(with: held))
  }

  @Test func programsAreCheckedByRunningThem() {
    let g = ProgramSynthesisTask(numbers: 3)
    let e = TaskExample(task: "program", split: .train, prompt: "Reach 24 using 2, 3, 4 (each at most once, with + - * /).",
                        reasoning: "", answer: "2 * 3 * 4")
    #expect(g.score("2 * 3 * 4", for: e) == 1)
    #expect(g.score("(4 * 3) * 2", for: e) == 1)
    #expect(g.score("4 * 3 * 2 * 1", for: e) == 0, "1 is not given")
    #expect(g.score("4 * 4 + 2 * 4", for: e) == 0, "4 used three times")
    #expect(g.score("3 / 2 * 4 * 4", for: e) == 0, "inexact division")
    #expect(g.score("2 + 3 + 4", for: e) == 0, "wrong value")
    #expect(g.score("2 * (3 * 4", for: e) == 0, "unbalanced")
    var rng = TaskRandom(seed: 4, stream: "fuzz")
    let alphabet = Array("0123456789+-*/() x")
    for _ in 0..<5000 {
      let text = String((0..<Int.random(in: 0...30, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
      _ = g.score(text, for: e)   // never crashes
    }
    #expect(g.score(String(repeating: "(", count: 100) + "1" + String(repeating: ")", count: 100), for: e) == 0)
    #expect(g.score("999999999 * 999999999 * 999999999", for: e) == 0, "overflow is rejected")
  }

  @Test(arguments: [1024, 2048, 4096, 8192]) func passkeyPromptsHaveTheirLength(_ length: Int) {
    let g = PasskeyTask(length: length)
    var rng = TaskRandom(seed: 1, stream: "p")
    for _ in 0..<5 {
      let e = g.example(split: .train, using: &rng)
      #expect(abs(e.prompt.utf8.count - length) <= length / 20, "\(e.prompt.utf8.count) bytes for \(length)")
      #expect(e.prompt.contains("The pass key is \(e.answer). Remember it."))
      #expect(e.answer.count == 5)
    }
  }

  @Test func metricsMatchHandComputedValues() {
    #expect(TextMetrics.chrF(hypothesis: "la casa roja", reference: "la casa roja") == 1)
    #expect(TextMetrics.chrF(hypothesis: "xyz", reference: "abc") == 0)
    // "ab" vs "abc": unigrams P = 2/2, R = 2/3; bigrams P = 1/1, R = 1/2 (trigrams: the hypothesis has
    // none, so two orders count): P = 1, R = 7/12, F2 = 5·P·R / (4P + R) = (35/12) / (55/12) = 7/11.
    #expect(abs(TextMetrics.chrF(hypothesis: "ab", reference: "abc") - 7.0 / 11) < 1e-12)
    // LCS 3 of 3 and 4 words: P = 1, R = 3/4, F1 = 6/7.
    #expect(abs(TextMetrics.rougeL(hypothesis: "the cat sat", reference: "The cat sat down.") - 6.0 / 7) < 1e-12)
    #expect(TextMetrics.rougeL(hypothesis: "dog", reference: "the cat") == 0)
    #expect(TextMetrics.exactMatch("  Arden. ", "arden"))
    #expect(!TextMetrics.exactMatch("Arden town", "arden"))
    #expect(TextMetrics.passAtK(samples: 10, correct: 0, k: 1) == 0)
    #expect(TextMetrics.passAtK(samples: 10, correct: 10, k: 5) == 1)
    #expect(abs(TextMetrics.passAtK(samples: 10, correct: 3, k: 1) - 0.3) < 1e-12)
    #expect(TextMetrics.passAtK(samples: 5, correct: 3, k: 3) == 1, "n − c < k: some sample of any k is right")
    // 1 − C(2,2)/C(4,2) = 1 − 1/6
    #expect(abs(TextMetrics.passAtK(samples: 4, correct: 2, k: 2) - 5.0 / 6) < 1e-12)
  }
}
