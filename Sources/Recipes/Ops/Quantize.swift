import Foundation
import Models
import Pipeline
import Tensors

/// `quantize`: a model's matrices as int8 (`scheme: per_channel` or `q8_0`, GGUF's blocks of 32), with
/// activations in float and an int8 inference path, and how much it keeps of the float model.
///
/// The output `model` is a safetensors artifact with int8 matrices and their scales
/// (`lineage_quantization` in its metadata) that `eval`, `sample` and generation read like any model;
/// training from it is refused. The metrics compare the two models on the same held-out examples of
/// `tasks:` (drawn once from this stage's seed, as `eval` draws them): `accuracy/float/<column>`,
/// `accuracy/int8/<column>` (each with `_se`), `retention/<column>` = int8 ÷ float (for a rate where
/// lower is better, such as toxicity, the non-toxic shares' ratio (1 − int8) ÷ (1 − float)) and their mean
/// `retention/mean`; the artifact sizes `size_bytes/float`, `size_bytes/int8` and `size_ratio` = int8 ÷
/// float; and the rounding of the weights, `max_abs_error` and `mean_abs_error` over every quantized
/// weight.
///
/// Speed is timing, so it stays out of the metrics (a stage's artifacts and lockfile metrics are
/// bit-identical across runs): the op logs `tokens_per_second/float`, `tokens_per_second/int8` and
/// `speedup` (int8 ÷ float, decoding one sequence) for a look, and `lineage bench engine` measures it
/// properly (medians, the same run).
struct QuantizeOp: TypedOperation {
  let name = "quantize"
  let version = 1
  let summary = "Int8 weights (per-channel or Q8_0) with an int8 inference path; size and accuracy retention"

  /// The tasks whose accuracy retention is measured: `eval`'s, without perplexity (not an accuracy).
  static let taskNames = TaskSuite.names

  struct Settings: SettingsGroup {
    var scheme = QuantizedMatrix.Scheme.q8_0
    var tasks = ["arithmetic"]
    var examples = 48
    var maxNewTokens = 96
    var world = Int(BuiltinCorpus.defaultWorld)
    var tokensPerSecond = SpeedSettings()
    static let fields: [SettingField<Self>] = [
      .choice("scheme", \.scheme, doc: "per_channel: one scale per output row; q8_0: one per block of 32 (GGUF's Q8_0)"),
      .words("tasks", \.tasks, among: QuantizeOp.taskNames, count: 0...100,
             doc: "Held-out tasks scored on both models for accuracy retention (none: sizes and errors only)"),
      .int("examples", \.examples, range: 1...100_000, doc: "Distinct held-out examples per task, the same for both models"),
      .int("max_new_tokens", \.maxNewTokens, range: 1...65_536, doc: "Longest answer"),
      .world(\.world),
      .group("tokens_per_second", \.tokensPerSecond, doc: "The decoding speed logged for both models (not a metric: timing varies)"),
    ]
  }

  /// How the logged decoding speed is measured: one sequence, a prompt, then `new_tokens` greedy tokens.
  struct SpeedSettings: SettingsGroup {
    var promptTokens = 32
    var newTokens = 32
    var repeats = 3
    static let fields: [SettingField<Self>] = [
      .int("prompt_tokens", \.promptTokens, range: 1...65_536, doc: "Prompt length (cut to fit the context)"),
      .int("new_tokens", \.newTokens, range: 1...65_536, doc: "Tokens decoded per timing (cut to fit the context)"),
      .int("repeats", \.repeats, range: 0...100, doc: "Timings per model, the median logged (0: no timing)"),
    ]
  }

  let defaults = Settings()
  let inputs = [InputSlot("from", kinds: [.model], doc: "The float model to quantize")]
  let outputs = [OutputSpec("model", kind: .model, doc: "The int8 model: I8 weights and F32 scales in safetensors"),
                 OutputSpec("metrics", kind: .metrics, doc: "Sizes, weight rounding errors, accuracy of both models and retention")]

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    guard let input = context.input("from") else { throw StageFailure("needs 'from:' naming a model stage") }
    let floatBytes = try context.bytes(of: input)
    let float = try ModelArtifact(bytes: floatBytes, source: input.stage)
    if let scheme = float.model.quantization {
      throw StageFailure("'\(input.stage)' is already quantized (\(scheme.rawValue)); quantize its float model instead")
    }
    let quantizedModel: TransformerLM
    do {
      quantizedModel = try float.model.quantized(settings.scheme)
    } catch {
      throw StageFailure("cannot quantize '\(input.stage)' as \(settings.scheme.rawValue): \(error)")
    }
    let int8 = ModelArtifact(model: quantizedModel, tokenizer: float.tokenizer)
    let int8Bytes = int8.bytes

    var metrics = MetricsArtifact()
    var headline: [String: Double] = [:]
    func record(_ key: String, _ value: Double) {
      metrics.set(key, value)
      headline[key] = value
    }
    record("size_bytes/float", Double(floatBytes.count))
    record("size_bytes/int8", Double(int8Bytes.count))
    record("size_ratio", Double(int8Bytes.count) / Double(floatBytes.count))
    let errors = QuantizeOp.weightErrors(float.model, quantizedModel)
    record("max_abs_error", errors.max)
    record("mean_abs_error", errors.mean)
    context.log(String(format: "%@: %d → %d bytes (%.1f%%), weight error max %.3g, mean %.3g", settings.scheme.rawValue,
                       floatBytes.count, int8Bytes.count, 100 * Double(int8Bytes.count) / Double(floatBytes.count),
                       errors.max, errors.mean))

