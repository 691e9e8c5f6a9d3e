import Models
import Pipeline

/// How a Mixture-of-Experts model's routing went over training, step by step and layer by layer:
/// what every MoE stage reports (`TrainingLoop.recordExpertMetrics`).
///
/// Per step and layer it keeps the smallest and largest expert's share of the routed tokens and the
/// coefficient of variation of the load (std / mean over experts: 0 when even); per layer, each
/// expert's tokens over the whole run; per step, the tokens given fewer than top-k experts. It travels
/// in the training checkpoint as curves under `prefix`, so a resumed stage reports what an
/// uninterrupted one would, to the bit.
struct ExpertLoadLog: Equatable {
  /// `[layer][step]`.
  private(set) var minShare: [[Double]] = []
  private(set) var maxShare: [[Double]] = []
  private(set) var variation: [[Double]] = []
  /// `[layer][expert]`: routed tokens summed over every step.
  private(set) var totalLoad: [[Double]] = []
  /// Per step: tokens (summed over layers) given fewer than top-k experts.
  private(set) var dropped: [Double] = []

  var steps: Int { dropped.count }
  var isEmpty: Bool { dropped.isEmpty }

  /// Adds one step's routing.
  ///
  /// - Parameters:
  ///   - load: routed-token counts `[layer][expert]` (what moved the routing bias).
  ///   - dropped: per layer, tokens given fewer than top-k experts.
  mutating func record(load: [[Int]], dropped droppedByLayer: [Int]) {
    if totalLoad.isEmpty {
      let layers = load.count
      (minShare, maxShare, variation) = (Array(repeating: [], count: layers), Array(repeating: [], count: layers),
                                         Array(repeating: [], count: layers))
      totalLoad = load.map { [Double](repeating: 0, count: $0.count) }
    }
    precondition(load.count == totalLoad.count, "the model's MoE layer count changed during training")
    for (l, counts) in load.enumerated() {
      let total = Double(counts.reduce(0, +)), mean = total / Double(max(1, counts.count))
      let shares = counts.map { total > 0 ? Double($0) / total : 0 }
      var squares = 0.0
      for c in counts { squares += (Double(c) - mean) * (Double(c) - mean) }
      let std = (squares / Double(max(1, counts.count))).squareRoot()
      minShare[l].append(shares.min() ?? 0)
      maxShare[l].append(shares.max() ?? 0)
      variation[l].append(mean > 0 ? std / mean : 0)
      for (e, c) in counts.enumerated() { totalLoad[l][e] += Double(c) }
    }
    dropped.append(Double(droppedByLayer.reduce(0, +)))
  }

  // MARK: - In the checkpoint

  /// The curve-name prefix of this log inside the training checkpoint's curves; no objective uses it.
  static let prefix = "moe-routing:"

  /// The log as named curves (empty when nothing was recorded).
  var curves: [String: [Double]] {
    guard !isEmpty else { return [:] }
    var out: [String: [Double]] = [Self.prefix + "dropped": dropped]
    for l in totalLoad.indices {
      out[Self.prefix + "min_share/\(l)"] = minShare[l]
      out[Self.prefix + "max_share/\(l)"] = maxShare[l]
      out[Self.prefix + "cv/\(l)"] = variation[l]
      out[Self.prefix + "total_load/\(l)"] = totalLoad[l]
    }
    return out
  }

  /// Splits a checkpoint's curves into the objective's and this log.
  ///
  /// - Throws: `StageFailure` when the log's curves are incomplete or of different lengths.
  static func split(_ all: [String: [Double]]) throws -> (curves: [String: [Double]], log: ExpertLoadLog) {
    let others = all.filter { !$0.key.hasPrefix(prefix) }
    guard let dropped = all[prefix + "dropped"] else { return (others, ExpertLoadLog()) }
    var log = ExpertLoadLog()
    log.dropped = dropped
    var l = 0
    while let total = all[prefix + "total_load/\(l)"] {
      guard let low = all[prefix + "min_share/\(l)"], let high = all[prefix + "max_share/\(l)"],
            let cv = all[prefix + "cv/\(l)"], [low.count, high.count, cv.count].allSatisfy({ $0 == dropped.count }) else {
        throw StageFailure("the checkpoint's expert-load curves of layer \(l) are incomplete")
      }
      log.totalLoad.append(total)
      log.minShare.append(low)
      log.maxShare.append(high)
      log.variation.append(cv)
      l += 1
    }
    return (others, log)
  }
}

