import Pipeline

/// The built-in task families by name, as stage files name them, at their default difficulty.
///
/// The world-based tasks (QA, summarisation, entailment, the library) read the same seeded world, so a
/// model pretrained on `builtin:library` can answer closed-book questions about it; `world` picks it.
public enum TaskSuite {
  /// Every task a stage may name, in the order tables list them.
  public static let names = ["arithmetic", "program", "translation", "qa", "summarization", "sentiment",
                              "entailment", "passkey", WordArithmeticTask.name, DialogueTask.name, ChatTask.name]

  /// What `eval` measures when a stage names no `tasks`: the V-series' tasks, fixed rather than "every
  /// task but passkey", so that adding a task never changes the parameters (and so the results) of an
  /// eval stage that relied on the default.
  public static let evaluatedByDefault = ["arithmetic", "program", "translation", "qa", "summarization", "sentiment",
                                          "entailment"]

  /// The generator called `name` (one of `names`).
  public static func generator(_ name: String, world: UInt64 = 1) -> any TaskGenerator {
    switch name {
    case "arithmetic": return ArithmeticTask(digits: 1, operations: 2)
    case "program": return ProgramSynthesisTask(numbers: 3)
    case "translation": return TranslationTask()
    case "qa": return QuestionAnsweringTask(world: World(seed: world))
    case "summarization": return SummarizationTask(world: World(seed: world))
    case "sentiment": return SentimentTask()
    case "entailment": return EntailmentTask(world: World(seed: world))
    case "passkey": return PasskeyTask(length: 1024)
    case WordArithmeticTask.name: return WordArithmeticTask()
    case DialogueTask.name: return DialogueTask()
    case ChatTask.name: return ChatTask(world: World(seed: world))
    default: preconditionFailure("unknown task \(name); the schema lists TaskSuite.names")
    }
  }
}

/// Draws training rows from a weighted mixture of tasks.
struct TaskMixture {
  let generators: [any TaskGenerator]
  private(set) var weights: [Double]

  /// - Parameter weights: task name → weight (need not sum to 1; zero weights never draw).
  init(weights: [String: Double], world: UInt64) {
    let names = weights.keys.sorted()
    generators = names.map { TaskSuite.generator($0, world: world) }
    self.weights = names.map { weights[$0]! }
  }

  var names: [String] { generators.map(\.name) }

  /// Replaces the weights (adaptive mixtures), in `names` order.
  mutating func setWeights(_ new: [Double]) {
    precondition(new.count == weights.count)
    weights = new
  }

  /// The index of a task drawn in proportion to the weights.
  func drawTask(using rng: inout TaskRandom) -> Int {
    let total = weights.reduce(0, +)
    var x = Double.random(in: 0..<total, using: &rng)
    for (i, w) in weights.enumerated() {
      if x < w { return i }
      x -= w
    }
    return weights.lastIndex { $0 > 0 } ?? 0
  }

  /// `count` training examples of task `task`'s train split, from a stream of their own.
  func examples(_ task: Int, count: Int, split: Split, seed: UInt64, stream: String) -> [TaskExample] {
    var rng = TaskRandom(seed: seed, stream: "\(generators[task].name)/\(split.rawValue)/\(stream)")
    return (0..<count).map { _ in generators[task].example(split: split, using: &rng) }
  }
}
