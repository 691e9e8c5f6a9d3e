import Foundation

/// One sampled response to score, with what the rewards need to know about its prompt.
struct Rollout {
  var example: TaskExample
  /// The generator of the example's task: its scorer checks the answer.
  var task: any TaskGenerator
  /// The prompt's language (the reasoning should be in it).
  var language: PromptLanguage
  /// What the model wrote after the prompt, the end-of-sequence token removed.
  var response: String
  /// Whether the model ended the response itself (a response cut by the token limit earns no
  /// accuracy or format reward: its answer may stop mid-way).
  var finished: Bool
}

/// A weighted sum of reward components: `rewards: {accuracy: 1.0, format: 0.2, language: 0.1,
/// reward_model: 0.5, toxicity: -1.0}` in a stage file. Each component scores in 0...1; a negative
/// weight makes a penalty. The rule-based components with a learned `reward_model` make the hybrid
/// reward. The parts are kept beside the total, so every component gets its own curve.
struct RewardFunction {
  enum Component: Equatable {
    /// The `<answer>`'s content scored by the task's checker (1 or 0 for exact tasks, the similarity
    /// for translation and summarisation).
    case accuracy
    /// 1 when the response is exactly one think block then exactly one answer block (`ReasoningFormat`).
    case format
    /// The share of the reasoning's language-bearing words in the prompt's language (R1's language
    /// consistency); 1 when the reasoning has no such words.
    case language
    /// 1 when the response contains a term of the block list.
    case toxicity(BlockList)
    /// A fair coin that knows nothing of the answer: 1 or 0 from a hash of the prompt and the response
    /// (so a rerun scores the same). The control that shows a gain comes from the reward's information
    /// and not from the updates themselves.
    case random
    /// σ of a reward model's score of prompt + response (`RewardModelScorer`): learned from
    /// preferences instead of written as a rule.
    case rewardModel(RewardModelScorer)

    /// The name in stage files and metrics.
    var name: String {
      switch self {
      case .accuracy: return "accuracy"
      case .format: return "format"
      case .language: return "language"
      case .toxicity: return "toxicity"
      case .random: return "random"
      case .rewardModel: return "reward_model"
      }
    }

    func score(_ rollout: Rollout, _ parts: ReasoningFormat.Parts) -> Double {
      switch self {
      case .accuracy:
        guard rollout.finished, let answer = parts.answer else { return 0 }
        return rollout.task.score(answer.trimmingCharacters(in: .whitespacesAndNewlines), for: rollout.example)
      case .format:
        return rollout.finished && parts.isWellFormed ? 1 : 0
      case .language:
        let reasoning = parts.reasoning ?? rollout.response
        return LanguageIdentifier.share(of: rollout.language, in: reasoning) ?? 1
      case .toxicity(let list):
        return list.isToxic(rollout.response) ? 1 : 0
      case .random:
        // The top bit: FNV-1a's low bits mix weakly for texts that differ only at the end.
        return Split.fnv1a(rollout.example.prompt + "\u{0}" + rollout.response) >> 63 == 1 ? 1 : 0
      case .rewardModel(let scorer):
        return scorer.rewards([rollout])[0]   // one forward for one rollout: `scores(_:)` batches
      }
    }
  }

  struct Term {
    var component: Component
    var weight: Double
  }

  /// A rollout's reward and its unweighted parts, by component name.
  struct Score: Equatable {
    var total: Double
    var parts: [String: Double]
  }

  var terms: [Term]

  func score(_ rollout: Rollout) -> Score { scores([rollout])[0] }

  /// The scores of many rollouts (a GRPO step's): the same values as `score(_:)` one by one, but a
  /// reward model scores them all in one forward pass.
  func scores(_ rollouts: [Rollout]) -> [Score] {
    // Learned components first, batched: term index → one value per rollout.
    var learned: [Int: [Double]] = [:]
    for (t, term) in terms.enumerated() {
      if case .rewardModel(let scorer) = term.component { learned[t] = scorer.rewards(rollouts) }
    }
    return rollouts.enumerated().map { r, rollout in
      let parts = ReasoningFormat.parse(rollout.response)
      var total = 0.0, byName: [String: Double] = [:]
      for (t, term) in terms.enumerated() {
        let value = learned[t]?[r] ?? term.component.score(rollout, parts)
        byName[term.component.name] = value
        total += term.weight * value
      }
      return Score(total: total, parts: byName)
    }
  }
}
