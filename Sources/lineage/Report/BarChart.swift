import Foundation

/// Grouped bars: one group per category (an eval column, a model), one bar per series in it (float
/// and int8, before and after), each with its standard error as a whisker (±1 SE) when known, and
/// its value written above it.
struct BarChart {
  struct Series {
    var name: String
    /// One per category; nil leaves a gap.
    var values: [Bar?]
  }

  struct Bar {
    var value: Double
    var standardError: Double?
  }

  var categories: [String]
  var series: [Series]
  var format: ValueFormat = .plain
  var references: [LineChart.Reference] = []
  /// What the categories are, under their labels (nil: they say it themselves).
  var xLabel: String?
  /// Values the y axis reaches whatever the bars do: 0…1 keeps a share's axis at 0–100%, so that
  /// charts of different stages compare at a glance.
  var axisCovers: [Double] = []

  static let height = 250.0

  /// Wider charts for many categories, so that labels keep their room.
  var width: Double { max(LineChart.width, LineChart.margin.left + LineChart.margin.right + Double(categories.count) * 100) }

  /// A chart wider than one column takes two, drawn at about its natural size.
  var span: Figure.Span { width > LineChart.width * 1.2 ? .double : .single }

  func render(title: String) -> (svg: Markup, legend: [Figure.LegendEntry]) {
    let m = LineChart.margin, w = width, h = BarChart.height
    var extents: [Double] = references.map(\.value) + axisCovers
    for s in series {
      for bar in s.values.compactMap({ $0 }) {
        extents.append(bar.value + (bar.standardError ?? 0))
        extents.append(bar.value - (bar.standardError ?? 0))
      }
    }
    let y = ChartScale(values: extents, includingZero: true, tickCount: 5, unit: format.tickUnit(for: extents),
                       from: h - m.bottom, to: m.top + 10)
    var parts = ChartAxes.grid(x: nil, y: y, format: format, width: w, height: h, xLabel: xLabel)
    let groupWidth = (w - m.left - m.right) / Double(max(1, categories.count))
    let barWidth = min(34, groupWidth * 0.8 / Double(max(1, series.count)))
    let showValues = categories.count * series.count <= 16
    for (c, category) in categories.enumerated() {
      let centre = m.left + groupWidth * (Double(c) + 0.5)
      for (s, series) in series.enumerated() {
        guard c < series.values.count, let bar = series.values[c] else { continue }
        let left = centre - barWidth * Double(self.series.count) / 2 + barWidth * Double(s)
        let top = y(max(bar.value, 0)), bottom = y(min(bar.value, 0))
        parts.append(.el(.rect, ["x" => coordinate(left + 1), "y" => coordinate(top), "width" => coordinate(barWidth - 2),
                                 "height" => coordinate(max(0.5, bottom - top)), "rx" => "2",
                                 "fill" => Palette.colour(s)], [
          .el(.title, [], text: "\(series.name), \(category): \(format.text(bar.value))"
                + (bar.standardError.map { " ± " + format.text($0) } ?? "")),
        ]))
        var labelY = top - 4
        if let se = bar.standardError, se > 0 {
          let hi = y(bar.value + se), lo = y(bar.value - se), cx = left + barWidth / 2
          parts.append(.el(.path, ["d" => "M\(coordinate(cx)) \(coordinate(hi))V\(coordinate(lo))"
                                    + "M\(coordinate(cx - 4)) \(coordinate(hi))h8M\(coordinate(cx - 4)) \(coordinate(lo))h8",
                                   "stroke" => "#1f2937", "stroke-width" => "1.2", "fill" => "none"]))
          labelY = hi - 4
        }
        if showValues {
          parts.append(.el(.svgText, ["x" => coordinate(left + barWidth / 2), "y" => coordinate(labelY),
                                      "class" => "value", "text-anchor" => "middle"], text: format.text(bar.value)))
        }
      }
      parts.append(BarChart.categoryLabel(category, x: centre, y: h - m.bottom + 14, room: groupWidth))
    }
    var legend = series.enumerated().map { Figure.LegendEntry(label: $1.name, colour: Palette.colour($0), mark: .box) }
    for reference in references {
      let ry = coordinate(y(reference.value))
      parts.append(.el(.line, ["x1" => coordinate(m.left), "x2" => coordinate(w - m.right), "y1" => ry, "y2" => ry,
                               "stroke" => Palette.axis, "stroke-dasharray" => "5 4", "stroke-width" => "1.2"]))
      legend.append(.init(label: reference.label, colour: Palette.axis, mark: .dashed))
    }
    // Only when a whisker is drawn: an error of 0 (e.g. 0 of 32 retrieved) draws none.
    if series.contains(where: { $0.values.contains { ($0?.standardError ?? 0) > 0 } }) {
      legend.append(.init(label: "whiskers: ± 1 standard error", colour: "#1f2937", mark: .line))
    }
    return (ChartAxes.svg(width: w, height: h, label: title, parts), legend)
  }

  /// A category name under its group, on two lines when it has a slash (`arithmetic` over
  /// `pass@1`), shortened with an ellipsis past the room it has (the bar's tooltip has it whole).
  static func categoryLabel(_ name: String, x: Double, y: Double, room: Double) -> Markup {
    let characters = max(4, Int(room / 6.2))
    func fit(_ s: Substring) -> String { s.count <= characters ? String(s) : s.prefix(characters - 1) + "…" }
    let lines: [String]
    if let slash = name.firstIndex(of: "/") {
      lines = [fit(name[..<slash]), fit(name[name.index(after: slash)...])]
    } else {
      lines = [fit(Substring(name))]
    }
    return .el(.svgText, ["x" => coordinate(x), "y" => coordinate(y), "class" => "tick", "text-anchor" => "middle"],
               lines.enumerated().map { i, line in
                 .el(.tspan, ["x" => coordinate(x), "dy" => i == 0 ? "0" : "12"], text: line)
               })
  }
}
