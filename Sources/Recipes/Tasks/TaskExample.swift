import Pipeline

/// One example of a task: a prompt, the worked reasoning that leads to the answer, and the answer.
///
/// Datasets are JSONL files of these, one object per line with keys in a fixed order, so the same
/// examples always give the same bytes (and the same artifact hash).
public struct TaskExample: Equatable, Sendable {
  public var task: String
  public var split: Split
  public var prompt: String
  /// Worked steps, one per line (empty for tasks without reasoning).
  public var reasoning: String
  public var answer: String

  public init(task: String, split: Split, prompt: String, reasoning: String, answer: String) {
    self.task = task
    self.split = split
    self.prompt = prompt
    self.reasoning = reasoning
    self.answer = answer
  }

  /// The JSON object of one JSONL line (no newline).
  public var jsonLine: String {
    let json = ParamValue.jsonQuoted
    return "{\"task\":\(json(task)),\"split\":\(json(split.rawValue)),\"prompt\":\(json(prompt)),"
      + "\"reasoning\":\(json(reasoning)),\"answer\":\(json(answer))}"
  }
}

/// Which part of a task an example belongs to. Held-out examples are never used for training: the
/// split is a function of what the example is about, never of the seed, so a held-out problem can never
/// be generated into a training set.
///
/// What "about" means is the task's: the problem's text for arithmetic and programs
/// (`Split.of(problem:)`), the sentence for translation, the fact (subject and relation) for the tasks
/// on the world (`Split.of(fact:)`), and the product, reviewer and phrasing for sentiment.
public enum Split: String, Sendable, CaseIterable {
  case train
  case heldout

  /// One problem in ten is held out, chosen by a hash of the problem's text (FNV-1a, stable across
  /// runs and machines, unlike `Hasher`).
  public static func of(problem: String) -> Split {
    fnv1a(problem) % 10 == 0 ? .heldout : .train
  }

  /// One fact in five is held out, chosen by a hash of its subject and relation, not its value: a
  /// question, a passage, a summary and a true or false hypothesis about Mira's home are all about the
  /// same held-out fact. One in five rather than one in ten, because a world has only a few hundred
  /// facts and closed-book QA can ask each held-out fact only once.
  public static func of(fact: World.Fact) -> Split {
    fnv1a(fact.subject + "|" + fact.relation.rawValue) % 5 == 0 ? .heldout : .train
  }

  /// FNV-1a, 64 bits.
  static func fnv1a(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
      hash ^= UInt64(byte)
      hash = hash &* 0x0000_0100_0000_01b3
    }
    return hash
  }
}
