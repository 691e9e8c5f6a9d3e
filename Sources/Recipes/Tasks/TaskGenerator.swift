/// A built-in task family: draws examples of a split from a seeded stream and scores answers.
///
/// Stage files name tasks by `name` (`tasks: {translation: 0.4, qa: 0.3}`, `eval: {tasks: [qa]}`); the
/// same name is the `task` field of every example the generator draws. Generators are pure: the same
/// stream gives the same examples on every machine, and the only randomness is `rng`.
public protocol TaskGenerator: Sendable {
  /// The name stage files use, and the `task` field of the examples.
  var name: String { get }
  /// How `eval` scores this task (the column its table shows).
  var metric: TaskMetric { get }

  /// The next example of `split`. Problems are drawn until one falls in `split`
  /// (`Split.of(problem: prompt) == split`), so held-out problems can never reach a training set.
  func example(split: Split, using rng: inout TaskRandom) -> TaskExample

  /// The score of `answer` (what a model wrote after the prompt, stripped of the reasoning and of the
  /// stop text) for `example`, in 0...1: 1 or 0 for tasks with one right answer, a similarity for
  /// translation and summarisation.
  func score(_ answer: String, for example: TaskExample) -> Double
}

/// The measure a task is scored with; `eval` averages `TaskGenerator.score` over held-out examples and
/// labels the column with `rawValue`.
public enum TaskMetric: String, Sendable, CaseIterable {
  /// Normalised exact match (case, surrounding space and final punctuation ignored): QA, passkey.
  case exactMatch = "exact_match"
  /// A checked answer is right or wrong (arithmetic, program synthesis); greedy is pass@1, sampling gives pass@k.
  case verified = "pass@1"
  /// Character n-gram F-score (chrF, β = 2): translation.
  case chrF = "chrF"
  /// Longest-common-subsequence F-measure on words: summarisation.
  case rougeL = "ROUGE-L"
  /// Label accuracy: the classification pair (their mean is the mini-GLUE score).
  case accuracy = "accuracy"
}
