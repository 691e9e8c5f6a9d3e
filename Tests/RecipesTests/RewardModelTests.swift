import Foundation
import Models
import Pipeline
@testable import Recipes
import Tensors
import Testing

/// The `reward_model` op and its parts: the Bradley–Terry loss by hand, training on a separable toy
/// set, the human rater and AI feedback on hand-written pairs, the op end to end (metrics, labels
/// used, bit-identical reruns and resume), and the `rl` op's `reward_model` component.
@Suite struct RewardModelTests {
  static let task = ArithmeticTask(digits: 2, operations: 1)
  static let example = TaskExample(task: "arithmetic", split: .heldout, prompt: "What is 12 + 21?",
                                   reasoning: "12 + 21 = 33", answer: "33")

  static func rollout(_ response: String, finished: Bool = true) -> Rollout {
    Rollout(example: example, task: task, language: .english, response: response, finished: finished)
  }

  static func pair(_ a: String, _ b: String) -> ResponsePair { ResponsePair(first: rollout(a), second: rollout(b)) }

  // MARK: - The loss

  @Test func theBradleyTerryLossAndItsGradientMatchHandComputedValues() {
    // Pair 1: s⁺ − s⁻ = 2; pair 2: s⁺ − s⁻ = −1 (the model ranks it the wrong way).
    let scores = Variable(Tensor(shape: [2, 2], scalars: [2, 0, 0, 1]), requiresGrad: true)
    let loss = BradleyTerry.loss(scores)
    // −log σ(2) = log(1 + e⁻²) = 0.126928; −log σ(−1) = log(1 + e) = 1.313262; mean 0.720095.
    #expect(abs(loss.value.scalars[0] - 0.720095) < 1e-5, "\(loss.value.scalars[0])")
    loss.backward()
    // ∂/∂s⁺ = −σ(−d)/2, ∂/∂s⁻ = +σ(−d)/2: σ(−2) = 0.119203, σ(1) = 0.731059.
    let expected: [Float] = [-0.0596015, 0.0596015, -0.3655293, 0.3655293]
    let gradient = scores.grad?.scalars ?? []
    #expect(gradient.count == 4 && zip(gradient, expected).allSatisfy { abs($0 - $1) < 1e-6 }, "\(gradient)")
    let (accuracy, margin) = BradleyTerry.accuracy(scores.value)
    #expect(accuracy == 0.5 && margin == 0.5)

    // Equal scores: P = ½, loss log 2, and a tie counts as a wrong ranking.
    let even = BradleyTerry.loss(Variable(Tensor(shape: [1, 2], scalars: [0.3, 0.3])))
    #expect(abs(even.value.scalars[0] - Float(log(2.0))) < 1e-6)
    #expect(BradleyTerry.accuracy(Tensor(shape: [1, 2], scalars: [0.3, 0.3])).accuracy == 0)
  }

