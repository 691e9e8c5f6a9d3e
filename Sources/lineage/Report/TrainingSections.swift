import Foundation

/// What a section of the page draws for one stage, and which curves it used, so that the curves no
/// section uses are still drawn, each on its own (`genericCurves`).
struct SectionFigures {
  var figures: [Figure] = []
  var claimed: Set<String> = []
}

/// The figures drawn from training curves: a loss chart per training stage, the RL charts, and a
/// chart for every curve nothing else shows.
enum TrainingSections {
  /// The `loss` curve of a stage that trains, with where it started and ended.
  static func loss(_ stage: StageSummary) -> SectionFigures {
    guard let curve = stage.metrics?.curves["loss"], let first = curve.first, let last = curve.last else { return SectionFigures() }
    let chart = LineChart(series: [.init(name: "training loss", curve: curve)])
    let (svg, legend) = chart.render(title: "\(stage.name): training loss")
    var subtitle = "\(stage.op) · \(ValueFormat.plain.text(first)) → \(ValueFormat.plain.text(last)) over \(curve.points.count) points"
    if stage.metricsAreFromEarlierResult { subtitle += " · earlier result (stage is \(stage.state.label))" }
    return SectionFigures(figures: [Figure(kind: .loss, stage: stage.name, metric: "loss", title: stage.name, subtitle: subtitle,
                                           body: svg, legend: legend)],
                          claimed: ["loss"])
  }

  /// An `rl` stage's charts: reward by component, accuracy, KL to the reference, response length (the
  /// "aha" plot of R1-Zero: answers get longer as reasoning pays), and held-out scores before and
  /// after. Each needs its curve; a missing one is left out, not drawn empty.
  static func reinforcementLearning(_ stage: StageSummary) -> SectionFigures {
    guard let metrics = stage.metrics else { return SectionFigures() }
    var out = SectionFigures()
    let curves = metrics.curves
    func line(_ kind: ChartKind, title: String, keys: [(key: String, name: String)], format: ValueFormat = .plain,
              emphasise: String? = nil, note: (Curve) -> String) {
      let present = keys.filter { curves[$0.key].map { !$0.points.isEmpty } ?? false }
      guard let lead = present.first.flatMap({ curves[$0.key] }) else { return }
      let chart = LineChart(series: present.map { .init(name: $0.name, curve: curves[$0.key]!, emphasised: $0.key == emphasise) },
                            format: format)
      let (svg, legend) = chart.render(title: "\(stage.name): \(title)")
      out.figures.append(Figure(kind: kind, stage: stage.name, metric: present.count == 1 ? present[0].key : nil, title: title,
                                subtitle: "\(stage.name) · " + note(lead), body: svg, legend: legend))
      out.claimed.formUnion(present.map(\.key))
    }
    func change(_ curve: Curve, _ format: ValueFormat = .plain) -> String {
      let smoothed = LineChart.movingAverage(curve.points)
      guard let a = smoothed.first?.value, let b = smoothed.last?.value else { return "" }
      return "\(format.text(a)) → \(format.text(b)) (moving average, first to last step)"
    }
    let components = curves.keys.filter { $0.hasPrefix("reward/") }.sorted()
    line(.rlReward, title: "Reward by component", keys: [("reward", "total (weighted)")]
          + components.map { (key: $0, name: String($0.dropFirst("reward/".count))) }, emphasise: "reward") { "total " + change($0) }
    line(.rlAccuracy, title: "Accuracy of the rollouts", keys: [("reward/accuracy", "accuracy reward")], format: .percent) {
      change($0, .percent)
    }
    line(.rlKL, title: "KL to the reference model", keys: [("kl", "KL")]) { change($0) }
    line(.rlResponseLength, title: "Response length (the “aha” plot)", keys: [("response_length", "mean tokens per response")]) {
      "tokens " + change($0)
    }
    if let heldout = heldoutChart(stage.name, metrics) { out.figures.append(heldout) }
    return out
  }

