import ArtifactStore
import Foundation
import Pipeline
@testable import Recipes
import Testing

/// The `rl` op on a tiny model: its curves and held-out scores are well-formed values, the same seed
/// gives the same weights, and a run stopped between two inner steps of one rollout batch resumes
/// bit-identically.
@Suite struct ReinforcementLearningTests {
  static let recipe = TrainingOpsTests.pretrain + """
      r1-zero:
        op: rl
        from: v1
        tasks: {arithmetic: 1}
        rewards: {accuracy: 1, format: 0.1, toxicity: -1}
        group: 4
        prompts: 4
        inner_steps: 2
        max_new_tokens: 12
        heldout_examples: 8
        train: {steps: 6, lr: 1e-3}

    """

  @Test func rlRecordsItsCurvesAndHeldOutScores() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe])
    try await h.run()
    let m = try h.metrics("r1-zero")
    for name in ["reward", "reward/accuracy", "reward/format", "reward/toxicity", "kl", "response_length",
                 "zero_variance_share", "clipped_share", "loss"] {
      let curve = try #require(m[name] as? [[Double]], "\(name)")
      #expect(curve.count == 6, "\(name): one point per step")
      #expect(curve.allSatisfy { $0[1].isFinite }, "\(name)")
    }
    let lengths = try #require(m["response_length"] as? [[Double]]).map { $0[1] }
    #expect(lengths.allSatisfy { $0 >= 1 && $0 <= 12 }, "responses are 1…max_new_tokens tokens: \(lengths)")
    let shares = try #require(m["zero_variance_share"] as? [[Double]]).map { $0[1] }
    #expect(shares.allSatisfy { [0, 0.25, 0.5, 0.75, 1].contains($0) }, "a share of 4 groups: \(shares)")
    #expect(try #require(m["kl"] as? [[Double]]).allSatisfy { $0[1] >= 0 })
    let clipped = try #require(m["clipped_share"] as? [[Double]]).map { $0[1] }
    #expect(clipped[0] == 0 && clipped[2] == 0 && clipped[4] == 0, "each batch's first update has ratio 1: \(clipped)")
    let pass = try #require(m["heldout_pass@1/arithmetic"] as? Double)
    let se = try #require(m["heldout_pass@1_se/arithmetic"] as? Double)
    #expect(try #require(m["heldout_examples/arithmetic"] as? Double) == 8, "eight distinct held-out prompts")
    #expect((pass * 8).rounded() == pass * 8 && abs(se - (pass * (1 - pass) / 8).squareRoot()) < 1e-12)
  }

  @Test func anInterruptedRLStageResumesBetweenInnerStepsBitIdentically() async throws {
    let recipe = Self.recipe
    let clean = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": recipe])
    try await clean.run()
    let broken = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": recipe])
    let control = RunControl()
    let events = EventLog { event in
      // The first progress event comes after step 1, on the training thread: the loop stops before
      // step 2, the second inner step of rollout batch 0, whose rollouts the checkpoint must carry.
      if case .stageProgress("r1-zero", let p) = event, p.step >= 1 { control.cancel() }
    }
    let first = try await Executor(recipe: try broken.recipe(), store: broken.store, events: events, control: control).run()
    #expect(first.cancelled == ["r1-zero"])
    let again = EventLog()
    try await broken.run(events: again)
    let resumedAt = try #require(again.resumed["r1-zero"])
    #expect(resumedAt == 1, "resumed at step \(resumedAt)")
    #expect(try broken.hash("r1-zero", "model") == clean.hash("r1-zero", "model"))
    #expect(try broken.hash("r1-zero", "metrics") == clean.hash("r1-zero", "metrics"))
  }
}
