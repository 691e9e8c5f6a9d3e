import Foundation

/// The charts of the ops that make a model smaller: `distill` (its losses, teacher against student
/// size) and `quantize` (float against int8: accuracy per eval column, how much of it int8 keeps,
/// size on disk).
///
/// The metric keys they read: `distill` writes curves `loss`, `kd_loss`, `hard_loss`, `module_loss`
/// (any may be absent) and scalars `teacher_parameters`, `student_parameters`; `quantize` writes
/// `size_bytes/float`, `size_bytes/int8`, `size_ratio`, `accuracy/float/COLUMN`,
/// `accuracy/int8/COLUMN` (each with `COLUMN_se`), `retention/COLUMN` and `retention/mean`.
enum CompressionSections {
  static let distillLosses = [("loss", "total"), ("kd_loss", "distillation (KL to the teacher)"),
                              ("hard_loss", "hard labels"), ("module_loss", "matched modules")]

  static func distillation(_ stage: StageSummary) -> SectionFigures {
    guard let metrics = stage.metrics else { return SectionFigures() }
    var out = SectionFigures()
    let present = distillLosses.filter { metrics.curves[$0.0].map { !$0.points.isEmpty } ?? false }
    if !present.isEmpty {
      let chart = LineChart(series: present.map { .init(name: $0.1, curve: metrics.curves[$0.0]!, emphasised: $0.0 == "loss") })
      let (svg, legend) = chart.render(title: "\(stage.name): distillation losses")
      let total = present.first.flatMap { metrics.curves[$0.0] }
      let note = total.flatMap { c in c.first.flatMap { a in c.last.map { "\(present[0].1) \(ValueFormat.plain.text(a)) → \(ValueFormat.plain.text($0))" } } }
      out.figures.append(Figure(kind: .distillLoss, stage: stage.name, title: "Distillation losses",
                                subtitle: [stage.name, note].compactMap { $0 }.joined(separator: " · "), body: svg, legend: legend))
      out.claimed.formUnion(present.map(\.0))
    }
    if let teacher = metrics.scalars["teacher_parameters"], let student = metrics.scalars["student_parameters"] {
      let chart = BarChart(categories: ["teacher", "student"], series: [
        .init(name: "parameters", values: [BarChart.Bar(value: teacher), BarChart.Bar(value: student)]),
      ], format: .count)
      let (svg, legend) = chart.render(title: "\(stage.name): teacher and student parameters")
      let fewer = teacher > 0 ? (1 - student / teacher) : 0
      out.figures.append(Figure(kind: .distillParameters, stage: stage.name, title: "Teacher and student",
                                subtitle: "\(stage.name) · the student has "
                                  + (fewer >= 0 ? "\(ValueFormat.percent.text(fewer)) fewer" : "\(ValueFormat.percent.text(-fewer)) more")
                                  + " parameters",
                                body: svg, legend: legend))
    }
    return out
  }

  static func quantization(_ stage: StageSummary) -> SectionFigures {
    guard let scalars = stage.metrics?.scalars else { return SectionFigures() }
    var out = SectionFigures()
    let columns = Set(scalars.keys.compactMap { key -> String? in
      for prefix in ["accuracy/float/", "accuracy/int8/"] where key.hasPrefix(prefix) && !key.hasSuffix("_se") {
        return String(key.dropFirst(prefix.count))
      }
      return nil
    }).sorted()
    if !columns.isEmpty {
      func bars(_ precision: String) -> [BarChart.Bar?] {
        columns.map { column in
          scalars["accuracy/\(precision)/\(column)"].map { BarChart.Bar(value: $0, standardError: scalars["accuracy/\(precision)/\(column)_se"]) }
        }
      }
      let chart = BarChart(categories: columns, series: [.init(name: "float32", values: bars("float")),
                                                         .init(name: "int8", values: bars("int8"))], format: .percent)
      let (svg, legend) = chart.render(title: "\(stage.name): accuracy of float32 and int8 weights")
      out.figures.append(Figure(kind: .quantizeAccuracy, stage: stage.name, title: "Accuracy: float32 against int8",
                                subtitle: "\(stage.name) · the same held-out examples for both", body: svg, legend: legend,
                                span: chart.span))
    }
    let retained = scalars.keys.filter { $0.hasPrefix("retention/") && $0 != "retention/mean" }
      .map { String($0.dropFirst("retention/".count)) }.sorted()
    if !retained.isEmpty {
      let chart = BarChart(categories: retained, series: [
        .init(name: "int8 ÷ float32", values: retained.map { scalars["retention/\($0)"].map { BarChart.Bar(value: $0) } }),
      ], format: .percent, references: [.init(value: 0.95, label: "95%: the target")])
      let (svg, legend) = chart.render(title: "\(stage.name): accuracy int8 keeps")
      let mean = scalars["retention/mean"].map { " · mean \(ValueFormat.percent.text($0))" } ?? ""
      out.figures.append(Figure(kind: .quantizeRetention, stage: stage.name, title: "Accuracy int8 keeps",
                                subtitle: "\(stage.name)\(mean)", body: svg, legend: legend, span: chart.span))
    }
    if let float = scalars["size_bytes/float"], let int8 = scalars["size_bytes/int8"] {
      let chart = BarChart(categories: ["float32", "int8"], series: [
        .init(name: "size on disk", values: [BarChart.Bar(value: float), BarChart.Bar(value: int8)]),
      ], format: .bytes)
      let (svg, legend) = chart.render(title: "\(stage.name): size on disk")
      let ratio = scalars["size_ratio"] ?? (float > 0 ? int8 / float : 0)
      out.figures.append(Figure(kind: .quantizeSize, stage: stage.name, title: "Size on disk",
                                subtitle: "\(stage.name) · int8 is \(ValueFormat.percent.text(ratio)) of float32",
                                body: svg, legend: legend))
    }
    return out
  }
}
