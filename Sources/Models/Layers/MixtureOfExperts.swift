import Tensors

/// Mixture-of-Experts settings (DeepSeekMoE): shared experts every token passes through, plus
/// `topK` of `routedExperts` chosen per token by a gate.
public struct MoEConfig: Codable, Hashable, Sendable {
  public enum Gate: String, Codable, Sendable { case softmax, sigmoid }

  /// How experts are kept evenly loaded.
  public enum Balancing: Codable, Hashable, Sendable {
    /// Switch-style auxiliary loss weight · E · Σₑ fₑ·Pₑ (fₑ: share of routed tokens, Pₑ: mean gate score).
    case auxiliaryLoss(weight: Float)
    /// DeepSeek-V3's auxiliary-loss-free method: a per-expert bias added to the scores for *selection
    /// only*, nudged after each step by `biasUpdateRate` toward under-loaded experts.
    case auxiliaryLossFree(biasUpdateRate: Float)
  }

  public var routedExperts: Int
  public var sharedExperts: Int
  public var topK: Int
  public var expertHiddenDim: Int
  public var gate: Gate
  public var balancing: Balancing

  public init(routedExperts: Int, sharedExperts: Int, topK: Int, expertHiddenDim: Int, gate: Gate = .softmax,
              balancing: Balancing = .auxiliaryLoss(weight: 0.01)) {
    self.routedExperts = routedExperts
    self.sharedExperts = sharedExperts
    self.topK = topK
    self.expertHiddenDim = expertHiddenDim
    self.gate = gate
    self.balancing = balancing
  }
}

/// One MoE layer's forward pass: each token goes only to its top-k experts (gather → per-expert
/// SwiGLU on just those rows → weighted scatter back); all experts are never computed densely.
enum MixtureOfExperts {
  struct Output {
    var y: Variable
    var auxiliaryLoss: Variable?
    /// Tokens routed to each expert.
    var load: [Int]
    /// Tokens given fewer than top-k experts (none without an expert capacity; counted, not assumed).
    var dropped: Int
  }

  /// - Parameters:
  ///   - x: `[n, d]`.
  ///   - bias: the auxiliary-loss-free selection bias `[experts]` (zeros otherwise).
  static func forward(_ x: Variable, layer l: Int, config: MoEConfig, bias: [Float],
                      projection: (ParameterID) -> Projection) -> Output {
    let n = x.shape[0], experts = config.routedExperts, k = config.topK
    func id(_ role: ParameterID.Role) -> ParameterID { ParameterID(layer: l, role: role) }
    let logits = projection(id(.router)).apply(x)                                  // [n, E]
    let scores = config.gate == .softmax ? logits.softmax() : logits.sigmoid()
    // Selection: top-k of score + bias (ties: the lower expert), never differentiated.
    var chosen = [[Int32]](repeating: [], count: n)
    var rowsOf = [[Int32]](repeating: [], count: experts)
    var slotsOf = [[Int32]](repeating: [], count: experts)
    scores.value.withUnsafeBufferPointer { s in
      for r in 0..<n {
        let ranked = (0..<experts).sorted { a, b in
          let x = s[r * experts + a] + bias[a], y = s[r * experts + b] + bias[b]
          return x != y ? x > y : a < b
        }
        chosen[r] = ranked.prefix(k).map { Int32($0) }
        for (slot, e) in chosen[r].enumerated() {
          rowsOf[Int(e)].append(Int32(r))
          slotsOf[Int(e)].append(Int32(r * k + slot))
        }
      }
    }
    let gates = scores.routingWeights(chosen: chosen, normalize: k > 1).reshaped([n * k, 1])
    var placements: [Variable.RowPlacement] = []
    for e in 0..<experts where !rowsOf[e].isEmpty {
      let xe = Variable.gatherRows(x, rowsOf[e])                                   // [n_e, d]
      let he = Variable.swiglu(gate: projection(id(.expert(e, .gate))).apply(xe),
                               up: projection(id(.expert(e, .up))).apply(xe))
      let ye = projection(id(.expert(e, .down))).apply(he)                         // [n_e, d]
      let we = Variable.gatherRows(gates, slotsOf[e]).reshaped([rowsOf[e].count])
      placements.append(Variable.RowPlacement(rows: ye, weights: we, indices: rowsOf[e]))
    }
    // Every expert's weighted rows back to their tokens in one result.
    var y = placements.isEmpty ? nil : Variable.scatterRows(placements, count: n)
    if config.sharedExperts > 0 {
      let shared = projection(id(.sharedExperts(.down))).apply(
        Variable.swiglu(gate: projection(id(.sharedExperts(.gate))).apply(x), up: projection(id(.sharedExperts(.up))).apply(x)))
      y = y.map { $0 + shared } ?? shared
    }
    let load = rowsOf.map(\.count)
    let dropped = chosen.reduce(0) { $0 + ($1.count < k ? 1 : 0) }
    var auxiliary: Variable?
    if case .auxiliaryLoss(let coefficient) = config.balancing, coefficient > 0 {
      // E · Σₑ fₑ·Pₑ with Pₑ = mean score (differentiable) and fₑ = routed share (a constant).
      let meanScores = Variable(Tensor(repeating: 1 / Float(n), shape: [1, n])).matmul(scores)   // [1, E]
      let shares = Tensor(shape: [1, experts], scalars: load.map { Float($0) / Float(n * k) })
      auxiliary = (meanScores * Variable(shares)).sum().scaled(by: coefficient * Float(experts))
    }
    return Output(y: y ?? x.scaled(by: 0), auxiliaryLoss: auxiliary, load: load, dropped: dropped)
  }
}
