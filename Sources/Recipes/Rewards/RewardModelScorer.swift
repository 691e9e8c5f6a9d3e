import Foundation
import Models
import Pipeline
import Tensors

/// A reward model's judgement of responses: the value head's output at the last token of the prompt
/// followed by the response (InstructGPT's reward model reads the final token the same way).
///
/// The `reward_model` op trains on exactly these sequences (`sequence(_:response:finished:)`) and the
/// `rl` op's `reward_model` component reads them back, so both see a response alike: the prompt as
/// the policy saw it, the response's text re-encoded with the reward model's own tokenizer (it need not
/// be the policy's), and the end-of-sequence token only when the policy wrote it, so that a response
/// cut off by the token limit looks unfinished to the reward model too.
struct RewardModelScorer {
  let model: TransformerLM
  let tokenizer: TextTokenizer
  /// The longest sequence scored; a longer one keeps its end (where the score is read).
  let maxTokens: Int

  /// Scores with `artifact`'s model, which stops training: its weights become constants, so scoring
  /// records no autograd graph.
  ///
  /// - Throws: `StageFailure` naming `source` when the model has no value head (a language model, not a
  ///   `reward_model` stage's output).
  init(_ artifact: ModelArtifact, source: String) throws {
    guard artifact.model.config.valueHead != nil else {
      throw StageFailure("'\(source)' has no value head: name a reward_model stage as reward_model:")
    }
    model = artifact.model
    model.trainable = .only([])
    tokenizer = artifact.tokenizer
    maxTokens = artifact.model.config.contextLength
  }

  /// The tokens scored for one response: prompt, response, and end-of-sequence when `finished`.
  static func sequence(_ example: TaskExample, response: String, finished: Bool, tokenizer: TextTokenizer,
                       maxTokens: Int) -> [Int32] {
    var tokens = tokenizer.encode(TaskFormat.prompt(example)) + tokenizer.encode(response)
    if finished { tokens.append(tokenizer.id(of: .eos)) }
    return Array(tokens.suffix(maxTokens))
  }

  /// The value head's score at each sequence's last token, on the autograd tape (for training).
  ///
  /// Sequences are right-padded to one length; attention is causal, so padding after a sequence's
  /// last token cannot change its score.
  ///
  /// - Parameter sequences: `[n][length_i]`, each non-empty.
  /// - Returns: `[n, 1]`.
  static func lastTokenScores(_ model: TransformerLM, _ sequences: [[Int32]], pad: Int32) -> Variable {
    let length = sequences.map(\.count).max() ?? 1
    precondition(sequences.allSatisfy { !$0.isEmpty }, "a scored sequence is empty")
    let rows = sequences.map { $0 + [Int32](repeating: pad, count: length - $0.count) }
    let all = model.scores(rows)                                                 // [n·length, 1]
    let last = sequences.enumerated().map { Int32($0.offset * length + $0.element.count - 1) }
    return Variable.gatherRows(all, last)                                        // [n, 1]
  }

  /// Raw scores of the rollouts, in one forward pass over all of them.
  func scores(_ rollouts: [Rollout]) -> [Float] {
    guard !rollouts.isEmpty else { return [] }
    let sequences = rollouts.map {
      RewardModelScorer.sequence($0.example, response: $0.response, finished: $0.finished, tokenizer: tokenizer,
                                 maxTokens: maxTokens)
    }
    return RewardModelScorer.lastTokenScores(model, sequences, pad: tokenizer.id(of: .pad)).value.scalars
  }

  /// The `reward_model` reward of each rollout: σ(score), in 0...1 like the rule-based components.
  func rewards(_ rollouts: [Rollout]) -> [Double] {
    scores(rollouts).map { 1 / (1 + Foundation.exp(-Double($0))) }
  }
}

extension RewardModelScorer: Equatable {
  /// The same model object (a reward function compares its components by what they score with).
  static func == (a: RewardModelScorer, b: RewardModelScorer) -> Bool { a.model === b.model }
}
