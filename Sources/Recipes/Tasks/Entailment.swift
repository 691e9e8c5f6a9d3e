/// Entailment between statements about the world (name "entailment", accuracy): a premise of two or
/// three facts and a hypothesis → "yes" when the premise entails the hypothesis, else "no"; balanced.
///
/// The answer depends on what the premise states, not on what is true in the world: half of the "no"
/// hypotheses are true facts the premise does not mention, so knowing the world scores about 75%, and
/// so does checking only whether the premise mentions the hypothesis's subject and relation. Deciding
/// needs both, plus paraphrases ("Mira's home is in Arden."), negation ("Mira does not live in
/// Corvo." follows from "Mira lives in Arden."), and binding a value to its subject when the premise
/// gives the same relation for someone else. Negated hypotheses are as common under "yes" as under "no".
///
/// Split by fact (`Split.of(fact:)`): a training example states and asks only training facts; a held-out
/// hypothesis is about a held-out fact, so it was never a hypothesis, a premise or a question in training.
public struct EntailmentTask: TaskGenerator {
  public let world: World
  private let trainFacts: [World.Fact]
  private let heldoutFacts: [World.Fact]

  public init(world: World) {
    self.world = world
    trainFacts = world.facts(in: .train)
    heldoutFacts = world.facts(in: .heldout)
  }

  public var name: String { "entailment" }
  public var metric: TaskMetric { .accuracy }
  public var labels: [String]? { ["yes", "no"] }

  /// How a hypothesis relates to the premise; the label follows from it.
  enum Inference: CaseIterable {
    /// The premise states the hypothesis, plainly or in other words: yes.
    case stated
    /// The hypothesis denies a value other than the stated one of a relation with one value: yes.
    case deniedOther
    /// The hypothesis is true in the world but the premise does not say it: no.
    case unstated
    /// The hypothesis gives another value than the premise states: no.
    case changed
    /// The hypothesis denies what the premise states: no.
    case denied

    var isEntailed: Bool {
      switch self {
      case .stated, .deniedOther: return true
      case .unstated, .changed, .denied: return false
      }
    }

    /// A quarter of each label is negated where the relation allows it (one value per subject), so that
    /// "not" says nothing about the label; half of "no" is unstated (true, but not in the premise).
    static func draw(entailed: Bool, relation: World.Fact.Relation, using rng: inout TaskRandom) -> Inference {
      let quarter = Int.random(in: 0..<4, using: &rng)
      if entailed { return relation.isFunctional && quarter == 0 ? .deniedOther : .stated }
      switch quarter {
      case 0, 1: return .unstated
      case 2: return .changed
      default: return relation.isFunctional ? .denied : .changed
      }
    }
  }

  public func example(split: Split, using rng: inout TaskRandom) -> TaskExample {
    let target = (split == .train ? trainFacts : heldoutFacts).randomElement(using: &rng)!
    let inference = Inference.draw(entailed: Bool.random(using: &rng), relation: target.relation, using: &rng)
    // Facts of the premise besides the target: never another statement of the target's subject and
    // relation. A training premise states only training facts.
    let pool = (split == .train ? trainFacts : world.facts)
      .filter { !($0.subject == target.subject && $0.relation == target.relation) }
    // Two or three sentences whatever the inference, so that the premise's length is no clue.
    let count = inference == .unstated ? Int.random(in: 2...3, using: &rng) : Int.random(in: 1...2, using: &rng)
    var premise = EntailmentTask.distractors(for: target, from: pool, count: count, using: &rng)
    if inference != .unstated { premise.append(target) }
    premise.shuffle(using: &rng)

    var hypothesis = target
    var phrasing: World.Phrasing = Bool.random(using: &rng) ? .plain : .paraphrased
    switch inference {
    case .stated, .unstated: break
    case .denied: phrasing = .negated
    case .deniedOther, .changed:
      // Another value; for "changed", preferably one the premise gives someone else.
      let bound = premise.first { $0.relation == target.relation && $0.object != target.object }?.object
      let others = world.values(of: target.relation).filter { $0 != target.object }
      if inference == .changed, let bound, Bool.random(using: &rng) {
        hypothesis.object = bound
      } else {
        hypothesis.object = others.randomElement(using: &rng)!   // every relation has several values
      }
      if inference == .deniedOther { phrasing = .negated }
    }
    let prompt = "Premise: \(premise.map(World.english).joined(separator: " ")) Hypothesis: "
      + "\(World.sentence(hypothesis, phrasing)) Does the premise entail the hypothesis?"
    return TaskExample(task: name, split: split, prompt: prompt, reasoning: "", answer: inference.isEntailed ? "yes" : "no")
  }

  /// `count` facts from `pool` to sit beside the target: half the time one has the target's relation
  /// (about someone else), and the others are about the target's subject when it has more.
  static func distractors(for target: World.Fact, from pool: [World.Fact], count: Int,
                          using rng: inout TaskRandom) -> [World.Fact] {
    var chosen: [World.Fact] = []
    if Bool.random(using: &rng), let same = pool.filter({ $0.relation == target.relation }).randomElement(using: &rng) {
      chosen.append(same)
    }
    let sameSubject = pool.filter { $0.subject == target.subject }.shuffled(using: &rng)
    let anyone = pool.shuffled(using: &rng)
    for fact in sameSubject + anyone where chosen.count < count && !chosen.contains(fact) { chosen.append(fact) }
    return chosen
  }

  public func score(_ answer: String, for example: TaskExample) -> Double {
    TextMetrics.exactMatch(answer, example.answer) ? 1 : 0
  }
}
