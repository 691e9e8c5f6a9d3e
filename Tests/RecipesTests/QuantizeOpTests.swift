import ArtifactStore
import Foundation
import Models
import Pipeline
@testable import Recipes
import Tensors
import Testing

/// `quantize` on a tiny model, end to end: the op runs, its artifact reloads as an int8 model that
/// generates what the float model does, a rerun gives the same bytes, and training it is refused.
@Suite struct QuantizeOpTests {
  /// A tiny pretrained model whose matrices all have rows of whole Q8_0 blocks (d 64, MLP hidden 128).
  static let pretrain = """
    stages:
      text: {op: corpus, source: text.txt}
      v1:
        op: pretrain
        corpus: text
        model: {d_model: 64, layers: 2, heads: 2, context: 64, mlp_hidden: 128}
        train: {steps: 40, batch: 8, lr: 1e-2, warmup: 5}

    """

  static func recipe(_ scheme: String) -> String {
    pretrain + """
      v1-int8:
        op: quantize
        from: v1
        scheme: \(scheme)
        tasks: [arithmetic, sentiment]
        examples: 8
        max_new_tokens: 8
        tokens_per_second: {prompt_tokens: 8, new_tokens: 8, repeats: 1}

    """
  }

  @Test(arguments: ["q8_0", "per_channel"])
  func theOpWritesAnInt8ModelAndItsMetricsAndARerunGivesTheSameBytes(_ scheme: String) async throws {
    let a = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe(scheme)])
    let b = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe(scheme)])
    try await a.run()
    try await b.run()
    #expect(try a.hash("v1-int8", "model") == b.hash("v1-int8", "model"))
    #expect(try a.hash("v1-int8", "metrics") == b.hash("v1-int8", "metrics"))
    #expect(try a.lock().stages["v1-int8"]?.metrics == b.lock().stages["v1-int8"]?.metrics)

    let m = try a.metrics("v1-int8")
    let floatSize = try #require(m["size_bytes/float"] as? Double), int8Size = try #require(m["size_bytes/int8"] as? Double)
    #expect(floatSize == Double(try a.store.blob(try a.hash("v1", "model")).count))
    #expect(int8Size == Double(try a.store.blob(try a.hash("v1-int8", "model")).count))
    #expect(abs(try #require(m["size_ratio"] as? Double) - int8Size / floatSize) < 1e-9)
    #expect(int8Size < 0.5 * floatSize, "int8 \(int8Size) of float \(floatSize) bytes")
    let maxError = try #require(m["max_abs_error"] as? Double), meanError = try #require(m["mean_abs_error"] as? Double)
    #expect(maxError > 0 && meanError > 0 && meanError < maxError && maxError < 0.05)
    for column in ["arithmetic/pass@1", "sentiment/accuracy"] {
      for key in ["accuracy/float/\(column)", "accuracy/float/\(column)_se", "accuracy/int8/\(column)",
                  "accuracy/int8/\(column)_se", "retention/\(column)"] {
        #expect(m[key] is Double, "\(key) in \(m.keys.sorted())")
      }
    }
    #expect(m["retention/mean"] is Double)
    // Timing stays out of hashed artifacts and the lockfile.
    #expect(!m.keys.contains { $0.hasPrefix("tokens_per_second") || $0 == "speedup" })
    #expect(try a.lock().stages["v1-int8"]?.metrics.keys.contains { $0.hasPrefix("tokens_per_second") } == false)
  }

  @Test func theArtifactReloadsAsAnInt8ModelThatGeneratesWhatTheFloatModelDoes() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe("q8_0")])
    try await h.run()
    let float = try ModelArtifact(bytes: try h.store.blob(try h.hash("v1", "model")), source: "v1")
    let int8 = try ModelArtifact(bytes: try h.store.blob(try h.hash("v1-int8", "model")), source: "v1-int8")
    #expect(float.model.quantization == nil && int8.model.quantization == .q8_0)
    #expect(int8.tokenizer == float.tokenizer)

    // Logits on a text: within a few per cent of their spread.
    let tokens = [float.tokenizer.encode("The cat went to the park. The dog")]
    let reference = float.model.logits(tokens).value.scalars, logits = int8.model.logits(tokens).value.scalars
    let spread = reference.max()! - reference.min()!
    let worst = zip(reference, logits).map { abs($0 - $1) }.max()!
    #expect(worst < 0.05 * spread, "worst logit difference \(worst), spread \(spread)")

    // Greedy continuations: most tokens equal (a near tie may flip, and the rest of that line with it).
    let prompts = ["The cat", "The owl went", "Day 3 was", "The fox was happy"].map { float.tokenizer.encode($0) }
    let settings = SamplingSettings(maxNewTokens: 16, stopAtEOS: false)
    var r1 = RandomStream(seed: 1, purpose: .sampling), r2 = RandomStream(seed: 1, purpose: .sampling)
    let a = Generator(model: float.model).generate(prompts: prompts, settings: settings, tokenizer: float.tokenizer, random: &r1)
    let b = Generator(model: int8.model).generate(prompts: prompts, settings: settings, tokenizer: int8.tokenizer, random: &r2)
    let same = zip(a, b).map { x, y in zip(x.tokens, y.tokens).filter { $0 == $1 }.count }.reduce(0, +)
    #expect(same * 10 >= 8 * 4 * 16, "\(same) of 64 generated tokens equal: \(a.map(\.text)) vs \(b.map(\.text))")
  }

  /// `eval` (perplexity included) and `sample` read the int8 artifact as they read any model.
  @Test func evalAndSampleReadTheInt8Model() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe("q8_0") + """
        compare:
          op: eval
          models: [v1, v1-int8]
          tasks: [arithmetic, perplexity]
          examples: 4
          max_new_tokens: 8
        rs:
          op: sample
          from: v1-int8
          tasks: {arithmetic: 1}
          prompts: 3
          k: 1
          max_new_tokens: 8
          temperature: 0
          keep: {accuracy: false, format: false, toxicity: false}

      """])
    try await h.run()
    let m = try h.metrics("compare")
    let float = try #require(m["v1/perplexity"] as? Double), int8 = try #require(m["v1-int8/perplexity"] as? Double)
    #expect(int8 > 0.9 * float && int8 < 1.1 * float, "perplexity float \(float), int8 \(int8)")
    #expect(m["v1-int8/arithmetic/pass@1"] is Double)
    #expect(try #require(try h.metrics("rs")["generated/arithmetic"] as? Double) == 3)
  }

  @Test func trainingAnInt8ModelIsAClearStageFailure() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe("per_channel") + """
        tuned:
          op: sft
          from: v1-int8
          tasks: {arithmetic: 1}
          heldout_examples: 4
          train: {steps: 2, batch: 2}
        twice:
          op: quantize
          from: v1-int8
          tasks: []

      """])
    let summary = try await Executor(recipe: try h.recipe(), store: h.store, events: NullEventSink(), control: RunControl()).run()
    guard case .failed(let message) = summary.outcomes["tuned"] else {
      Issue.record("training an int8 model did not fail: \(String(describing: summary.outcomes["tuned"]))")
      return
    }
    #expect(message.contains("quantized (per_channel)") && message.contains("cannot be trained"), "\(message)")
    guard case .failed(let again) = summary.outcomes["twice"] else {
      Issue.record("quantizing an int8 model did not fail")
      return
    }
    #expect(again.contains("already quantized"), "\(again)")
    #expect(summary.outcomes["v1-int8"].map { if case .failed = $0 { false } else { true } } == true)
  }

  @Test func q8_0RefusesAMatrixWhoseRowsAreNotWholeBlocks() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": TrainingOpsTests.pretrain + """
        v1-int8:
          op: quantize
          from: v1
          scheme: q8_0
          tasks: []

      """])
    let summary = try await Executor(recipe: try h.recipe(), store: h.store, events: NullEventSink(), control: RunControl()).run()
    guard case .failed(let message) = summary.outcomes["v1-int8"] else {
      Issue.record("q8_0 on an MLP hidden size of 88 did not fail")
      return
    }
    #expect(message.contains("multiple of 32") && message.contains("mlp"), "\(message)")
  }
}
