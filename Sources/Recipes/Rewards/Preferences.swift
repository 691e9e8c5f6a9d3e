import Foundation
import Pipeline

/// Two responses of one policy to the same prompt: what a preference labeler compares (InstructGPT's
/// comparison data, at toy scale).
struct ResponsePair {
  var first: Rollout
  var second: Rollout
}

/// Which response of a pair a labeler prefers; `tie` when it cannot decide (the pair is then skipped).
enum Preference: Equatable, Sendable {
  case first, second, tie

  /// The other response (a tie stays a tie): what label noise does to a decided label.
  var flipped: Preference {
    switch self {
    case .first: return .second
    case .second: return .first
    case .tie: return .tie
    }
  }
}

/// Who labels the preference pairs of a `reward_model` stage (`labeler: human|ai`).
enum PreferenceLabeler {
  /// The words of `labeler:` in a stage file.
  enum Kind: String, SettingChoice {
    case human, ai
  }

  /// RLHF: the rule-based stand-in for human annotators; every pair it looks at is one human label.
  case human(HumanRater)
  /// RLAIF: a judge model's answer and rule checks of the reasoning; no human label at all.
  case ai(AIFeedback)

  /// Whether a label costs one human label (and so counts against `budget`).
  var isHuman: Bool {
    if case .human = self { return true }
    return false
  }

  /// The label of `pair`.
  ///
  /// - Parameters:
  ///   - judgeAnswer: the judge model's own answer to the pair's prompt (AI feedback only; nil when
  ///     the judge gave none).
  ///   - random: the pair's own stream, for the human rater's label noise.
  func label(_ pair: ResponsePair, judgeAnswer: String?, random: inout TaskRandom) -> Preference {
    switch self {
    case .human(let rater): return rater.label(pair, random: &random)
    case .ai(let feedback): return feedback.preference(pair, judgeAnswer: judgeAnswer)
    }
  }
}

// MARK: - The human rater

/// The built-in stand-in for human annotators: it prefers the response that is, in this order,
/// non-toxic, correct, well-formed, in the prompt's language, and shorter, then flips its decision
/// with probability `noise` (annotators disagree with each other about a quarter of the time in
/// InstructGPT's data; `noise` models that).
///
/// The order is lexicographic, so a later criterion only breaks ties of the earlier ones: harmlessness
/// first (an annotator rejects an insult whatever else the answer gets right), then helpfulness (the
/// right answer), then the think/answer form, then language consistency, and concision last. Each
/// check is the one the matching RL reward uses (`RewardFunction.Component`), so what the rater
/// prefers and what the rule-based rewards pay for agree. Two responses equal on every criterion,
/// length included, are a tie.
struct HumanRater {
  var blockList: BlockList
  /// Probability that a decided label is flipped, in 0...1.
  var noise: Double

  /// What the rater sees in one response, the criteria in the order it weighs them.
  struct Assessment: Comparable {
    var nonToxic: Bool
    /// The task's score of the `<answer>` (0 when cut off): 1 or 0, or a similarity.
    var correctness: Double
    var wellFormed: Bool
    /// At least half of the reasoning's language-bearing words are in the prompt's language.
    var sameLanguage: Bool
    /// Characters of the response: fewer is better.
    var length: Int

    /// `a < b` when the rater prefers b.
    static func < (a: Assessment, b: Assessment) -> Bool {
      if a.nonToxic != b.nonToxic { return b.nonToxic }
      if a.correctness != b.correctness { return a.correctness < b.correctness }
      if a.wellFormed != b.wellFormed { return b.wellFormed }
      if a.sameLanguage != b.sameLanguage { return b.sameLanguage }
      return a.length > b.length
    }
  }

  func assess(_ rollout: Rollout) -> Assessment {
    let parts = ReasoningFormat.parse(rollout.response)
    return Assessment(
      nonToxic: RewardFunction.Component.toxicity(blockList).score(rollout, parts) == 0,
      correctness: RewardFunction.Component.accuracy.score(rollout, parts),
      wellFormed: RewardFunction.Component.format.score(rollout, parts) == 1,
      sameLanguage: RewardFunction.Component.language.score(rollout, parts) >= 0.5,
      length: rollout.response.count)
  }

  /// The rule's preference without noise: the ground truth a stage measures its reward model against.
  func preference(_ pair: ResponsePair) -> Preference {
    let a = assess(pair.first), b = assess(pair.second)
    return a == b ? .tie : (b < a ? .first : .second)
  }

  /// The rule's preference, flipped with probability `noise` (ties stay ties: the rater cannot decide
  /// them either way). Draws one number from `random` per call, decided or not, so that the noise of
  /// a pair does not depend on the pairs before it.
  func label(_ pair: ResponsePair, random: inout TaskRandom) -> Preference {
    let flip = Double.random(in: 0..<1, using: &random) < noise
    let truth = preference(pair)
    return flip ? truth.flipped : truth
  }
}

// MARK: - AI feedback

/// AI feedback (RLAIF, Constitutional AI's preference model data without human labels): a judge
/// model re-derives the answer to the prompt (greedily, by the op), and a response that agrees with
/// the judge's answer is preferred. When both or neither agree, rule checks of the reasoning decide:
/// fewer wrong steps, then more right steps (`StepCheck`). Anything else is a tie.
///
/// The judge's answer may be wrong: then the labels are wrong too, which is the price RLAIF pays for
/// needing no human; the op measures it against the noise-free human rule.
struct AIFeedback {
  /// The similarity at which a translation or summary agrees with the judge's (as `Verifier` accepts).
  var minScore = 0.5