  @Test func trainingOnASeparableToySetRanksHeldOutPairs() throws {
    // Preferred responses say "right", the others "wrong", after the same random digits: separable,
    // but only by reading the response. Held-out pairs use digits of another stream.
    let tokenizer = TextTokenizer.bytes
    func examples(_ count: Int, stream: String) -> [(Rollout, Rollout)] {
      var rng = TaskRandom(seed: 11, stream: stream)
      return (0..<count).map { _ in
        let digits = (0..<4).map { _ in String(Int.random(in: 0...9, using: &rng)) }.joined(separator: " ")
        var example = Self.example
        example.prompt = "Say something about \(digits)."
        func r(_ word: String) -> Rollout {
          Rollout(example: example, task: Self.task, language: .english, response: "\(digits) is \(word)", finished: true)
        }
        return (r("right"), r("wrong"))
      }
    }
    let config = ModelConfig(vocabularySize: tokenizer.vocabularySize, modelDim: 32, layerCount: 2, headCount: 2,
                             contextLength: 64, valueHead: .scalar)
    let model = TransformerLM(config: config, seed: 5)
    func sequence(_ r: Rollout) -> [Int32] {
      RewardModelScorer.sequence(r.example, response: r.response, finished: r.finished, tokenizer: tokenizer, maxTokens: 64)
    }
    let pairs = examples(64, stream: "train").map { BradleyTerryObjective.Pair(preferred: sequence($0.0), other: sequence($0.1)) }
    let objective = BradleyTerryObjective(pairs: pairs, batch: 8, seed: 1, pad: tokenizer.id(of: .pad),
                                          trains: RewardModelOp.Trained.all.selection)
    model.trainable = objective.trains
    let steps = 40
    let optimizer = AdamW(parameters: model.parameters,
                          settings: TrainSettings.optimizer(steps: steps, lr: 3e-3, warmup: 4, schedule: .cosine,
                                                            weightDecay: 0, gradientClip: 1),
                          trains: objective.trains)
    var losses: [Float] = []
    for step in 0..<steps {
      model.zeroGradients()
      let outcome = try objective.loss(step: step, model: model)
      outcome.loss.backward()
      _ = optimizer.update()
      losses.append(outcome.loss.value.scalars[0])
    }
    #expect(abs(losses[0] - Float(log(2.0))) < 1e-5, "a zero value head starts every pair at P = ½: \(losses[0])")

    let scorer = try RewardModelScorer(ModelArtifact(model: model, tokenizer: tokenizer), source: "toy")
    let heldout = examples(200, stream: "heldout")
    let scores = scorer.scores(heldout.flatMap { [$0.0, $0.1] })
    let right = (0..<heldout.count).filter { scores[2 * $0] > scores[2 * $0 + 1] }.count
    let accuracy = Double(right) / Double(heldout.count)
    let tail = losses.suffix(5).reduce(0, +) / 5
    // Measured (seed 5): all 200 held-out pairs ranked right; loss 0.693 → 0.022 over the last 5 steps.
    #expect(accuracy >= 0.95, "held-out pairwise accuracy \(accuracy), loss \(losses[0]) → \(tail)")
    #expect(tail < 0.1, "loss \(losses[0]) → \(tail)")
  }

  // MARK: - The human rater

  @Test func theHumanRaterPrefersNonToxicCorrectWellFormedSameLanguageShorterResponses() {
    let rater = HumanRater(blockList: .builtin, noise: 0)
    let right = "<think>12 + 21 = 33</think><answer>33</answer>"
    // Each case: the first response wins on one criterion while losing (or tying) on every later one.
    let cases: [(String, String, String)] = [
      ("correct over wrong", right, "<think>12 + 21 = 34</think><answer>34</answer>"),
      ("well-formed over malformed, though longer", right, "<think>12 + 21 = 33<answer>33</answer>"),
      ("the prompt's language over another, though longer",
       "<think>first add the units: the sum is 33</think><answer>33</answer>",
       "<think>la suma es 33</think><answer>33</answer>"),
      ("non-toxic over toxic, though wrong", "<think>12 + 21 = 34</think><answer>34</answer>",
       "<think>12 + 21 = 33, idiot</think><answer>33</answer>"),
      ("shorter when all else is equal", right, "<think>12 + 21 = 33\n33 = 33</think><answer>33</answer>"),
      ("a finished answer over one cut off by the token limit", right, right),
    ]
    for (name, a, b) in cases {
      var pair = Self.pair(a, b)
      if name.hasPrefix("a finished") { pair.second.finished = false }
      #expect(rater.preference(pair) == .first, "\(name)")
      #expect(rater.preference(ResponsePair(first: pair.second, second: pair.first)) == .second, "\(name), swapped")
    }
    #expect(rater.preference(Self.pair(right, right)) == .tie, "identical responses cannot be told apart")
  }

