import Foundation
import Pipeline
@testable import Recipes
import Testing

/// The held-out splits hold what they claim: no held-out fact, product, reviewer or phrasing reaches
/// training in any form; labels are balanced and follow from the text; the shortcuts a model could take
/// (keywords, world knowledge) do not reach the labels.
@Suite struct HeldOutTests {
  static let world = World(seed: 1)

  /// Every text that would reveal something about a held-out fact's subject and relation, by subject:
  /// its statement with any value the relation can take (true or false, plain, paraphrased or
  /// negated), and its question.
  static let heldoutForms: [String: [String]] = Dictionary(grouping: world.facts(in: .heldout), by: \.subject)
    .mapValues { facts in
      facts.flatMap { fact in
        world.values(of: fact.relation).flatMap { value in
          World.Phrasing.allCases.map { World.sentence(World.Fact(subject: fact.subject, relation: fact.relation, object: value), $0) }
        } + [World.question(fact)]
      }
    }

  /// The held-out forms `text` contains, matched at a word boundary ("Pip is black." is not found in
  /// "Pipo is black.", nor "Lena …" in "Elena …").
  static func leaks(in text: String) -> [String] {
    heldoutForms.flatMap { subject, forms in
      text.contains(subject) ? forms.filter { occurs($0, in: text) } : []
    }
  }

  static func occurs(_ form: String, in text: String) -> Bool {
    var search = text[...]
    while let r = search.range(of: form) {
      if r.lowerBound == text.startIndex || !text[text.index(before: r.lowerBound)].isLetter { return true }
      search = text[r.upperBound...]
    }
    return false
  }

  static let worldTasks: [(String, any TaskGenerator)] = [
    ("qa", QuestionAnsweringTask(world: world)),
    ("qa_closed", QuestionAnsweringTask(world: world, openBook: 0)),
    ("qa_open", QuestionAnsweringTask(world: world, openBook: 1)),
    ("summarization", SummarizationTask(world: world)),
    ("entailment", EntailmentTask(world: world)),
    ("translation", TranslationTask()),   // its sentences name people too
    ("chat", ChatTask(world: world)),
  ]

  @Test func aFifthOfTheFactsAreHeldOutAcrossEveryRelation() {
    let heldout = Self.world.facts(in: .heldout), all = Self.world.facts
    #expect(all.count == 32 * 8 + 8 * 2)
    #expect((40...70).contains(heldout.count), "\(heldout.count) of \(all.count) facts held out")
    #expect(Set(heldout.map(\.relation)) == Set(World.Fact.Relation.allCases))
    // The split is the subject's and relation's: the same fact with another value keeps its split.
    for fact in all {
      var other = fact
      other.object = "something else"
      #expect(Split.of(fact: other) == Split.of(fact: fact))
    }
  }

  @Test(arguments: 0..<7) func noHeldOutFactIsInAnyTrainingPromptOrAnswer(_ task: Int) {
    let (name, generator) = Self.worldTasks[task]
    var train = TaskRandom(seed: 11, stream: "train"), heldout = TaskRandom(seed: 11, stream: "heldout")
    for _ in 0..<2000 {
      let e = generator.example(split: .train, using: &train)
      let leaks = Self.leaks(in: e.prompt + " " + e.answer)
      #expect(leaks.isEmpty, "\(name): \(e.prompt) → \(e.answer) mentions \(leaks)")
      if !leaks.isEmpty { return }
    }
    // The scan finds what it looks for: every held-out example is about a held-out fact.
    for _ in 0..<200 where name != "translation" {
      let e = generator.example(split: .heldout, using: &heldout)
      #expect(!Self.leaks(in: e.prompt + " " + e.answer).isEmpty, "\(name): \(e.prompt) names no held-out fact")
    }
  }

  /// `word_arithmetic` and `dialogue` split by the problem as `arithmetic` asks it, so none of the three
  /// trains on a problem another holds out, in either language or as a conversation's opening.
  @Test func arithmeticInWordsAndInConversationHoldsOutArithmeticsProblems() {
    func expression(_ prompt: String) -> String {
      let words: [String: String] = ["plus": "+", "minus": "-", "times": "*", "más": "+", "menos": "-", "por": "*"]
      let body = prompt.drop { !$0.isNumber }.dropLast()
      return "What is " + body.split(separator: " ").map { words[String($0)] ?? String($0) }.joined(separator: " ") + "?"
    }
    let words = WordArithmeticTask(), dialogue = DialogueTask()
    var seen: [Split: Set<String>] = [:]
    for split in Split.allCases {
      var rng = TaskRandom(seed: 13, stream: "arith/\(split)")
      for _ in 0..<(split == .train ? 3000 : 300) {
        let w = words.example(split: split, using: &rng)
        let opening = String(Conversation.openingMessage(of: dialogue.example(split: split, using: &rng).prompt))
        for problem in [expression(w.prompt), opening] {
          #expect(Split.of(problem: problem) == split, "\(problem) is \(split)")
          seen[split, default: []].insert(problem)
        }
      }
    }
    #expect(seen[.train]!.isDisjoint(with: seen[.heldout]!))
    #expect(seen[.heldout]!.count > 60)
  }

