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
      add(ParameterNames.mlp(l, "gate"), normal([f, d]))
      add(ParameterNames.mlp(l, "up"), normal([f, d]))
      add(ParameterNames.mlp(l, "down"), normal([d, f], residualScale))
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
    for (name, v) in parameters {
      guard let t = tensors[name] else { throw ModelError.missingTensor(name) }
      guard t.shape == v.value.shape else { throw ModelError.shapeMismatch(name, expected: v.value.shape, found: t.shape) }
    }
    if let extra = tensors.keys.first(where: { byName[$0] == nil }) { throw ModelError.unexpectedTensor(extra) }
    for (name, v) in parameters { v.value = tensors[name]! }
  }

  /// Weights by name (for export).
  public var tensors: [String: Tensor] {
    Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.variable.value) })
  }

  // MARK: - Training forward

  /// Logits for a batch of equal-length sequences.
  ///
  /// - Parameter tokens: `[batch][seq]`, seq ≤ contextLength.
  /// - Returns: `[batch·seq, vocab]`.
  public func logits(_ tokens: [[Int32]]) -> Variable {
    let batch = tokens.count, seq = tokens.first?.count ?? 0
    precondition(tokens.allSatisfy { $0.count == seq } && seq <= config.contextLength)
    let flat = tokens.flatMap { $0 }
    let positions = (0..<flat.count).map { Int32($0 % seq) }
    let c = config
    var x = Variable.embedding(byName[ParameterNames.embedding]!, flat)       // [n, d]
    for l in 0..<c.layerCount {
      let h = x.rmsNorm(byName[ParameterNames.attentionNorm(l)]!, eps: c.normEps)
      let q = h.linear(byName[ParameterNames.attention(l, "q")]!).rope(positions: positions, heads: c.headCount, table: rope)
      let k = h.linear(byName[ParameterNames.attention(l, "k")]!).rope(positions: positions, heads: c.kvHeadCount, table: rope)
      let v = h.linear(byName[ParameterNames.attention(l, "v")]!)
      let a = Variable.attention(q: q, k: k, v: v, batch: batch, heads: c.headCount, kvHeads: c.kvHeadCount,
                                 pattern: c.attention)                     // [n, d]
      x = x + a.linear(byName[ParameterNames.attention(l, "o")]!)
      let h2 = x.rmsNorm(byName[ParameterNames.mlpNorm(l)]!, eps: c.normEps)
      let gate = h2.linear(byName[ParameterNames.mlp(l, "gate")]!)          // [n, f]
      let up = h2.linear(byName[ParameterNames.mlp(l, "up")]!)
      x = x + Variable.swiglu(gate: gate, up: up).linear(byName[ParameterNames.mlp(l, "down")]!)
    }
    let out = x.rmsNorm(byName[ParameterNames.finalNorm]!, eps: c.normEps)
    return out.linear(byName[c.tiedEmbeddings ? ParameterNames.embedding : ParameterNames.lmHead]!)  // [n, vocab]
  }

  /// Mean next-token cross-entropy: position t predicts token t+1; `weights[b][t]` (0 or 1, or
  /// anything between) weights the prediction *of* token t+1, so a prompt can be masked out.
  ///
  /// - Parameter tokens: `[batch][seq + 1]`.
  public func loss(_ tokens: [[Int32]], weights: [[Float]]? = nil) -> Variable {
    let inputs = tokens.map { Array($0.dropLast()) }
    let targets = tokens.flatMap { $0.dropFirst() }
    let w = weights.map { $0.flatMap { $0.dropFirst() } }
    return logits(inputs).crossEntropy(targets: targets, weights: w)
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
