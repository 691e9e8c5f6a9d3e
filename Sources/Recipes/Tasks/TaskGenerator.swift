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

  /// The next example of `split`. What decides the split is the task's (`Split`): the problem's text,
  /// the sentence, the fact asked about, the names and phrasings; never the seed, so held-out problems
  /// can never reach a training set.
  func example(split: Split, using rng: inout TaskRandom) -> TaskExample

  /// The score of `answer` (what a model wrote after the prompt, stripped of the reasoning and of the
  /// stop text) for `example`, in 0...1: 1 or 0 for tasks with one right answer, a similarity for
  /// translation and summarisation.
  func score(_ answer: String, for example: TaskExample) -> Double

  /// The score of a whole response (reasoning and answer, as the model wrote it). By default the
  /// score of its answer (`TaskFormat.answer(in:)`); a task that judges the reasoning itself, such as
  /// language consistency, reads the rest.
  func score(response: String, for example: TaskExample) -> Double

  /// What `eval` reports for this task, one column group per part; by default the task itself, under
  /// its name.
  var evaluationParts: [EvaluationPart] { get }

  /// The answers a classification task chooses among; nil (the default) for the others. `eval` draws as
  /// many held-out examples of each label as it can, so that its sample is balanced like the task.
  var labels: [String]? { get }

  /// What a guesser that ignores each prompt's content answers for `examples`, one answer each: the
  /// baseline the eval table's "majority class" row reports. By default, for a classification task
  /// (one with `labels`), the commonest label among the examples; nil (no baseline) for the others.
  func baselineAnswers(for examples: [TaskExample]) -> [String]?
}

extension TaskGenerator {
  public var evaluationParts: [EvaluationPart] { [EvaluationPart(column: name, generator: self)] }

  public func score(response: String, for example: TaskExample) -> Double {
    score(TaskFormat.answer(in: response), for: example)
  }

  public var labels: [String]? { nil }

  public func baselineAnswers(for examples: [TaskExample]) -> [String]? {
    guard labels != nil, !examples.isEmpty else { return nil }
    return Array(repeating: TextMetrics.commonestAnswer(examples.map(\.answer)), count: examples.count)
  }
}

/// One column group of the eval table: the held-out examples of `generator`, under `column`.
public struct EvaluationPart: Sendable {
  /// The column's name, the `task` of the metric keys (`qa_closed/exact_match`).
  public var column: String
  public var generator: any TaskGenerator

  public init(column: String, generator: any TaskGenerator) {
    self.column = column
    self.generator = generator
  }
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
  /// The share of replies with a term of the built-in block list (`chat_provoked`): lower is better.
  case toxicityRate = "toxicity_rate"
  /// The share of responses whose reasoning stays in the prompt's language (`word_arithmetic_es`).
  case languageConsistency = "language_consistency"

  /// Whether a smaller score is the better one (a rate of harm).
  public var lowerIsBetter: Bool { self == .toxicityRate }
}
