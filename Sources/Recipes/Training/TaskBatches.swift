import Models
import Pipeline

/// Training batches of task examples (prompt masked out), optionally mixed with corpus text so that a
/// model keeps its general language while it learns the tasks.
struct TaskBatches {
  var mixture: TaskMixture
  let corpus: TokenStream?
  let corpusShare: Double
  /// The user's examples (`dataset:` stages), train split only, drawn at `datasetShare`.
  var datasets: [TaskExample] = []
  var datasetShare: Double = 0
  let tokenizer: TextTokenizer
  let batch: Int
  let maxTokens: Int
  let seed: UInt64
  /// Names the streams, so two ops on the same seed draw different examples.
  let purpose: String
  /// How the responses are written.
  var response = TaskFormat.Response.plain
  /// The share of task examples written with their worked steps; the others keep only the answer
  /// (an empty `<think></think>` in the tagged form). Below 1 a model sees both, so reinforcement
  /// learning can find out which pays on which prompt.
  var workedSteps = 1.0

  /// The batch of `step`: each row is a corpus window with probability `corpusShare`, else one of the
  /// user's examples with probability `datasetShare`, else an example of a task drawn by the mixture's
  /// weights. Corpus windows are as long as the longest example.
  func batch(_ step: Int) -> TrainingBatch {
    var rng = TaskRandom(seed: seed, stream: "\(purpose)/step/\(step)")
    var rows: [(tokens: [Int32], weights: [Float])] = []
    var corpusRows = 0
    for _ in 0..<batch {
      if corpus != nil && Double.random(in: 0..<1, using: &rng) < corpusShare {
        corpusRows += 1
        continue
      }
      if !datasets.isEmpty && Double.random(in: 0..<1, using: &rng) < datasetShare {
        rows.append(TaskFormat.encode(datasets[Int.random(in: 0..<datasets.count, using: &rng)],
                                      with: tokenizer, maxTokens: maxTokens, as: response))
        continue
      }
      let task = mixture.drawTask(using: &rng)
      var example = mixture.generators[task].example(split: .train, using: &rng)
      // Drawn only below 1, so the streams (and artifacts) of the runs that keep every step are unchanged.
      if workedSteps < 1 && Double.random(in: 0..<1, using: &rng) >= workedSteps { example.reasoning = "" }
      rows.append(TaskFormat.encode(example, with: tokenizer, maxTokens: maxTokens, as: response))
    }
    if let corpus, corpusRows > 0 {
      let length = min(maxTokens, max(64, rows.map(\.tokens.count).max() ?? 0))
      for window in corpus.windows(corpusRows, length: length, using: &rng) {
        rows.append((window, [Float](repeating: 1, count: window.count)))
      }
    }
    return paddedBatch(rows, pad: tokenizer.id(of: .pad))
  }
}

/// Losses of a model on task examples, without training.
enum TaskLoss {
  /// The mean per-token loss of the completions of `examples` (prompts masked), in batches of 16.
  static func mean(_ model: TransformerLM, tokenizer: TextTokenizer, examples: [TaskExample], maxTokens: Int,
                   as response: TaskFormat.Response = .plain) -> Double {
    var total = 0.0, weight = 0.0
    for start in stride(from: 0, to: examples.count, by: 16) {
      let rows = examples[start..<min(start + 16, examples.count)].map {
        TaskFormat.encode($0, with: tokenizer, maxTokens: maxTokens, as: response)
      }
      let batch = paddedBatch(rows, pad: tokenizer.id(of: .pad))
      let tokens = batch.weights!.reduce(0) { $0 + $1.dropFirst().reduce(0, +) }
      total += Double(model.loss(batch.tokens, weights: batch.weights).value.scalars[0]) * Double(tokens)
      weight += Double(tokens)
    }
    return weight > 0 ? total / weight : .nan
  }

  /// The mean per-token loss of each corpus window, one window per forward pass so that each has its
  /// own (the spread between windows is what perplexity's standard error needs).
  static func perWindow(_ model: TransformerLM, windows: [[Int32]]) -> [Double] {
    windows.map { Double(model.loss([$0]).value.scalars[0]) }
  }
}
