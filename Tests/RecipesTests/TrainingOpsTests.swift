import ArtifactStore
import Foundation
import Models
import Pipeline
@testable import Recipes
import Tensors
import Testing

/// The training ops on tiny models: each moves its metric the right way against its input model, is
/// deterministic, and resumes bit-identically.
@Suite struct TrainingOpsTests {
  static let pretrain = """
    stages:
      text: {op: corpus, source: text.txt}
      v1:
        op: pretrain
        corpus: text
        model: \(tinyModel)
        train: {steps: 40, batch: 8, lr: 1e-2, warmup: 5}

    """

  @Test func pretrainingLowersTheLossAndTheSameSeedGivesTheSameWeights() async throws {
    let a = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.pretrain])
    let b = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.pretrain])
    try await a.run()
    try await b.run()
    let curve = try #require(try a.metrics("v1")["loss"] as? [[Double]])
    #expect(curve.count == 40)
    #expect(curve.last![1] < 0.5 * curve.first![1], "loss \(curve.first![1]) → \(curve.last![1])")
    #expect(try a.hash("v1", "model") == b.hash("v1", "model"))
    #expect(try a.hash("v1", "metrics") == b.hash("v1", "metrics"))

    // A different seed gives different weights.
    try b.write("recipe.yaml", "seed: 7\n")
    try await b.run()
    #expect(try a.hash("v1", "model") != b.hash("v1", "model"))
  }

  @Test func anInterruptedTrainingResumesMidStageAndEndsBitIdentical() async throws {
    let clean = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.pretrain])
    try await clean.run()

    let broken = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.pretrain])
    let control = RunControl()
    // Progress is rate-limited (every 0.2 s, and the first step), so on a fast machine the first event
    // may be the only one before the end: stop at it. It is emitted on the training thread, so the
    // loop sees the cancellation at the next step.
    let events = EventLog { event in
      if case .stageProgress("v1", let p) = event, p.step >= 1 { control.cancel() }
    }
    let first = try await Executor(recipe: try broken.recipe(), store: broken.store, events: events, control: control).run()
    #expect(first.cancelled == ["v1"])
    let again = EventLog()
    try await broken.run(events: again)
    let resumedAt = try #require(again.resumed["v1"])
    #expect(resumedAt >= 1 && resumedAt < 40, "resumed at step \(resumedAt), not from the start")
    #expect(try broken.hash("v1", "model") == clean.hash("v1", "model"))
    #expect(try broken.hash("v1", "metrics") == clean.hash("v1", "metrics"))
  }

  @Test func multitaskLowersTheHeldOutLossOfItsTasks() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.pretrain + """
        v2:
          op: multitask
          from: v1
          corpus: text
          corpus_share: 0.2
          tasks: {arithmetic: 1}
          heldout_examples: 32
          train: {steps: 40, batch: 8, lr: 1e-2}

      """])
    try await h.run()
    let m = try h.metrics("v2")
    let before = try #require(m["heldout_loss_before/arithmetic"] as? Double)
    let after = try #require(m["heldout_loss/arithmetic"] as? Double)
    #expect(after < 0.7 * before, "held-out loss \(before) → \(after)")
  }

  @Test func sparseAttentionCostsLessAtFourThousandTokensAndAWholeWindowEqualsDense() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.pretrain + """
        sparse:
          op: sparse_attention
          from: v1
          attention: {kind: sliding_window, window: 256, global_tokens: 4}
          tasks: {arithmetic: 1}
          cost_context: 4096
          heldout_examples: 16
          train: {steps: 1, lr: 1e-7}
        blocks:
          op: sparse_attention
          from: v1
          attention: {kind: block_sparse, block: 16, top_blocks: 2}
          tasks: {arithmetic: 1}
          cost_context: 4096
          heldout_examples: 16
          train: {steps: 1, lr: 1e-7}
        whole:
          op: sparse_attention
          from: v1
          attention: {kind: sliding_window, window: 64, global_tokens: 0}
          tasks: {arithmetic: 1}
          heldout_examples: 16
          train: {steps: 1, lr: 1e-7}

      """])
    try await h.run()
    let sparse = try h.metrics("sparse")
    let pairs = try #require(sparse["attention_pairs"] as? Double)
    let dense = try #require(sparse["attention_pairs_dense"] as? Double)
    #expect(dense == 4096 * 4097 / 2)
    #expect(pairs < dense / 7, "a 256-token window at 4096 tokens scores \(pairs) of \(dense) pairs")
    // A window scores no blocks: its cost is its attended pairs, with no block-score metric.
    let window = AttentionPattern.slidingWindow(window: 256, globalTokens: 4)
    #expect(pairs == Double(window.attendedPairs(length: 4096)))
    #expect(sparse["attention_block_scores"] == nil)

    // Block-sparse attention's cost includes the q · mean(k) scores that choose its blocks: with
    // blocks of 16 at 4096 tokens, about 4096² / 32 of them, more than the 4096 · 64 attended pairs.
    let blocks = try h.metrics("blocks")
    let blockPattern = AttentionPattern.blockSparse(block: 16, topBlocks: 2)
    let scores = try #require(blocks["attention_block_scores"] as? Double)
    #expect(scores == Double(blockPattern.blockScores(length: 4096)))
    #expect(scores > Double(blockPattern.attendedPairs(length: 4096)))
    #expect(blocks["attention_pairs"] as? Double == Double(blockPattern.attendedPairs(length: 4096)) + scores)

    // A window as long as the context attends to everything: before adapting, the sparse model's
    // held-out loss is the dense model's.
    let whole = try h.metrics("whole")
    let denseLoss = try #require(whole["heldout_loss_dense/arithmetic"] as? Double)
    let sparseLoss = try #require(whole["heldout_loss_before/arithmetic"] as? Double)
    #expect(abs(denseLoss - sparseLoss) < 1e-4 * denseLoss, "\(denseLoss) vs \(sparseLoss)")
  }

  @Test func theAdaptiveMixtureFavoursTheTasksWithTheHighestLoss() throws {
    let next = AdaptiveState.update([0.5, 0.3, 0.2], losses: [1.0, 2.0, 3.0], rate: 1, floor: 0.05)
    #expect(abs(next.reduce(0, +) - 1) < 1e-12)
    #expect(next[2] > 0.2 && next[0] < 0.5, "\(next)")
    let floored = AdaptiveState.update([0.98, 0.01, 0.01], losses: [9, 1, 1], rate: 5, floor: 0.05)
    #expect(floored.allSatisfy { $0 >= 0.05 / 1.1 }, "\(floored)")
    let history: [[Double]] = [[0, 0.5, 0.5], [25, 0.4, 0.6]]
    #expect(try AdaptiveState.decode(AdaptiveState.encode(history), tasks: 2) == history)
  }

  @Test func changingACorpusFileRerunsExactlyTheStagesThatReadIt() async throws {
    let h = try RecipeHarness(["a.txt": tinyCorpus, "b.txt": tinyCorpus.uppercased(), "s.yaml": """
      stages:
        a: {op: corpus, source: a.txt}
        b: {op: corpus, source: b.txt}
        ma:
          op: pretrain
          corpus: a
          model: \(tinyModel)
          train: {steps: 2, batch: 2}
        mb:
          op: pretrain
          corpus: b
          model: \(tinyModel)
          train: {steps: 2, batch: 2}

      """])
    try await h.run()
    #expect(try h.stale() == [])
    try h.write("b.txt", tinyCorpus.uppercased())   // rewritten, same contents
    #expect(try h.stale() == [])
    try h.write("a.txt", tinyCorpus + "\n\nOne more document.")
    #expect(try h.stale() == ["a", "ma"])
  }

  @Test func userCorporaReadTextJSONLAndFoldersAndRejectBadLines() throws {
    let h = try RecipeHarness(["x.txt": "first doc\n\nsecond doc\n", "y.jsonl": "{\"text\": \"json doc\"}\n\n"])
    #expect(try UserText.documents(at: h.path + "/x.txt", named: "x.txt") == ["first doc", "second doc"])
    #expect(try UserText.documents(at: h.path + "/y.jsonl", named: "y.jsonl") == ["json doc"])
    #expect(try UserText.documents(at: h.path, named: ".") == ["first doc", "second doc", "json doc"])
    try h.write("z.jsonl", "{\"text\": \"ok\"}\n[1, 2]\n")
    #expect(throws: StageFailure.self) { try UserText.documents(at: h.path + "/z.jsonl", named: "z.jsonl") }
  }

  @Test func userExamplesBecomeADatasetAndTrainAMultitaskStage() async throws {
    let lines = (0..<40).map { "{\"prompt\": \"Say \($0) twice.\", \"answer\": \"\($0) \($0)\"}" }
    let h = try RecipeHarness(["text.txt": tinyCorpus, "mine.jsonl": lines.joined(separator: "\n") + "\n",
                               "s.yaml": Self.pretrain + """
        mine: {op: dataset, source: mine.jsonl}
        v2:
          op: multitask
          from: v1
          tasks: {arithmetic: 1}
          dataset: [mine]
          dataset_share: 0.5
          heldout_examples: 4
          train: {steps: 3, batch: 4}

      """])
    try await h.run()
    let bytes = try h.store.blob(try h.hash("mine", "dataset"))
    let examples = try TaskExamples.parse(bytes, named: "mine")
    #expect(examples.count == 40)
    #expect(examples.allSatisfy { $0.task == "custom" && $0.split == Split.of(problem: $0.prompt) })
    #expect(examples.contains { $0.prompt == "Say 7 twice." && $0.answer == "7 7" })

    #expect(throws: StageFailure.self) { try TaskExamples.parse(Array("{\"prompt\": \"p\"}\n".utf8), named: "x") }
    do {
      _ = try TaskExamples.parse(Array("{\"prompt\": \"p\", \"answer\": \"a\"}\nnot json\n".utf8), named: "x.jsonl")
      Issue.record("a bad line must be rejected")
    } catch let failure as StageFailure {
      #expect(failure.message == "x.jsonl:2: not a JSON object")
    }
  }
}

