import Foundation
import Models
import Pipeline
import Tensors

/// `eval`: scores one or more models on held-out tasks and writes the table (Markdown).
///
/// Every model answers the same distinct held-out examples (drawn once, from the eval stage's seed),
/// greedily: the score is pass@1 for checked tasks, exact match for QA (closed-book and open-book in
/// columns of their own) and passkeys, chrF for translation, ROUGE-L for summarisation and accuracy for
/// the classification pair, whose mean is the mini-GLUE score. With `samples: k` the checked tasks also
/// get pass@k from k samples at `temperature`. `perplexity` is measured on held-out library documents.
///
/// Each score comes with its standard error (binomial for accuracies and pass rates, the standard error
/// of the mean over examples for chrF and ROUGE-L, the delta method over windows for perplexity), each
/// task with its number of examples, and the classification tasks and QA with the majority-class
/// baseline (for QA, the commonest training answer of each kind of question): a difference smaller than
/// a couple of standard errors, or a score near the baseline, says nothing.
struct EvalOp: TypedOperation {
  let name = "eval"
  /// 2: QA split by fact and reported closed-book and open-book apart, sentiment and entailment that
  /// need understanding, distinct held-out examples, standard errors, baselines, example counts, and a
  /// Markdown table. 3: the classification tasks' samples hold each label equally often. 4: each
  /// model's parameters, active parameters and size; Spanish language consistency for word_arithmetic.
  let version = 4
  let summary = "Score models on held-out tasks; print the table"

  static let taskNames = TaskSuite.names + ["perplexity"]
  static let defaultTasks = TaskSuite.evaluatedByDefault + ["perplexity"]

  struct Settings: SettingsGroup {
    var tasks = EvalOp.defaultTasks
    var examples = 48
    var samples = 0
    var temperature = 0.8
    var maxNewTokens = 96
    var world = Int(BuiltinCorpus.defaultWorld)
    static let fields: [SettingField<Self>] = [
      .words("tasks", \.tasks, among: EvalOp.taskNames, count: 1...100, doc: "What to measure"),
      .int("examples", \.examples, range: 1...100_000,
           doc: "Distinct held-out examples per task (fewer when a task has fewer, e.g. closed-book QA)"),
      .int("samples", \.samples, range: 0...64, doc: "Samples per checked problem for pass@k (0: greedy pass@1 only)"),
      .float("temperature", \.temperature, range: 0.01...5, doc: "Sampling temperature for pass@k"),
      .int("max_new_tokens", \.maxNewTokens, range: 1...65_536, doc: "Longest answer"),
      .world(\.world),
    ]
  }

  let defaults = Settings()
  let inputs = [InputSlot("models", kinds: [.model], multiple: true, doc: "The model stages to compare")]
  let outputs = [OutputSpec("metrics", kind: .metrics, doc: "Every score and its standard error, per model and task"),
                 OutputSpec("table", kind: .report, doc: "The table as Markdown")]

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    let evaluator = Evaluator(examples: settings.examples, samples: settings.samples,
                              temperature: Float(settings.temperature), maxNewTokens: settings.maxNewTokens,
                              world: UInt64(settings.world), seed: context.seed)
    let measures = settings.tasks.flatMap(evaluator.measures(for:))
    var table = ScoreTable()
    ModelFacts.columns.forEach { table.add($0) }
    for measure in measures { measure.columns(samples: settings.samples).forEach { table.add($0) } }
    let miniGLUE = MiniGLUE(table)
    if let miniGLUE { table.add(miniGLUE.column) }

    let inputs = context.inputs("models")
    for (m, input) in inputs.enumerated() {
      let bytes = try context.bytes(of: input)
      let artifact = try ModelArtifact(bytes: bytes, source: input.stage)
      for (column, value) in ModelFacts.values(artifact.model.config, bytes: bytes.count) {
        table.set(model: input.stage, column: column, Estimate(value: value, standardError: 0))
      }
      for (t, measure) in measures.enumerated() {
        if context.isCancelled { throw CancellationError() }
        context.progress(step: m * measures.count + t, of: inputs.count * measures.count)
        for (column, estimate) in evaluator.score(artifact, measure) {
          table.set(model: input.stage, column: column, estimate)
        }
      }
      if let miniGLUE, let estimate = miniGLUE.estimate(table, model: input.stage) {
        table.set(model: input.stage, column: miniGLUE.column.name, estimate)
      }
    }
    context.progress(step: inputs.count * measures.count, of: inputs.count * measures.count)
    let text = table.rendered
    for line in text.split(separator: "\n") { context.log(String(line)) }
    var metrics = MetricsArtifact()
    var headline: [String: Double] = [:]
    func record(_ key: String, _ value: Double) {
      metrics.set(key, value)
      headline[key] = value
    }
    for (model, column, estimate) in table.cells {
      record("\(model)/\(column)", estimate.value)
      record("\(model)/\(column)_se", estimate.standardError)
    }
    for measure in measures {
      record("examples/\(measure.part)", Double(measure.count))
      if let majority = measure.majorityClass { record("majority_class/\(measure.part)", majority) }
    }
    if let miniGLUE, let majority = miniGLUE.column.majorityClass { record("majority_class/mini-GLUE", majority) }
    return StageOutput(artifacts: ["metrics": metrics.bytes, "table": Array(text.utf8)], metrics: headline)
  }
}

