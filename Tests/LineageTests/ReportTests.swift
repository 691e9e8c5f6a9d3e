import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import lineage
import Testing

/// `lineage report`: the page is well-formed (it parses as XML), loads nothing and runs nothing, holds
/// every chart its lineage calls for, colours each stage by its state, and escapes what stage files say.
extension CLITests {
  static let reportRecipe = """
    stages:
      text: {op: corpus, source: t.txt}
      m:
        op: pretrain
        doc: The base <model> & its "tiny" size
        corpus: text
        model: {d_model: 32, layers: 1, heads: 2, context: 64}
        train: {steps: 3, batch: 2}
      r:
        op: rl
        from: m
        tasks: {arithmetic: 1}
        rewards: {accuracy: 1, format: 0.1}
        group: 2
        prompts: 2
        max_new_tokens: 6
        heldout_examples: 2
        train: {steps: 3, lr: 1e-3}
      scores:
        op: eval
        models: [m, r]
        tasks: [arithmetic]
        examples: 2
        max_new_tokens: 4

    """

  @Test func reportOfATinyLineageHoldsEveryChartAndColoursStagesByState() throws {
    let folder = try Folder()
    try folder.write("t.txt", (0..<30).map { "Document \($0) about the mill and 2 + 3 = 5." }.joined(separator: "\n\n"))
    try folder.write("s.yaml", Self.reportRecipe)
    let run = try lineage(["run"], in: folder)
    try #require(run.status == 0, "\(run.stderr)")

    let made = try lineage(["report", "-o", "out.html"], in: folder)
    #expect(made.status == 0, "\(made.stderr)")
    #expect(made.stdout.contains("wrote out.html"), "\(made.stdout)")
    let page = try ReportPageReader(path: folder.path + "/out.html")
    page.expectSelfContained()
    #expect(page.figures(.graph).count == 1)
    #expect(page.figures(.loss).map(\.stage) == ["m", "r"], "one loss chart per training stage, in lineage order")
    for kind in [ChartKind.rlReward, .rlAccuracy, .rlKL, .rlResponseLength, .rlHeldout] {
      #expect(page.figures(kind).map(\.stage) == ["r"], "\(kind)")
    }
    let reward = try #require(page.figures(.rlReward).first)
    #expect(reward.legend.contains("accuracy") && reward.legend.contains("format"), "a line per component: \(reward.legend)")
    let table = try #require(page.figures(.evalTable).first)
    #expect(table.stage == "scores" && table.rowHeaders.prefix(2) == ["m", "r"], "\(table.rowHeaders)")
    #expect(table.text.contains("±"), "scores with their standard errors")
    for figure in page.figures where figure.kind != .evalTable && figure.kind != .graph {
      #expect(figure.svgCount == 1 && figure.tickLabels >= 4, "\(figure.kind) \(figure.stage): axes with tick labels")
      #expect(!figure.title.isEmpty && !figure.legend.isEmpty, "\(figure.kind) \(figure.stage): a title and a legend")
    }
    // Curves no section draws (clipped_share, zero_variance_share) are drawn on their own.
    #expect(Set(page.figures(.curve).filter { $0.stage == "r" }.compactMap(\.metric)).isSuperset(of: ["clipped_share", "zero_variance_share"]))
    #expect(page.nodes.mapValues(\.state) == ["text": "ran", "m": "ran", "r": "ran", "scores": "ran"])
    #expect(page.text.contains("The base <model> & its \"tiny\" size"), "the doc reads as written, in the box's tooltip")

    // Parameter changes make r and scores stale (scores also waits on r); a new stage has never run;
    // m, untouched, is still the last run's. (scores gets a change of its own: r's tiny groups may all
    // score alike, leave the weights as they were, and let scores be restored rather than run.)
    try folder.write("s.yaml", Self.reportRecipe.replacingOccurrences(of: "train: {steps: 3, lr: 1e-3}", with: "train: {steps: 3, lr: 2e-3}")
                       .replacingOccurrences(of: "examples: 2", with: "examples: 3")
                       + "  extra: {op: dataset, generator: arithmetic, count: 5}\n")
    let again = try lineage(["report", "-o", "again.html"], in: folder)
    #expect(again.status == 0, "\(again.stderr)")
    let stale = try ReportPageReader(path: folder.path + "/again.html")
    #expect(stale.nodes.mapValues(\.state) == ["text": "ran", "m": "ran", "r": "stale", "scores": "stale", "extra": "never-run"])
    for (name, node) in stale.nodes {
      let state = try #require(StageState(rawValue: node.state))
      #expect(node.fill == state.fill, "\(name) is drawn \(node.fill), the colour of \(state)")
    }
    #expect(Set(stale.nodes.values.map(\.fill)).count == 3, "ran, stale and never run look different")
    // A stale stage keeps its earlier curves, said to be earlier.
    let earlier = try #require(stale.figures(.loss).first { $0.stage == "r" })
    #expect(earlier.subtitle.contains("earlier result"), "\(earlier.subtitle)")

    // Running the edited recipe executes r, scores and extra; text and m are now merely cached.
    try #require(try lineage(["run"], in: folder).status == 0)
    let rerun = try ReportPageReader(path: folder.path + "/again.html", after: lineage(["report", "-o", "again.html"], in: folder))
    #expect(rerun.nodes.mapValues(\.state) == ["text": "cached", "m": "cached", "r": "ran", "scores": "ran", "extra": "ran"])
    #expect(rerun.nodes["m"]?.fill == StageState.cached.fill && rerun.nodes["r"]?.fill == StageState.ran.fill)
  }