/// The later V-series ops on tiny models: each moves its metric the right way against its input.
@Suite struct LaterOpsTests {
  static let base = TrainingOpsTests.pretrain + """
      v2:
        op: multitask
        from: v1
        tasks: {arithmetic: 1}
        heldout_examples: 16
        train: {steps: 30, batch: 8, lr: 1e-2}

    """

  @Test func adaptingANarrowWindowRecoversHeldOutLoss() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.base + """
        narrow:
          op: sparse_attention
          from: v2
          attention: {kind: sliding_window, window: 4, global_tokens: 1}
          tasks: {arithmetic: 1}
          heldout_examples: 16
          train: {steps: 30, batch: 8, lr: 5e-3}

      """])
    try await h.run()
    let m = try h.metrics("narrow")
    let unadapted = try #require(m["heldout_loss_before/arithmetic"] as? Double)
    let adapted = try #require(m["heldout_loss/arithmetic"] as? Double)
    #expect(adapted < unadapted, "a 4-token window: \(unadapted) before adapting → \(adapted)")
  }

  /// A retrieval layer trained on a frozen model: only its weights move, the layer's pattern is
  /// recorded in the model, and the metrics hold perplexity by position, passkey shares with their
  /// standard error, and the attention cost per token by length.
  @Test func longContextTrainsOnlyItsRetrievalLayerAndReportsByPositionAndLength() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.base + """
        long:
          op: long_context
          from: v2
          corpus: text
          context: 1536
          rope_scaling: {kind: ntk}
          retrieval: {layers: [1], trains: retrieval}
          tasks: {arithmetic: 1}
          passkey_lengths: [512]
          passkey_examples: 2
          perplexity_documents: 1
          train: {steps: 6, batch: 2, lr: 3e-3, sequence: 256}

      """])
    try await h.run()
    let input = try ModelArtifact(bytes: try h.store.blob(try h.hash("v2", "model")), source: "v2")
    let long = try ModelArtifact(bytes: try h.store.blob(try h.hash("long", "model")), source: "long")
    #expect(long.model.config.attentionByLayer == [input.model.config.attention, .dense])
    for (id, value) in long.model.tensorsByID {
      let before = try #require(input.model.tensorsByID[id])
      if id.layer == 1 { continue }
      #expect(value == before, "\(id.safetensorsName) moved, but only layer 1 trains")
    }
    let layer1 = ParameterID(layer: 1, role: .attention(.query))
    #expect(long.model.tensorsByID[layer1] != input.model.tensorsByID[layer1], "the retrieval layer trained")
    let m = try h.metrics("long")
    for bucket in ["0k-1k", "1k-1536"] {
      let before = try #require(m["perplexity_before/\(bucket)"] as? Double)
      let after = try #require(m["perplexity/\(bucket)"] as? Double)
      #expect(before > 1 && before.isFinite && after > 1 && after.isFinite, "\(bucket): \(before) → \(after)")
    }
    // Two passkey documents: the accuracy is a share of two, not a presence check.
    let passkey = try #require(m["passkey_accuracy/512"] as? Double)
    #expect([0, 0.5, 1].contains(passkey), "passkey accuracy \(passkey) is not a share of 2 examples")
    #expect((m["passkey_accuracy/512_se"] as? Double) == (passkey * (1 - passkey) / 2).squareRoot())
    // Per token at 1536: a 64-token sliding window would save 2 heads × 64 keys; the tiny base is dense
    // (1536 keys) in layer 0 and the retrieval layer is dense: 2 × 1536 × 4 bytes each.
    #expect((m["attention_bytes_per_token/1536"] as? Double) == Double(2 * (2 * 1536 * 4)))
    #expect((m["attention_bytes_per_token/512"] as? Double) == Double(2 * (2 * 512 * 4)))
  }

  @Test func finetuningOnItsMixtureLowersHeldOutLossAndLogsTheWeights() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.base + """
        v3:
          op: finetune
          from: v2
          generator: v2
          tasks: {arithmetic: 0.5, sentiment: 0.5}
          count: 16
          adaptive: {every: 5, validation: 4}
          heldout_examples: 16
          train: {steps: 30, batch: 8, lr: 5e-3}

      """])
    try await h.run()
    let m = try h.metrics("v3")
    for task in ["arithmetic", "sentiment"] {
      let before = try #require(m["heldout_loss_before/\(task)"] as? Double)
      let after = try #require(m["heldout_loss/\(task)"] as? Double)
      #expect(after < before, "\(task): \(before) → \(after)")
      // Each task wants half of count; a tiny model rarely gets one right, so it samples until it
      // has its 8 or has used max_attempts (4) × 8 prompts, and never keeps more than it wants.
      let wanted = try #require(m["synthetic_wanted/\(task)"] as? Double)
      let generated = try #require(m["synthetic_generated/\(task)"] as? Double)
      let kept = try #require(m["synthetic_kept/\(task)"] as? Double)
      #expect(wanted == 8)
      #expect(kept <= wanted && generated <= 4 * wanted && generated >= wanted)
      #expect(kept == wanted || generated == 4 * wanted, "\(task): stopped with \(kept) of \(wanted) after \(generated)")
    }
    let history = try #require(m["mixture_weights"] as? [[Double]])
    #expect(history.count == 6, "the initial weights and one row per update at steps 5…25")
    #expect(history.allSatisfy { abs($0.dropFirst().reduce(0, +) - 1) < 1e-9 })
    #expect(history.last! != history.first!, "the weights moved")
  }

  @Test func evalPutsAModelTrainedLongerAheadOnPerplexity() async throws {
    let h = try RecipeHarness(["s.yaml": """
      stages:
        short:
          op: pretrain
          corpus: builtin:library
          model: \(tinyModel)
          train: {steps: 2, batch: 4}
        long:
          op: pretrain
          corpus: builtin:library
          model: \(tinyModel)
          train: {steps: 60, batch: 8, lr: 1e-2}
        table:
          op: eval
          models: [short, long]
          tasks: [perplexity, sentiment]
          examples: 8

      """])
    try await h.run()
    let m = try h.metrics("table")
    let short = try #require(m["short/perplexity"] as? Double), long = try #require(m["long/perplexity"] as? Double)
    #expect(long < short / 2, "perplexity \(short) after 2 steps, \(long) after 60")
    // Eight distinct held-out reviews: an accuracy in eighths, its binomial standard error, the count,
    // and the majority class of those very reviews.
    let accuracy = try #require(m["long/sentiment/accuracy"] as? Double)
    #expect((0...8).contains { Double($0) / 8 == accuracy }, "\(accuracy)")
    #expect(m["long/sentiment/accuracy_se"] as? Double == TextMetrics.binomialStandardError(accuracy: accuracy, examples: 8))
    #expect(m["examples/sentiment"] as? Double == 8)
    let seed = try #require(try h.lock().stages["table"]?.seed)
    let reviews = Evaluator.distinctHeldout(SentimentTask(), count: 8, seed: seed, stream: "eval/sentiment")
    #expect(m["majority_class/sentiment"] as? Double == TextMetrics.majorityClassAccuracy(reviews.map(\.answer)))
    #expect(try #require(m["long/perplexity_se"] as? Double) > 0)
    let table = String(decoding: try h.store.blob(try h.hash("table", "table")), as: UTF8.self)
    #expect(table.hasPrefix("| model") && table.contains("\n| short") && table.contains("\n| long"), "\(table)")
    #expect(table.contains("\n| majority class") && table.contains("\n| examples"), "\(table)")
  }
}