    // Accuracy retention: both models answer the same held-out examples, greedily.
    let evaluator = Evaluator(examples: settings.examples, samples: 0, temperature: 1, maxNewTokens: settings.maxNewTokens,
                              world: UInt64(settings.world), seed: context.seed)
    let measures = settings.tasks.flatMap(evaluator.measures(for:))
    var retentions: [Double] = []
    for (m, measure) in measures.enumerated() {
      if context.isCancelled { throw CancellationError() }
      context.progress(step: m, of: measures.count)
      let floatScores = evaluator.score(float, measure), int8Scores = evaluator.score(int8, measure)
      let lowerIsBetter: Bool
      if case .task(let part, _) = measure { lowerIsBetter = part.generator.metric.lowerIsBetter } else { lowerIsBetter = false }
      for ((column, a), (_, b)) in zip(floatScores, int8Scores) {
        record("accuracy/float/\(column)", a.value)
        record("accuracy/float/\(column)_se", a.standardError)
        record("accuracy/int8/\(column)", b.value)
        record("accuracy/int8/\(column)_se", b.standardError)
        // int8 ÷ float; when the float model scores 0, int8 keeps all of it if it scores 0 too. For a
        // rate where lower is better (toxicity) what is kept is the good share: (1 − int8) ÷ (1 − float).
        let (kept, had) = lowerIsBetter ? (1 - b.value, 1 - a.value) : (b.value, a.value)
        let retention = had > 0 ? kept / had : (kept == 0 ? 1 : 0)
        record("retention/\(column)", retention)
        retentions.append(retention)
        context.log(String(format: "%@: float %.3f ± %.3f, int8 %.3f ± %.3f, retention %.3f", column, a.value, a.standardError,
                           b.value, b.standardError, retention))
      }
    }
    context.progress(step: measures.count, of: measures.count)
    if !retentions.isEmpty { record("retention/mean", retentions.reduce(0, +) / Double(retentions.count)) }

    if settings.tokensPerSecond.repeats > 0 {
      let speed = settings.tokensPerSecond
      let floatRate = QuantizeOp.decodingRate(float, speed, seed: context.seed)
      let int8Rate = QuantizeOp.decodingRate(int8, speed, seed: context.seed)
      // Logged only: timing varies between runs, and hashed artifacts and lockfile metrics must not.
      context.log(String(format: "tokens_per_second/float %.0f, tokens_per_second/int8 %.0f, speedup %.2f× (batch 1, median of %d; timing, not a metric)",
                         floatRate, int8Rate, int8Rate / floatRate, speed.repeats))
    }
    return StageOutput(artifacts: ["model": int8Bytes, "metrics": metrics.bytes], metrics: headline)
  }

  /// |w − dequantized(w)| over every weight of the quantized matrices: the largest and the mean.
  static func weightErrors(_ float: TransformerLM, _ quantized: TransformerLM) -> (max: Double, mean: Double) {
    var largest: Float = 0, sum = 0.0, count = 0
    for (id, q) in quantized.quantizedMatrices.sorted(by: { $0.key.safetensorsName < $1.key.safetensorsName }) {
      guard let original = float.parameter(id)?.value.scalars else { continue }
      let rebuilt = q.dequantized().scalars
      var partial = 0.0
      for i in original.indices {
        let e = abs(original[i] - rebuilt[i])
        largest = max(largest, e)
        partial += Double(e)
      }
      sum += partial
      count += original.count
    }
    return (Double(largest), count == 0 ? 0 : sum / Double(count))
  }

  /// Tokens per second decoding one sequence greedily: the time of `new_tokens` tokens minus that of one
  /// (the prompt's reading), the median of `repeats`.
  static func decodingRate(_ artifact: ModelArtifact, _ speed: SpeedSettings, seed: UInt64) -> Double {
    let context = artifact.model.config.contextLength
    let newTokens = max(2, min(speed.newTokens, context / 2))
    let promptLength = max(1, min(speed.promptTokens, context - newTokens))
    var random = TaskRandom(seed: seed, stream: "quantize/speed")
    let vocabulary = UInt64(artifact.model.config.vocabularySize)
    let prompt = (0..<promptLength).map { _ in Int32(truncatingIfNeeded: random.next() % vocabulary) }
    let generator = Generator(model: artifact.model)
    let clock = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
    var samples: [Double] = []
    for _ in 0..<speed.repeats {
      var r = RandomStream(seed: seed, purpose: .sampling)
      let t0 = clock()
      _ = generator.generate(prompts: [prompt], settings: SamplingSettings(maxNewTokens: 1, stopAtEOS: false),
                             tokenizer: artifact.tokenizer, random: &r)
      let t1 = clock()
      _ = generator.generate(prompts: [prompt], settings: SamplingSettings(maxNewTokens: newTokens, stopAtEOS: false),
                             tokenizer: artifact.tokenizer, random: &r)
      let t2 = clock()
      samples.append(max((t2 - t1) - (t1 - t0), 1e-9))
    }
    return Double(newTokens - 1) / samples.sorted()[samples.count / 2]
  }
}

extension QuantizedMatrix.Scheme: SettingChoice {}
