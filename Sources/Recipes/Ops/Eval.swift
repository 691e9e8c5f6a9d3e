import Foundation
import Models
import Pipeline
import Tensors

/// `eval`: scores one or more models on held-out tasks and prints the table.
///
/// Every model answers the same held-out examples (drawn from the eval stage's seed), greedily: the
/// score is pass@1 for checked tasks, exact match for QA and passkeys, chrF for translation, ROUGE-L for
/// summarisation and accuracy for the classification pair, whose mean is the mini-GLUE score. With
/// `samples: k` the checked tasks also get pass@k from k samples at `temperature`. `perplexity` is
/// measured on held-out library documents.
struct EvalOp: TypedOperation {
  let name = "eval"
  let version = 1
  let summary = "Score models on held-out tasks; print the table"

  static let taskNames = TaskSuite.names + ["perplexity"]
  static let defaultTasks = TaskSuite.names.filter { $0 != "passkey" } + ["perplexity"]

  struct Settings: SettingsGroup {
    var tasks = EvalOp.defaultTasks
    var examples = 48
    var samples = 0
    var temperature = 0.8
    var maxNewTokens = 96
    var world = Int(BuiltinCorpus.defaultWorld)
    static let fields: [SettingField<Self>] = [
      .words("tasks", \.tasks, among: EvalOp.taskNames, count: 1...100, doc: "What to measure"),
      .int("examples", \.examples, range: 1...100_000, doc: "Held-out examples per task"),
      .int("samples", \.samples, range: 0...64, doc: "Samples per checked problem for pass@k (0: greedy pass@1 only)"),
      .float("temperature", \.temperature, range: 0.01...5, doc: "Sampling temperature for pass@k"),
      .int("max_new_tokens", \.maxNewTokens, range: 1...65_536, doc: "Longest answer"),
      .world(\.world),
    ]
  }

  let defaults = Settings()
  let inputs = [InputSlot("models", kinds: [.model], multiple: true, doc: "The model stages to compare")]
  let outputs = [OutputSpec("metrics", kind: .metrics, doc: "Every score, per model and task"),
                 OutputSpec("table", kind: .report, doc: "The table as text")]

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    let tasks = settings.tasks
    let evaluator = Evaluator(examples: settings.examples, samples: settings.samples,
                              temperature: Float(settings.temperature), maxNewTokens: settings.maxNewTokens,
                              world: UInt64(settings.world), seed: context.seed)
    var table = ScoreTable()
    let inputs = context.inputs("models")
    for (m, input) in inputs.enumerated() {
      let artifact = try ModelArtifact(bytes: try context.bytes(of: input), source: input.stage)
      for (t, task) in tasks.enumerated() {
        if context.isCancelled { throw CancellationError() }
        context.progress(step: m * tasks.count + t, of: inputs.count * tasks.count)
        for (column, value) in evaluator.score(artifact, task: task) {
          table.set(model: input.stage, column: column, value)
        }
      }
      if tasks.contains("sentiment") && tasks.contains("entailment"),
         let a = table.value(model: input.stage, column: "sentiment/accuracy"),
         let b = table.value(model: input.stage, column: "entailment/accuracy") {
        table.set(model: input.stage, column: "mini-GLUE", (a + b) / 2)
      }
    }
    context.progress(step: inputs.count * tasks.count, of: inputs.count * tasks.count)
    let text = table.rendered
    for line in text.split(separator: "\n") { context.log(String(line)) }
    var metrics = MetricsArtifact()
    var headline: [String: Double] = [:]
    for (model, column, value) in table.cells {
      metrics.set("\(model)/\(column)", value)
      headline["\(model)/\(column)"] = value
    }
    return StageOutput(artifacts: ["metrics": metrics.bytes, "table": Array(text.utf8)], metrics: headline)
  }
}

/// Scores one model on one task.
struct Evaluator {
  let examples: Int
  let samples: Int
  let temperature: Float
  let maxNewTokens: Int
  let world: UInt64
  let seed: UInt64