  /// Whether the response's answer is the judge's: equal answers (`TextMetrics.exactMatch`) for tasks
  /// with one right answer, the task's similarity reaching `minScore` for translation and
  /// summarisation. A response cut off by the token limit, an empty answer or no judge answer never
  /// agrees.
  func agrees(_ rollout: Rollout, judgeAnswer: String?) -> Bool {
    guard rollout.finished, let judge = judgeAnswer?.trimmingCharacters(in: .whitespacesAndNewlines), !judge.isEmpty
    else { return false }
    let answer = TaskFormat.answer(in: rollout.response).trimmingCharacters(in: .whitespacesAndNewlines)
    guard !answer.isEmpty else { return false }
    let verifier = Verifier(task: rollout.task, minScore: minScore)
    guard verifier.isContinuous else { return TextMetrics.exactMatch(answer, judge) }
    var reference = rollout.example
    reference.answer = judge
    return rollout.task.score(answer, for: reference) >= minScore
  }

  func preference(_ pair: ResponsePair, judgeAnswer: String?) -> Preference {
    let a = agrees(pair.first, judgeAnswer: judgeAnswer), b = agrees(pair.second, judgeAnswer: judgeAnswer)
    if a != b { return a ? .first : .second }
    let x = StepCheck(response: pair.first.response), y = StepCheck(response: pair.second.response)
    if x.invalid != y.invalid { return x.invalid < y.invalid ? .first : .second }
    if x.valid != y.valid { return x.valid > y.valid ? .first : .second }
    return .tie
  }
}

/// The arithmetic steps of a reasoning recomputed: every line of the form `a op b = c` (integers; op
/// one of `+ - * × /`) is valid when `a op b` is `c`, else invalid. Other lines (words, a bare answer,
/// a longer expression) are not steps.
struct StepCheck: Equatable {
  var valid = 0
  var invalid = 0

  init(valid: Int, invalid: Int) {
    self.valid = valid
    self.invalid = invalid
  }

  /// The steps anywhere in a response, tagged or plain, finished or cut off: each tag starts a line of
  /// its own, so `<think>3 * 4 = 12` is the step `3 * 4 = 12` (a cut-off response's steps count too).
  init(response: String) {
    var text = response
    for tag in [ReasoningFormat.thinkOpen, ReasoningFormat.thinkClose, ReasoningFormat.answerOpen, ReasoningFormat.answerClose] {
      text = text.replacingOccurrences(of: tag, with: "\n")
    }
    self.init(text)
  }

  init(_ reasoning: String) {
    for line in reasoning.split(whereSeparator: \.isNewline) {
      guard let step = StepCheck.step(in: String(line)) else { continue }
      if step { valid += 1 } else { invalid += 1 }
    }
  }

  /// Whether the line's step is right, or nil when the line is not a step.
  static func step(in line: String) -> Bool? {
    let sides = line.split(separator: "=", omittingEmptySubsequences: false)
    guard sides.count == 2, let c = Int(sides[1].trimmingCharacters(in: .whitespaces)) else { return nil }
    let left = sides[0].split(separator: " ")
    guard left.count == 3, let a = Int(left[0]), let b = Int(left[2]) else { return nil }
    switch left[1] {
    case "+":
      let (r, overflow) = a.addingReportingOverflow(b)
      return !overflow && r == c
    case "-":
      let (r, overflow) = a.subtractingReportingOverflow(b)
      return !overflow && r == c
    case "*", "×":
      let (r, overflow) = a.multipliedReportingOverflow(by: b)
      return !overflow && r == c
    case "/":
      // Exact division only: the tasks never divide with a remainder.
      let (r, overflow) = b.multipliedReportingOverflow(by: c)
      return b != 0 && !overflow && r == a
    default:
      return nil
    }
  }
}

// MARK: - Labelling a set of pairs

/// The labels of a list of pairs, the noise-free rule's beside them, and what labelling cost.
struct PreferenceLabels {
  /// Per pair: the labeler's preference, or nil when the pair was not labelled (past the budget).
  var labels: [Preference?] = []
  /// Per pair: the noise-free human rule's preference (the ground truth the stage reports against;
  /// a measurement, not a label anyone paid for).
  var truth: [Preference] = []
  /// Labels that cost a human: every pair the human rater looked at, ties included (the rater spent
  /// the time); 0 for AI feedback.
  var humanLabels = 0
  /// Pairs the labeler looked at but could not decide.
  var ties = 0
  /// Pairs left unlabelled because the human budget was spent.
  var overBudget = 0

  /// Pairs with a decided label.
  var decided: Int { labels.count { $0 == .first || $0 == .second } }

  /// Labels `pairs` in order until `budget` human labels are spent (nil: no limit). Pair i's label
  /// noise comes from its own stream (`stream`/i), so it does not depend on the pairs before it.
  ///
  /// - Parameter judgeAnswers: per pair, the judge's answer to its prompt (AI feedback; else empty).
  init(_ pairs: [ResponsePair], judgeAnswers: [String?], labeler: PreferenceLabeler, truth rule: HumanRater,
       budget: Int?, seed: UInt64, stream: String) {
    for (i, pair) in pairs.enumerated() {
      truth.append(rule.preference(pair))
      if labeler.isHuman, let budget, humanLabels >= budget {
        labels.append(nil)
        overBudget += 1
        continue
      }
      if labeler.isHuman { humanLabels += 1 }
      var random = TaskRandom(seed: seed, stream: "\(stream)/\(i)")
      let label = labeler.label(pair, judgeAnswer: i < judgeAnswers.count ? judgeAnswers[i] : nil, random: &random)
      if label == .tie { ties += 1 }
      labels.append(label)
    }
  }
}