  @Test func noiseFlipsItsShareOfTheLabelsAndEveryLabelIsAHumanLabel() {
    let pair = Self.pair("<think>12 + 21 = 33</think><answer>33</answer>", "<think>12 + 21 = 34</think><answer>34</answer>")
    let n = 10_000, noise = 0.2
    let rule = HumanRater(blockList: .builtin, noise: 0)
    let labels = PreferenceLabels(Array(repeating: pair, count: n), judgeAnswers: [],
                                  labeler: .human(HumanRater(blockList: .builtin, noise: noise)), truth: rule,
                                  budget: nil, seed: 3, stream: "noise")
    let flipped = Double(labels.labels.count { $0 == .second }) / Double(n)
    // Binomial: standard error √(0.2 · 0.8 / 10000) = 0.004; allow 4 of them.
    #expect(abs(flipped - noise) < 4 * (noise * (1 - noise) / Double(n)).squareRoot(), "flipped share \(flipped)")
    #expect(labels.humanLabels == n && labels.ties == 0 && labels.truth.allSatisfy { $0 == .first })

    // A tie stays a tie whatever the noise; the budget stops the labelling and says how much it left.
    let tie = Self.pair("<think>a</think><answer>33</answer>", "<think>a</think><answer>33</answer>")
    let limited = PreferenceLabels(Array(repeating: tie, count: 2) + Array(repeating: pair, count: 6), judgeAnswers: [],
                                   labeler: .human(HumanRater(blockList: .builtin, noise: 1)), truth: rule,
                                   budget: 5, seed: 3, stream: "budget")
    #expect(limited.humanLabels == 5 && limited.overBudget == 3 && limited.ties == 2 && limited.decided == 3)
    #expect(limited.labels == [.tie, .tie, .second, .second, .second, nil, nil, nil], "noise 1 flips every decided label")
  }

  // MARK: - AI feedback

