import Foundation

/// The report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched. The
/// sections: the graph, every training stage's loss, each `rl` stage's curves, each MoE stage's
/// routing, `distill` and `quantize` comparisons, each `long_context` stage's passkey retrieval,
/// perplexity by position and attention cost by length, every `eval` table (the last one is the
/// lineage's final table), and every curve no section drew.
struct ReportPage {
  var model: ReportModel

  /// The sections in page order, each with its figures (a section without any is left out).
  struct Section {
    var id: String
    var title: String
    var intro: String?
    var groups: [Group]

    /// A run of figures under an optional heading (one `rl` stage's charts, say).
    struct Group {
      var heading: String?
      var note: String?
      var figures: [Figure]
    }

    var figureCount: Int { groups.map(\.figures.count).reduce(0, +) }
  }

  var sections: [Section] {
    let stages = model.stages
    var claimed = [String: Set<String>]()
    func take(_ stage: StageSummary, _ part: SectionFigures) -> [Figure] {
      claimed[stage.name, default: []].formUnion(part.claimed)
      return part.figures
    }
    let losses = stages.flatMap { take($0, TrainingSections.loss($0)) }
    func perStage(_ op: String, _ build: (StageSummary) -> SectionFigures) -> [Section.Group] {
      stages.filter { $0.op == op }.compactMap { stage in
        let figures = take(stage, build(stage))
        guard !figures.isEmpty else { return nil }
        return Section.Group(heading: stage.name, note: noteFor(stage), figures: figures)
      }
    }
    let rl = perStage("rl", TrainingSections.reinforcementLearning)
    let distill = perStage("distill", CompressionSections.distillation)
    let quantize = perStage("quantize", CompressionSections.quantization)
    let longContext = perStage("long_context", LongContextSection.figures)
    let experts: [Section.Group] = stages.compactMap { stage in
      let figures = take(stage, ExpertSection.figures(stage))
      return figures.isEmpty ? nil : Section.Group(heading: "\(stage.name) (\(stage.op))", note: noteFor(stage), figures: figures)
    }
    let evals = stages.filter { $0.op == "eval" }
    let finalEval = evals.last?.name
    let tables = evals.compactMap { EvalSection.figure($0, isFinal: $0.name == finalEval && evals.count > 1) }
    let others: [Section.Group] = stages.compactMap { stage in
      let figures = TrainingSections.genericCurves(stage, claimed: claimed[stage.name] ?? [])
      return figures.isEmpty ? nil : Section.Group(heading: "\(stage.name) (\(stage.op))", note: nil, figures: figures)
    }
    return [
      Section(id: "graph", title: "Stages", intro: "Hover a box for its op, its doc and why it is stale.",
              groups: [.init(figures: [GraphView.figure(stages)])]),
      Section(id: "loss", title: "Training loss", intro: "Every stage that trains, from its metrics artifact.",
              groups: [.init(figures: losses)]),
      Section(id: "rl", title: "Reinforcement learning",
              intro: "GRPO curves per step: each reward component scores 0…1 before its weight; the KL is to the frozen starting model.",
              groups: rl),
      Section(id: "experts", title: "Mixture of Experts", intro: ExpertSection.note, groups: experts),
      Section(id: "distill", title: "Distillation", intro: nil, groups: distill),
      Section(id: "quantize", title: "Quantization", intro: nil, groups: quantize),
      Section(id: "long-context", title: "Long context", intro: LongContextSection.note, groups: longContext),
      Section(id: "eval", title: "Evaluation", intro: EvalSection.note, groups: tables.map { .init(figures: [$0]) }),
      Section(id: "curves", title: "Other curves", intro: "Curves the sections above do not draw, as each op recorded them.",
              groups: others),
    ].filter { $0.figureCount > 0 }
  }

  private func noteFor(_ stage: StageSummary) -> String? {
    var parts: [String] = []
    if let doc = stage.doc { parts.append(doc) }
    if stage.metricsAreFromEarlierResult { parts.append("Curves of its earlier result: the stage is \(stage.state.label) now.") }
    return parts.isEmpty ? nil : parts.joined(separator: " ")
  }

  // MARK: - The document

  var html: String {
    let sections = self.sections
    let document = Markup.el(.html, ["lang" => "en"], [
      .el(.head, [], [
        .el(.meta, ["charset" => "utf-8"]),
        .el(.meta, ["name" => "viewport", "content" => "width=device-width, initial-scale=1"]),
        .el(.title, [], text: "Lineage report: \(model.title)"),
        .el(.style, [], [.styleSheet(ReportPage.css)]),
      ]),
      .el(.body, [], [
        header(sections),
        .el(.main, [], sections.map(render)),
        .el(.footer, [], [.text("Made by lineage report from the recipe, its lineage.lock and its store. "
                                + "Self-contained: no script, nothing loaded from the network.")]),
      ]),
    ])
    return "<!DOCTYPE html>\n" + document.rendered
  }

