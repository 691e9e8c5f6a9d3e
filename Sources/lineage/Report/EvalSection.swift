import Foundation

/// An `eval` stage's table as HTML: models as rows, columns as the eval printed them, each score with
/// its standard error, the best of each column in bold (lowest for perplexity and toxicity), rates
/// with a faint bar behind them, then the majority-class baseline and the example counts.
enum EvalSection {
  static func figure(_ stage: StageSummary, isFinal: Bool) -> Figure? {
    guard let metrics = stage.metrics,
          let table = EvalTable(metrics: metrics, models: stage.models, order: stage.columnOrder) else { return nil }
    let header = Markup.el(.thead, [], [
      .el(.tr, [], [.el(.th, ["class" => "model"], text: "model")] + table.columns.map { column -> Markup in
        let pieces = column.name.split(separator: "/", maxSplits: 1).map(String.init)
        return .el(.th, ["title" => column.name], pieces.enumerated().map { i, piece -> Markup in
          .el(.span, ["class" => i == 0 ? "col" : "col-metric"], text: piece)
        })
      }),
    ])
    var rows: [Markup] = table.models.map { model -> Markup in
      .el(.tr, [], [.el(.th, ["class" => "model", "scope" => "row"], text: model)] + table.columns.map { column -> Markup in
        guard let cell = table.cells[model]?[column.name] else { return .el(.td, ["class" => "missing"], text: "–") }
        var attributes = ["class" => cell.value == table.best(column) ? "best" : ""]
        if case .percent = column.scale {
          attributes.append("style" => "--p: \(coordinate(min(100, max(0, cell.value * 100))))%")
        }
        var content: [Markup] = [.el(.span, ["class" => "v"], text: column.scale.format(cell.value))]
        if let se = cell.standardError, !column.scale.isFact { content.append(.el(.span, ["class" => "se"], text: "± " + column.scale.format(se))) }
        return .el(.td, attributes.filter { !$0.value.isEmpty }, content)
      })
    }
    if !table.majorityClass.isEmpty {
      rows.append(.el(.tr, ["class" => "baseline"], [.el(.th, ["class" => "model", "scope" => "row"], text: "majority class")]
        + table.columns.map { column -> Markup in .el(.td, [], text: table.majorityClass[column.name].map(column.scale.format) ?? "–") }))
    }
    if !table.examples.isEmpty {
      rows.append(.el(.tr, ["class" => "baseline"], [.el(.th, ["class" => "model", "scope" => "row"], text: "examples")]
        + table.columns.map { column -> Markup in .el(.td, [], text: table.examples[column.name].map { String(Int($0)) } ?? "–") }))
    }
    let body = Markup.el(.div, ["class" => "table-scroll"], [
      .el(.table, ["class" => "eval"], [header, .el(.tbody, [], rows)]),
    ])
    var subtitle = [stage.name, stage.doc].compactMap { $0 }.joined(separator: " · ")
    if stage.metricsAreFromEarlierResult { subtitle += " · earlier result (stage is \(stage.state.label))" }
    return Figure(kind: .evalTable, stage: stage.name,
                  title: isFinal ? "The lineage in miniature: \(stage.name)" : "Evaluation: \(stage.name)",
                  subtitle: subtitle, body: body,
                  legend: [], span: .full)
  }

  /// The note under the tables.
  static let note = "Scores in % (perplexity as is; parameters in millions, size in MB) with ± 1 standard error; the best of each column in bold "
    + "(lowest for perplexity and toxicity). A difference smaller than a couple of standard errors says nothing."
}
