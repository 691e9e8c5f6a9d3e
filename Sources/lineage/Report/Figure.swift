/// What a figure of the report shows; written into the page as `data-chart` so that the tests (and
/// anyone reading the file) can find every chart.
enum ChartKind: String, CaseIterable {
  case graph
  case loss
  case rlReward = "rl-reward"
  case rlAccuracy = "rl-accuracy"
  case rlKL = "rl-kl"
  case rlResponseLength = "rl-response-length"
  case rlHeldout = "rl-heldout"
  case distillLoss = "distill-loss"
  case distillParameters = "distill-parameters"
  case quantizeAccuracy = "quantize-accuracy"
  case quantizeRetention = "quantize-retention"
  case quantizeSize = "quantize-size"
  case evalTable = "eval-table"
  /// A `long_context` stage's passkey accuracy per prompt length.
  case longContextPasskey = "long-context-passkey"
  /// A `long_context` stage's held-out perplexity per position bucket, before and after.
  case longContextPerplexity = "long-context-perplexity"
  /// A `long_context` stage's attention cost per token by length (bytes or FLOPs, as `data-metric`).
  case longContextCost = "long-context-cost"
  /// An MoE stage's routing per layer (load balance, expert shares, routing bias), as a table.
  case moeRouting = "moe-routing"
  /// An MoE stage's expert load per layer over training.
  case moeLoad = "moe-load"
  /// A curve (or a group of curves over the same steps) no section above claims, drawn on its own.
  case curve
  /// A list of numbers not over steps (each expert's share of the load), as bars.
  case list
}

/// A chart's frame: title, subtitle, the drawing and its legend, as one `<figure>`.
struct Figure {
  var kind: ChartKind
  var stage: String
  /// The metric key, for charts of one curve.
  var metric: String?
  var title: String
  var subtitle: String?
  var body: Markup
  var legend: [LegendEntry]
  var span = Span.single

  /// How many columns of the page's grid a figure takes.
  enum Span: String {
    case single
    /// Two columns: a bar chart with many categories, whose labels need the room.
    case double
    /// The whole row: the graph and the tables.
    case full
  }

  struct LegendEntry {
    var label: String
    var colour: String
    /// Dashed for reference lines, a box for bars, a line for series.
    var mark: Mark = .line

    enum Mark: String { case line, box, dashed }
  }

  var markup: Markup {
    var attributes = ["class" => "chart " + span.rawValue, "data-chart" => kind.rawValue, "data-stage" => stage]
    if let metric { attributes.append("data-metric" => metric) }
    var caption: [Markup] = [.el(.span, ["class" => "title"], text: title)]
    if let subtitle { caption.append(.el(.span, ["class" => "sub"], text: subtitle)) }
    var children: [Markup] = [.el(.figcaption, [], caption), body]
    if !legend.isEmpty {
      children.append(.el(.ul, ["class" => "legend"], legend.map { entry in
        .el(.li, [], [
          .el(.span, ["class" => "mark \(entry.mark.rawValue)", "style" => "--c: \(entry.colour)"], []),
          .text(entry.label),
        ])
      }))
    }
    return .el(.figure, attributes, children)
  }
}

/// Series colours: distinct for colour-blind readers (after Okabe and Ito), muted enough for a page.
enum Palette {
  static let colours = ["#3a6fb0", "#e08a2e", "#2f9e6f", "#c8453a", "#8a63b3", "#2aa3bd", "#c0699f", "#8c7a4b",
                        "#5b6b7f", "#b0a12a"]

  static func colour(_ i: Int) -> String { colours[i % colours.count] }

  static let axis = "#6b7280"
  static let grid = "#e7e9ee"
  static let text = "#374151"
}
