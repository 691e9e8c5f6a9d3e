import Foundation

/// Curves against training steps: axes with round ticks, light grid lines, one line per series, and
/// optional dashed reference lines. A long noisy curve (RL rewards) is drawn faintly as measured with
/// its moving average on top, so the trend shows without hiding the data.
struct LineChart {
  struct Series {
    var name: String
    var curve: Curve
    var emphasised = false
  }

  struct Reference {
    var value: Double
    var label: String
  }

  var series: [Series]
  var references: [Reference] = []
  var format: ValueFormat = .plain
  var xLabel = "step"

  static let width = 460.0, height = 250.0
  static let margin = (left: 56.0, right: 14.0, top: 12.0, bottom: 38.0)
  /// Curves longer than this get a moving average.
  static let smoothingThreshold = 40

  /// The SVG and its legend entries.
  func render(title: String) -> (svg: Markup, legend: [Figure.LegendEntry]) {
    let m = LineChart.margin, w = LineChart.width, h = LineChart.height
    let all = series.flatMap(\.curve.points)
    let x = ChartScale(values: all.map(\.step), tickCount: 6, minimumStep: 1, from: m.left, to: w - m.right)
    let values = all.map(\.value) + references.map(\.value)
    let y = ChartScale(values: values, tickCount: 5, unit: format.tickUnit(for: values), from: h - m.bottom, to: m.top)
    var parts: [Markup] = ChartAxes.grid(x: x, y: y, format: format, width: w, height: h, xLabel: xLabel)
    var legend: [Figure.LegendEntry] = []
    var smoothed = false
    for (i, s) in series.enumerated() where !s.curve.points.isEmpty {
      let colour = Palette.colour(i)
      legend.append(.init(label: s.name, colour: colour))
      let width = s.emphasised ? 2.4 : 1.7
      let points = s.curve.points
      if points.count == 1 {
        parts.append(.el(.circle, ["cx" => coordinate(x(points[0].step)), "cy" => coordinate(y(points[0].value)), "r" => "3",
                                   "fill" => colour]))
        continue
      }
      if points.count > LineChart.smoothingThreshold {
        smoothed = true
        parts.append(LineChart.polyline(points, x: x, y: y, colour: colour, width: 1, opacity: 0.28))
        parts.append(LineChart.polyline(LineChart.movingAverage(points), x: x, y: y, colour: colour, width: width, opacity: 1))
      } else {
        parts.append(LineChart.polyline(points, x: x, y: y, colour: colour, width: width, opacity: 1))
      }
    }
    for reference in references {
      let ry = coordinate(y(reference.value))
      parts.append(.el(.line, ["x1" => coordinate(m.left), "x2" => coordinate(w - m.right), "y1" => ry, "y2" => ry,
                               "stroke" => Palette.axis, "stroke-dasharray" => "5 4", "stroke-width" => "1.2"]))
      legend.append(.init(label: reference.label, colour: Palette.axis, mark: .dashed))
    }
    if smoothed {
      legend.append(.init(label: "faint: as recorded; solid: moving average", colour: "#b8bcc6", mark: .line))
    }
    return (ChartAxes.svg(width: w, height: h, label: title, parts), legend)
  }

  static func polyline(_ points: [Curve.Point], x: ChartScale, y: ChartScale, colour: String, width: Double,
                       opacity: Double) -> Markup {
    var attributes = ["points" => points.map { coordinate(x($0.step)) + "," + coordinate(y($0.value)) }.joined(separator: " "),
                      "fill" => "none", "stroke" => colour, "stroke-width" => coordinate(width),
                      "stroke-linejoin" => "round", "stroke-linecap" => "round"]
    if opacity < 1 { attributes.append("stroke-opacity" => coordinate(opacity)) }
    return .el(.polyline, attributes)
  }

  /// A centred moving average over about a twentieth of the curve (at least 5 points), shorter at
  /// the ends rather than shifted.
  static func movingAverage(_ points: [Curve.Point]) -> [Curve.Point] {
    let half = max(2, points.count / 40)
    return points.indices.map { i in
      let window = points[max(0, i - half)...min(points.count - 1, i + half)]
      return Curve.Point(step: points[i].step, value: window.reduce(0) { $0 + $1.value } / Double(window.count))
    }
  }
}
