/// Question answering on the world's facts (name "qa", exact match): closed-book questions the
/// library answers ("Where does Mira live?"), and open-book ones whose prompt holds a passage.
public struct QuestionAnsweringTask: TaskGenerator {
  public let world: World
  /// The share of open-book questions (0: all closed-book).
  public var openBook: Double

  public init(world: World, openBook: Double = 0.5) {
    self.world = world
    self.openBook = openBook
  }

  public var name: String { "qa" }
  public var metric: TaskMetric { .exactMatch }

  public func example(split: Split, using rng: inout TaskRandom) -> TaskExample {
    while true {
      let i = Int.random(in: 0..<world.people.count, using: &rng)
      let (question, answer) = QuestionAnsweringTask.question(about: i, in: world, using: &rng)
      var prompt = "Question: \(question)"
      if Double.random(in: 0..<1, using: &rng) < openBook {
        var facts = world.personFacts(i).map(World.english)
        facts.shuffle(using: &rng)
        prompt = "Passage: \(facts.prefix(5).joined(separator: " ")) " + prompt
        if !facts.prefix(5).contains(where: { $0.contains(answer) }) { continue }
      }
      guard Split.of(problem: prompt) == split else { continue }
      return TaskExample(task: name, split: split, prompt: prompt, reasoning: "", answer: answer)
    }
  }

  /// A question about person `i` (or their animal, home or belongings) and its one-to-three-word answer.
  static func question(about i: Int, in w: World, using rng: inout TaskRandom) -> (String, String) {
    let p = w.people[i], a = w.animals[p.pet], home = w.places[p.home]
    let all: [(String, String)] = [
      ("Where does \(p.name) live?", home.name),
      ("What is \(p.name)'s job?", Lexicon.jobs[p.job].english),
      ("What animal does \(p.name) have?", a.kind.english),
      ("What does \(p.name) like to eat?", p.food.english),
      ("What color is \(a.name)?", a.color.english),
      ("Who owns \(a.name)?", p.name),
      ("In which region is \(home.name)?", Lexicon.regions[home.region].english),
      ("What is the climate of \(home.name)?", home.climate.english),
    ]
    return all.randomElement(using: &rng)!
  }

  public func score(_ answer: String, for example: TaskExample) -> Double {
    TextMetrics.exactMatch(answer, example.answer) ? 1 : 0
  }
}

/// Summarisation (name "summarization", ROUGE-L): a passage of a person's facts padded with filler
/// sentences → its key facts, in a fixed order, as plain sentences.
public struct SummarizationTask: TaskGenerator {
  public let world: World
  public init(world: World) { self.world = world }

  public var name: String { "summarization" }
  public var metric: TaskMetric { .rougeL }

  static let fillers = ["The weather was pleasant that day.", "Many people walked past the market.",
                        "The bells rang at noon.", "Nothing else happened that week.", "It was a quiet morning.",
                        "The road was long and dusty.", "Some children were playing outside."]

  public func example(split: Split, using rng: inout TaskRandom) -> TaskExample {
    while true {
      let i = Int.random(in: 0..<world.people.count, using: &rng)
      let key = Array(world.personFacts(i).shuffled(using: &rng).prefix(3))
      var sentences = key.map(World.english)
      for _ in 0..<Int.random(in: 1...3, using: &rng) {
        sentences.insert(SummarizationTask.fillers.randomElement(using: &rng)!,
                         at: Int.random(in: 0...sentences.count, using: &rng))
      }
      let prompt = "Summarize: " + sentences.joined(separator: " ")
      guard Split.of(problem: prompt) == split else { continue }
      let ordered = key.sorted { $0.relation.rawValue < $1.relation.rawValue }
      return TaskExample(task: name, split: split, prompt: prompt, reasoning: "",
                         answer: ordered.map(World.english).joined(separator: " "))
    }
  }

  public func score(_ answer: String, for example: TaskExample) -> Double {
    TextMetrics.rougeL(hypothesis: answer, reference: example.answer)
  }
}

/// Sentiment of a generated review (name "sentiment", accuracy): "positive" or "negative", balanced.
/// Reviews mix two or three phrases of one polarity (some negated: "not bad at all") with neutral ones.
public struct SentimentTask: TaskGenerator {
  public let world: World
  public init(world: World) { self.world = world }

  public var name: String { "sentiment" }
  public var metric: TaskMetric { .accuracy }

  static let positive = ["I love it", "it is wonderful", "great quality", "very comfortable", "not bad at all",
                         "worth every coin", "I would buy it again", "it works perfectly"]
  static let negative = ["I hate it", "it is terrible", "poor quality", "it broke after a day", "not good at all",
                         "a waste of money", "I would never buy it again", "it does not work"]
  static let neutral = ["It arrived on Monday.", "I use it every day.", "My friend has one too.", "It came in a box."]

  public func example(split: Split, using rng: inout TaskRandom) -> TaskExample {
    while true {
      let good = Bool.random(using: &rng)
      let thing = Lexicon.objects.randomElement(using: &rng)!, color = Lexicon.colors.randomElement(using: &rng)!
      var parts = Array((good ? SentimentTask.positive : SentimentTask.negative).shuffled(using: &rng)
        .prefix(Int.random(in: 2...3, using: &rng))).map { $0.prefix(1).uppercased() + $0.dropFirst() + "." }
      parts.insert(SentimentTask.neutral.randomElement(using: &rng)!, at: Int.random(in: 0...parts.count, using: &rng))
      let prompt = "Review of a \(color.english) \(thing.english): \(parts.joined(separator: " ")) Is the review positive or negative?"
      guard Split.of(problem: prompt) == split else { continue }
      return TaskExample(task: name, split: split, prompt: prompt, reasoning: "", answer: good ? "positive" : "negative")
    }
  }

  public func score(_ answer: String, for example: TaskExample) -> Double {
    TextMetrics.exactMatch(answer, example.answer) ? 1 : 0
  }
}

/// Entailment between statements about the world (name "entailment", accuracy): a premise of one or two
/// facts and a hypothesis that either restates one of them ("yes") or changes its value ("no"), balanced.
public struct EntailmentTask: TaskGenerator {
  public let world: World
  public init(world: World) { self.world = world }

  public var name: String { "entailment" }
  public var metric: TaskMetric { .accuracy }

  public func example(split: Split, using rng: inout TaskRandom) -> TaskExample {
    let allFacts = world.facts
    while true {
      let i = Int.random(in: 0..<world.people.count, using: &rng)
      let premise = Array(world.personFacts(i).shuffled(using: &rng).prefix(Int.random(in: 1...2, using: &rng)))
      let target = premise.randomElement(using: &rng)!
      let entailed = Bool.random(using: &rng)
      var hypothesis = target
      if !entailed {
        // Same subject and relation, another value the world uses for that relation.
        let others = Set(allFacts.filter { $0.relation == target.relation && $0.object != target.object }.map(\.object)).sorted()
        guard let other = others.randomElement(using: &rng) else { continue }
        hypothesis.object = other
      }
      let prompt = "Premise: \(premise.map(World.english).joined(separator: " ")) Hypothesis: \(World.english(hypothesis)) Does the premise entail the hypothesis?"
      guard Split.of(problem: prompt) == split else { continue }
      return TaskExample(task: name, split: split, prompt: prompt, reasoning: "", answer: entailed ? "yes" : "no")
    }
  }

  public func score(_ answer: String, for example: TaskExample) -> Double {
    TextMetrics.exactMatch(answer, example.answer) ? 1 : 0
  }
}
