import Foundation
import Models
import Pipeline
@testable import Recipes
import Testing

/// `multitask` with `experts:`: a dense V1 upcycled into a Mixture of Experts and trained, its routing
/// reported, every later op taking the MoE model, a killed stage resuming to the same bits, and the
/// settings' mistakes caught.
@Suite struct UpcyclingTests {
  /// V1 (`tinyModel`: d 32, MLP hidden 88) and V2 upcycled to 4 routed experts and a shared one of hidden 44.
  static func recipe(experts: String = "{routed: 4, shared: 1, top_k: 1}", steps: Int = 24) -> String {
    TrainingOpsTests.pretrain + """
      v2:
        op: multitask
        from: v1
        tasks: {arithmetic: 1}
        heldout_examples: 16
        experts: \(experts)
        train: {steps: \(steps), batch: 8, lr: 1e-2, warmup: 2}

    """
  }

  @Test func multitaskUpcyclesADenseModelAndReportsItsRouting() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe()])
    try await h.run()
    let v2 = try ModelArtifact(bytes: try h.store.blob(try h.hash("v2", "model")), source: "v2")
    let moe = try #require(v2.model.config.moe)
    #expect(moe.routedExperts == 4 && moe.sharedExperts == 1 && moe.topK == 1 && moe.expertHiddenDim == 44)
    #expect(moe.gate == .sigmoid && moe.balancing == .auxiliaryLossFree(biasUpdateRate: 1e-3))

    let m = try h.metrics("v2")
    let dense = try #require(try h.metrics("v1")["parameters"] as? Double)
    let active = try #require(m["active_parameters"] as? Double), total = try #require(m["parameters"] as? Double)
    #expect(active == dense + 2 * 4 * 32, "the dense model's parameters plus the routers (2 layers × 4 experts × d 32)")
    #expect(total == active + 2 * 3 * 3 * 32 * 44, "three idle routed experts per layer")
    #expect(m["moe_tokens_dropped"] as? Double == 0)
    #expect((m["moe_expert_assignments"] as? Double ?? 0) > 0)
    #expect(m["moe_layers"] as? [String] == ["layer 1", "layer 2"])
    for key in ["moe_load_min_share", "moe_load_max_share", "moe_load_cv"] {
      let rows = try #require(m[key] as? [[Double]], "\(key)")
      #expect(rows.count == 24 && rows.allSatisfy { $0.count == 3 }, "\(key): one row [step, layer 1, layer 2] per step")
      #expect(rows.map { $0[0] } == (1...24).map(Double.init))
    }
    let minShare = try #require(m["moe_load_min_share"] as? [[Double]]), maxShare = try #require(m["moe_load_max_share"] as? [[Double]])
    #expect(zip(minShare, maxShare).allSatisfy { $0[1] <= 0.25 && $1[1] >= 0.25 && $0[1] <= $1[1] })
    for layer in 1...2 {
      let share = try #require(m["moe_load_share/\(layer)"] as? [Double])
      #expect(share.count == 4 && abs(share.reduce(0, +) - 1) < 1e-9)
      let bias = try #require(m["moe_bias/\(layer)"] as? [Double])
      #expect(bias.count == 4 && bias.contains { $0 != 0 }, "the routing bias moved: \(bias)")
      #expect(bias.map { Float($0) } == v2.model.routingBias[layer - 1])
      #expect(m["moe_final_cv/\(layer)"] is Double)
    }
    let headline = try #require(try h.lock().stages["v2"]?.metrics)
    #expect(headline["moe_tokens_dropped"] == 0 && headline["active_parameters"] == active)
    let before = try #require(m["heldout_loss_before/arithmetic"] as? Double), after = try #require(m["heldout_loss/arithmetic"] as? Double)
    #expect(after < before, "the upcycled model learns: held-out loss \(before) → \(after)")
    // A dense multitask stage resolves no `experts` parameter: its cache key is what it was.
    let dense2 = try #require(try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": TrainingOpsTests.pretrain + """
        v2: {op: multitask, from: v1, tasks: {arithmetic: 1}}

      """]).recipe().stages.first { $0.name == "v2" })
    #expect(dense2.parameters["experts"] == .null && dense2.parameters["train"] != .null)
  }

  /// The same seed gives the same bytes; killed mid-run, it resumes, expert-load curves and routing
  /// bias included, to exactly them.
  @Test func aKilledMoEStageResumesBitIdentically() async throws {
    let clean = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe(steps: 30)])
    try await clean.run()
    let twin = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe(steps: 30)])
    try await twin.run()
    #expect(try clean.hash("v2", "model") == twin.hash("v2", "model"))
    #expect(try clean.hash("v2", "metrics") == twin.hash("v2", "metrics"))

    let broken = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe(steps: 30)])
    let control = RunControl()
    let events = EventLog { event in
      if case .stageProgress("v2", let p) = event, p.step >= 1 { control.cancel() }
    }
    let first = try await Executor(recipe: try broken.recipe(), store: broken.store, events: events, control: control).run()
    #expect(first.cancelled == ["v2"])
    let again = EventLog()
    try await broken.run(events: again)
    let resumedAt = try #require(again.resumed["v2"])
    #expect(resumedAt >= 1 && resumedAt < 30, "resumed at step \(resumedAt), not from the start")
    #expect(try broken.hash("v2", "model") == clean.hash("v2", "model"))
    #expect(try broken.hash("v2", "metrics") == clean.hash("v2", "metrics"))
  }

  /// Mistakes only the input reveals fail the stage, naming `experts:` and what to do.
  @Test func expertsOnAnMoEInputOrAnMLPThatDoesNotSplitFailTheStage() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe(experts: "{hidden: 40}") + """
        moe1:
          op: pretrain
          corpus: text
          model: {d_model: 32, layers: 2, heads: 2, context: 64, experts: {routed: 4, shared: 1, top_k: 1, hidden: 44}}
          train: {steps: 4, batch: 4}
        again:
          op: multitask
          from: moe1
          tasks: {arithmetic: 1}
          experts: {routed: 4}
          train: {steps: 4, batch: 4}
        odd:
          op: multitask
          from: v1
          tasks: {arithmetic: 1}
          experts: {shared: 2}
          train: {steps: 4, batch: 4}

      """])
    let summary = try await Executor(recipe: try h.recipe(), store: h.store, events: NullEventSink(), control: RunControl()).run()
    func failure(_ stage: String) -> String {
      if case .failed(let message)? = summary.outcomes[stage] { return message }
      Issue.record("\(stage) did not fail: \(String(describing: summary.outcomes[stage]))")
      return ""
    }
    #expect(failure("v2").contains("experts: cannot upcycle 'v1': the dense MLP's hidden size 88 does not split"), "\(failure("v2"))")
    #expect(failure("v2").contains("use hidden: 44"))
    #expect(failure("again").contains("'moe1': the model is already a Mixture of Experts (4 routed experts)"), "\(failure("again"))")
    #expect(failure("odd").contains("88 does not split into 2 shared and one routed expert"), "\(failure("odd"))")
  }

  /// Every later op takes the upcycled model: sparse attention, SFT, RL, a reward model, sampling,
  /// distillation from it as teacher, int8 quantization and eval (the quick example adds long context
  /// and fine-tuning); the ops that train it report its routing too.
  @Test func everyLaterOpTakesTheMoEModel() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe(steps: 8) + """
        sparse:
          op: sparse_attention
          from: v2
          attention: {kind: sliding_window, window: 16, global_tokens: 2}
          tasks: {arithmetic: 1}
          heldout_examples: 4
          cost_context: 128
          train: {steps: 3, batch: 4}
        think:
          op: sft
          from: sparse
          tasks: {arithmetic: 1}
          heldout_examples: 4
          train: {steps: 3, batch: 4}
        zero:
          op: rl
          from: think
          group: 2
          prompts: 2
          max_new_tokens: 8
          heldout_examples: 4
          tasks: {arithmetic: 1}
          rewards: {accuracy: 1.0}
          train: {steps: 2}
        rm:
          op: reward_model
          from: think
          policy: think
          tasks: {arithmetic: 1}
          pairs: 8
          heldout_pairs: 4
          max_new_tokens: 8
          train: {steps: 2, batch: 4}
        samples:
          op: sample
          from: zero
          tasks: {arithmetic: 1}
          prompts: 4
          k: 1
          max_new_tokens: 8
        lite:
          op: distill
          teacher: zero
          student: {d_model: 16, layers: 1, heads: 2, context: 64}
          tasks: {arithmetic: 1}
          heldout_examples: 4
          train: {steps: 3, batch: 4}
        int8:
          op: quantize
          from: zero
          scheme: per_channel   # q8_0 refuses experts of hidden 44, not a multiple of its 32-wide blocks
          tasks: [arithmetic]
          examples: 4
          max_new_tokens: 8
          tokens_per_second: {prompt_tokens: 8, new_tokens: 8, repeats: 1}
        table:
          op: eval
          models: [v1, v2, zero, int8, lite]
          tasks: [arithmetic, perplexity]
          examples: 4
          max_new_tokens: 8

      """])
    try await h.run()
    for stage in ["sparse", "think", "zero", "rm"] {
      let m = try h.metrics(stage)
      #expect(m["moe_tokens_dropped"] as? Double == 0, "\(stage) reports its routing")
      #expect((m["moe_load_cv"] as? [[Double]])?.isEmpty == false, "\(stage) has expert-load curves")
      let model = try ModelArtifact(bytes: try h.store.blob(try h.hash(stage, "model")), source: stage)
      #expect(model.model.config.moe != nil, "\(stage) keeps the experts")
    }
    #expect(try h.metrics("lite")["moe_layers"] == nil, "a dense student reports no routing")
    let int8 = try ModelArtifact(bytes: try h.store.blob(try h.hash("int8", "model")), source: "int8")
    #expect(int8.model.quantization != nil && int8.model.config.moe != nil)
    let table = try h.metrics("table")
    #expect((table["v2/parameters"] as? Double ?? 0) > (table["v2/active_parameters"] as? Double ?? .infinity))
    #expect(table["int8/arithmetic/pass@1"] is Double)
  }
}
