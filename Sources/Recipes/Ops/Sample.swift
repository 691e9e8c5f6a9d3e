import Foundation
import Models
import Pipeline
import Tensors

/// `sample`: a dataset of a model's own verified responses (R1's rejection sampling, and the data of
/// self-distillation): `k` samples for each of `prompts` training prompts of the task mixture, kept
/// when they pass every filter of `keep:` (a right answer, the think/answer form, the prompt's
/// language, no blocked term), with duplicate responses to the same prompt dropped.
///
/// Each kept sample becomes an example whose reasoning and answer are the model's own (read from
/// `<think>`/`<answer>`, or from the plain `Answer:` form), ready for `sft`'s `dataset:`. The metrics
/// count what was generated, kept, and rejected by each filter, per task.
struct SampleOp: TypedOperation {
  let name = "sample"
  let version = 1
  let summary = "A dataset of a model's own responses that pass the filters (rejection sampling)"

  struct Settings: SettingsGroup {
    var tasks: [String: Double] = [:]
    var prompts = 256
    var k = 4
    var temperature = 0.7
    var maxNewTokens = 64
    var keep = SampleFilters()
    var dedupe = true
    var world = Int(BuiltinCorpus.defaultWorld)
    static let fields: [SettingField<Self>] = [
      .taskWeights(\.tasks, doc: "Task → share of the prompts"),
      .int("prompts", \.prompts, range: 1...1_000_000, doc: "Training prompts drawn from the mixture"),
      .int("k", \.k, range: 1...256, doc: "Samples per prompt"),
      .float("temperature", \.temperature, range: 0...5, doc: "Sampling temperature (0: greedy, then k = 1 suffices)"),
      .int("max_new_tokens", \.maxNewTokens, range: 1...65_536, doc: "Longest response"),
      .group("keep", \.keep, doc: "What a sample must pass to be kept"),
      .bool("dedupe", \.dedupe, doc: "Drop a response identical to one already kept for the same prompt"),
      .world(\.world),
    ]
  }

  let defaults = Settings()
  let inputs = [InputSlot("from", kinds: [.model], doc: "The model that answers")]
  let outputs = [OutputSpec("dataset", kind: .dataset, doc: "JSONL, one kept sample per line"),
                 OutputSpec("metrics", kind: .metrics, doc: "Generated, kept, and rejected by each filter, per task")]

  func problems(in settings: Settings) -> [ParameterProblem] { TaskTraining.problems(settings.tasks) }

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    let artifact = try ModelArtifact.input("from", of: context)
    let mixture = TaskMixture(weights: settings.tasks, world: UInt64(settings.world))
    let filters = try settings.keep.filters(context)
    var rng = TaskRandom(seed: context.seed, stream: "sample/prompts")
    let prompts: [SamplePrompt] = (0..<settings.prompts).map { _ in
      let generator = mixture.generators[mixture.drawTask(using: &rng)]
      return SamplePrompt(example: generator.example(split: .train, using: &rng), verifier: Verifier(task: generator))
    }
    let sampler = BatchedSampler(artifact, settings: SamplingSettings(temperature: Float(settings.temperature),
                                                                      maxNewTokens: settings.maxNewTokens))
    var random = RandomStream(seed: context.seed, purpose: .sampling)
    let samples = try sampler.sample(prompts, samplesPerPrompt: settings.k, random: &random,
                                     progress: { done, all in context.progress(step: done, of: all, []) },
                                     isCancelled: { context.isCancelled })

    var counts: [String: [String: Int]] = [:]   // task → count name → n
    var seen = Set<[String]>(), kept: [TaskExample] = []
    for sample in samples {
      let prompt = prompts[sample.prompt]
      let task = prompt.example.task
      counts[task, default: [:]]["generated", default: 0] += 1
      let rollout = Rollout(example: prompt.example, task: prompt.verifier.task, language: prompt.verifier.task.promptLanguage(of: prompt.example),
                            response: sample.completion, finished: sample.finished)
      if let failed = filters.firstFailure(rollout, verdict: sample.verdict) {
        counts[task, default: [:]]["rejected_\(failed)", default: 0] += 1
        continue
      }
      if settings.dedupe && !seen.insert([prompt.example.prompt, sample.completion]).inserted {
        counts[task, default: [:]]["duplicates", default: 0] += 1
        continue
      }
      counts[task, default: [:]]["kept", default: 0] += 1
      kept.append(SampleOp.example(prompt.example, response: sample.completion))
    }

    var metrics = MetricsArtifact()
    var headline: [String: Double] = ["kept": Double(kept.count), "generated": Double(samples.count)]
    for task in mixture.names {
      for name in ["generated", "kept", "duplicates"] + SampleFilters.names.map({ "rejected_\($0)" }) {
        metrics.set("\(name)/\(task)", Double(counts[task]?[name] ?? 0))
      }
      headline["kept/\(task)"] = Double(counts[task]?["kept"] ?? 0)
      context.log("\(task): kept \(counts[task]?["kept"] ?? 0) of \(counts[task]?["generated"] ?? 0)")
    }
    return StageOutput(artifacts: ["dataset": TaskExamples.bytes(kept), "metrics": metrics.bytes], metrics: headline)
  }

  /// The training example a kept response makes: the prompt, in the train split, with the model's own
  /// reasoning and answer (`TaskFormat.reasoningAndAnswer`).
  static func example(_ prompt: TaskExample, response: String) -> TaskExample {
    var out = prompt
    out.split = .train
    (out.reasoning, out.answer) = TaskFormat.reasoningAndAnswer(in: response)
    return out
  }
}

/// `keep:` — what a sample must pass. Each filter reuses its reward's check.
struct SampleFilters: SettingsGroup {
  var accuracy = true
  var format = true
  var language = 0.0
  var toxicity = true
  var blockList: String?

  /// The filters in the order they are checked (and named in the metrics).
  static let names = ["accuracy", "format", "language", "toxicity"]

  static let fields: [SettingField<Self>] = [
    .bool("accuracy", \.accuracy, doc: "Keep only right answers (from <answer> or an Answer: line; similarity ≥ 0.5 for translation and summaries)"),
    .bool("format", \.format, doc: "Keep only <think>…</think><answer>…</answer> responses"),
    .float("language", \.language, range: 0...1, doc: "Least share of the reasoning's words in the prompt's language (0: off)"),
    .bool("toxicity", \.toxicity, doc: "Drop responses with a blocked term"),
    .blockList(\.blockList),
  ]

  struct Checks {
    let settings: SampleFilters
    let blockList: BlockList

    /// The name of the first filter a sample fails, or nil when it passes them all. Accuracy is the
    /// verifier's verdict, which reads the answer from `<answer>` or from the plain `Answer:` line, so
    /// a V-series model's right answers count too (the `format` filter is what asks for the tags).
    func firstFailure(_ rollout: Rollout, verdict: Verdict) -> String? {
      let parts = ReasoningFormat.parse(rollout.response)
      if settings.accuracy && !verdict.accepted { return "accuracy" }
      if settings.format && RewardFunction.Component.format.score(rollout, parts) < 1 { return "format" }
      if settings.language > 0 && RewardFunction.Component.language.score(rollout, parts) < settings.language {
        return "language"
      }
      if settings.toxicity && RewardFunction.Component.toxicity(blockList).score(rollout, parts) > 0 { return "toxicity" }
      return nil
    }
  }

  func filters(_ context: StageContext) throws -> Checks {
    Checks(settings: self, blockList: try BlockList.named(blockList, in: context))
  }
}
