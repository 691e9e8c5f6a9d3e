import ArtifactStore
import Foundation
import Models
import Pipeline
@testable import Recipes
import Tensors
import Testing

/// A training op with an objective of its own, to test the loop's seams: the objective's loss and
/// curves, the gradient hook between backward and update, and the expert-load hook after it.
private struct ProbeOp: StageOperation {
  let name = "probe"
  let version = 1
  let summary = "test op: trains with a probing objective"
  let schema = OpSchema(parameters: [ParameterSpec("steps", .int, default: .int(12), range: 1...1000, doc: "steps"),
                                     ParameterSpec("pause_at", .int, default: .int(-1), range: -1...1000,
                                                   doc: "wait at this step until the run is cancelled (at most 10 s)")],
                        outputs: [OutputSpec("metrics", kind: .metrics, doc: "what the hooks saw")])

  /// Language-model loss on fixed windows, reporting the step number as a curve.
  final class Objective: TrainingObjective {
    let windows: [[Int32]]
    let pause: (Int) -> Void
    init(windows: [[Int32]], pause: @escaping (Int) -> Void) {
      self.windows = windows
      self.pause = pause
    }
    func loss(step: Int, model: TransformerLM) throws -> ObjectiveStep {
      pause(step)
      return ObjectiveStep(loss: model.loss(windows), tokens: windows.count * (windows[0].count - 1),
                    metrics: [("step", Double(step)), ("twice", Double(2 * step))])
    }
  }

  func run(_ context: StageContext) throws -> StageOutput {
    let steps = context.parameters["steps"].int ?? 12
    let config = ModelConfig(vocabularySize: 263, modelDim: 16, layerCount: 1, headCount: 2, contextLength: 32,
                             moe: MoEConfig(routedExperts: 4, sharedExperts: 1, topK: 2, expertHiddenDim: 16,
                                            balancing: .auxiliaryLossFree(biasUpdateRate: 0.01)))
    let model = TransformerLM(config: config, seed: context.seed)
    let stream = TokenStream(documents: [tinyCorpus], tokenizer: .bytes)
    var rng = TaskRandom(seed: 1, stream: "probe")
    let pauseAt = context.parameters["pause_at"].int ?? -1
    let objective = Objective(windows: stream.windows(4, length: 17, using: &rng)) { step in
      guard step == pauseAt else { return }
      context.log("paused at step \(step)")
      let started = Date()
      while !context.isCancelled && Date().timeIntervalSince(started) < 10 { usleep(1000) }
    }
    var sawGradientBeforeUpdate = 0, loadCalls = 0
    var embeddingBefore: [Float] = []
    let embedding = { model.parameter(.embedding)! }
    let hooks = TrainingHooks(afterBackward: { m in
      // Gradients exist and the weights are not yet updated.
      if embedding().grad != nil && embedding().value.scalars == embeddingBefore { sawGradientBeforeUpdate += 1 }
    }, expertLoad: { load in
      loadCalls += 1
      return load.map { $0.map { 2 * $0 } }   // as if a second process had routed the same tokens
    })
    let loop = TrainingLoop(context: context, model: model, objective: objective,
                            settings: AdamW.Settings(schedule: LearningRateSchedule(peak: 1e-2, warmupSteps: 0, totalSteps: steps)),
                            steps: steps, hooks: hooks)
    try loop.run(afterStep: { _, _ in embeddingBefore = embedding().value.scalars })
    embeddingBefore = embedding().value.scalars
    var metrics = MetricsArtifact()
    metrics["step"] = .list((loop.curves["step"] ?? []).map { .float($0) })
    metrics["twice"] = .list((loop.curves["twice"] ?? []).map { .float($0) })
    metrics.set("gradient_before_update", Double(sawGradientBeforeUpdate))
    metrics.set("load_calls", Double(loadCalls))
    metrics.set("losses", Double(loop.losses.count))
    return StageOutput(artifacts: ["metrics": metrics.bytes])
  }
}

@Suite struct TrainingLoopTests {
  private func harness(pauseAt: Int = -1) throws -> (RecipeHarness, OperationRegistry) {
    let registry = OperationRegistry(BuiltinOperations.registry.all + [ProbeOp()])
    return (try RecipeHarness(["s.yaml": "stages:\n  p: {op: probe, steps: 12, pause_at: \(pauseAt)}\n"]), registry)
  }

  @Test func theObjectivesCurvesAndBothHooksRunEveryStep() async throws {
    let (h, registry) = try harness()
    let recipe = try RecipeLoader(registry: registry).load(directory: h.path)
    _ = try await Executor(recipe: recipe, store: h.store, events: NullEventSink()).run()
    let m = try h.metrics("p")
    #expect(m["step"] as? [Double] == (0..<12).map(Double.init))
    #expect(m["twice"] as? [Double] == (0..<12).map { Double(2 * $0) })
    #expect(m["losses"] as? Double == 12)
    #expect(m["load_calls"] as? Double == 12)
    // The first step has no "before" snapshot to compare with; every later one must see gradients
    // on weights the update has not touched yet.
    #expect(m["gradient_before_update"] as? Double == 11)
  }

  @Test func curvesSurviveAnInterruptionBitForBit() async throws {
    let (clean, registry) = try harness()
    _ = try await Executor(recipe: try RecipeLoader(registry: registry).load(directory: clean.path), store: clean.store,
                           events: NullEventSink()).run()
    // The probe says so and waits at step 5 until the run is cancelled; its saying so cancels it.
    let (broken, _) = try harness(pauseAt: 5)
    let control = RunControl()
    let events = EventLog { event in
      if case .stageLog("p", let line) = event, line.hasPrefix("paused") { control.cancel() }
    }
    let recipe = try RecipeLoader(registry: registry).load(directory: broken.path)
    let first = try await Executor(recipe: recipe, store: broken.store, events: events, control: control).run()
    #expect(first.cancelled == ["p"])
    let again = EventLog()
    // The same stage without the pause has another key: resume under the first one's recipe.
    _ = try await Executor(recipe: recipe, store: broken.store, events: again).run()
    let resumedAt = try #require(again.resumed["p"])
    #expect(resumedAt == 6, "cancelled during step 5, so saved when step 6 began")
    #expect(try broken.metrics("p")["step"] as? [Double] == (0..<12).map(Double.init))
  }

  @Test func curvesRoundTripThroughTheirBytes() throws {
    let curves = ["reward": [0.5, -1, .infinity], "kl": [], "len": [3]]
    #expect(try Curves.decode(Curves.encode(curves)) == curves)
    #expect(throws: StageFailure.self) { try Curves.decode(Array(Curves.encode(["a": [1]]).dropLast())) }
  }
}
