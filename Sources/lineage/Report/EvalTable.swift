import Foundation

/// An `eval` stage's table, read back from its metrics: `MODEL/COLUMN` and `MODEL/COLUMN_se` per
/// cell (a column may itself hold a slash: `arithmetic/pass@1`), `majority_class/PART` and
/// `examples/PART` below the models.
struct EvalTable: Equatable {
  struct Column: Equatable {
    var name: String
    var scale: Scale
  }

  /// How a column's numbers read, and which way is better.
  enum Scale: Equatable {
    /// A rate in 0…1, shown as a percentage.
    case percent(higherIsBetter: Bool)
    /// Perplexity: lower is better, shown with two decimals.
    case perplexity
    /// What a model is rather than how it scores (eval's `parameters`, `active_parameters`, `size`):
    /// exact, so shown without a standard error, and neither better nor worse.
    case fact(Fact)

    enum Fact: Equatable {
      /// A count of weights, shown in millions.
      case parameters
      /// Bytes on disk, shown in MB (10⁶).
      case bytes
    }

    init(column: String) {
      switch column {
      case "parameters", "active_parameters": self = .fact(.parameters)
      case "size": self = .fact(.bytes)
      case "perplexity": self = .perplexity
      default:
        self = column.hasSuffix("/perplexity") ? .perplexity : .percent(higherIsBetter: !column.contains("toxicity"))
      }
    }

    func format(_ value: Double) -> String {
      switch self {
      case .percent: return String(format: "%.1f", value * 100)
      case .perplexity: return String(format: "%.2f", value)
      case .fact(.parameters): return String(format: "%.2fM", value / 1e6)
      case .fact(.bytes): return String(format: "%.2f MB", value / 1e6)
      }
    }

    /// Nil for a fact, which no model wins.
    var higherIsBetter: Bool? {
      switch self {
      case .percent(let higher): return higher
      case .perplexity: return false
      case .fact: return nil
      }
    }

    var isFact: Bool { if case .fact = self { true } else { false } }
  }

  struct Cell: Equatable {
    var value: Double
    var standardError: Double?
  }

  var models: [String]
  var columns: [Column]
  /// `cells[model][column]`.
  var cells: [String: [String: Cell]]
  /// The score of always giving the commonest answer, where the eval measured one (by column).
  var majorityClass: [String: Double]
  /// Examples behind each column's scores.
  var examples: [String: Double]

  /// The table of an eval stage with these models, or nil when its metrics hold no cell.
  ///
  /// - Parameter order: column names in the order the eval printed them; columns it does not name
  ///   follow, sorted.
  init?(metrics: StageMetrics, models: [String], order: [String] = []) {
    var cells: [String: [String: Cell]] = [:]
    var names = Set<String>()
    for model in models {
      let prefix = model + "/"
      for (key, value) in metrics.scalars where key.hasPrefix(prefix) && !key.hasSuffix("_se") {
        let column = String(key.dropFirst(prefix.count))
        cells[model, default: [:]][column] = Cell(value: value, standardError: metrics.scalars[key + "_se"])
        names.insert(column)
      }
    }
    guard !names.isEmpty else { return nil }
    let ordered = order.filter { names.contains($0) } + names.subtracting(order).sorted()
    self.models = models.filter { cells[$0] != nil }
    self.columns = ordered.map { Column(name: $0, scale: Scale(column: $0)) }
    self.cells = cells
    // `majority_class/` and `examples/` are keyed by task part (`arithmetic`), a column by part and
    // metric (`arithmetic/pass@1`), except whole-column measures such as perplexity and mini-GLUE.
    func byColumn(_ prefix: String) -> [String: Double] {
      var out: [String: Double] = [:]
      for column in ordered {
        let part = column.split(separator: "/").first.map(String.init) ?? column
        if let value = metrics.scalars[prefix + column] ?? metrics.scalars[prefix + part] { out[column] = value }
      }
      return out
    }
    majorityClass = byColumn("majority_class/")
    examples = byColumn("examples/")
  }

  /// The best score of a column (highest, or lowest where lower is better); nil when every model
  /// scores the same, where no one is best.
  func best(_ column: Column) -> Double? {
    let values = models.compactMap { cells[$0]?[column.name]?.value }
    guard let higher = column.scale.higherIsBetter, let low = values.min(), let high = values.max(), low < high else { return nil }
    return higher ? high : low
  }

  /// The column names of the Markdown table `eval` writes: its first line, `| model | a | b |`.
  static func columns(inMarkdownTable text: String) -> [String] {
    guard let header = text.split(separator: "\n").first, header.hasPrefix("|") else { return [] }
    let cells = header.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    return Array(cells.dropFirst())
  }
}