// MARK: - What is measured

/// One thing `eval` measures, fixed before any model runs, so that every model answers the same examples.
enum Measure {
  /// A task part's distinct held-out examples.
  case task(EvaluationPart, examples: [TaskExample])
  /// Perplexity on held-out library documents.
  case perplexity(documents: [String], windows: Int)

  /// The part's name: the first component of its column names and metric keys.
  var part: String {
    switch self {
    case .task(let part, _): return part.column
    case .perplexity: return "perplexity"
    }
  }

  /// Examples scored (windows, for perplexity).
  var count: Int {
    switch self {
    case .task(_, let examples): return examples.count
    case .perplexity(_, let windows): return windows
    }
  }

  /// The score of the task's baseline guesser (`TaskGenerator.baselineAnswers(for:)`): the majority
  /// class for classification, the commonest training answer of each kind of question for QA.
  var majorityClass: Double? {
    guard case .task(let part, let examples) = self, !examples.isEmpty,
          let guesses = part.generator.baselineAnswers(for: examples) else { return nil }
    return zip(guesses, examples).reduce(0) { $0 + part.generator.score($1.0, for: $1.1) } / Double(examples.count)
  }

  /// The table's columns for this measure, in order.
  func columns(samples: Int) -> [ScoreTable.Column] {
    switch self {
    case .task(let part, _):
      var out = [ScoreTable.Column(name: "\(part.column)/\(part.generator.metric.rawValue)", scale: .percent,
                                   examples: count, majorityClass: majorityClass)]
      if samples > 0 && part.generator.metric == .verified {
        out.append(ScoreTable.Column(name: "\(part.column)/pass@\(samples)", scale: .percent, examples: count))
      }
      return out
    case .perplexity:
      return [ScoreTable.Column(name: "perplexity", scale: .perplexity, examples: count)]
    }
  }
}

/// A score and its standard error.
struct Estimate: Equatable {
  var value: Double
  var standardError: Double
}

/// The mean of the sentiment and entailment accuracies, when both are measured: its standard error
/// combines theirs as independent, √(se₁² + se₂²) / 2, and its baseline is the mean of their baselines.
struct MiniGLUE {
  let parts: (String, String)
  let column: ScoreTable.Column

  init?(_ table: ScoreTable) {
    guard let a = table.columns.first(where: { $0.name == "sentiment/accuracy" }),
          let b = table.columns.first(where: { $0.name == "entailment/accuracy" }) else { return nil }
    parts = (a.name, b.name)
    let majority = a.majorityClass.flatMap { x in b.majorityClass.map { (x + $0) / 2 } }
    column = ScoreTable.Column(name: "mini-GLUE", scale: .percent, majorityClass: majority)
  }

  func estimate(_ table: ScoreTable, model: String) -> Estimate? {
    guard let a = table.estimate(model: model, column: parts.0), let b = table.estimate(model: model, column: parts.1) else {
      return nil
    }
    return Estimate(value: (a.value + b.value) / 2,
                    standardError: (a.standardError * a.standardError + b.standardError * b.standardError).squareRoot() / 2)
  }
}

// MARK: - Scoring

/// Draws the held-out examples and scores one model on one measure.
struct Evaluator {
  let examples: Int
  let samples: Int
  let temperature: Float
  let maxNewTokens: Int
  let world: UInt64
  let seed: UInt64

  /// The measures of one `tasks:` entry: perplexity, or one per evaluation part of the task (two for QA).
  func measures(for task: String) -> [Measure] {
    if task == "perplexity" {
      let documents = BuiltinCorpus.library(documents: max(8, examples / 2), world: world, split: .heldout, seed: seed)
      return [.perplexity(documents: documents, windows: examples)]
    }
    return TaskSuite.generator(task, world: world).evaluationParts.map { part in
      .task(part, examples: Evaluator.distinctHeldout(part.generator, count: examples, seed: seed, stream: "eval/\(part.column)"))
    }
  }

