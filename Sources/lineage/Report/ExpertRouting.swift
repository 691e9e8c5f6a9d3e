import Foundation

/// An MoE stage's routing, read back from its metrics (`TrainingLoop.recordExpertMetrics`): per layer
/// the final load balance, each expert's share of the run and its routing bias; tokens dropped;
/// parameters and active parameters. `lineage show` prints it as a table and the report draws it.
struct ExpertRouting: Equatable {
  struct Layer: Equatable {
    /// 1-based, as the metrics count layers.
    var index: Int
    /// The smallest and largest expert's share of the routed tokens and the load's coefficient of
    /// variation, each averaged over the last tenth of the steps.
    var minShare: Double
    var maxShare: Double
    var variation: Double
    /// Each expert's share of the routed tokens over the whole run.
    var shares: [Double]
    /// Each expert's routing bias at the end.
    var bias: [Double]
  }

  var layers: [Layer]
  var tokensDropped: Double
  var expertAssignments: Double
  var topK: Int?
  var parameters: Double?
  var activeParameters: Double?

  /// Nil for a stage whose metrics hold no routing (a dense model's).
  init?(_ metrics: StageMetrics) {
    guard let dropped = metrics.scalars["moe_tokens_dropped"] else { return nil }
    tokensDropped = dropped
    expertAssignments = metrics.scalars["moe_expert_assignments"] ?? 0
    topK = metrics.scalars["moe_top_k"].map { Int($0) }
    parameters = metrics.scalars["parameters"]
    activeParameters = metrics.scalars["active_parameters"]
    layers = []
    var l = 1
    while let cv = metrics.scalars["moe_final_cv/\(l)"] {
      layers.append(Layer(index: l, minShare: metrics.scalars["moe_final_min_share/\(l)"] ?? .nan,
                          maxShare: metrics.scalars["moe_final_max_share/\(l)"] ?? .nan, variation: cv,
                          shares: metrics.lists["moe_load_share/\(l)"] ?? [], bias: metrics.lists["moe_bias/\(l)"] ?? []))
      l += 1
    }
  }

  var experts: Int { layers.map(\.shares.count).max() ?? 0 }

  /// One line: experts, parameters, tokens dropped.
  var summary: String {
    var parts: [String] = []
    if let topK { parts.append("top-\(topK) of \(experts) routed experts") }
    if let parameters, let activeParameters {
      parts.append("\(ValueFormat.count.text(parameters)) parameters, \(ValueFormat.count.text(activeParameters)) active per token")
    }
    parts.append("tokens dropped: \(Int(tokensDropped)) (of \(Int(expertAssignments)) expert assignments)")
    return parts.joined(separator: " · ")
  }

  static let header = ["layer", "min share", "max share", "load CV", "expert shares of the run", "routing bias (final)"]

  /// Per layer: shares in %, the CV and biases as numbers.
  var rows: [[String]] {
    layers.map { layer in
      [String(layer.index), Self.percent(layer.minShare), Self.percent(layer.maxShare), String(format: "%.3f", layer.variation),
       layer.shares.map(Self.percent).joined(separator: " "),
       layer.bias.map { abs($0) < 5e-5 ? " 0.0000" : String(format: "%+.4f", $0) }.joined(separator: " ")]
    }
  }

  static func percent(_ share: Double) -> String { String(format: "%.1f%%", share * 100) }
}

extension StageMetrics {
  /// The stage's MoE routing, nil for a dense model's metrics.
  var routing: ExpertRouting? { ExpertRouting(self) }
}

/// The report's Mixture-of-Experts figures for one stage: the routing table and the load curves.
enum ExpertSection {
  static let note = "Shares of the routed tokens per expert (even = 1/experts); min, max and the coefficient of variation "
    + "(std / mean of the load, 0 when even) over the last tenth of the steps, curves per step; the routing bias is "
    + "auxiliary-loss-free balancing's, added to the scores for selection only."

  static func figures(_ stage: StageSummary) -> SectionFigures {
    guard let metrics = stage.metrics, let routing = ExpertRouting(metrics) else { return SectionFigures() }
    var out = SectionFigures()
    let header = Markup.el(.thead, [], [.el(.tr, [], ExpertRouting.header.enumerated().map { i, name in
      .el(.th, i == 0 ? ["class" => "model"] : [], text: name)
    })])
    let rows = routing.rows.map { row -> Markup in
      .el(.tr, [], row.enumerated().map { i, cell in
        i == 0 ? .el(.th, ["class" => "model", "scope" => "row"], text: "layer " + cell) : .el(.td, [], text: cell)
      })
    }
    let body = Markup.el(.div, ["class" => "table-scroll"], [.el(.table, ["class" => "eval"], [header, .el(.tbody, [], rows)])])
    out.figures.append(Figure(kind: .moeRouting, stage: stage.name, title: "Expert routing", subtitle: "\(stage.name) · " + routing.summary,
                              body: body, legend: [], span: .full))
    func series(_ key: String, suffix: String = "") -> [LineChart.Series] {
      if let group = metrics.curveGroups[key] {
        return zip(group.names, group.curves).map { .init(name: $0 + suffix, curve: $1) }
      }
      return metrics.curves[key].map { [.init(name: "layer 1" + suffix, curve: $0)] } ?? []   // one layer: a plain curve
    }
    func chart(_ kind: String, _ title: String, _ lines: [LineChart.Series], share: Bool) {
      guard !lines.isEmpty else { return }
      let references = share && routing.experts > 0 ? [LineChart.Reference(value: 1 / Double(routing.experts), label: "even")] : []
      let (svg, legend) = LineChart(series: lines, references: references, format: share ? .percent : .plain)
        .render(title: "\(stage.name): \(title)")
      out.figures.append(Figure(kind: .moeLoad, stage: stage.name, metric: kind, title: title,
                                subtitle: "\(stage.name) (\(stage.op)) · per training step", body: svg, legend: legend))
    }
    chart("moe_load_cv", "Expert load: coefficient of variation per layer", series("moe_load_cv"), share: false)
    chart("moe_load_max_share", "Busiest and idlest expert's share per layer",
          series("moe_load_max_share", suffix: " max") + series("moe_load_min_share", suffix: " min"), share: true)
    out.claimed = Set(metrics.curves.keys.filter { $0.hasPrefix("moe_") })
      .union(metrics.curveGroups.keys.filter { $0.hasPrefix("moe_") })
      .union(metrics.lists.keys.filter { $0.hasPrefix("moe_") })
    return out
  }
}