  private func header(_ sections: [Section]) -> Markup {
    var facts: [Markup] = [.el(.span, [], [.text("recipe "), .el(.code, [], text: model.title)]),
                           .el(.span, [], text: "\(model.stages.count) stages"),
                           .el(.span, [], text: "made " + ReportPage.time(model.generatedAt))]
    if let run = model.lastRun {
      facts.append(.el(.span, ["title" => run.command], text: "last run #\(run.id), finished " + ReportPage.time(run.finishedAt)))
    } else {
      facts.append(.el(.span, [], text: "no run recorded in the store"))
    }
    return .el(.header, [], [
      .el(.h1, [], text: "Lineage report"),
      .el(.p, ["class" => "facts"], facts),
      .el(.nav, [], sections.map { .el(.a, ["href" => "#" + $0.id], text: $0.title) }),
    ])
  }

  private func render(_ section: Section) -> Markup {
    var children: [Markup] = [.el(.h2, [], text: section.title)]
    if let intro = section.intro { children.append(.el(.p, ["class" => "intro"], text: intro)) }
    for group in section.groups {
      if let heading = group.heading { children.append(.el(.h3, [], text: heading)) }
      if let note = group.note { children.append(.el(.p, ["class" => "note"], text: note)) }
      children.append(.el(.div, ["class" => "grid"], group.figures.map(\.markup)))
    }
    return .el(.section, ["id" => section.id], children)
  }

  static func time(_ seconds: Double) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
    return formatter.string(from: Date(timeIntervalSince1970: seconds))
  }

  /// System fonts only (nothing to fetch), a quiet palette, and cards in a grid that reflows.
  static let css: StaticString = """
    :root { --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f6f7f9; --card: #ffffff; --accent: #3a6fb0; }
    * { box-sizing: border-box; }
    body { margin: 0; background: var(--bg); color: var(--ink);
      font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
    header, main, footer { max-width: 1320px; margin: 0 auto; padding: 0 24px; }
    header { padding-top: 28px; padding-bottom: 8px; }
    h1 { font-size: 26px; margin: 0 0 6px; letter-spacing: -0.01em; }
    h2 { font-size: 19px; margin: 34px 0 4px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
    h3 { font-size: 15px; margin: 20px 0 2px; }
    .facts { color: var(--muted); margin: 0 0 10px; display: flex; flex-wrap: wrap; gap: 6px 18px; }
    code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #eef0f4; padding: 1px 5px; border-radius: 4px; }
    nav { display: flex; flex-wrap: wrap; gap: 8px; }
    nav a { color: var(--accent); text-decoration: none; padding: 3px 10px; border: 1px solid #d5dbe6; border-radius: 999px; background: var(--card); font-size: 13px; }
    .intro, .note { color: var(--muted); margin: 4px 0 12px; max-width: 900px; }
    .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(400px, 1fr)); gap: 16px; margin: 10px 0 6px; }
    figure { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px 10px; min-width: 0; }
    figure.full { grid-column: 1 / -1; }
    figure.double { grid-column: span 2; }
    @media (max-width: 900px) { figure.double { grid-column: 1 / -1; } }
    figcaption { display: flex; flex-direction: column; margin-bottom: 6px; }
    figcaption .title { font-weight: 600; font-size: 14px; }
    figcaption .sub { color: var(--muted); font-size: 12px; }
    svg { display: block; width: 100%; height: auto; margin: 0 auto; overflow: visible; }
    svg text { font-family: inherit; fill: #374151; }
    svg .tick { font-size: 10.5px; fill: #6b7280; }
    svg .axis-label { font-size: 11px; fill: #6b7280; }
    svg .value { font-size: 10px; fill: #374151; }
    svg .node-name { font-size: 12.5px; font-weight: 600; fill: #111827; }
    svg .node-op { font-size: 11px; fill: #4b5563; }
    .legend { list-style: none; padding: 0; margin: 6px 0 0; display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: #4b5563; }
    .legend li { display: flex; align-items: center; gap: 6px; }
    .mark { display: inline-block; width: 16px; height: 3px; background: var(--c); border-radius: 2px; }
    .mark.box { width: 12px; height: 12px; border-radius: 3px; opacity: 0.9; }
    .mark.dashed { background: none; border-top: 2px dashed var(--c); height: 0; }
    .table-scroll { overflow-x: auto; }
    table.eval { border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; width: 100%; }
    table.eval th, table.eval td { padding: 6px 9px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
    table.eval thead th { vertical-align: bottom; font-weight: 600; border-bottom: 2px solid #cfd4dc; }
    table.eval th.model { text-align: left; }
    table.eval .col, table.eval .col-metric { display: block; }
    table.eval .col-metric { font-weight: 400; color: var(--muted); font-size: 11.5px; }
    table.eval td[style] { background: linear-gradient(90deg, #9dbbe3 var(--p), #edf0f5 var(--p)) no-repeat left bottom 4px / 100% 3px; }
    table.eval td.best .v { font-weight: 700; }
    table.eval .se { display: block; color: var(--muted); font-size: 11px; line-height: 1.2; padding-bottom: 4px; }
    table.eval tr.baseline th, table.eval tr.baseline td { color: var(--muted); font-size: 12px; background: #fafbfc; }
    table.eval td.missing { color: #b0b5bf; }
    footer { color: var(--muted); font-size: 12px; padding-top: 30px; padding-bottom: 30px; }
    """
}