  @Test func aiFeedbackDecidesByTheJudgesAnswerThenByTheReasoningSteps() {
    let ai = AIFeedback()
    let agrees = "<think>12 + 21 = 33</think><answer>33</answer>"
    // The judge's answer decides first, whatever the steps say.
    #expect(ai.preference(Self.pair(agrees, "<think>12 + 21 = 33</think><answer>34</answer>"), judgeAnswer: "33") == .first)
    #expect(ai.preference(Self.pair("<think>12 + 21 = 34</think><answer>34</answer>", agrees), judgeAnswer: "34") == .first,
            "a wrong judge makes a wrong label")
    // Both agree: fewer wrong steps, then more right steps.
    #expect(ai.preference(Self.pair("<think>12 + 21 = 34\n34 - 1 = 33</think><answer>33</answer>", agrees),
                          judgeAnswer: "33") == .second)
    #expect(ai.preference(Self.pair("<think>12 + 20 = 32\n32 + 1 = 33</think><answer>33</answer>", agrees),
                          judgeAnswer: "33") == .first)
    // Neither agrees (or the judge gave no answer): the steps decide alone.
    let wrongStep = "<think>12 + 21 = 35</think><answer>35</answer>"
    #expect(ai.preference(Self.pair(wrongStep, agrees), judgeAnswer: "40") == .second)
    #expect(ai.preference(Self.pair(wrongStep, agrees), judgeAnswer: nil) == .second)
    // A response cut off by the token limit never agrees; no difference at all is a tie.
    var cut = Self.pair(agrees, agrees)
    cut.first.finished = false
    #expect(ai.preference(cut, judgeAnswer: "33") == .second)
    #expect(ai.preference(Self.pair(agrees, agrees), judgeAnswer: "33") == .tie)
    #expect(ai.preference(Self.pair("<think>hmm</think><answer>7</answer>", "<think>ok</think><answer>8</answer>"),
                          judgeAnswer: "33") == .tie)
  }

  @Test func stepChecksRecomputeEachArithmeticLine() {
    #expect(StepCheck("3 * 4 = 12\n12 + 2 = 14\n14 - 20 = -6\n12 / 4 = 3") == StepCheck(valid: 4, invalid: 0))
    #expect(StepCheck("3 × 4 = 13\n12 / 5 = 2\n7 / 0 = 0") == StepCheck(valid: 0, invalid: 3))
    #expect(StepCheck(response: "<think>3 * 4 = 12\n2 + 12 = 15</think><answer>15</answer>") == StepCheck(valid: 1, invalid: 1))
    #expect(StepCheck(response: "<think>3 * 4 = 12\n2 + 12 = 14") == StepCheck(valid: 2, invalid: 0), "cut off")
    #expect(StepCheck("first the units\nx + 1 = 2\n1 + 2 + 3 = 6\n= 4\n2 + 2 =") == StepCheck(valid: 0, invalid: 0),
            "lines that are not one `a op b = c` step are not counted")
  }

  @Test func aiFeedbackUsesNoHumanLabelAndNoBudget() {
    let pairs = [Self.pair("<think>12 + 21 = 33</think><answer>33</answer>", "<think>12 + 21 = 34</think><answer>34</answer>"),
                 Self.pair("<think>12 + 21 = 35</think><answer>35</answer>", "<think>12 + 21 = 33</think><answer>33</answer>")]
    let labels = PreferenceLabels(pairs, judgeAnswers: ["33", "33"], labeler: .ai(AIFeedback()),
                                  truth: HumanRater(blockList: .builtin, noise: 0), budget: 0, seed: 1, stream: "ai")
    #expect(labels.humanLabels == 0 && labels.overBudget == 0)
    #expect(labels.labels == [.first, .second] && labels.truth == [.first, .second])
  }

  // MARK: - The op

  static let recipe = TrainingOpsTests.pretrain + """
      cold:
        op: sft
        from: v1
        tasks: {arithmetic: 1}
        heldout_examples: 0
        train: {steps: 300, batch: 16, lr: 1e-2, warmup: 10}
      rm:
        op: reward_model
        from: v1
        policy: cold
        tasks: {arithmetic: 1}
        pairs: 16
        heldout_pairs: 12
        budget: 12
        noise: 0.1
        max_new_tokens: 40
        train: {steps: 6, batch: 4, lr: 1e-3, warmup: 1}

    """

  @Test func theOpReportsAccuracyAndTheLabelsItUsed() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe])
    try await h.run()
    let m = try h.metrics("rm")
    func number(_ key: String) throws -> Double { try #require(m[key] as? Double, "\(key)") }
    #expect(try number("pairs") == 16 && number("heldout_pairs") == 12)
    #expect(try number("human_labels_train") == 12 && number("pairs_over_budget") == 4, "the budget of 12 stops at 12")
    #expect(try number("pairs_labelled") + number("ties_skipped") == 12)
    #expect(try number("human_labels_heldout") == 12 && number("human_labels") == 24)
    for key in ["heldout_accuracy", "heldout_true_accuracy", "train_accuracy", "label_agreement"] {
      let p = try number(key), n = try number("\(key)_pairs"), se = try number("\(key)_se")
      #expect(p >= 0 && p <= 1 && n >= 1 && abs((p * n).rounded() - p * n) < 1e-9, "\(key) \(p) of \(n) pairs")
      #expect(abs(se - (p * (1 - p) / n).squareRoot()) < 1e-12, "\(key): binomial standard error")
    }
    let loss = try #require(m["loss"] as? [[Double]])
    #expect(loss.count == 6 && loss.allSatisfy { $0[1].isFinite && $0[1] > 0 })
    #expect(abs(loss[0][1] - log(2.0)) < 1e-5, "the new value head starts at 0: loss log 2, got \(loss[0][1])")
    #expect(try #require(m["batch_accuracy"] as? [[Double]]).count == 6)

    let artifact = try ModelArtifact(bytes: try h.store.blob(try h.hash("rm", "model")), source: "rm")
    #expect(artifact.model.config.valueHead == .scalar)
  }

  @Test func aiFeedbackNeedsAJudgeAndCostsNoHumanLabel() async throws {
    let ai = Self.recipe.replacingOccurrences(of: "budget: 12\n    noise: 0.1\n", with: "labeler: ai\n    judge: cold\n")
    #expect(ai != Self.recipe)
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": ai])
    try await h.run()
    let m = try h.metrics("rm")
    #expect(m["human_labels"] as? Double == 0 && m["pairs_over_budget"] as? Double == 0)
    let labelled = try #require(m["pairs_labelled"] as? Double), ties = try #require(m["ties_skipped"] as? Double)
    #expect(labelled >= 1 && labelled + ties == 16, "labelled \(labelled), ties \(ties)")

    try h.write("s.yaml", ai.replacingOccurrences(of: "    judge: cold\n", with: ""))
    let lines = Self.diagnostics(h)
    #expect(lines == ["s.yaml:21:14: error: labeler: ai needs 'judge:' naming the model stage that judges"], "\(lines)")
  }

  @Test func aRewardModelStageRerunsBitIdenticallyAndResumes() async throws {
    let a = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe])
    let b = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe])
    try await a.run()
    try await b.run()
    #expect(try a.hash("rm", "model") == b.hash("rm", "model"))
    #expect(try a.hash("rm", "metrics") == b.hash("rm", "metrics"))

    // Stopped after its first training step, it resumes there and ends with the same bytes.
    let broken = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe])
    let control = RunControl()
    let events = EventLog { event in
      if case .stageProgress("rm", let p) = event, p.step >= 1 { control.cancel() }
    }
    let first = try await Executor(recipe: try broken.recipe(), store: broken.store, events: events, control: control).run()
    #expect(first.cancelled == ["rm"])
    let again = EventLog()
    try await broken.run(events: again)
    #expect(again.resumed["rm"] == 1)
    #expect(try broken.hash("rm", "model") == a.hash("rm", "model"))
    #expect(try broken.hash("rm", "metrics") == a.hash("rm", "metrics"))
  }

  // MARK: - The rl op's reward_model component

  @Test func rlScoresRolloutsWithTheRewardModel() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe + """
        r1:
          op: rl
          from: cold
          reward_model: rm
          tasks: {arithmetic: 1}
          rewards: {accuracy: 1, format: 0.2, reward_model: 0.5, toxicity: -1}
          group: 4
          prompts: 2
          max_new_tokens: 12
          heldout_examples: 0
          train: {steps: 2}

      """])
    try await h.run()
    let curve = try #require(try h.metrics("r1")["reward/reward_model"] as? [[Double]])
    #expect(curve.count == 2 && curve.allSatisfy { $0[1] > 0 && $0[1] < 1 }, "σ of a score lies in 0…1: \(curve)")
  }

  @Test func rlRefusesARewardModelWeightWithoutARewardModel() async throws {
    let stage = """
        r1:
          op: rl
          from: cold
          tasks: {arithmetic: 1}
          rewards: {accuracy: 1, reward_model: 0.5}

      """
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe + stage])
    let lines = Self.diagnostics(h)
    #expect(lines == ["s.yaml:29:42: error: a reward_model weight needs 'reward_model:' naming a reward_model stage"],
            "\(lines)")

    // A model without a value head is refused when the stage runs.
    try h.write("s.yaml", Self.recipe + stage.replacingOccurrences(of: "    from: cold\n", with: "    from: cold\n    reward_model: v1\n"))
    let summary = try await Executor(recipe: try h.recipe(), store: h.store, events: NullEventSink()).run()
    guard case .failed(let message)? = summary.outcomes["r1"] else {
      Issue.record("rl with a language model as reward_model must fail")
      return
    }
    #expect(message.contains("'v1' has no value head"), "\(message)")
  }

  /// The diagnostics of loading the harness's recipe (empty when it loads).
  static func diagnostics(_ h: RecipeHarness) -> [String] {
    do {
      _ = try h.recipe()
      return []
    } catch let error as RecipeError {
      return BadRecipeCorpusTests.lines(of: error, caseFolder: h.path)
    } catch {
      return ["\(error)"]
    }
  }
}