@Suite struct CheckpointFaultTests {
  @Test func aDamagedCheckpointFailsClearlyIsRemovedAndTheNextRunStartsOver() async throws {
    let clean = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": TrainingOpsTests.pretrain])
    try await clean.run()

    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": TrainingOpsTests.pretrain])
    let control = RunControl()
    let events = EventLog { event in
      if case .stageProgress("v1", let p) = event, p.step >= 1 { control.cancel() }   // the first event (see above)
    }
    _ = try await Executor(recipe: try h.recipe(), store: h.store, events: events, control: control).run()
    // Replace the saved state with garbage under the same key.
    var planner = Planner(recipe: try h.recipe(), lockfile: try h.lock(), cache: h.store)
    let key = try #require(try planner.status().first { $0.stage == "v1" }?.key)
    try h.store.write { txn in
      let saved = try #require(try txn.checkpoint(for: key))
      let garbage = try txn.putBlob(Array("not a checkpoint".utf8))
      try txn.putCheckpoint(Checkpoint(step: saved.step, total: saved.total, state: garbage, savedAt: 0), for: key)
    }
    let failed = try await Executor(recipe: try h.recipe(), store: h.store, events: NullEventSink()).run()
    guard case .failed(let message)? = failed.outcomes["v1"] else {
      Issue.record("a damaged checkpoint must fail the stage")
      return
    }
    #expect(message.contains("checkpoint is damaged") && message.contains("starts the stage over"), "\(message)")
    #expect(try h.store.read { try $0.checkpoint(for: key) } == nil)
    try await h.run()
    #expect(try h.hash("v1", "model") == clean.hash("v1", "model"))
  }
}