  /// A stage that failed in the last run is drawn failed, its dependents (skipped) stale or never run,
  /// and the stages that finished as ran.
  @Test func aStageThatFailedInTheLastRunIsDrawnFailed() throws {
    let folder = try Folder()
    try folder.write("t.txt", (0..<30).map { "Document \($0) about the mill." }.joined(separator: "\n\n"))
    // No room for a prompt: max_new_tokens must stay below the model's context of 64.
    let broken = Self.reportRecipe.replacingOccurrences(of: "max_new_tokens: 6", with: "max_new_tokens: 64")
    try folder.write("s.yaml", broken)
    let run = try lineage(["run"], in: folder)
    #expect(run.status == ExitStatus.stageFailed, "\(run.stderr)")
    let page = try ReportPageReader(path: folder.path + "/failed.html", after: lineage(["report", "-o", "failed.html"], in: folder))
    #expect(page.nodes.mapValues(\.state) == ["text": "ran", "m": "ran", "r": "failed", "scores": "never-run"])
    #expect(page.nodes["r"]?.fill == StageState.failed.fill)
    #expect(page.figures(.loss).map(\.stage) == ["m"] && page.figures(.rlReward).isEmpty, "nothing to draw of r")
  }

  @Test func reportWithoutAnyRunDrawsTheGraphOnly() throws {
    let folder = try Folder()
    try folder.write("t.txt", "Some text.")
    try folder.write("s.yaml", Self.reportRecipe)
    let made = try lineage(["report", "-o", "empty.html"], in: folder)
    #expect(made.status == 0, "\(made.stderr)")
    let page = try ReportPageReader(path: folder.path + "/empty.html")
    page.expectSelfContained()
    #expect(page.figures.map(\.kind) == [.graph])
    #expect(Set(page.nodes.values.map(\.state)) == ["never-run"])
  }

