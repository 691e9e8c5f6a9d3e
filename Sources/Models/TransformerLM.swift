import Tensors

/// A decoder-only transformer language model: embedding, pre-norm blocks (RMSNorm → attention with
/// RoPE → residual; RMSNorm → SwiGLU MLP → residual), final RMSNorm, LM head (and, for a reward model,
/// a scalar value head).
///
/// Owns its parameters as autograd variables, each with a typed identity (`ParameterID`). Training
/// builds a graph per step with `loss(…)`; generation (`Generator`) reads the same weights without a
/// graph. Every matrix product goes through a `Projection`.
public final class TransformerLM {
  public let config: ModelConfig
  /// Every parameter, in a fixed order (embedding, layers, norm, heads).
  public private(set) var parameters: [(id: ParameterID, variable: Variable)] = []
  private var byID: [ParameterID: Variable] = [:]
  let rope: RoPETable
  /// Per MoE layer, the auxiliary-loss-free selection bias (not trained by gradients; saved with the weights).
  public private(set) var routingBias: [[Float]] = []
  /// Per MoE layer, the tokens each expert received in the last forward pass.
  public private(set) var lastExpertLoad: [[Int]] = []
  /// Per MoE layer, the tokens of the last forward pass given fewer than top-k experts (dropped).
  public private(set) var lastDroppedTokens: [Int] = []
  /// The parameters training updates; the others are read as constants by `loss` and `scores`, so no
  /// gradient is computed for them. All by default.
  public var trainable: ParameterSelection = .all
  /// How the matrices are stored when the model is quantized (nil: float32). A quantized model's
  /// quantized matrices are not among `parameters` (they are `quantizedMatrices`), its products run
  /// with int8 arithmetic, and it cannot be trained.
  public private(set) var quantization: QuantizedMatrix.Scheme?
  /// The quantized matrices by identity (empty for a float model).
  public private(set) var quantizedMatrices: [ParameterID: QuantizedMatrix] = [:]