extension TrainingLoop {
  /// Writes what an MoE model's training did into a stage's metrics; does nothing for a dense model.
  /// Every op that trains through `TrainingLoop` calls it once training is done.
  ///
  /// Written: `parameters` and `active_parameters` (also headline); per step and layer the smallest and
  /// largest expert share and the load's coefficient of variation as rows `[step, layer 1, layer 2, …]`
  /// (`moe_load_min_share`, `moe_load_max_share`, `moe_load_cv`, named by `moe_layers`); per layer the
  /// same three over the last tenth of the steps (`moe_final_…/L`), each expert's share of the whole
  /// run (`moe_load_share/L`) and its final routing bias (`moe_bias/L`), layers counted from 1; and
  /// `moe_tokens_dropped` (headline) beside `moe_expert_assignments`. Headline: also `moe_load_cv` and
  /// `moe_load_max_share`, the final values' mean and worst over layers.
  func recordExpertMetrics(into metrics: inout MetricsArtifact, headline: inout [String: Double]) {
    let config = model.config
    guard let moe = config.moe else { return }
    metrics.set("parameters", Double(config.parameterCount))
    metrics.set("active_parameters", Double(config.activeParameterCount))
    headline["parameters"] = Double(config.parameterCount)
    headline["active_parameters"] = Double(config.activeParameterCount)
    for (l, bias) in model.routingBias.enumerated() { metrics["moe_bias/\(l + 1)"] = .list(bias.map { .float(Double($0)) }) }
    let log = expertLoad
    guard !log.isEmpty else { return }
    let layers = log.totalLoad.count
    metrics["moe_layers"] = .list((0..<layers).map { .string("layer \($0 + 1)") })
    metrics.setCurveGroup("moe_load_min_share", log.minShare)
    metrics.setCurveGroup("moe_load_max_share", log.maxShare)
    metrics.setCurveGroup("moe_load_cv", log.variation)
    let tail = max(1, log.steps / 10)
    func final(_ values: [Double]) -> Double { values.suffix(tail).reduce(0, +) / Double(min(tail, values.count)) }
    var finalCV: [Double] = [], finalMax: [Double] = []
    for l in 0..<layers {
      let total = log.totalLoad[l].reduce(0, +)
      metrics["moe_load_share/\(l + 1)"] = .list(log.totalLoad[l].map { .float(total > 0 ? $0 / total : 0) })
      metrics.set("moe_final_min_share/\(l + 1)", final(log.minShare[l]))
      metrics.set("moe_final_max_share/\(l + 1)", final(log.maxShare[l]))
      metrics.set("moe_final_cv/\(l + 1)", final(log.variation[l]))
      finalCV.append(final(log.variation[l]))
      finalMax.append(final(log.maxShare[l]))
    }
    let dropped = log.dropped.reduce(0, +)
    let assignments = log.totalLoad.joined().reduce(0, +)
    metrics.set("moe_tokens_dropped", dropped)
    metrics.set("moe_expert_assignments", assignments)
    metrics.set("moe_top_k", Double(moe.topK))
    headline["moe_tokens_dropped"] = dropped
    headline["moe_load_cv"] = finalCV.reduce(0, +) / Double(max(1, layers))
    headline["moe_load_max_share"] = finalMax.max() ?? 0
  }
}

extension MetricsArtifact {
  /// Several curves over the same steps, `series[i][step]`, as rows `[step, a, b, …]` with 1-based
  /// steps, sampled at most `points` times (the last step always kept).
  mutating func setCurveGroup(_ key: String, _ series: [[Double]], points: Int = 200) {
    let count = series.first?.count ?? 0
    let stride = max(1, (count + points - 1) / points)
    var steps = Array(Swift.stride(from: 0, to: count, by: stride))
    if let last = steps.last, last != count - 1 { steps.append(count - 1) }
    self[key] = .list(steps.map { i in .list([.int(i + 1)] + series.map { .float($0[i]) }) })
  }
}