  /// `heldout_MEASURE_before/TASK` beside `heldout_MEASURE/TASK` (with `_se` after the measure), as
  /// bars before and after RL per task and measure.
  static func heldoutChart(_ stage: String, _ metrics: StageMetrics) -> Figure? {
    var categories: [(name: String, before: String, after: String, beforeSE: String, afterSE: String)] = []
    for key in metrics.scalars.keys.sorted() where key.hasPrefix("heldout_") {
      let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
      guard parts.count == 2, parts[0].hasSuffix("_before") else { continue }
      let measure = String(parts[0].dropFirst("heldout_".count).dropLast("_before".count))
      let task = parts[1]
      let after = "heldout_\(measure)/\(task)"
      guard metrics.scalars[after] != nil else { continue }
      categories.append((name: "\(task)/\(measure)", before: key, after: after,
                         beforeSE: "heldout_\(measure)_before_se/\(task)", afterSE: "heldout_\(measure)_se/\(task)"))
    }
    guard !categories.isEmpty else { return nil }
    func bar(_ value: String, _ se: String) -> BarChart.Bar? {
      metrics.scalars[value].map { BarChart.Bar(value: $0, standardError: metrics.scalars[se]) }
    }
    let chart = BarChart(categories: categories.map(\.name), series: [
      .init(name: "before RL", values: categories.map { bar($0.before, $0.beforeSE) }),
      .init(name: "after RL", values: categories.map { bar($0.after, $0.afterSE) }),
    ], format: .percent)
    let (svg, legend) = chart.render(title: "\(stage): held-out scores before and after RL")
    return Figure(kind: .rlHeldout, stage: stage, title: "Held-out scores before and after RL",
                  subtitle: "\(stage) · greedy answers to held-out prompts", body: svg, legend: legend,
                  span: chart.span)
  }

  /// One chart per curve, group of curves or list of numbers of the stage that no other section
  /// drew: what an op records is never lost because the report does not know it.
  static func genericCurves(_ stage: StageSummary, claimed: Set<String>) -> [Figure] {
    guard let metrics = stage.metrics else { return [] }
    let about = "\(stage.name) (\(stage.op))"
    var figures: [(key: String, figure: Figure)] = []
    for (key, curve) in metrics.curves where !claimed.contains(key) {
      guard let first = curve.first, let last = curve.last else { continue }
      let (svg, legend) = LineChart(series: [.init(name: key, curve: curve)]).render(title: "\(stage.name): \(key)")
      figures.append((key, Figure(kind: .curve, stage: stage.name, metric: key, title: key,
                                  subtitle: "\(about) · \(ValueFormat.plain.text(first)) → \(ValueFormat.plain.text(last))",
                                  body: svg, legend: legend)))
    }
    for (key, group) in metrics.curveGroups where !claimed.contains(key) {
      let chart = LineChart(series: zip(group.names, group.curves).map { .init(name: $0, curve: $1) })
      let (svg, legend) = chart.render(title: "\(stage.name): \(key)")
      figures.append((key, Figure(kind: .curve, stage: stage.name, metric: key, title: key,
                                  subtitle: "\(about) · \(group.curves.count) series", body: svg, legend: legend)))
    }
    for (key, values) in metrics.lists where !claimed.contains(key) {
      // Past a couple of dozen values bars get too thin to read: a line over the index instead.
      if values.count > 24 {
        let (svg, legend) = LineChart(series: [.init(name: key, curve: Curve(values: values))], xLabel: "index")
          .render(title: "\(stage.name): \(key)")
        figures.append((key, Figure(kind: .list, stage: stage.name, metric: key, title: key,
                                    subtitle: "\(about) · \(values.count) values, in order", body: svg, legend: legend)))
        continue
      }
      let chart = BarChart(categories: values.indices.map { String($0 + 1) },
                           series: [.init(name: key, values: values.map { BarChart.Bar(value: $0) })])
      let (svg, legend) = chart.render(title: "\(stage.name): \(key)")
      figures.append((key, Figure(kind: .list, stage: stage.name, metric: key, title: key,
                                  subtitle: "\(about) · \(values.count) values, in order", body: svg, legend: legend,
                                  span: chart.span)))
    }
    return figures.sorted { $0.key < $1.key }.map(\.figure)
  }
}