  /// A `long_context` stage gets its section: passkey retrieval by length, perplexity by position
  /// before and after, attention cost by length, each with the values of its metrics artifact.
  @Test func reportDrawsALongContextStagesRetrievalPerplexityAndCost() throws {
    let folder = try Folder()
    try folder.write("t.txt", (0..<30).map { "Document \($0) about the mill and 2 + 3 = 5." }.joined(separator: "\n\n"))
    try folder.write("s.yaml", """
      stages:
        text: {op: corpus, source: t.txt}
        m:
          op: pretrain
          corpus: text
          model: {d_model: 32, layers: 1, heads: 2, context: 64}
          train: {steps: 3, batch: 2}
        long:
          op: long_context
          from: m
          corpus: text
          context: 1536
          rope_scaling: {kind: ntk}
          passkey_lengths: [256, 512]
          passkey_examples: 2
          perplexity_documents: 1
          train: {steps: 2, batch: 1, sequence: 256}

      """)
    let run = try lineage(["run"], in: folder)
    try #require(run.status == 0, "\(run.stderr)")
    let shown = try lineage(["show", "long", "--output", "metrics"], in: folder)
    let metrics = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any])
    func value(_ key: String) throws -> Double { try #require(metrics[key].flatMap(jsonNumber), "\(key) in the metrics") }

    let page = try ReportPageReader(path: folder.path + "/r.html", after: lineage(["report", "-o", "r.html"], in: folder))
    page.expectSelfContained()
    #expect(page.html.contains("<section id=\"long-context\">") && page.text.contains("Long context"))
    let passkey = try #require(page.figures(.longContextPasskey).first)
    #expect(passkey.stage == "long" && passkey.bars == 2, "a bar per passkey length: \(passkey.bars)")
    #expect(passkey.text.contains("256") && passkey.text.contains("512"))
    for length in [256, 512] {
      let accuracy = try value("passkey_accuracy/\(length)")
      #expect(passkey.text.contains("passkeys retrieved, \(length): \(ValueFormat.percent.text(accuracy))"), "\(passkey.text)")
    }
    let perplexity = try #require(page.figures(.longContextPerplexity).first)
    #expect(perplexity.bars == 4 && perplexity.legend.prefix(2) == ["before (input model)", "after (extended)"], "\(perplexity.legend)")
    let before = try value("perplexity_before/1k-1536"), after = try value("perplexity/1k-1536")
    #expect(perplexity.subtitle.contains("at 1k-1536: \(ValueFormat.plain.text(before)) → \(ValueFormat.plain.text(after))"),
            "\(perplexity.subtitle)")
    #expect(try perplexity.text.contains("after (extended), 0k-1k: \(ValueFormat.plain.text(value("perplexity/0k-1k")))"))
    let cost = page.figures(.longContextCost)
    #expect(cost.map(\.metric) == ["attention_bytes_per_token", "attention_flops_per_token"])
    for figure in cost {
      #expect(figure.bars == 3 && figure.text.contains("512") && figure.text.contains("1024") && figure.text.contains("1536"))
    }
    let bytes = try value("attention_bytes_per_token/1536"), flops = try value("attention_flops_per_token/1536")
    #expect(cost.first?.text.contains(ValueFormat.bytes.text(bytes)) == true, "\(cost.first?.text ?? "")")
    #expect(cost.last?.text.contains(": " + ValueFormat.plain.text(flops / 1e6)) == true, "\(cost.last?.text ?? "")")
    for figure in page.figures.filter({ $0.kind.rawValue.hasPrefix("long-context") }) {
      #expect(figure.svgCount == 1 && figure.tickLabels >= 4 && !figure.legend.isEmpty, "\(figure.kind)")
    }
    #expect(page.figures(.curve).filter { $0.stage == "long" }.isEmpty, "nothing of long is drawn twice")
    #expect(page.figures(.loss).map(\.stage) == ["m", "long"])
  }
}

/// The report rendered from values: ops that other stages of the lineage do not run yet (`distill`,
/// `quantize`), an op whose curves the report does not know, and text that must be escaped.
@Suite struct ReportRenderingTests {
  static let hostile = "<script>alert(\"x\")</script> & 'quotes' \u{1}"
  /// The hostile text as the page shows it: the control character XML forbids is U+FFFD.
  static let shownHostile = hostile.replacingOccurrences(of: "\u{1}", with: "\u{FFFD}")

  static func stage(_ name: String, _ op: String, dependencies: [Int] = [], state: StageState = .cached,
                    metrics: StageMetrics? = nil, doc: String? = nil) -> StageSummary {
    StageSummary(name: name, op: op, doc: doc, dependencies: dependencies, state: state, reasons: [], metrics: metrics)
  }

  static func synthetic() -> ReportModel {
    let distill = StageMetrics(curves: [
      "loss": Curve(values: (0..<60).map { 3 - Double($0) * 0.03 }),
      "kd_loss": Curve(values: (0..<60).map { 2 - Double($0) * 0.02 }),
      "hard_loss": Curve(values: (0..<60).map { 1 - Double($0) * 0.01 }),
    ], scalars: ["teacher_parameters": 1_200_000, "student_parameters": 700_000])
    let quantize = StageMetrics(scalars: [
      "size_bytes/float": 4_800_000, "size_bytes/int8": 1_300_000, "size_ratio": 0.27,
      "accuracy/float/arithmetic/pass@1": 0.62, "accuracy/float/arithmetic/pass@1_se": 0.03,
      "accuracy/int8/arithmetic/pass@1": 0.60, "accuracy/int8/arithmetic/pass@1_se": 0.03,
      "accuracy/float/qa/exact_match": 0.41, "accuracy/float/qa/exact_match_se": 0.05,
      "accuracy/int8/qa/exact_match": 0.40, "accuracy/int8/qa/exact_match_se": 0.05,
      "retention/arithmetic/pass@1": 0.968, "retention/qa/exact_match": 0.976, "retention/mean": 0.972,
    ])
    let mystery = StageMetrics(curves: ["wobble": Curve(values: [1, 3, 2, 4]), "loss": Curve(values: [2, 1])])
    let eval = StageMetrics(scalars: [
      "r1/arithmetic/pass@1": 0.7, "r1/arithmetic/pass@1_se": 0.04, "r1-lite/arithmetic/pass@1": 0.6,
      "r1-lite/arithmetic/pass@1_se": 0.05, "r1/perplexity": 12.5, "r1-lite/perplexity": 14.25, "examples/arithmetic": 64,
    ])
    var evalStage = stage("final", "eval", dependencies: [0, 1], metrics: eval)
    evalStage.models = ["r1", "r1-lite"]
    return ReportModel(title: "synthetic", stages: [
      stage("r1", "rl", state: .ran),
      stage("r1-lite", "distill", dependencies: [0], state: .stale, metrics: distill, doc: hostile),
      stage("r1-lite-int8", "quantize", dependencies: [1], state: .failed, metrics: quantize),
      stage(hostile, "mystery", dependencies: [0], state: .neverRun, metrics: mystery),
      evalStage,
    ], lastRun: nil, generatedAt: 0)
  }