  @Test func theNamesOfOtherTasksAreNoneTheWorldUses() {
    let worldNames = Set(Lexicon.femaleNames + Lexicon.maleNames + Lexicon.placeNames + Lexicon.petNames)
    let translationNames = TranslationTask.Subject.all.filter { $0.person == 2 && $0.english.first!.isUppercase }.map(\.english)
    #expect(translationNames.count == 4 && worldNames.isDisjoint(with: translationNames))
    typealias V = SentimentTask.Vocabulary
    let reviewNames = V.trainBrands + V.heldoutBrands + V.trainReviewers + V.heldoutReviewers
    #expect(reviewNames.allSatisfy { name in !worldNames.contains { $0.contains(name) || name.contains($0) } }, "\(reviewNames)")
  }

  @Test func noHeldOutFactIsInTheDatasetsTheOpsWrite() async throws {
    let h = try RecipeHarness(["s.yaml": """
      stages:
        qa: {op: dataset, generator: qa, count: 1500}
        summaries: {op: dataset, generator: summarization, count: 1500}
        pairs: {op: dataset, generator: entailment, count: 1500}

      """])
    try await h.run()
    for stage in ["qa", "summaries", "pairs"] {
      let examples = try TaskExamples.parse(try h.store.blob(try h.hash(stage, "dataset")), named: stage)
      #expect(examples.count == 1500 && examples.allSatisfy { $0.split == .train })
      let leaking = examples.filter { !Self.leaks(in: $0.prompt + " " + $0.answer).isEmpty }
      #expect(leaking.isEmpty, "\(stage): \(leaking.prefix(3).map(\.prompt))")
    }
  }