  /// Column → score for `task` (pass@k adds a column).
  func score(_ artifact: ModelArtifact, task: String) -> [(String, Double)] {
    if task == "perplexity" { return [("perplexity", perplexity(artifact))] }
    let generator = TaskSuite.generator(task, world: world)
    var rng = TaskRandom(seed: seed, stream: "eval/\(task)")
    let heldout = (0..<examples).map { _ in generator.example(split: .heldout, using: &rng) }
    let greedy = answers(artifact, heldout, settings: SamplingSettings(maxNewTokens: maxNewTokens), stream: 0)
    let mean = zip(greedy, heldout).reduce(0.0) { $0 + generator.score($1.0, for: $1.1) } / Double(heldout.count)
    var out = [("\(task)/\(generator.metric.rawValue)", mean)]
    if samples > 0 && generator.metric == .verified {
      var solved = [Bool](repeating: false, count: heldout.count)
      for s in 0..<samples {
        let sampled = answers(artifact, heldout, settings: SamplingSettings(temperature: temperature, maxNewTokens: maxNewTokens),
                              stream: UInt32(s + 1))
        for (i, answer) in sampled.enumerated() where generator.score(answer, for: heldout[i]) == 1 { solved[i] = true }
      }
      out.append(("\(task)/pass@\(samples)", Double(solved.filter { $0 }.count) / Double(heldout.count)))
    }
    return out
  }

  /// The answers a model writes for `examples`, in batches of 16; prompts too long for the context
  /// keep their end (where the question is).
  func answers(_ artifact: ModelArtifact, _ examples: [TaskExample], settings: SamplingSettings, stream: UInt32) -> [String] {
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
      out += generator.generate(prompts: prompts, settings: settings, tokenizer: tokenizer, random: &random)
        .map { TaskFormat.answer(in: $0.text) }
    }
    return out
  }

  /// exp(mean next-token loss) on held-out library documents.
  func perplexity(_ artifact: ModelArtifact) -> Double {
    let documents = BuiltinCorpus.library(documents: max(8, examples / 2), world: world, split: .heldout, seed: seed)
    let stream = TokenStream(documents: documents, tokenizer: artifact.tokenizer)
    var rng = TaskRandom(seed: seed, stream: "eval/perplexity")
    let length = min(artifact.model.config.contextLength, 256) + 1
    return exp(TaskLoss.mean(artifact.model, windows: stream.windows(examples, length: length, using: &rng)))
  }
}

/// Scores by model (rows, in input order) and column (in first-seen order).
struct ScoreTable {
  private(set) var models: [String] = []
  private(set) var columns: [String] = []
  private var values: [String: Double] = [:]

  mutating func set(model: String, column: String, _ value: Double) {
    if !models.contains(model) { models.append(model) }
    if !columns.contains(column) { columns.append(column) }
    values[model + "\u{0}" + column] = value
  }

  func value(model: String, column: String) -> Double? { values[model + "\u{0}" + column] }

  var cells: [(String, String, Double)] {
    models.flatMap { m in columns.compactMap { c in value(model: m, column: c).map { (m, c, $0) } } }
  }

  /// A plain-text table: one row per model; perplexity with two decimals, scores as percentages.
  var rendered: String {
    let header = ["model"] + columns
    let rows = models.map { m in
      [m] + columns.map { c in
        guard let v = value(model: m, column: c) else { return "-" }
        return c == "perplexity" ? String(format: "%.2f", v) : String(format: "%.1f", v * 100)
      }
    }
    let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max()! }
    func line(_ cells: [String]) -> String {
      cells.enumerated().map { i, cell in
        i == 0 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
               : String(repeating: " ", count: widths[i] - cell.count) + cell
      }.joined(separator: "  ")
    }
    return ([line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
            + rows.map(line)).joined(separator: "\n") + "\n"
  }
}