  @Test func distillationAndQuantizationAreDrawnFromTheirMetrics() throws {
    let page = try ReportPageReader(html: ReportPage(model: Self.synthetic()).html)
    page.expectSelfContained()
    let losses = try #require(page.figures(.distillLoss).first)
    #expect(losses.stage == "r1-lite" && losses.polylines == 6, "three curves, each raw and averaged: \(losses.polylines)")
    #expect(losses.legend.prefix(3) == ["total", "distillation (KL to the teacher)", "hard labels"], "\(losses.legend)")
    let parameters = try #require(page.figures(.distillParameters).first)
    #expect(parameters.bars == 2 && parameters.subtitle.contains("41.7% fewer"), "\(parameters.subtitle)")
    let accuracy = try #require(page.figures(.quantizeAccuracy).first)
    #expect(accuracy.bars == 4 && accuracy.whiskers == 4, "float and int8 per column, each with its SE: \(accuracy.bars) \(accuracy.whiskers)")
    #expect(accuracy.legend.prefix(2) == ["float32", "int8"])
    #expect(accuracy.text.contains("arithmetic") && accuracy.text.contains("pass@1"))
    let retention = try #require(page.figures(.quantizeRetention).first)
    #expect(retention.bars == 2 && retention.subtitle.contains("97.2%"), "\(retention.subtitle)")
    let size = try #require(page.figures(.quantizeSize).first)
    #expect(size.bars == 2 && size.text.contains("4.6 MiB") && size.subtitle.contains("27.0%"), "\(size.text) \(size.subtitle)")
    // The distill section drew all three losses; `loss` also has its chart among the training losses.
    #expect(page.figures(.curve).filter { $0.stage == "r1-lite" }.isEmpty)
    #expect(page.figures(.loss).map(\.stage) == ["r1-lite", Self.shownHostile])
  }

