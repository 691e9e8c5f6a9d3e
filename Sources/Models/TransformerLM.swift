import Tensors

/// A decoder-only transformer language model: embedding, pre-norm blocks (RMSNorm → attention with
/// RoPE → residual; RMSNorm → SwiGLU MLP → residual), final RMSNorm, LM head.
///
/// Owns its parameters as autograd variables, named as in `ParameterNames`. Training builds a graph
/// per step with `loss(…)`; generation (`Generator`) reads the same weights without a graph.
public final class TransformerLM {
  public let config: ModelConfig
  /// Every parameter by checkpoint name, in a fixed order (embedding, layers, norm, head).
  public private(set) var parameters: [(name: String, variable: Variable)] = []
  private var byName: [String: Variable] = [:]
  let rope: RoPETable
  /// Per MoE layer, the auxiliary-loss-free selection bias (not trained by gradients; saved with the weights).
  public private(set) var routingBias: [[Float]] = []
  /// Per MoE layer, the tokens each expert received in the last forward pass.
  public private(set) var lastExpertLoad: [[Int]] = []

  /// A freshly initialised model: weights ~ N(0, 0.02²), output projections scaled by 1/√(2·layers)
  /// (GPT-2), norms at 1. The same seed gives bit-identical weights.
  public init(config: ModelConfig, seed: UInt64) {
    precondition(config.problems.isEmpty, config.problems.joined(separator: "; "))
    self.config = config
    rope = RoPETable(headDim: config.headDim, base: config.ropeBase, scaling: config.ropeScaling)
    var rng = RandomStream(seed: seed, purpose: .initialization)
    let d = config.modelDim, kv = config.kvHeadCount * config.headDim, f = config.mlpHiddenDim
    let residualScale = 1 / Float(2 * config.layerCount).squareRoot()
    func normal(_ shape: [Int], _ scale: Float = 1) -> Tensor {
      Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in rng.normal() * 0.02 * scale })
    }
    add(ParameterNames.embedding, normal([config.vocabularySize, d]))
    for l in 0..<config.layerCount {
      add(ParameterNames.attentionNorm(l), Tensor(repeating: 1, shape: [d]))
      add(ParameterNames.attention(l, "q"), normal([d, d]))
      add(ParameterNames.attention(l, "k"), normal([kv, d]))
      add(ParameterNames.attention(l, "v"), normal([kv, d]))
      add(ParameterNames.attention(l, "o"), normal([d, d], residualScale))
      add(ParameterNames.mlpNorm(l), Tensor(repeating: 1, shape: [d]))
      if let moe = config.moe {
        let h = moe.expertHiddenDim
        add(ParameterNames.moeGate(l), normal([moe.routedExperts, d]))
        for e in 0..<moe.routedExperts {
          add(ParameterNames.expert(l, e, "gate"), normal([h, d]))
          add(ParameterNames.expert(l, e, "up"), normal([h, d]))
          add(ParameterNames.expert(l, e, "down"), normal([d, h], residualScale))
        }
        if moe.sharedExperts > 0 {
          let hs = moe.sharedExperts * h
          add(ParameterNames.sharedExpert(l, "gate"), normal([hs, d]))
          add(ParameterNames.sharedExpert(l, "up"), normal([hs, d]))
          add(ParameterNames.sharedExpert(l, "down"), normal([d, hs], residualScale))
        }
        routingBias.append([Float](repeating: 0, count: moe.routedExperts))
      } else {
        add(ParameterNames.mlp(l, "gate"), normal([f, d]))
        add(ParameterNames.mlp(l, "up"), normal([f, d]))
        add(ParameterNames.mlp(l, "down"), normal([d, f], residualScale))
      }
    }
    add(ParameterNames.finalNorm, Tensor(repeating: 1, shape: [d]))
    if !config.tiedEmbeddings { add(ParameterNames.lmHead, normal([config.vocabularySize, d])) }
  }

  private func add(_ name: String, _ value: Tensor) {
    let v = Variable(value, requiresGrad: true)
    parameters.append((name, v))
    byName[name] = v
  }

  /// The parameter called `name`.
  public func parameter(_ name: String) -> Variable? { byName[name] }

  /// Replaces weights by name (loading a checkpoint); every parameter must be given, with its shape.
  ///
  /// - Throws: `ModelError` naming a missing, extra or misshapen tensor.
  public func load(_ tensors: [String: Tensor]) throws {
    let biasNames = routingBias.indices.map { ParameterNames.moeBias($0) }
    for (name, v) in parameters {
      guard let t = tensors[name] else { throw ModelError.missingTensor(name) }
      guard t.shape == v.value.shape else { throw ModelError.shapeMismatch(name, expected: v.value.shape, found: t.shape) }
    }
    for (l, name) in biasNames.enumerated() {
      guard let t = tensors[name] else { throw ModelError.missingTensor(name) }
      guard t.count == routingBias[l].count else { throw ModelError.shapeMismatch(name, expected: [routingBias[l].count], found: t.shape) }
    }
    if let extra = tensors.keys.first(where: { byName[$0] == nil && !biasNames.contains($0) }) {
      throw ModelError.unexpectedTensor(extra)
    }
    for (name, v) in parameters { v.value = tensors[name]! }
    for (l, name) in biasNames.enumerated() { routingBias[l] = tensors[name]!.scalars }
  }

  /// Weights by name (for export), the MoE routing biases included.
  public var tensors: [String: Tensor] {
    var out = Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.variable.value) })
    for (l, bias) in routingBias.enumerated() { out[ParameterNames.moeBias(l)] = Tensor(shape: [bias.count], scalars: bias) }
    return out
  }

  // MARK: - Forward

  /// Logits for a batch of equal-length sequences (training: records the autograd graph).
  ///
  /// - Parameter tokens: `[batch][seq]`, seq ≤ contextLength.
  /// - Returns: `[batch·seq, vocab]`.
  public func logits(_ tokens: [[Int32]]) -> Variable { forwardWithLoss(tokens).logits }

  func forwardWithLoss(_ tokens: [[Int32]]) -> (logits: Variable, auxiliaryLoss: Variable?) {
    let batch = tokens.count, seq = tokens.first?.count ?? 0
    precondition(tokens.allSatisfy { $0.count == seq } && seq <= config.contextLength)
    let flat = tokens.flatMap { $0 }
    let c = config
    return forward(tokens: flat, positions: (0..<flat.count).map { Int32($0 % seq) }, weight: { self.byName[$0]! }) { _, q, k, v in
      Variable.attention(q: q, k: k, v: v, batch: batch, heads: c.headCount, kvHeads: c.kvHeadCount, pattern: c.attention)
    }
  }

  /// The blocks over rows of tokens, shared by training and generation: `weight` supplies parameters
  /// (the trainable ones, or gradient-free views), `attend(layer, q, k, v)` does attention (over the
  /// batch, or over a KV cache). Shapes: rows `[n]` → logits `[n, vocab]`.
  func forward(tokens: [Int32], positions: [Int32], weight: (String) -> Variable,
               attend: (Int, Variable, Variable, Variable) -> Variable) -> (logits: Variable, auxiliaryLoss: Variable?) {
    let c = config
    var x = Variable.embedding(weight(ParameterNames.embedding), tokens)          // [n, d]
    var auxiliary: Variable?
    var loads: [[Int]] = []
    for l in 0..<c.layerCount {
      let h = x.rmsNorm(weight(ParameterNames.attentionNorm(l)), eps: c.normEps)
      let q = h.linear(weight(ParameterNames.attention(l, "q"))).rope(positions: positions, heads: c.headCount, table: rope)
      let k = h.linear(weight(ParameterNames.attention(l, "k"))).rope(positions: positions, heads: c.kvHeadCount, table: rope)
      let v = h.linear(weight(ParameterNames.attention(l, "v")))
      x = x + attend(l, q, k, v).linear(weight(ParameterNames.attention(l, "o")))
      let h2 = x.rmsNorm(weight(ParameterNames.mlpNorm(l)), eps: c.normEps)
      if let moe = c.moe {
        let out = MixtureOfExperts.forward(h2, layer: l, config: moe, bias: routingBias[l], weight: weight)
        x = x + out.y
        loads.append(out.load)
        if let a = out.auxiliaryLoss { auxiliary = auxiliary.map { $0 + a } ?? a }
      } else {
        let gate = h2.linear(weight(ParameterNames.mlp(l, "gate")))               // [n, f]
        let up = h2.linear(weight(ParameterNames.mlp(l, "up")))
        x = x + Variable.swiglu(gate: gate, up: up).linear(weight(ParameterNames.mlp(l, "down")))
      }
    }
    lastExpertLoad = loads
    let out = x.rmsNorm(weight(ParameterNames.finalNorm), eps: c.normEps)
    return (out.linear(weight(c.tiedEmbeddings ? ParameterNames.embedding : ParameterNames.lmHead)), auxiliary)
  }

  /// Mean next-token cross-entropy (plus the MoE balance loss, if any): position t predicts token
  /// t+1; `weights[b][t]` weights the prediction *of* token t, so a prompt can be masked out.
  ///
  /// - Parameter tokens: `[batch][seq + 1]`.
  public func loss(_ tokens: [[Int32]], weights: [[Float]]? = nil) -> Variable {
    let inputs = tokens.map { Array($0.dropLast()) }
    let targets = tokens.flatMap { $0.dropFirst() }
    let w = weights.map { $0.flatMap { $0.dropFirst() } }
    let (logits, auxiliary) = forwardWithLoss(inputs)
    let loss = logits.crossEntropy(targets: targets, weights: w)
    return auxiliary.map { loss + $0 } ?? loss
  }

  /// DeepSeek-V3's auxiliary-loss-free balancing, after an optimizer step: each expert's selection
  /// bias moves by the update rate toward the mean load (down if over-loaded, up if under-loaded).
  ///
  /// - Parameter load: routed-token counts `[layer][expert]`: the last forward pass's
  ///   (`lastExpertLoad`), or that summed over several processes so that each moves its bias alike.
  public func updateRoutingBias(load: [[Int]]) {
    guard let moe = config.moe, case .auxiliaryLossFree(let rate) = moe.balancing else { return }
    for (l, load) in load.enumerated() {
      let mean = Float(load.reduce(0, +)) / Float(load.count)
      for e in load.indices {
        let error = mean - Float(load[e])
        routingBias[l][e] += error > 0 ? rate : (error < 0 ? -rate : 0)
      }
    }
  }

  /// Clears every parameter's gradient.
  public func zeroGradients() { for (_, v) in parameters { v.zeroGrad() } }
}

/// A model that cannot be built or loaded.
public enum ModelError: Error, Equatable, CustomStringConvertible {
  case missingTensor(String)
  case unexpectedTensor(String)
  case shapeMismatch(String, expected: [Int], found: [Int])
  case invalidConfig(String)

  public var description: String {
    switch self {
    case .missingTensor(let n): return "checkpoint has no tensor '\(n)'"
    case .unexpectedTensor(let n): return "checkpoint has an unexpected tensor '\(n)'"
    case .shapeMismatch(let n, let e, let f): return "tensor '\(n)' has shape \(f), expected \(e)"
    case .invalidConfig(let why): return "invalid model config: \(why)"
    }
  }
}
