import Foundation

/// A stage's metrics as the report reads them from its metrics artifact: curves (`[[step, value], …]`),
/// groups of curves, lists of numbers and scalars.
struct StageMetrics {
  var curves: [String: Curve] = [:]
  /// Several curves over the same steps, from rows `[step, a, b, …]` (finetune's `mixture_weights`).
  var curveGroups: [String: CurveGroup] = [:]
  /// Lists of numbers that are not over steps (pretrain's `expert_load`: each expert's share).
  var lists: [String: [Double]] = [:]
  var scalars: [String: Double] = [:]

  /// Curves over the same steps, with their names when the artifact gives them.
  struct CurveGroup: Equatable {
    var names: [String]
    var curves: [Curve]
  }

  /// Reads a metrics artifact's JSON. Numbers, curves, groups of curves and lists of numbers are
  /// kept, so that the report can draw what it does not know; strings serve as a group's names
  /// (`mixture_tasks` names the columns of `mixture_weights`). Headline metrics fill in scalars the
  /// artifact lacks.
  init(json bytes: [UInt8], headline: [String: Double] = [:]) throws {
    let object = try JSONSerialization.jsonObject(with: Data(bytes))
    guard let fields = object as? [String: Any] else { throw MetricsFormatError(message: "the metrics artifact is not a JSON object") }
    for (key, value) in fields {
      if let number = jsonNumber(value) {
        if number.isFinite { scalars[key] = number }
      } else if let curve = Curve(json: value) {
        curves[key] = curve
      } else if let group = StageMetrics.group(value) {
        // Names from a string list that shares the key's first word (`mixture_weights`, `mixture_tasks`).
        let stem = key.split(separator: "_").first.map(String.init) ?? key
        let names = fields.first { other in
          other.key != key && other.key.hasPrefix(stem + "_") && (other.value as? [String])?.count == group.count
        }?.value as? [String]
        curveGroups[key] = CurveGroup(names: names ?? group.indices.map { "\(key) \($0 + 1)" }, curves: group)
      } else if let list = value as? [Any], !list.isEmpty {
        let numbers = list.compactMap(jsonNumber)
        if numbers.count == list.count, numbers.allSatisfy(\.isFinite) { lists[key] = numbers }
      }
    }
    for (key, value) in headline where scalars[key] == nil && value.isFinite { scalars[key] = value }
  }

  init(curves: [String: Curve] = [:], scalars: [String: Double] = [:]) {
    self.curves = curves
    self.scalars = scalars
  }

  /// Rows `[step, a, b, …]` of one length (three or more), steps whole and increasing: one curve per
  /// column after the step.
  private static func group(_ value: Any) -> [Curve]? {
    guard let rows = value as? [Any], !rows.isEmpty else { return nil }
    var columns: [[Curve.Point]] = []
    var previous = -Double.infinity
    for row in rows {
      guard let cells = row as? [Any], cells.count >= 3, columns.isEmpty || cells.count == columns.count + 1 else { return nil }
      let numbers = cells.compactMap(jsonNumber)
      guard numbers.count == cells.count, numbers[0].rounded() == numbers[0], numbers[0] > previous else { return nil }
      previous = numbers[0]
      if columns.isEmpty { columns = Array(repeating: [], count: cells.count - 1) }
      for (c, value) in numbers.dropFirst().enumerated() where value.isFinite {
        columns[c].append(Curve.Point(step: numbers[0], value: value))
      }
    }
    return columns.map(Curve.init)
  }
}

struct MetricsFormatError: Error, CustomStringConvertible {
  var message: String
  var description: String { message }
}

/// A metric per training step.
struct Curve: Equatable {
  struct Point: Equatable {
    var step: Double
    var value: Double
  }

  var points: [Point]

  init(_ points: [Point]) { self.points = points }

  init(values: [Double]) { points = values.enumerated().map { Point(step: Double($0 + 1), value: $1) } }

  /// A curve is a non-empty list of `[step, value]` pairs with increasing steps; anything else (a
  /// list of weights per step, say) is not one. Non-finite values are dropped.
  init?(json value: Any) {
    guard let list = value as? [Any], !list.isEmpty else { return nil }
    var points: [Point] = []
    var previous = -Double.infinity
    for item in list {
      guard let pair = item as? [Any], pair.count == 2,
            let step = jsonNumber(pair[0]), step.rounded() == step, step > previous,
            let value = jsonNumber(pair[1]) else { return nil }
      previous = step
      if value.isFinite { points.append(Point(step: step, value: value)) }
    }
    self.points = points
  }

  var first: Double? { points.first?.value }
  var last: Double? { points.last?.value }
}

/// A JSON number as `JSONSerialization` hands it over (`Int`, `Double` or `NSNumber`, by platform).
/// Not `value is Bool`: an `NSNumber` holding 0 or 1 passes that test, which would drop step 1 of
/// every curve.
func jsonNumber(_ value: Any) -> Double? {
  if type(of: value) == Bool.self { return nil }
  if let double = value as? Double { return double }
  if let int = value as? Int { return Double(int) }
  if let number = value as? NSNumber { return number.doubleValue }
  return nil
}