  @Test func curvesNoSectionKnowsAreDrawnOnTheirOwnAndTextIsEscaped() throws {
    let html = ReportPage(model: Self.synthetic()).html
    #expect(!html.contains("<script"), "the hostile name is text")
    let page = try ReportPageReader(html: html)
    let wobble = try #require(page.figures(.curve).first { $0.metric == "wobble" })
    #expect(wobble.stage == Self.shownHostile, "the name round-trips, its control character replaced")
    #expect(page.text.contains("<script>alert(\"x\")</script> & 'quotes'"), "the doc reads as written")
    #expect(page.nodes.mapValues(\.state) == ["r1": "ran", "r1-lite": "stale", "r1-lite-int8": "failed",
                                              Self.shownHostile: "never-run",
                                              "final": "cached"])
    let table = try #require(page.figures(.evalTable).first)
    #expect(table.rowHeaders == ["r1", "r1-lite", "examples"], "\(table.rowHeaders)")
    #expect(table.text.contains("70.0± 4.0") && table.text.contains("12.50"), "percent and perplexity scales: \(table.text)")
    #expect(table.title.contains("final"))
  }

  /// An MoE stage's routing, as `recordExpertMetrics` writes it, becomes a table per layer and its
  /// load curves per layer; none of its keys is left to the generic charts.
  @Test func anMoEStagesRoutingIsATableAndCurvesPerLayer() throws {
    let rows = (1...30).map { step in "[\(step), \(0.5 - Double(step) * 0.01), \(0.4 - Double(step) * 0.005)]" }.joined(separator: ",")
    let json = """
      {"loss": [[1, 3.0], [2, 2.5]], "parameters": 142000, "active_parameters": 86600, "moe_top_k": 1,
       "moe_tokens_dropped": 0, "moe_expert_assignments": 243328, "moe_layers": ["layer 1", "layer 2"],
       "moe_load_cv": [\(rows)], "moe_load_max_share": [\(rows)], "moe_load_min_share": [\(rows)],
       "moe_final_cv/1": 0.183, "moe_final_min_share/1": 0.199, "moe_final_max_share/1": 0.32,
       "moe_final_cv/2": 0.139, "moe_final_min_share/2": 0.209, "moe_final_max_share/2": 0.301,
       "moe_load_share/1": [0.25, 0.235, 0.248, 0.267], "moe_load_share/2": [0.239, 0.249, 0.244, 0.268],
       "moe_bias/1": [0.006, 0.01, 0.012, -0.002], "moe_bias/2": [0.01, 0.014, -0.002, -1e-9]}
      """
    let metrics = try StageMetrics(json: Array(json.utf8))
    let model = ReportModel(title: "moe", stages: [Self.stage("v2", "multitask", metrics: metrics)], lastRun: nil, generatedAt: 0)
    let page = try ReportPageReader(html: ReportPage(model: model).html)
    let table = try #require(page.figures(.moeRouting).first)
    #expect(table.rowHeaders == ["layer 1", "layer 2"], "\(table.rowHeaders)")
    #expect(table.subtitle.contains("top-1 of 4 routed experts") && table.subtitle.contains("tokens dropped: 0 (of 243328"), "\(table.subtitle)")
    #expect(table.text.contains("32.0%") && table.text.contains("26.8%") && table.text.contains("+0.0140") && table.text.contains(" 0.0000"),
            "\(table.text)")
    let curves = page.figures(.moeLoad)
    #expect(curves.map(\.metric) == ["moe_load_cv", "moe_load_max_share"])
    #expect(curves.last?.legend.prefix(4) == ["layer 1 max", "layer 2 max", "layer 1 min", "layer 2 min"], "\(curves.last?.legend ?? [])")
    #expect(page.figures(.curve).isEmpty && page.figures(.list).isEmpty, "every moe_ key is drawn by the MoE section")
    #expect(metrics.routing?.rows.first?[4] == "25.0% 23.5% 24.8% 26.7%")
    #expect(try StageMetrics(json: Array(#"{"loss": [[1, 2.0]], "parameters": 5}"#.utf8)).routing == nil, "a dense stage has none")
  }

  /// Position buckets are ordered by their first position, not by name; lengths numerically; a stage
  /// whose artifact lacks some keys (an earlier version's) gets only the charts it has keys for.
  @Test func longContextChartsOrderBucketsAndLengthsAndSkipWhatIsMissing() throws {
    let json = """
      {"loss": [[1, 3.0], [2, 2.5]], "final_loss": 2.5,
       "passkey_accuracy/8192": 0.25, "passkey_accuracy/8192_se": 0.153, "passkey_accuracy/1024": 0.875,
       "passkey_accuracy/1024_se": 0.117, "passkey_accuracy/2048": 0.5, "passkey_accuracy/2048_se": 0.177,
       "perplexity_before/4k-8k": 310.25, "perplexity/4k-8k": 24.3, "perplexity_before/0k-1k": 20.5, "perplexity/0k-1k": 19.75,
       "perplexity_before/2k-4k": 150, "perplexity/2k-4k": 22, "perplexity_before/1k-2k": 60, "perplexity/1k-2k": 21,
       "attention_bytes_per_token/512": 8192, "attention_bytes_per_token/1024": 12288, "attention_bytes_per_token/8192": 40960,
       "attention_flops_per_token/512": 262144, "attention_flops_per_token/1024": 393216, "attention_flops_per_token/8192": 1310720}
      """
    let metrics = try StageMetrics(json: Array(json.utf8))
    let old = StageMetrics(scalars: ["passkey_accuracy/1024": 0.5, "final_loss": 2])
    let model = ReportModel(title: "long", stages: [Self.stage("long", "long_context", metrics: metrics),
                                                    Self.stage("old", "long_context", metrics: old)],
                            lastRun: nil, generatedAt: 0)
    let page = try ReportPageReader(html: ReportPage(model: model).html)
    #expect(page.figures(.longContextPasskey).map(\.stage) == ["long", "old"])
    #expect(page.figures(.longContextPerplexity).map(\.stage) == ["long"] && page.figures(.longContextCost).map(\.stage) == ["long", "long"],
            "the old stage's artifact has no perplexity and no cost")
    let passkey = try #require(page.figures(.longContextPasskey).first)
    #expect(passkey.bars == 3 && passkey.whiskers == 3)
    #expect(passkey.text.contains("passkeys retrieved, 1024: 87.5% ± 11.7%"), "\(passkey.text)")
    let order = [1024, 2048, 8192].compactMap { passkey.text.range(of: "passkeys retrieved, \($0):")?.lowerBound }
    #expect(order.count == 3 && order == order.sorted(), "lengths in increasing order: \(passkey.text)")
    let perplexity = try #require(page.figures(.longContextPerplexity).first)
    let buckets = ["0k-1k", "1k-2k", "2k-4k", "4k-8k"].compactMap { perplexity.text.range(of: "before (input model), \($0):")?.lowerBound }
    #expect(buckets.count == 4 && buckets == buckets.sorted(), "buckets by position: \(perplexity.text)")
    #expect(perplexity.bars == 8 && perplexity.subtitle.contains("at 4k-8k: 310 → 24.3"), "\(perplexity.subtitle)")
    let cost = page.figures(.longContextCost)
    #expect(cost.first?.text.contains("40 KiB") == true && cost.first?.subtitle.contains("×5.0 from 512 to 8192 tokens") == true)
    #expect(cost.last?.text.contains("1.31") == true, "1,310,720 FLOP as MFLOP: \(cost.last?.text ?? "")")
    #expect(page.figures(.curve).isEmpty && page.figures(.list).isEmpty)
    #expect(LongContextSection.bucketStart("1k-1536") == 1024 && LongContextSection.bucketStart("1536-2k") == 1536)
    #expect(LongContextSection.bucketStart("tail") == nil)
  }

  @Test func theGraphLayoutKeepsBoxesApartAndEdgesGoingDown() {
    // A diamond with a long edge and a source read late.
    let dependencies = [[], [0], [0], [1, 2], [0, 3], [], [5, 4]]
    let layout = GraphLayout(widths: [100, 80, 120, 90, 100, 60, 140], dependencies: dependencies)
    let boxes = layout.nodes.filter { $0.stage != nil }
    for a in layout.nodes.indices {
      for b in layout.nodes.indices where b > a && layout.nodes[a].layer == layout.nodes[b].layer {
        let (p, q) = (layout.nodes[a], layout.nodes[b])
        #expect(p.x + p.width + GraphLayout.nodeGap <= q.x + 1e-9 || q.x + q.width + GraphLayout.nodeGap <= p.x + 1e-9,
                "nodes \(a) and \(b) overlap")
      }
    }
    for edge in layout.edges {
      let layers = edge.nodes.map { layout.nodes[$0].layer }
      #expect(layers == Array(layers[0]...layers[0] + layers.count - 1), "an edge goes down one layer at a time: \(layers)")
    }
    #expect(layout.edges.count == 8)
    #expect(boxes[5].layer == boxes[6].layer - 1, "a source sits just above its reader")
    #expect(layout.width >= boxes.map { $0.x + $0.width }.max()! && layout.height > 0)
  }

  @Test func stageStatesFollowThePlannerAndTheLastRun() {
    #expect(StageState.of(isCurrent: true, hasLockfileEntry: true, executedInLastRun: true, failedInLastRun: false) == .ran)
    #expect(StageState.of(isCurrent: true, hasLockfileEntry: true, executedInLastRun: false, failedInLastRun: false) == .cached)
    #expect(StageState.of(isCurrent: false, hasLockfileEntry: true, executedInLastRun: false, failedInLastRun: true) == .failed)
    #expect(StageState.of(isCurrent: false, hasLockfileEntry: false, executedInLastRun: false, failedInLastRun: true) == .failed)
    #expect(StageState.of(isCurrent: false, hasLockfileEntry: true, executedInLastRun: true, failedInLastRun: false) == .stale)
    #expect(StageState.of(isCurrent: false, hasLockfileEntry: false, executedInLastRun: false, failedInLastRun: false) == .neverRun)
    #expect(Set(StageState.allCases.map(\.fill)).count == StageState.allCases.count, "every state has its own colour")
  }

  @Test func metricsReaderKeepsCurvesGroupsListsAndScalars() throws {
    let json = #"{"expert_load":[0.25,0.75],"final_loss":1.5,"loss":[[1,3.5],[2,2.25]],"#
      + #""mixture_weights":[[0,0.4,0.6],[25,0.5,0.5]],"mixture_tasks":["qa","chat"],"weights":[[0.4,0.6],[0.5,0.5]],"note":"x"}"#
    let metrics = try StageMetrics(json: Array(json.utf8), headline: ["final_loss": 9, "extra": 2])
    #expect(metrics.curves == ["loss": Curve([.init(step: 1, value: 3.5), .init(step: 2, value: 2.25)])],
            "rows of fractions are no curve: their first column is no step")
    #expect(metrics.curveGroups == ["mixture_weights": .init(names: ["qa", "chat"], curves: [
      Curve([.init(step: 0, value: 0.4), .init(step: 25, value: 0.5)]), Curve([.init(step: 0, value: 0.6), .init(step: 25, value: 0.5)]),
    ])])
    #expect(metrics.lists == ["expert_load": [0.25, 0.75]])
    #expect(metrics.scalars == ["final_loss": 1.5, "extra": 2], "the artifact wins over the headline")
    #expect(throws: (any Error).self) { try StageMetrics(json: Array("[1]".utf8)) }

    var stage = ReportRenderingTests.stage("v3", "finetune", metrics: metrics)
    stage.metrics?.curves["loss"] = nil
    let page = try ReportPageReader(html: ReportPage(model: ReportModel(title: "t", stages: [stage], lastRun: nil, generatedAt: 0)).html)
    let mixture = try #require(page.figures(.curve).first { $0.metric == "mixture_weights" })
    #expect(mixture.legend.prefix(2) == ["qa", "chat"] && mixture.polylines == 2, "\(mixture.legend)")
    let load = try #require(page.figures(.list).first { $0.metric == "expert_load" })
    #expect(load.bars == 2)
  }

  /// eval's model facts (parameters, size) read as counts and bytes, with no standard error and no
  /// winner; rates as percentages, toxicity lowest-best.
  @Test func evalTablesShowModelFactsAsCountsAndBytes() throws {
    var metrics = try StageMetrics(json: Array("{}".utf8))
    metrics.scalars = ["big/parameters": 922_752, "big/parameters_se": 0, "big/size": 3_698_064, "big/size_se": 0,
                       "big/chat_provoked/toxicity_rate": 0.02, "big/chat_provoked/toxicity_rate_se": 0.01,
                       "small/parameters": 541_536, "small/parameters_se": 0, "small/size": 763_000, "small/size_se": 0,
                       "small/chat_provoked/toxicity_rate": 0.01, "small/chat_provoked/toxicity_rate_se": 0.007]
    let table = try #require(EvalTable(metrics: metrics, models: ["big", "small"],
                                       order: ["parameters", "size", "chat_provoked/toxicity_rate"]))
    let columns = Dictionary(uniqueKeysWithValues: table.columns.map { ($0.name, $0) })
    let parameters = try #require(columns["parameters"]), size = try #require(columns["size"])
    let toxicity = try #require(columns["chat_provoked/toxicity_rate"])
    #expect(parameters.scale.format(922_752) == "0.92M" && size.scale.format(763_000) == "0.76 MB")
    #expect(table.best(parameters) == nil && table.best(size) == nil, "no model wins a fact")
    #expect(table.best(toxicity) == 0.01, "the lowest toxicity is the best")
    #expect(toxicity.scale.format(0.02) == "2.0")
  }

  @Test func axesTickAtRoundNumbersCoveringTheData() {
    let scale = ChartScale(values: [0.13, 2.71], from: 0, to: 100)
    #expect(scale.ticks == [0, 1, 2, 3] && scale.lower <= 0.13 && scale.upper >= 2.71)
    #expect(ChartScale(values: [1, 2], minimumStep: 1, from: 0, to: 1).ticks == [1, 2], "whole steps only")
    #expect(ChartScale(values: [5, 5], from: 0, to: 1).ticks.count > 1, "a flat line gets a band")
    #expect(ValueFormat.bytes.text(4_800_000) == "4.6 MiB" && ValueFormat.count.text(1_200_000) == "1.2M")
    let sizes = ChartScale(values: [0, 4_800_000], unit: ValueFormat.bytes.tickUnit(for: [4_800_000]), from: 0, to: 1)
    #expect(sizes.ticks.map { ValueFormat.bytes.text($0) } == ["0 B", "2 MiB", "4 MiB", "6 MiB"], "bytes tick at whole MiB")
    #expect(ValueFormat.percent.text(0.25, step: 0.05) == "25%" && ValueFormat.plain.text(0.25, step: 0.05) == "0.25")
    #expect(Markup.escaped("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;")
  }
}