  /// A freshly initialised model: weights ~ N(0, 0.02²), output projections scaled by 1/√(2·layers)
  /// (GPT-2), norms at 1, the value head at 0 (a reward model starts neutral). The same seed gives
  /// bit-identical weights.
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
    let ones = Tensor(repeating: 1, shape: [d])
    add(.embedding, normal([config.vocabularySize, d]))
    for l in 0..<config.layerCount {
      func add(_ role: ParameterID.Role, _ value: Tensor) { self.add(ParameterID(layer: l, role: role), value) }
      add(.attentionNorm, ones)
      add(.attention(.query), normal([d, d]))
      add(.attention(.key), normal([kv, d]))
      add(.attention(.value), normal([kv, d]))
      add(.attention(.output), normal([d, d], residualScale))
      add(.mlpNorm, ones)
      if let moe = config.moe {
        let h = moe.expertHiddenDim
        add(.router, normal([moe.routedExperts, d]))
        for e in 0..<moe.routedExperts {
          add(.expert(e, .gate), normal([h, d]))
          add(.expert(e, .up), normal([h, d]))
          add(.expert(e, .down), normal([d, h], residualScale))
        }
        if moe.sharedExperts > 0 {
          let hs = moe.sharedExperts * h
          add(.sharedExperts(.gate), normal([hs, d]))
          add(.sharedExperts(.up), normal([hs, d]))
          add(.sharedExperts(.down), normal([d, hs], residualScale))
        }
        routingBias.append([Float](repeating: 0, count: moe.routedExperts))
      } else {
        add(.mlp(.gate), normal([f, d]))
        add(.mlp(.up), normal([f, d]))
        add(.mlp(.down), normal([d, f], residualScale))
      }
    }
    add(.finalNorm, ones)
    if !config.tiedEmbeddings { add(.lmHead, normal([config.vocabularySize, d])) }
    // Drawn after every other weight, so adding a value head leaves the rest of the model's weights as they were.
    if config.valueHead != nil { add(.valueHead, Tensor(repeating: 0, shape: [1, d])) }
  }

  private func add(_ id: ParameterID, _ value: Tensor) {
    let v = Variable(value, requiresGrad: true)
    parameters.append((id, v))
    byID[id] = v
  }

  /// The parameter `id`, or nil when this model has none (e.g. an expert of a dense model).
  public func parameter(_ id: ParameterID) -> Variable? { byID[id] }

  /// The weight matrix `id` as a projection (the LM head of a model with tied embeddings is the
  /// embedding table).
  ///
  /// - Precondition: the model has that matrix.
  public func projection(_ id: ParameterID) -> Projection {
    let resolved = id == .lmHead && config.tiedEmbeddings ? ParameterID.embedding : id
    if let q = quantizedMatrices[resolved] { return Projection(.int8(q)) }
    guard let w = byID[resolved] else { preconditionFailure("the model has no parameter \(id)") }
    return Projection(.float32(w))
  }

  /// Every matrix a forward pass multiplies by (float or quantized), the LM head included: the float
  /// ones in parameter order, then the quantized ones by name.
  public var matrixIDs: [ParameterID] {
    var out = parameters.filter { $0.variable.value.rank == 2 && $0.id != .embedding }.map(\.id)
    out += quantizedMatrices.keys.sorted { $0.safetensorsName < $1.safetensorsName }
    if !out.contains(.lmHead) { out.append(.lmHead) }
    return out
  }

  /// Replaces float matrices by quantized ones: each leaves `parameters` (so no optimizer or checkpoint
  /// sees a float copy) and its products run with int8 arithmetic. Every quantized matrix must have
  /// the scheme `scheme` and the shape of the parameter it replaces.
  ///
  /// - Throws: `ModelError` naming a matrix the model has not, or one of the wrong shape or scheme.
  public func replaceWithQuantized(_ matrices: [ParameterID: QuantizedMatrix], scheme: QuantizedMatrix.Scheme) throws {
    for (id, q) in matrices.sorted(by: { $0.key.safetensorsName < $1.key.safetensorsName }) {
      guard let shape = byID[id]?.value.shape ?? quantizedMatrices[id]?.shape else {
        throw ModelError.unexpectedTensor(id.safetensorsName)
      }
      guard shape == q.shape else { throw ModelError.shapeMismatch(id.safetensorsName, expected: shape, found: q.shape) }
      guard q.scheme == scheme else {
        throw ModelError.invalidConfig("'\(id.safetensorsName)' is \(q.scheme.rawValue), the model \(scheme.rawValue)")
      }
    }
    parameters.removeAll { matrices[$0.id] != nil }
    for id in matrices.keys { byID[id] = nil }
    quantizedMatrices.merge(matrices) { $1 }
    quantization = scheme
  }

  /// The routing-bias tensors' identities, one per MoE layer.
  private var routingBiasIDs: [ParameterID] { routingBias.indices.map { ParameterID(layer: $0, role: .routingBias) } }

  /// Replaces weights by safetensors name (loading a checkpoint); every parameter must be given, with its shape.
  ///
  /// - Throws: `ModelError` naming a missing, extra or misshapen tensor.
  /// Quantized matrices come as their values (`NAME.weight`, integers) beside their scales
  /// (`NAME.weight_scale`), as `tensors` gives them; they replace the float matrices they name.
  public func load(_ tensors: [String: Tensor]) throws {
    let (floats, quantized) = try QuantizedMatrix.separate(tensors)
    if let scheme = quantized.first?.value.scheme { try replaceWithQuantized(quantized, scheme: scheme) }
    var byID: [ParameterID: Tensor] = [:]
    for (name, t) in floats {
      guard let id = ParameterID(safetensorsName: name) else { throw ModelError.unexpectedTensor(name) }
      byID[id] = t
    }
    try load(byID)
  }

  /// Replaces weights by identity; every parameter (and routing bias) must be given, with its shape.
  ///
  /// - Throws: `ModelError` naming a missing, extra or misshapen tensor.
  public func load(_ tensors: [ParameterID: Tensor]) throws {
    for (id, v) in parameters {
      guard let t = tensors[id] else { throw ModelError.missingTensor(id.safetensorsName) }
      guard t.shape == v.value.shape else {
        throw ModelError.shapeMismatch(id.safetensorsName, expected: v.value.shape, found: t.shape)
      }
    }
    for (l, id) in routingBiasIDs.enumerated() {
      guard let t = tensors[id] else { throw ModelError.missingTensor(id.safetensorsName) }
      guard t.count == routingBias[l].count else {
        throw ModelError.shapeMismatch(id.safetensorsName, expected: [routingBias[l].count], found: t.shape)
      }
    }
    let biasIDs = Set(routingBiasIDs)
    if let extra = tensors.keys.filter({ byID[$0] == nil && !biasIDs.contains($0) }).map(\.safetensorsName).min() {
      throw ModelError.unexpectedTensor(extra)
    }
    for (id, v) in parameters { v.value = tensors[id]! }
    for (l, id) in routingBiasIDs.enumerated() { routingBias[l] = tensors[id]!.scalars }
  }

  /// Weights by identity, the MoE routing biases included.
  public var tensorsByID: [ParameterID: Tensor] {
    var out = Dictionary(uniqueKeysWithValues: parameters.map { ($0.id, $0.variable.value) })
    for (l, id) in routingBiasIDs.enumerated() { out[id] = Tensor(shape: [routingBias[l].count], scalars: routingBias[l]) }
    return out
  }

  /// Weights by safetensors name (for checkpoints and export), the MoE routing biases included; a
  /// quantized matrix as its int8 values (held exactly as floats) and its scales (`QuantizedMatrix.stored`),
  /// which `load` and `init(config:tensors:)` turn back into the same quantized matrix.
  public var tensors: [String: Tensor] {
    var out = Dictionary(uniqueKeysWithValues: tensorsByID.map { ($0.key.safetensorsName, $0.value) })
    for (id, q) in quantizedMatrices { out.merge(q.stored(as: id.safetensorsName)) { $1 } }
    return out
  }

  // MARK: - Forward

  /// Where a forward pass reads its weights: the model's variables (training: the trainable ones with
  /// gradients, the frozen ones as constants), or gradient-free views (generation).
  struct Weights {
    /// Vectors and tables that are not matrix products: the embedding table and the norm scales.
    var vector: (ParameterID) -> Variable
    var projection: (ParameterID) -> Projection
  }

  /// The model's own weights for training, frozen ones (outside `trainable`) read as constants.
  private var trainingWeights: Weights {
    let trainable = self.trainable
    let everything = trainable == .all
    return Weights(
      vector: { id in
        let v = self.byID[id]!
        return everything || trainable.contains(id) ? v : Variable(v.value)
      },
      projection: { id in
        let p = self.projection(id)
        return everything || trainable.contains(id == .lmHead && self.config.tiedEmbeddings ? .embedding : id)
          ? p : p.withoutGradient
      })
  }

  /// Logits for a batch of equal-length sequences (training: records the autograd graph).
  ///
  /// - Parameter tokens: `[batch][seq]`, seq ≤ contextLength.
  /// - Returns: `[batch·seq, vocab]`.
  public func logits(_ tokens: [[Int32]]) -> Variable {
    let (hidden, _) = hiddenStates(tokens)
    return trainingWeights.projection(.lmHead).apply(hidden)
  }

  /// The value head's score at every position (a reward model reads the last token's).
  ///
  /// - Parameter tokens: `[batch][seq]`, seq ≤ contextLength.
  /// - Returns: `[batch·seq, 1]`.
  /// - Precondition: `config.valueHead` is set.
  public func scores(_ tokens: [[Int32]]) -> Variable {
    precondition(config.valueHead != nil, "scores need a model with a value head")
    let (hidden, _) = hiddenStates(tokens)
    return trainingWeights.projection(.valueHead).apply(hidden)
  }

  /// A block's output that modular distillation can match against a teacher's.
  public enum Module: String, CaseIterable, Sendable {
    /// The attention branch: what the block's attention adds to the residual stream (after the output projection).
    case attention
    /// The residual stream after the whole block.
    case hidden
  }

  /// Logits `[batch·seq, vocab]` and, for each layer in `layers`, its `module` output `[batch·seq, d]`
  /// (training: records the autograd graph through both).
  public func logits(_ tokens: [[Int32]], capturing module: Module, layers: Set<Int>) -> (logits: Variable, modules: [Int: Variable]) {
    var captured: [Int: Variable] = [:]
    let (hidden, _) = hiddenStates(tokens) { layer, tap, value in
      if tap == module && layers.contains(layer) { captured[layer] = value }
    }
    return (trainingWeights.projection(.lmHead).apply(hidden), captured)
  }

  /// The final-norm hidden states `[batch·seq, d]` and the MoE balance loss, if any.
  func hiddenStates(_ tokens: [[Int32]], observe: (Int, Module, Variable) -> Void = { _, _, _ in })
    -> (hidden: Variable, auxiliaryLoss: Variable?) {
    let batch = tokens.count, seq = tokens.first?.count ?? 0
    precondition(tokens.allSatisfy { $0.count == seq } && seq <= config.contextLength)
    let flat = tokens.flatMap { $0 }
    let c = config
    return forward(tokens: flat, positions: (0..<flat.count).map { Int32($0 % seq) }, weights: trainingWeights,
                   attend: { l, q, k, v in
      Variable.attention(q: q, k: k, v: v, batch: batch, heads: c.headCount, kvHeads: c.kvHeadCount,
                         pattern: c.attention(layer: l))
    }, observe: observe)
  }

  /// The blocks over rows of tokens, shared by training and generation: `weights` supplies parameters,
  /// `attend(layer, q, k, v)` does attention (over the batch, or over a KV cache). Shapes: rows `[n]` →
  /// final-norm hidden states `[n, d]`.
  /// `observe(layer, module, value)` sees each block's attention branch and output as they are made.
  func forward(tokens: [Int32], positions: [Int32], weights w: Weights,
               attend: (Int, Variable, Variable, Variable) -> Variable,
               observe: (Int, Module, Variable) -> Void = { _, _, _ in }) -> (hidden: Variable, auxiliaryLoss: Variable?) {
    let c = config
    var x = Variable.embedding(w.vector(.embedding), tokens)                       // [n, d]
    var auxiliary: Variable?
    var loads: [[Int]] = [], dropped: [Int] = []
    for l in 0..<c.layerCount {
      func id(_ role: ParameterID.Role) -> ParameterID { ParameterID(layer: l, role: role) }
      let h = x.rmsNorm(w.vector(id(.attentionNorm)), eps: c.normEps)
      let q = w.projection(id(.attention(.query))).apply(h).rope(positions: positions, heads: c.headCount, table: rope)
      let k = w.projection(id(.attention(.key))).apply(h).rope(positions: positions, heads: c.kvHeadCount, table: rope)
      let v = w.projection(id(.attention(.value))).apply(h)
      let attended = w.projection(id(.attention(.output))).apply(attend(l, q, k, v))
      observe(l, .attention, attended)
      x = x + attended
      let h2 = x.rmsNorm(w.vector(id(.mlpNorm)), eps: c.normEps)
      if let moe = c.moe {
        let out = MixtureOfExperts.forward(h2, layer: l, config: moe, bias: routingBias[l], projection: w.projection)
        x = x + out.y
        loads.append(out.load)
        dropped.append(out.dropped)
        if let a = out.auxiliaryLoss { auxiliary = auxiliary.map { $0 + a } ?? a }
      } else {
        let gate = w.projection(id(.mlp(.gate))).apply(h2)                         // [n, f]
        let up = w.projection(id(.mlp(.up))).apply(h2)
        x = x + w.projection(id(.mlp(.down))).apply(Variable.swiglu(gate: gate, up: up))
      }
      observe(l, .hidden, x)
    }
    lastExpertLoad = loads
    lastDroppedTokens = dropped
    return (x.rmsNorm(w.vector(.finalNorm), eps: c.normEps), auxiliary)
  }

  /// Mean next-token cross-entropy (plus the MoE balance loss, if any): position t predicts token
  /// t+1; `weights[b][t]` weights the prediction *of* token t, so a prompt can be masked out.
  ///
  /// - Parameter tokens: `[batch][seq + 1]`.
  public func loss(_ tokens: [[Int32]], weights: [[Float]]? = nil) -> Variable {
    let inputs = tokens.map { Array($0.dropLast()) }
    let targets = tokens.flatMap { $0.dropFirst() }
    let w = weights.map { $0.flatMap { $0.dropFirst() } }
    let (hidden, auxiliary) = hiddenStates(inputs)
    let logits = trainingWeights.projection(.lmHead).apply(hidden)
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