  /// `count` held-out examples with distinct prompts, in the order drawn: a repeated prompt would count
  /// one problem twice and make the standard error look smaller than it is. A classification task gets
  /// an equal share of each label (the first labels one more when `count` does not divide), so that its
  /// majority class is 1/k as in the task, not what a sample happened to hold. A task with fewer
  /// distinct held-out problems (closed-book QA asks each held-out fact once) gives all it has: drawing
  /// stops after `10 × count + 100` draws in a row find nothing usable.
  static func distinctHeldout(_ generator: any TaskGenerator, count: Int, seed: UInt64, stream: String) -> [TaskExample] {
    var rng = TaskRandom(seed: seed, stream: stream)
    var quota = generator.labels.map { labels in
      Dictionary(uniqueKeysWithValues: labels.enumerated().map { i, label in
        (label, count / labels.count + (i < count % labels.count ? 1 : 0))
      })
    }
    var seen = Set<String>(), out: [TaskExample] = []
    var misses = 0
    while out.count < count && misses < 10 * count + 100 {
      let example = generator.example(split: .heldout, using: &rng)
      let wanted = quota.map { ($0[example.answer] ?? 0) > 0 } ?? true
      guard wanted, seen.insert(example.prompt).inserted else {
        misses += 1
        continue
      }
      out.append(example)
      quota?[example.answer]? -= 1
      misses = 0
    }
    return out
  }

  /// Column → estimate for one measure (pass@k adds a column).
  func score(_ artifact: ModelArtifact, _ measure: Measure) -> [(String, Estimate)] {
    switch measure {
    case .perplexity(let documents, let windows):
      return [("perplexity", perplexity(artifact, documents: documents, windows: windows))]
    case .task(let part, let heldout):
      let generator = part.generator
      let greedy = responses(artifact, heldout, settings: SamplingSettings(maxNewTokens: maxNewTokens), stream: 0)
      let scores = zip(greedy, heldout).map { generator.score(response: $0, for: $1) }
      let mean = scores.reduce(0, +) / Double(scores.count)
      let se: Double
      switch generator.metric {
      case .exactMatch, .verified, .accuracy, .toxicityRate, .languageConsistency: se = TextMetrics.binomialStandardError(accuracy: mean, examples: scores.count)
      case .chrF, .rougeL: se = TextMetrics.standardErrorOfMean(scores)
      }
      var out = [("\(part.column)/\(generator.metric.rawValue)", Estimate(value: mean, standardError: se))]
      if samples > 0 && generator.metric == .verified {
        var solved = [Bool](repeating: false, count: heldout.count)
        for s in 0..<samples {
          let sampled = responses(artifact, heldout, settings: SamplingSettings(temperature: temperature, maxNewTokens: maxNewTokens),
                                  stream: UInt32(s + 1))
          for (i, response) in sampled.enumerated() where generator.score(response: response, for: heldout[i]) == 1 { solved[i] = true }
        }
        let rate = Double(solved.filter { $0 }.count) / Double(heldout.count)
        out.append(("\(part.column)/pass@\(samples)",
                    Estimate(value: rate, standardError: TextMetrics.binomialStandardError(accuracy: rate, examples: heldout.count))))
      }
      return out
    }
  }

  /// The responses a model writes for `examples` (reasoning and answer, as written), in batches of 16;
  /// prompts too long for the context keep their end (where the question is).
  func responses(_ artifact: ModelArtifact, _ examples: [TaskExample], settings: SamplingSettings, stream: UInt32) -> [String] {
    let model = artifact.model, tokenizer = artifact.tokenizer
    let generator = Generator(model: model)
    var random = RandomStream(seed: seed, purpose: .evaluation, substream: stream)
    var out: [String] = []
    for start in stride(from: 0, to: examples.count, by: 16) {
      let chunk = examples[start..<min(start + 16, examples.count)]
      var settings = settings
      settings.maxNewTokens = min(settings.maxNewTokens, model.config.contextLength / 2)
      let room = model.config.contextLength - settings.maxNewTokens
      let prompts = chunk.map { Array(tokenizer.encode(TaskFormat.prompt($0)).suffix(room)) }
      out += generator.generate(prompts: prompts, settings: settings, tokenizer: tokenizer, random: &random).map(\.text)
    }
    return out
  }

  /// exp(mean next-token loss) over `windows` windows of held-out library documents, with the delta
  /// method's standard error, perplexity × the standard error of the per-window mean losses (windows
  /// may overlap, so it is a lower bound on the spread).
  func perplexity(_ artifact: ModelArtifact, documents: [String], windows count: Int) -> Estimate {
    let stream = TokenStream(documents: documents, tokenizer: artifact.tokenizer)
    var rng = TaskRandom(seed: seed, stream: "eval/perplexity")
    let length = min(artifact.model.config.contextLength, 256) + 1
    let losses = TaskLoss.perWindow(artifact.model, windows: stream.windows(count, length: length, using: &rng))
    let value = exp(losses.reduce(0, +) / Double(losses.count))
    return Estimate(value: value, standardError: value * TextMetrics.standardErrorOfMean(losses))
  }
}