// MARK: - Reading the page back

/// A report page parsed as XML: its figures with what the tests check of them, the graph's nodes,
/// and all of its text. Parsing fails (throws) on any unbalanced tag or bad escape.
struct ReportPageReader {
  struct FigureInfo {
    var kind: ChartKind
    var stage: String
    var metric: String?
    var title = ""
    var subtitle = ""
    var legend: [String] = []
    var svgCount = 0
    var tickLabels = 0
    var polylines = 0
    var bars = 0
    var whiskers = 0
    var rowHeaders: [String] = []
    var text = ""
  }

  struct Node {
    var state: String
    var fill: String
  }

  var figures: [FigureInfo] = []
  var nodes: [String: Node] = [:]
  var text = ""
  let html: String

  init(path: String, after result: CLITests.Result? = nil) throws {
    if let result { #expect(result.status == 0, "\(result.stderr)") }
    try self.init(html: String(contentsOfFile: path, encoding: .utf8))
  }

  init(html: String) throws {
    self.html = html
    let collector = Collector()
    let parser = XMLParser(data: Data(html.utf8))
    parser.delegate = collector
    guard parser.parse() else {
      throw ReadError(message: "not well-formed: \(parser.parserError.map { "\($0)" } ?? "?") at line \(parser.lineNumber)")
    }
    figures = collector.figures
    nodes = collector.nodes
    text = collector.text
  }

  struct ReadError: Error { var message: String }

  func figures(_ kind: ChartKind) -> [FigureInfo] { figures.filter { $0.kind == kind } }

  func expectSelfContained(sourceLocation: SourceLocation = #_sourceLocation) {
    let lower = html.lowercased()
    #expect(!lower.contains("<script"), sourceLocation: sourceLocation)
    #expect(!lower.contains("http://") && !lower.contains("https://"), sourceLocation: sourceLocation)
    #expect(!lower.contains("@import") && !lower.contains("url(http") && !lower.contains("<link"), sourceLocation: sourceLocation)
    #expect(!lower.contains("<img") && !lower.contains("<iframe") && !lower.contains(" src="), sourceLocation: sourceLocation)
  }

  /// Walks the elements, tracking the figure and the caption part or cell it is in.
  final class Collector: NSObject, XMLParserDelegate {
    var figures: [FigureInfo] = []
    var nodes: [String: Node] = [:]
    var text = ""
    private var stack: [(name: String, attributes: [String: String])] = []
    private var figure: FigureInfo?
    private var currentNode: String?
    private var nodeState = ""

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
      stack.append((name, attributes))
      if name == "figure", let kind = attributes["data-chart"].flatMap(ChartKind.init(rawValue:)) {
        figure = FigureInfo(kind: kind, stage: attributes["data-stage"] ?? "", metric: attributes["data-metric"])
      }
      if name == "g", attributes["class"] == "node", let stage = attributes["data-stage"] {
        currentNode = stage
        nodeState = attributes["data-state"] ?? ""
      }
      if name == "rect", let stage = currentNode {
        nodes[stage] = Node(state: nodeState, fill: attributes["fill"] ?? "")
        currentNode = nil
      }
      guard figure != nil else { return }
      switch name {
      case "svg": figure!.svgCount += 1
      case "polyline": figure!.polylines += 1
      case "rect": figure!.bars += 1
      case "path" where stack.dropLast().last?.name == "svg": figure!.whiskers += 1
      case "text" where attributes["class"] == "tick": figure!.tickLabels += 1
      default: break
      }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
      stack.removeLast()
      if name == "figure", let done = figure {
        figures.append(done)
        figure = nil
      }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
      text += string
      guard figure != nil else { return }
      figure!.text += string
      let classes = stack.map { $0.attributes["class"] ?? "" }
      if classes.last == "title" { figure!.title += string }
      if classes.last == "sub" { figure!.subtitle += string }
      if stack.last?.name == "li", classes.dropLast().last == "legend" { figure!.legend.append(string) }
      if stack.last?.name == "th", stack.last?.attributes["scope"] == "row" { figure!.rowHeaders.append(string) }
    }
  }
}
