/// The parts every chart shares: the SVG element, grid lines, axes and tick labels.
enum ChartAxes {
  /// Inline SVG in HTML needs no `xmlns`: leaving it out keeps the page free of any URL at all.
  static func svg(width: Double, height: Double, label: String, _ parts: [Markup]) -> Markup {
    .el(.svg, ["viewBox" => "0 0 \(coordinate(width)) \(coordinate(height))",
               "role" => "img", "aria-label" => label], parts)
  }

  /// Horizontal grid lines with y tick labels; x ticks with labels when `x` is given (a bar chart
  /// labels its categories itself).
  static func grid(x: ChartScale?, y: ChartScale, format: ValueFormat, width: Double, height: Double,
                   xLabel: String?) -> [Markup] {
    let m = LineChart.margin
    var parts: [Markup] = []
    for tick in y.ticks {
      let ty = coordinate(y(tick))
      parts.append(.el(.line, ["x1" => coordinate(m.left), "x2" => coordinate(width - m.right), "y1" => ty, "y2" => ty,
                               "stroke" => tick == 0 ? "#c5c9d2" : Palette.grid, "stroke-width" => "1"]))
      parts.append(.el(.svgText, ["x" => coordinate(m.left - 6), "y" => ty, "class" => "tick", "text-anchor" => "end",
                                  "dominant-baseline" => "middle"], text: format.text(tick, step: y.step)))
    }
    let baseline = coordinate(height - m.bottom)
    parts.append(.el(.line, ["x1" => coordinate(m.left), "x2" => coordinate(width - m.right), "y1" => baseline,
                             "y2" => baseline, "stroke" => Palette.axis, "stroke-width" => "1"]))
    parts.append(.el(.line, ["x1" => coordinate(m.left), "x2" => coordinate(m.left), "y1" => coordinate(m.top),
                             "y2" => baseline, "stroke" => Palette.axis, "stroke-width" => "1"]))
    if let x {
      for tick in x.ticks {
        let tx = coordinate(x(tick))
        parts.append(.el(.line, ["x1" => tx, "x2" => tx, "y1" => baseline, "y2" => coordinate(height - m.bottom + 4),
                                 "stroke" => Palette.axis, "stroke-width" => "1"]))
        parts.append(.el(.svgText, ["x" => tx, "y" => coordinate(height - m.bottom + 16), "class" => "tick",
                                    "text-anchor" => "middle"], text: ValueFormat.plain.text(tick, step: x.step)))
      }
    }
    if let xLabel {
      parts.append(.el(.svgText, ["x" => coordinate((m.left + width - m.right) / 2), "y" => coordinate(height - 4),
                                  "class" => "axis-label", "text-anchor" => "middle"], text: xLabel))
    }
    return parts
  }
}
