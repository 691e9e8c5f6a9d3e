import Models
import Pipeline
import Tensors

/// Batched generation for many prompts, every sample judged by its prompt's verifier: the shared core
/// of synthetic data (`finetune`), and next of rejection sampling, SFT data and RL rollouts.
///
/// Prompts go through the KV-cache generator `batchSize` sequences at a time (each prompt repeated
/// `samplesPerPrompt` times, its samples side by side), so one forward pass serves a whole batch. The
/// random stream advances in prompt order, so the same prompts, settings and stream give the same
/// samples on every run.
struct BatchedSampler {
  let model: TransformerLM
  let tokenizer: TextTokenizer
  private let engine: Generator
  var settings: SamplingSettings
  /// Sequences per generation call.
  var batchSize = 16

  init(_ artifact: ModelArtifact, settings: SamplingSettings, batchSize: Int = 16) {
    model = artifact.model
    tokenizer = artifact.tokenizer
    engine = Generator(model: artifact.model)
    self.settings = settings
    self.batchSize = batchSize
  }

  /// `samplesPerPrompt` samples of every prompt, in prompt order (a prompt's samples together).
  ///
  /// - Parameters:
  ///   - progress: called with (prompts done, prompts in all) before each batch.
  ///   - isCancelled: checked before each batch; the sampler then throws `CancellationError`.
  func sample(_ prompts: [SamplePrompt], samplesPerPrompt: Int = 1, random: inout RandomStream,
              progress: (Int, Int) -> Void = { _, _ in }, isCancelled: () -> Bool = { false }) throws -> [Sample] {
    let jobs = prompts.indices.flatMap { p in (0..<samplesPerPrompt).map { (prompt: p, index: $0) } }
    let room = max(1, model.config.contextLength - settings.maxNewTokens)
    let encoded = prompts.map { Array(tokenizer.encode(TaskFormat.prompt($0.example)).suffix(room)) }
    var out: [Sample] = []
    out.reserveCapacity(jobs.count)
    for start in stride(from: 0, to: jobs.count, by: batchSize) {
      if isCancelled() { throw CancellationError() }
      progress(jobs[start].prompt, prompts.count)
      let chunk = jobs[start..<min(start + batchSize, jobs.count)]
      let generations = engine.generate(prompts: chunk.map { encoded[$0.prompt] }, settings: settings,
                                                         tokenizer: tokenizer, random: &random)
      for (job, generation) in zip(chunk, generations) {
        let prompt = prompts[job.prompt]
        let finished = generation.finishReason == .eos
        out.append(Sample(prompt: job.prompt, completion: generation.text, tokens: generation.tokens.count,
                          finished: finished, verdict: prompt.verifier.judge(generation.text, finished: finished,
                                                                            for: prompt.example)))
      }
    }
    progress(prompts.count, prompts.count)
    return out
  }
}

/// A prompt to sample from and how its samples are judged.
struct SamplePrompt {
  var example: TaskExample
  var verifier: Verifier
}

/// One generated completion and its verdict.
struct Sample {
  /// Index of its prompt in the sampler's input.
  var prompt: Int
  /// The model's text after the prompt (reasoning, answer marker, answer), stop text removed.
  var completion: String
  /// Tokens generated.
  var tokens: Int
  /// The model ended the sequence itself (rather than running out of room).
  var finished: Bool
  var verdict: Verdict

  /// The training example this sample makes: the prompt with the model's own reasoning and answer
  /// (`TaskFormat.reasoningAndAnswer`).
  func example(from prompt: TaskExample) -> TaskExample {
    var sample = prompt
    (sample.reasoning, sample.answer) = TaskFormat.reasoningAndAnswer(in: completion)
    return sample
  }
}
