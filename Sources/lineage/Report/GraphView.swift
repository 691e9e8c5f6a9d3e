/// The lineage as a picture: one box per stage (name, op) filled by its state, arrows from each
/// stage to the stages that read it, a tooltip with the stage's doc and why it is stale, and a legend
/// counting the stages in each state.
enum GraphView {
  static func figure(_ stages: [StageSummary]) -> Figure {
    let widths = stages.map { boxWidth(name: shortened($0.name), op: $0.op) }
    let layout = GraphLayout(widths: widths, dependencies: stages.map(\.dependencies))
    let h = GraphLayout.boxHeight
    var parts: [Markup] = [
      .el(.defs, [], [
        .el(.marker, ["id" => "arrow", "viewBox" => "0 0 10 10", "refX" => "9", "refY" => "5", "markerWidth" => "7",
                      "markerHeight" => "7", "orient" => "auto-start-reverse"], [
          .el(.path, ["d" => "M0 1L10 5L0 9z", "fill" => "#8b93a3"]),
        ]),
      ]),
    ]
    // Edges first, under the boxes; each box spreads its arrows over its bottom and top edges in the
    // order of the boxes at their other end, so that they do not start from one point.
    let ports = Ports(layout)
    var edgeParts: [Markup] = []
    for (e, edge) in layout.edges.enumerated() {
      let points = edge.nodes.enumerated().flatMap { k, id -> [(Double, Double)] in
        let node = layout.nodes[id]
        if k == 0 { return [(ports.leaving[e], node.y + h)] }
        if k == edge.nodes.count - 1 { return [(ports.entering[e], node.y)] }
        return [(node.centre, node.y), (node.centre, node.y + h)]
      }
      var d = "M\(coordinate(points[0].0)) \(coordinate(points[0].1))"
      for (a, b) in zip(points, points.dropFirst()) {
        if a.0 == b.0 {
          d += "V\(coordinate(b.1))"
        } else {
          let mid = coordinate((a.1 + b.1) / 2)
          d += "C\(coordinate(a.0)) \(mid) \(coordinate(b.0)) \(mid) \(coordinate(b.0)) \(coordinate(b.1))"
        }
      }
      edgeParts.append(.el(.path, ["d" => d, "fill" => "none", "stroke" => "#a3aab8", "stroke-width" => "1.3",
                                   "marker-end" => "url(#arrow)"], [
        .el(.title, [], text: "\(stages[edge.from].name) → \(stages[edge.to].name)"),
      ]))
    }
    parts.append(.el(.g, ["class" => "edges"], edgeParts))
    for (i, stage) in stages.enumerated() {
      let node = layout.nodes[i]
      var box = ["x" => coordinate(node.x), "y" => coordinate(node.y), "width" => coordinate(node.width),
                 "height" => coordinate(h), "rx" => "7", "fill" => stage.state.fill, "stroke" => stage.state.stroke,
                 "stroke-width" => "1.5"]
      if stage.state == .neverRun { box.append("stroke-dasharray" => "4 3") }
      parts.append(.el(.g, ["class" => "node", "data-stage" => stage.name, "data-state" => stage.state.rawValue], [
        .el(.title, [], text: tooltip(stage)),
        .el(.rect, box),
        .el(.svgText, ["x" => coordinate(node.centre), "y" => coordinate(node.y + 17), "class" => "node-name",
                       "text-anchor" => "middle"], text: shortened(stage.name)),
        .el(.svgText, ["x" => coordinate(node.centre), "y" => coordinate(node.y + 31), "class" => "node-op",
                       "text-anchor" => "middle"], text: stage.op),
      ]))
    }
    let svg = Markup.el(.svg, [
                               "viewBox" => "0 0 \(coordinate(layout.width)) \(coordinate(layout.height))",
                               "style" => "max-width: \(coordinate(layout.width))px", "role" => "img",
                               "aria-label" => "The stage graph"], parts)
    let counts = Dictionary(grouping: stages, by: \.state).mapValues(\.count)
    let legend = StageState.allCases.map { state in
      Figure.LegendEntry(label: "\(state.label) (\(counts[state] ?? 0))", colour: state.stroke, mark: .box)
    }
    return Figure(kind: .graph, stage: "", title: "The lineage",
                  subtitle: "\(stages.count) stages; an arrow points from a stage to the stages that read its outputs",
                  body: svg, legend: legend, span: .full)
  }

  /// Room for the name (bold, ~7.6 px a character) or the op (~6.4 px), whichever is longer.
  static func boxWidth(name: String, op: String) -> Double {
    min(220, max(86, Double(name.count) * 7.6 + 22, Double(op.count) * 6.4 + 22))
  }

  /// Names past 26 characters keep their start and end; the tooltip has them whole.
  static func shortened(_ name: String) -> String {
    name.count <= 26 ? name : name.prefix(15) + "…" + name.suffix(10)
  }

  static func tooltip(_ stage: StageSummary) -> String {
    var lines = ["\(stage.name) (\(stage.op)): \(stage.state.label)"]
    if !stage.reasons.isEmpty { lines.append("why: " + stage.reasons.joined(separator: "; ")) }
    if let doc = stage.doc { lines.append(doc) }
    return lines.joined(separator: "\n")
  }

  /// Where each edge leaves its source and enters its target: spread over the box's width in the
  /// order of the other ends' positions.
  struct Ports {
    /// Per edge: x where it leaves its source, and where it enters its target.
    var leaving: [Double]
    var entering: [Double]

    init(_ layout: GraphLayout) {
      leaving = [Double](repeating: 0, count: layout.edges.count)
      entering = leaving
      var bySource: [Int: [Int]] = [:], byTarget: [Int: [Int]] = [:]
      for (e, edge) in layout.edges.enumerated() {
        bySource[edge.from, default: []].append(e)
        byTarget[edge.to, default: []].append(e)
      }
      func spread(_ groups: [Int: [Int]], end: (GraphLayout.Edge) -> Int, into result: inout [Double]) {
        for (node, edges) in groups {
          let box = layout.nodes[node]
          let sorted = edges.sorted { layout.nodes[end(layout.edges[$0])].centre < layout.nodes[end(layout.edges[$1])].centre }
          let spacing = min(12, (box.width - 16) / Double(max(1, sorted.count)))
          for (k, e) in sorted.enumerated() {
            result[e] = box.centre + (Double(k) - Double(sorted.count - 1) / 2) * spacing
          }
        }
      }
      // The other end of an edge, as seen from here: its next (or previous) node, waypoint or box.
      spread(bySource, end: { $0.nodes[1] }, into: &leaving)
      spread(byTarget, end: { $0.nodes[$0.nodes.count - 2] }, into: &entering)
    }
  }
}
