import Tensors

/// The shape of a transformer language model.
///
/// Stored as JSON in a checkpoint's safetensors metadata, so a model artifact says how to rebuild it.
public struct ModelConfig: Codable, Hashable, Sendable {
  public var vocabularySize: Int
  public var modelDim: Int
  public var layerCount: Int
  public var headCount: Int
  /// Key/value heads (grouped-query attention when fewer than `headCount`).
  public var kvHeadCount: Int
  /// Hidden size of the SwiGLU MLP.
  public var mlpHiddenDim: Int
  public var contextLength: Int
  public var ropeBase: Float
  public var ropeScaling: RoPEScaling
  /// The attention pattern of every layer that `layerAttention` does not set.
  public var attention: AttentionPattern
  /// One pattern per layer, when layers differ (e.g. sliding windows with a few full-attention layers
  /// that retrieve from anywhere in a long context); nil: every layer uses `attention`. Omitted from the
  /// JSON when nil, so uniform models' configs (and their artifacts' hashes) are unchanged.
  public var layerAttention: [AttentionPattern]?
  /// Whether the LM head reuses the embedding table.
  public var tiedEmbeddings: Bool
  public var normEps: Float
  /// Mixture of Experts in place of every dense MLP (nil: dense).
  public var moe: MoEConfig?
  /// A head that scores each position (a reward model), beside the LM head (nil: none). Omitted from
  /// the JSON when nil, so language models' configs (and their artifacts' hashes) are unchanged.
  public var valueHead: ValueHead?

  /// What a value head outputs.
  public enum ValueHead: String, Codable, Hashable, Sendable {
    /// One scalar per position, from the final hidden state (`score.weight`, `[1, d]`).
    case scalar
  }

  public init(vocabularySize: Int, modelDim: Int, layerCount: Int, headCount: Int, kvHeadCount: Int? = nil,
              mlpHiddenDim: Int? = nil, contextLength: Int, ropeBase: Float = 10_000, ropeScaling: RoPEScaling = .none,
              attention: AttentionPattern = .dense, tiedEmbeddings: Bool = false, normEps: Float = 1e-5,
              moe: MoEConfig? = nil, valueHead: ValueHead? = nil) {
    self.vocabularySize = vocabularySize
    self.modelDim = modelDim
    self.layerCount = layerCount
    self.headCount = headCount
    self.kvHeadCount = kvHeadCount ?? headCount
    // SwiGLU at 8/3 · d keeps the MLP's parameters at the classic 4·d·2 budget; round to 8.
    self.mlpHiddenDim = mlpHiddenDim ?? ((8 * modelDim / 3 + 7) / 8 * 8)
    self.contextLength = contextLength
    self.ropeBase = ropeBase
    self.ropeScaling = ropeScaling
    self.attention = attention
    self.tiedEmbeddings = tiedEmbeddings
    self.normEps = normEps
    self.moe = moe
    self.valueHead = valueHead
  }

  public var headDim: Int { modelDim / headCount }

  /// The attention pattern of layer `layer`.
  public func attention(layer: Int) -> AttentionPattern { layerAttention?[layer] ?? attention }

  /// Every layer's pattern, in order.
  public var attentionByLayer: [AttentionPattern] { (0..<layerCount).map { attention(layer: $0) } }

  /// Problems that make the configuration unbuildable, as sentences (empty when valid).
  public var problems: [String] {
    var out: [String] = []
    if modelDim % headCount != 0 {
      out.append("d_model \(modelDim) is not divisible by heads \(headCount)")
    } else if (modelDim / max(1, headCount)) % 2 != 0 {  // only meaningful when the heads divide d_model
      out.append("the head dimension \(modelDim / max(1, headCount)) must be even for RoPE")
    }
    if let layerAttention, layerAttention.count != layerCount {
      out.append("\(layerAttention.count) per-layer attention patterns for \(layerCount) layers")
    }
    if headCount % kvHeadCount != 0 { out.append("heads \(headCount) is not a multiple of kv heads \(kvHeadCount)") }
    if let moe, moe.topK < 1 || moe.topK > moe.routedExperts {
      out.append("top_k \(moe.topK) must be between 1 and the \(moe.routedExperts) routed experts")
    }
    return out
  }

  /// Every weight, counted (the routing bias of the auxiliary-loss-free method is not a weight).
  public var parameterCount: Int { count(experts: moe?.routedExperts ?? 0) }

  /// The weights one token uses: the shared and its top-k routed experts, not the others.
  public var activeParameterCount: Int { count(experts: moe?.topK ?? 0) }

  private func count(experts: Int) -> Int {
    let d = modelDim, kv = kvHeadCount * headDim
    let attention = d * d * 2 + d * kv * 2          // q, o and k, v projections
    let mlp: Int
    if let moe {
      mlp = d * moe.routedExperts + (experts + moe.sharedExperts) * 3 * d * moe.expertHiddenDim
    } else {
      mlp = 3 * d * mlpHiddenDim
    }
    let perLayer = attention + mlp + 2 * d           // + two norms
    return vocabularySize * d * (tiedEmbeddings ? 1 : 2) + layerCount * perLayer + d + (valueHead == nil ? 0 : d)
  }
}
