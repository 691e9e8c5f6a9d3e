/// Question answering on the world's facts (name "qa", exact match): closed-book questions the
/// library answers ("Question: Where does Mira live?"), and open-book ones whose prompt holds a passage
/// of facts that contains the answer.
///
/// The split is by fact (`Split.of(fact:)`), not by prompt: a training question never asks about a
/// held-out fact, and a training passage never states one, so a held-out closed-book question can be
/// answered only from what the library said in pretraining, and a held-out open-book question only by
/// reading its passage. `eval` reports the two kinds as separate columns (`qa_closed`, `qa_open`): they
/// measure different things.
public struct QuestionAnsweringTask: TaskGenerator {
  public let world: World
  /// The share of open-book questions (0: all closed-book, 1: all open-book).
  public var openBook: Double
  /// The facts a question of each split may ask about, and that a training passage may state.
  private let trainFacts: [World.Fact]
  private let heldoutFacts: [World.Fact]
  /// The relation each question asks about (a question names its subject and relation only).
  private let relations: [String: World.Fact.Relation]
  /// The commonest answer of each relation among the training facts.
  private let priorAnswers: [World.Fact.Relation: String]

  public init(world: World, openBook: Double = 0.5) {
    precondition((0...1).contains(openBook))
    self.world = world
    self.openBook = openBook
    trainFacts = world.facts(in: .train)
    heldoutFacts = world.facts(in: .heldout)
    relations = Dictionary(world.facts.map { (World.question($0), $0.relation) }, uniquingKeysWith: { a, _ in a })
    priorAnswers = Dictionary(grouping: trainFacts, by: \.relation).mapValues { TextMetrics.commonestAnswer($0.map(\.object)) }
  }

  public var name: String { "qa" }
  public var metric: TaskMetric { .exactMatch }

  /// Closed-book (`qa_closed`: what the model remembers of the library) and open-book (`qa_open`:
  /// reading a passage) apart, since one average of the two would hide which skill moved.
  public var evaluationParts: [EvaluationPart] {
    [EvaluationPart(column: "qa_closed", generator: QuestionAnsweringTask(world: world, openBook: 0)),
     EvaluationPart(column: "qa_open", generator: QuestionAnsweringTask(world: world, openBook: 1))]
  }

  public func example(split: Split, using rng: inout TaskRandom) -> TaskExample {
    let target = (split == .train ? trainFacts : heldoutFacts).randomElement(using: &rng)!
    var prompt = "Question: \(World.question(target))"
    if Double.random(in: 0..<1, using: &rng) < openBook {
      // A held-out passage may state any fact; a training passage only training facts.
      let passage = QuestionAnsweringTask.passage(about: target, from: split == .train ? trainFacts : world.facts,
                                                  using: &rng)
      prompt = "Passage: \(passage.map(World.english).joined(separator: " ")) " + prompt
    }
    return TaskExample(task: name, split: split, prompt: prompt, reasoning: "", answer: target.object)
  }

  /// The target and four other facts, shuffled: up to two more about the target's subject (so that the
  /// subject alone does not point at the answer) and the rest about others (some of the same relation,
  /// so that the answer must be bound to its subject).
  static func passage(about target: World.Fact, from pool: [World.Fact], using rng: inout TaskRandom) -> [World.Fact] {
    let others = pool.filter { $0 != target }
    let sameSubject = others.filter { $0.subject == target.subject }.shuffled(using: &rng).prefix(2)
    let rest = others.filter { $0.subject != target.subject }.shuffled(using: &rng).prefix(4 - sameSubject.count)
    return ([target] + sameSubject + rest).shuffled(using: &rng)
  }

  public func score(_ answer: String, for example: TaskExample) -> Double {
    TextMetrics.exactMatch(answer, example.answer) ? 1 : 0
  }

  /// For each question, the commonest training answer of its kind ("small" for every "What size is
  /// …?"): what a model that learned only how answers are distributed would say, and so the score a
  /// closed-book answer must beat to show it recalls the library. Chosen on training facts, not on the
  /// held-out examples, which are too few per kind of question to pick from without flattering the guess.
  public func baselineAnswers(for examples: [TaskExample]) -> [String]? {
    examples.map { example in
      guard let r = example.prompt.range(of: "Question: ", options: .backwards),
            let relation = relations[String(example.prompt[r.upperBound...])] else { return "" }
      return priorAnswers[relation] ?? ""
    }
  }
}

/// Summarisation (name "summarization", ROUGE-L): a passage of a person's facts padded with filler
/// sentences → its key facts, in a fixed order, as plain sentences.
///
/// Split by fact like QA: a training passage states only training facts, a held-out one at least one
/// held-out fact, so no held-out summary is ever trained on.
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
      // By fact: a training summary states only training facts, a held-out one at least one held-out fact.
      let heldoutFacts = key.filter { Split.of(fact: $0) == .heldout }.count
      guard split == .train ? heldoutFacts == 0 : heldoutFacts > 0 else { continue }
      var sentences = key.map(World.english)
      for _ in 0..<Int.random(in: 1...3, using: &rng) {
        sentences.insert(SummarizationTask.fillers.randomElement(using: &rng)!,
                         at: Int.random(in: 0...sentences.count, using: &rng))
      }
      let prompt = "Summarize: " + sentences.joined(separator: " ")
      let ordered = key.sorted { $0.relation.rawValue < $1.relation.rawValue }
      return TaskExample(task: name, split: split, prompt: prompt, reasoning: "",
                         answer: ordered.map(World.english).joined(separator: " "))
    }
  }

  public func score(_ answer: String, for example: TaskExample) -> Double {
    TextMetrics.rougeL(hypothesis: answer, reference: example.answer)
  }
}