// MARK: - The table

/// What each compared model is, beside how it scores: its parameters, the parameters one token uses
/// (fewer than all in a Mixture of Experts) and its artifact's size on disk (int8 weights are a
/// quarter of float32's). Exact, so their standard error is 0 and the table shows none.
enum ModelFacts {
  static let columns = [ScoreTable.Column(name: "parameters", scale: .millions),
                        ScoreTable.Column(name: "active_parameters", scale: .millions),
                        ScoreTable.Column(name: "size", scale: .megabytes)]

  static func values(_ config: ModelConfig, bytes: Int) -> [(String, Double)] {
    [("parameters", Double(config.parameterCount)), ("active_parameters", Double(config.activeParameterCount)),
     ("size", Double(bytes))]
  }
}

/// Scores by model (rows, in input order) and column (in the order added), with each column's example
/// count and majority-class baseline, rendered as a Markdown table.
struct ScoreTable {
  /// How a column's numbers read.
  enum Scale {
    /// A rate or similarity in 0…1, shown as a percentage with one decimal.
    case percent
    /// Perplexity, shown with two decimals.
    case perplexity
    /// An exact count (parameters), shown in millions with two decimals and no standard error.
    case millions
    /// Bytes, shown in MB (10⁶) with two decimals and no standard error.
    case megabytes
  }

  struct Column: Equatable {
    var name: String
    var scale: Scale
    /// Examples behind each score (nil for a derived column such as mini-GLUE).
    var examples: Int?
    /// The score of always giving the most common answer (classification only).
    var majorityClass: Double?
  }

  private(set) var models: [String] = []
  private(set) var columns: [Column] = []
  private var estimates: [String: Estimate] = [:]

  /// Adds a column unless one of that name exists.
  mutating func add(_ column: Column) {
    if !columns.contains(where: { $0.name == column.name }) { columns.append(column) }
  }

  /// Sets a score of a column added before.
  mutating func set(model: String, column: String, _ estimate: Estimate) {
    precondition(columns.contains { $0.name == column }, "column \(column) was never added")
    if !models.contains(model) { models.append(model) }
    estimates[model + "\u{0}" + column] = estimate
  }

  func estimate(model: String, column: String) -> Estimate? { estimates[model + "\u{0}" + column] }

  var cells: [(String, String, Estimate)] {
    models.flatMap { m in columns.compactMap { c in estimate(model: m, column: c.name).map { (m, c.name, $0) } } }
  }

  /// A Markdown table, padded to line up in a terminal: one row per model with `score ± standard
  /// error`, then the majority-class baseline and the number of examples per column ("–" where a row
  /// does not apply).
  var rendered: String {
    func number(_ value: Double, _ scale: Scale) -> String {
      switch scale {
      case .percent: return String(format: "%.1f", value * 100)
      case .perplexity: return String(format: "%.2f", value)
      case .millions: return String(format: "%.2fM", value / 1e6)
      case .megabytes: return String(format: "%.2f MB", value / 1e6)
      }
    }
    func cell(_ estimate: Estimate, _ scale: Scale) -> String {
      switch scale {
      case .millions, .megabytes: return number(estimate.value, scale)
      case .percent, .perplexity: return "\(number(estimate.value, scale)) ± \(number(estimate.standardError, scale))"
      }
    }
    let header = ["model"] + columns.map(\.name)
    var rows = models.map { m in
      [m] + columns.map { c in
        estimate(model: m, column: c.name).map { cell($0, c.scale) } ?? "–"
      }
    }
    if columns.contains(where: { $0.majorityClass != nil }) {
      rows.append(["majority class"] + columns.map { c in c.majorityClass.map { number($0, c.scale) } ?? "–" })
    }
    rows.append(["examples"] + columns.map { c in c.examples.map(String.init) ?? "–" })
    let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max()! }
    func line(_ cells: [String]) -> String {
      "| " + cells.enumerated().map { i, cell in
        let pad = String(repeating: " ", count: widths[i] - cell.count)
        return i == 0 ? cell + pad : pad + cell
      }.joined(separator: " | ") + " |"
    }
    let rule = "| " + widths.enumerated().map { i, w in
      i == 0 ? String(repeating: "-", count: w) : String(repeating: "-", count: w - 1) + ":"
    }.joined(separator: " | ") + " |"
    return ([line(header), rule] + rows.map(line)).joined(separator: "\n") + "\n"
  }
}
