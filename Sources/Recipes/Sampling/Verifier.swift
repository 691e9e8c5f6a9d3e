import Foundation

/// Judges a completion against its example with the task's scorer: exact tasks must be right, scored
/// ones (translation's chrF, summarisation's ROUGE-L) must reach a threshold.
struct Verifier {
  let task: any TaskGenerator
  /// The score a continuous metric must reach to accept a sample.
  let minScore: Double

  init(task: any TaskGenerator, minScore: Double = 0.5) {
    self.task = task
    self.minScore = minScore
  }

  /// Whether the task's score is a similarity (accept at `minScore`) rather than right or wrong.
  var isContinuous: Bool { task.metric == .chrF || task.metric == .rougeL }

  /// The score of the completion's answer and whether the sample is accepted. An unfinished sample
  /// (cut off by the token limit) is never accepted: its text may stop mid-answer.
  func judge(_ completion: String, finished: Bool, for example: TaskExample) -> Verdict {
    let score = task.score(TaskFormat.answer(in: completion), for: example)
    let passes = isContinuous ? score >= minScore : score == 1
    return Verdict(score: score, accepted: finished && passes)
  }
}

/// A verifier's judgement of one sample.
struct Verdict: Equatable {
  /// The task's score in 0...1.
  var score: Double
  var accepted: Bool
}
