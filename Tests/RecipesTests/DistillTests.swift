import Foundation
import Pipeline
@testable import Recipes
import Testing

/// The `distill` op: soft targets make a better student than hard labels on the same few examples,
/// modular distillation learns its projections, settings are checked, and a run is repeatable and
/// resumes bit-identically.
@Suite struct DistillTests {
  /// A teacher that learned arithmetic from plenty of examples, and 16 examples for the students.
  static let recipe = TrainingOpsTests.pretrain + """
      teacher:
        op: sft
        from: v1
        tasks: {arithmetic: 1}
        heldout_examples: 0
        train: {steps: 120, batch: 16, lr: 5e-3}
      few:
        op: dataset
        generator: arithmetic
        count: 16
        difficulty: {digits: 2, operations: 1}

    """

  static func student(_ name: String, alpha: Double, extra: String = "") -> String {
    """
      \(name):
        op: distill
        teacher: teacher
        student: {d_model: 32, layers: 1, heads: 2, context: 64}
        dataset: few
        dataset_share: 1
        tasks: {arithmetic: 1}
        temperature: 2
        alpha: \(alpha)
        heldout_examples: 48
        train: {steps: 300, batch: 8, lr: 1e-2}
    \(extra)

    """
  }

  /// Hinton's claim at toy scale: on 16 examples a student trained on hard labels memorises them,
  /// while one that learns the teacher's distribution on the same tokens generalises better.
  @Test func softTargetsBeatHardLabelsOnTheSameFewExamples() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus,
                               "s.yaml": Self.recipe + Self.student("kd", alpha: 1) + Self.student("hard", alpha: 0)])
    try await h.run()
    let kd = try #require(try h.metrics("kd")["heldout_loss/arithmetic"] as? Double)
    let hard = try #require(try h.metrics("hard")["heldout_loss/arithmetic"] as? Double)
    let teacher = try #require(try h.metrics("kd")["teacher_heldout_loss/arithmetic"] as? Double)
    #expect(kd < 0.7 * hard, "held-out loss: distilled \(kd), hard labels \(hard), teacher \(teacher)")
    let m = try h.metrics("kd")
    #expect((m["kd_loss"] as? [[Double]])?.isEmpty == false)
    #expect((m["hard_loss"] as? [[Double]])?.isEmpty == false)
    #expect((m["student_parameters"] as? Double).map { $0 < (m["teacher_parameters"] as? Double ?? 0) } == true)
  }

  @Test func modularDistillationLearnsToMatchTheTeachersAttention() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe + """
        modular:
          op: distill
          teacher: teacher
          student: {d_model: 24, layers: 1, heads: 2, context: 64}
          tasks: {arithmetic: 1}
          logits: false
          modules: [attention]
          teacher_layers: [1]
          module_weight: 10
          heldout_examples: 0
          train: {steps: 60, batch: 8, lr: 1e-2}

      """])
    try await h.run()
    let curve = try #require(try h.metrics("modular")["module_loss"] as? [[Double]])
    let first = curve.prefix(5).map { $0[1] }.reduce(0, +) / 5, last = curve.suffix(5).map { $0[1] }.reduce(0, +) / 5
    #expect(last < 0.5 * first, "module loss \(first) → \(last)")
    #expect(try h.metrics("modular")["kd_loss"] == nil, "logits: false distils no logits")
  }

  @Test func theSettingsAreCheckedWhereTheyAreWritten() throws {
    func problems(_ stage: String) throws -> [String] {
      let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe + stage])
      do {
        _ = try h.recipe()
        return []
      } catch let error as RecipeError {
        return error.diagnostics.map(\.message)
      }
    }
    let both = try problems("""
        both: {op: distill, teacher: teacher, from: v1, student: {d_model: 16}, tasks: {arithmetic: 1}}

      """)
    #expect(both.contains { $0.contains("not both") }, "\(both)")
    let neither = try problems("""
        neither: {op: distill, teacher: teacher, tasks: {arithmetic: 1}}

      """)
    #expect(neither.contains { $0.contains("from: naming a model stage") }, "\(neither)")
    let nothing = try problems("""
        nothing: {op: distill, teacher: teacher, from: v1, logits: false, tasks: {arithmetic: 1}}

      """)
    #expect(nothing.contains { $0.contains("nothing to distil") }, "\(nothing)")
  }

  @Test func aLayerMapOfTheWrongLengthFailsTheStageClearly() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe + """
        wrong:
          op: distill
          teacher: teacher
          from: v1
          tasks: {arithmetic: 1}
          modules: [hidden]
          teacher_layers: [0]
          train: {steps: 2}

      """])
    let summary = try await Executor(recipe: try h.recipe(), store: h.store, events: NullEventSink()).run()
    guard case .failed(let message)? = summary.outcomes["wrong"] else {
      Issue.record("a layer map of the wrong length must fail the stage")
      return
    }
    #expect(message.contains("names 1 layers but the student has 2"), "\(message)")
  }

  /// The same seed gives the same bytes; stopped mid-run, it resumes (projections included) to them.
  @Test func aRunIsRepeatableAndResumesBitIdentically() async throws {
    let stage = """
        lite:
          op: distill
          teacher: teacher
          student: {d_model: 16, layers: 2, heads: 2, context: 64}
          tasks: {arithmetic: 1}
          modules: [hidden]
          heldout_examples: 8
          train: {steps: 40, batch: 4, lr: 1e-2}

      """
    let a = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe + stage])
    try await a.run()
    let b = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe + stage])
    try await b.run()
    #expect(try a.hash("teacher", "model") == b.hash("teacher", "model"))
    #expect(try a.hash("lite", "model") == b.hash("lite", "model"))
    #expect(try a.hash("lite", "metrics") == b.hash("lite", "metrics"))
    let broken = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe + stage])
    let control = RunControl()
    let events = EventLog { event in
      if case .stageProgress("lite", let p) = event, p.step >= 1 { control.cancel() }
    }
    let first = try await Executor(recipe: try broken.recipe(), store: broken.store, events: events, control: control).run()
    #expect(first.cancelled == ["lite"])
    let again = EventLog()
    try await broken.run(events: again)
    #expect((again.resumed["lite"] ?? 0) >= 1)
    #expect(try broken.hash("lite", "model") == a.hash("lite", "model"))
    #expect(try broken.hash("lite", "metrics") == a.hash("lite", "metrics"))
  }
}
