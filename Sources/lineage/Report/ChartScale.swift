import Foundation

/// A linear map from data values to SVG coordinates, over a "nice" domain whose ends and ticks are
/// 1, 2 or 5 times a power of ten, so that tick labels read as round numbers.
struct ChartScale {
  var lower: Double
  var upper: Double
  var ticks: [Double]
  var step: Double
  /// Coordinates of `lower` and `upper`.
  var start: Double
  var end: Double

  /// - Parameters:
  ///   - values: The data the axis must show; empty gives 0…1.
  ///   - includingZero: Bars start at zero; lines fit their data.
  ///   - tickCount: About how many ticks.
  ///   - minimumStep: The finest tick step (1 for training steps, which are whole).
  ///   - unit: Ticks are round multiples of this (1024ⁿ for bytes, so that they read 1, 2, 3 MiB).
  init(values: [Double], includingZero: Bool = false, tickCount: Int = 5, minimumStep: Double = 0, unit: Double = 1,
       from start: Double, to end: Double) {
    var low = values.min() ?? 0, high = values.max() ?? 1
    if includingZero { low = min(low, 0); high = max(high, 0) }
    if high - low < 1e-12 * max(1, abs(high)) {
      // A flat line: a band around it, so it sits mid-chart instead of on an edge.
      let pad = abs(high) > 0 ? abs(high) * 0.1 : 1
      low = includingZero && low >= 0 ? 0 : low - pad
      high += pad
    }
    step = max(minimumStep, ChartScale.niceStep((high - low) / Double(max(1, tickCount - 1)) / unit) * unit)
    lower = (low / step).rounded(.down) * step
    upper = (high / step).rounded(.up) * step
    var ticks: [Double] = []
    var t = lower
    while t <= upper + step * 1e-9 {
      ticks.append(abs(t) < step * 1e-9 ? 0 : t)
      t += step
    }
    self.ticks = ticks
    self.start = start
    self.end = end
  }

  func callAsFunction(_ value: Double) -> Double {
    start + (value - lower) / (upper - lower) * (end - start)
  }

  /// 1, 2 or 5 × 10ⁿ, the nearest at or above `rough`.
  static func niceStep(_ rough: Double) -> Double {
    guard rough > 0, rough.isFinite else { return 1 }
    let magnitude = pow(10, (log10(rough)).rounded(.down))
    let fraction = rough / magnitude
    let nice: Double = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10
    return nice * magnitude
  }
}

/// How a chart writes its numbers.
enum ValueFormat {
  /// As they are, with as many decimals as the tick step needs.
  case plain
  /// A share in 0…1 as a percentage.
  case percent
  /// Bytes in B, KiB, MiB, GiB.
  case bytes
  /// Large counts as 12k, 3.4M (parameters).
  case count

  /// What axis ticks of these values are round multiples of: the binary unit the largest byte count
  /// is written in; 1 otherwise.
  func tickUnit(for values: [Double]) -> Double {
    guard case .bytes = self, let largest = values.map(abs).max(), largest >= 1024 else { return 1 }
    var unit = 1.0
    while largest >= unit * 1024 && unit < pow(1024, 4) { unit *= 1024 }
    return unit
  }

  /// `value` written for an axis whose ticks are `step` apart (nil: a standalone value label).
  func text(_ value: Double, step: Double? = nil) -> String {
    switch self {
    case .plain:
      let magnitude = abs(value)
      if magnitude >= 10_000 { return ValueFormat.count.text(value, step: step) }
      let decimals: Int
      if let step, step > 0 {
        decimals = max(0, min(6, Int((-log10(step)).rounded(.up))))
      } else {
        decimals = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3
      }
      return String(format: "%.\(decimals)f", value)
    case .percent:
      let decimals = step.map { $0 * 100 >= 1 ? 0 : 1 } ?? 1
      return String(format: "%.\(decimals)f%%", value * 100)
    case .bytes:
      let units = ["B", "KiB", "MiB", "GiB", "TiB"]
      var v = value, unit = 0
      while abs(v) >= 1024 && unit < units.count - 1 { v /= 1024; unit += 1 }
      return unit == 0 ? String(format: "%.0f B", v) : String(format: v >= 100 || v.rounded() == v ? "%.0f" : "%.1f", v) + " " + units[unit]
    case .count:
      let units: [(Double, String)] = [(1e9, "G"), (1e6, "M"), (1e3, "k")]
      for (size, suffix) in units where abs(value) >= size {
        let v = value / size
        return (v.rounded() == v ? String(Int(v)) : String(format: abs(v) >= 100 ? "%.0f" : "%.1f", v)) + suffix
      }
      return value.rounded() == value ? String(Int(value)) : String(format: "%.2f", value)
    }
  }
}