  @Test func closedBookHeldOutQuestionsAskEachHeldOutFactOnceAndTheLibraryStatesThem() {
    let heldout = Self.world.facts(in: .heldout)
    let questions = Evaluator.distinctHeldout(QuestionAnsweringTask(world: Self.world, openBook: 0), count: 500,
                                              seed: 1234, stream: "eval/qa_closed")
    #expect(Set(questions.map(\.prompt)) == Set(heldout.map { "Question: " + World.question($0) }))
    #expect(questions.count == heldout.count)
    // The library the lineage pretrains on names each held-out fact's subject and value together.
    let library = BuiltinCorpus.library(documents: 2500, world: 1, split: .train, seed: 1234)
    for fact in heldout {
      #expect(library.contains { $0.contains(fact.subject) && $0.contains(fact.object) },
              "the library never states \(World.english(fact))")
    }
  }

  // MARK: - Labels

  @Test(arguments: ["sentiment", "entailment"]) func labelsAreBalancedInBothSplits(_ name: String) {
    let g = TaskSuite.generator(name)
    for split in Split.allCases {
      var rng = TaskRandom(seed: 5, stream: "balance/\(split)")
      let answers = (0..<2000).map { _ in g.example(split: split, using: &rng).answer }
      let share = Double(answers.filter { $0 == "positive" || $0 == "yes" }.count) / 2000
      #expect(Set(answers).count == 2)
      #expect((0.46...0.54).contains(share), "\(name) \(split): \(share)")
    }
  }

  @Test func sentimentLabelsFollowTheLastJudgementAndKeywordsDoNotReachThem() {
    let g = SentimentTask()
    var rng = TaskRandom(seed: 7, stream: "s")
    var keywordRight = 0.0, negationBlindRight = 0
    let n = 3000
    for _ in 0..<n {
      let e = g.example(split: .heldout, using: &rng)
      let review = String(e.prompt[e.prompt.range(of: ": ")!.upperBound..<e.prompt.range(of: " Is the review")!.lowerBound])
      let words = review.lowercased().split { !$0.isLetter }.map(String.init)
      // A careful reader: the last polarity word decides, reversed by a "not" in its clause.
      let last = words.lastIndex { Self.polarity($0) != nil }!
      let clauseStart = review.lowercased().split(whereSeparator: { $0 == "," || $0 == "." }).last {
        $0.contains(words[last])
      }!
      let negated = clauseStart.split(separator: " ").contains("not")
      let wordPositive = Self.polarity(words[last])!
      #expect((wordPositive != negated ? "positive" : "negative") == e.answer, "\(e.prompt) → \(e.answer)")
      // Shortcuts: counting polarity words, or the last word without its negation.
      let score = words.reduce(0) { $0 + (Self.polarity($1).map { $0 ? 1 : -1 } ?? 0) }
      if score == 0 { keywordRight += 0.5 } else if (score > 0) == (e.answer == "positive") { keywordRight += 1 }   // a tie is a coin flip
      if wordPositive == (e.answer == "positive") { negationBlindRight += 1 }
    }
    #expect((0.4...0.6).contains(keywordRight / Double(n)), "counting keywords gets \(keywordRight) of \(n)")
    #expect((0.4...0.6).contains(Double(negationBlindRight) / Double(n)), "ignoring negation gets \(negationBlindRight) of \(n)")
  }

  static func polarity(_ word: String) -> Bool? {
    SentimentTask.Vocabulary.positive.contains(word) ? true : SentimentTask.Vocabulary.negative.contains(word) ? false : nil
  }

  @Test func negationFlipsTheLabelAndOnlyTheDecidingClauseDecides() {
    typealias T = SentimentTask
    let good = T.Clause(frame: .plain, aspect: "price", word: "good", wordPolarity: .positive, negated: false)
    let awful = T.Clause(frame: .found, aspect: "finish", word: "awful", wordPolarity: .negative, negated: false)
    var review = T.Review(product: "Zorbo lamp", reviewer: "Kira", judgements: [.single(good)], neutral: nil)
    #expect(review.label == .positive)
    #expect(review.prompt == "Review of the Zorbo lamp by Kira: The price is good. Is the review positive or negative?")
    var notGood = good
    notGood.negated = true
    review.judgements = [.single(notGood)]
    #expect(review.label == .negative)
    #expect(review.prompt.contains("The price is not good."))
    var notAwful = awful
    notAwful.negated = true
    review.judgements = [.single(notAwful)]
    #expect(review.label == .positive, "not awful is positive")
    #expect(review.prompt.contains("I did not find the finish awful."))
    // Good but awful is negative; awful but good is positive, whatever the connective.
    for connective in T.Connective.allCases {
      #expect(T.Review(product: "p", reviewer: "r", judgements: [.contrast(good, connective, awful)]).label == .negative)
      #expect(T.Review(product: "p", reviewer: "r", judgements: [.contrast(awful, connective, good)]).label == .positive)
      #expect(T.Review(product: "p", reviewer: "r", judgements: [.contrast(awful, connective, notAwful)]).label == .positive)
    }
    #expect(T.Judgement.contrast(good, .but, awful).text == "The price is good, but I found the finish awful.")
    #expect(T.Judgement.contrast(good, .although, awful).text == "Although the price is good, I found the finish awful.")
    #expect(T.Judgement.contrast(good, .however, awful).text == "The price is good. However, I found the finish awful.")
  }

  @Test func heldOutSentimentNamesAndPhrasingsNeverAppearInTraining() {
    typealias V = SentimentTask.Vocabulary
    let heldoutNames = V.heldoutBrands + V.heldoutReviewers
    #expect(Set(heldoutNames).isDisjoint(with: V.trainBrands + V.trainReviewers))
    let heldoutFrames = SentimentTask.Frame.allCases.filter(\.isHeldOut)
    #expect(heldoutFrames.count == 3)
    let phrasings = heldoutFrames.flatMap { frame in
      V.aspects.flatMap { a in (V.positive + V.negative).flatMap { w in
        [false, true].map { frame.clause(aspect: a, word: w, negated: $0).lowercased() }
      } }
    }
    let g = SentimentTask()
    var train = TaskRandom(seed: 3, stream: "train"), heldout = TaskRandom(seed: 3, stream: "heldout")
    for _ in 0..<3000 {
      let prompt = g.example(split: .train, using: &train).prompt
      let lower = prompt.lowercased()
      #expect(!heldoutNames.contains { prompt.contains($0) }, "\(prompt)")
      #expect(!phrasings.contains { lower.contains($0) }, "\(prompt)")
    }
    for _ in 0..<300 {
      let prompt = g.example(split: .heldout, using: &heldout).prompt
      #expect(V.heldoutBrands.contains { prompt.contains("the \($0) ") } && V.heldoutReviewers.contains { prompt.contains("by \($0):") })
      #expect(phrasings.contains { prompt.lowercased().contains($0) }, "\(prompt)")
    }
  }

  @Test func entailmentLabelsFollowFromThePremiseNotFromTheWorld() throws {
    let world = Self.world
    // Every sentence a premise or hypothesis can be, read back into its fact; none is ambiguous.
    var reading: [String: (fact: World.Fact, phrasing: World.Phrasing)] = [:]
    let subjects = Set(world.facts.map(\.subject))
    for subject in subjects {
      for relation in World.Fact.Relation.allCases where world.facts.contains(where: { $0.subject == subject && $0.relation == relation }) {
        for value in world.values(of: relation) {
          for phrasing in World.Phrasing.allCases {
            let fact = World.Fact(subject: subject, relation: relation, object: value)
            let text = World.sentence(fact, phrasing)
            #expect(reading[text] == nil, "'\(text)' reads two ways")
            reading[text] = (fact, phrasing)
          }
        }
      }
    }
    let truth = Set(world.facts)
    let g = EntailmentTask(world: world)
    var rng = TaskRandom(seed: 9, stream: "e")
    var worldRight = 0, mentionRight = 0, notRight = 0
    let n = 3000
    for _ in 0..<n {
      let e = g.example(split: .heldout, using: &rng)
      let premiseText = String(e.prompt[e.prompt.range(of: "Premise: ")!.upperBound..<e.prompt.range(of: " Hypothesis: ")!.lowerBound])
      let hypothesisText = String(e.prompt[e.prompt.range(of: " Hypothesis: ")!.upperBound..<e.prompt.range(of: " Does the")!.lowerBound])
      let premise = try premiseText.split(separator: ". ").map { sentence in
        let text = sentence.hasSuffix(".") ? String(sentence) : sentence + "."
        return try #require(reading[text], "\(text)").fact
      }
      #expect(premise.allSatisfy(truth.contains), "premises state true facts: \(premiseText)")
      let (h, phrasing) = try #require(reading[hypothesisText], "\(hypothesisText)")
      let entailed: Bool
      switch phrasing {
      case .plain, .paraphrased: entailed = premise.contains(h)
      case .negated:
        entailed = h.relation.isFunctional
          && premise.contains { $0.subject == h.subject && $0.relation == h.relation && $0.object != h.object }
      }
      #expect((entailed ? "yes" : "no") == e.answer, "\(e.prompt) → \(e.answer)")
      // Shortcuts: what is true in the world; whether the premise mentions the subject and relation;
      // whether the hypothesis says "not".
      let trueInWorld = phrasing == .negated ? !truth.contains(h) : truth.contains(h)
      if trueInWorld == (e.answer == "yes") { worldRight += 1 }
      let mentioned = premise.contains { $0.subject == h.subject && $0.relation == h.relation }
      if mentioned == (e.answer == "yes") { mentionRight += 1 }
      if (phrasing != .negated) == (e.answer == "yes") { notRight += 1 }
    }
    #expect((0.65...0.85).contains(Double(worldRight) / Double(n)), "world knowledge alone: \(worldRight) of \(n)")
    #expect((0.65...0.85).contains(Double(mentionRight) / Double(n)), "mentions alone: \(mentionRight) of \(n)")
    #expect((0.4...0.6).contains(Double(notRight) / Double(n)), "'not' alone: \(notRight) of \(n)")
  }

  // MARK: - Standard errors and baselines

  @Test func standardErrorsMatchHandComputedValues() {
    #expect(abs(TextMetrics.binomialStandardError(accuracy: 0.25, examples: 48) - (0.25 * 0.75 / 48).squareRoot()) < 1e-15)
    #expect(TextMetrics.binomialStandardError(accuracy: 1, examples: 10) == 0)
    #expect(abs(TextMetrics.binomialStandardError(accuracy: 0.5, examples: 100) - 0.05) < 1e-15)
    // 1, 2, 3, 4: mean 2.5, sample variance 5/3, SE √(5/3 / 4) = 0.6455
    #expect(abs(TextMetrics.standardErrorOfMean([1, 2, 3, 4]) - (5.0 / 12).squareRoot()) < 1e-15)
    #expect(TextMetrics.standardErrorOfMean([0.75, 0.75, 0.75]) == 0)
    #expect(TextMetrics.standardErrorOfMean([0.5]).isNaN)
    // On 0/1 scores the sample SE is the binomial one times √(n / (n − 1)).
    let scores: [Double] = [1, 0, 0, 1, 1, 0, 0, 0]
    #expect(abs(TextMetrics.standardErrorOfMean(scores)
                - TextMetrics.binomialStandardError(accuracy: 3.0 / 8, examples: 8) * (8.0 / 7).squareRoot()) < 1e-15)
  }

  @Test func theMajorityBaselineIsTheShareOfTheCommonestAnswer() {
    #expect(TextMetrics.majorityClassAccuracy(["yes", "no", "Yes.", " yes"]) == 0.75)
    #expect(TextMetrics.majorityClassAccuracy(["positive", "negative"]) == 0.5)
    #expect(TextMetrics.majorityClassAccuracy(["no"]) == 1)
    #expect(TextMetrics.commonestAnswer(["b", "a", "B.", "a"]) == "a", "a tie goes to the answer that sorts first")
    #expect(TextMetrics.commonestAnswer(["Arden.", "corvo", "arden"]) == "Arden.")
    let examples = (0..<10).map { TaskExample(task: "sentiment", split: .heldout, prompt: "\($0)", reasoning: "",
                                              answer: $0 < 7 ? "negative" : "positive") }
    let measure = Measure.task(EvaluationPart(column: "sentiment", generator: SentimentTask()), examples: examples)
    #expect(measure.majorityClass == 0.7)
    #expect(Measure.task(EvaluationPart(column: "translation", generator: TranslationTask()),
                         examples: examples).majorityClass == nil, "translation has no classes")
  }

  @Test func theQABaselineGuessesEachKindOfQuestionsCommonestTrainingAnswer() throws {
    let qa = QuestionAnsweringTask(world: Self.world, openBook: 0)
    let closed = Evaluator.distinctHeldout(qa, count: 100, seed: 1234, stream: "eval/qa_closed")
    let guesses = try #require(qa.baselineAnswers(for: closed))
    #expect(guesses.count == closed.count)
    for (guess, e) in zip(guesses, closed) {
      let fact = try #require(Self.world.facts.first { "Question: " + World.question($0) == e.prompt })
      let trainAnswers = Self.world.facts(in: .train).filter { $0.relation == fact.relation }.map(\.object)
      let best = Dictionary(grouping: trainAnswers, by: { $0 }).values.map(\.count).max()
      #expect(trainAnswers.filter { $0 == guess }.count == best, "\(e.prompt): \(guess) is not a commonest training answer")
    }
    let expected = Double(zip(guesses, closed).filter { $0 == $1.answer }.count) / Double(closed.count)
    #expect(Measure.task(EvaluationPart(column: "qa_closed", generator: qa), examples: closed).majorityClass == expected)
    #expect((0.05...0.5).contains(expected), "guessing by kind of question scores \(expected)")
  }

  @Test(arguments: ["sentiment", "entailment"]) func evalSamplesHoldEachLabelEquallyOften(_ name: String) throws {
    let g = TaskSuite.generator(name)
    let labels = try #require(g.labels)
    for count in [64, 7] {
      let examples = Evaluator.distinctHeldout(g, count: count, seed: 1234, stream: "eval/\(name)")
      let counts = labels.map { label in examples.filter { $0.answer == label }.count }
      #expect(examples.count == count && Set(examples.map(\.prompt)).count == count)
      #expect(counts == (count == 64 ? [32, 32] : [4, 3]), "\(name): \(counts)")
      let measure = Measure.task(EvaluationPart(column: name, generator: g), examples: examples)
      #expect(measure.majorityClass == Double(counts.max()!) / Double(count))
    }
  }

  @Test func evalExamplesAreDistinctAndQAIsTwoColumns() {
    let parts = TaskSuite.generator("qa").evaluationParts
    #expect(parts.map(\.column) == ["qa_closed", "qa_open"])
    #expect(TaskSuite.generator("sentiment").evaluationParts.map(\.column) == ["sentiment"])
    let open = Evaluator.distinctHeldout(parts[1].generator, count: 96, seed: 1234, stream: "eval/qa_open")
    #expect(open.count == 96 && Set(open.map(\.prompt)).count == 96)
    #expect(open.allSatisfy { $0.prompt.hasPrefix("Passage: ") && $0.prompt.contains(" " + $0.answer) })
    let closed = Evaluator.distinctHeldout(parts[0].generator, count: 96, seed: 1234, stream: "eval/qa_closed")
    #expect(closed.count == Self.world.facts(in: .heldout).count, "one question per held-out fact, no repeats")
    #expect(closed.allSatisfy { $0.prompt.hasPrefix("Question: ") })
  }
}
