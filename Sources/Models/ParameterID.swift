/// What a weight is: its layer and its role in the network.
///
/// Code selects weights by identity (decay and freezing by role, a projection by layer and role);
/// the safetensors name (the Llama layout for dense models, DeepSeek's for Mixture of Experts, so that
/// other tools can load our checkpoints) is one rendering of it, built and parsed only here.
public struct ParameterID: Hashable, Sendable, CustomStringConvertible {
  /// The four attention projections.
  public enum AttentionProjection: String, CaseIterable, Sendable { case query = "q", key = "k", value = "v", output = "o" }
  /// The three SwiGLU projections (of the dense MLP or of an expert).
  public enum MLPProjection: String, CaseIterable, Sendable { case gate, up, down }

  public enum Role: Hashable, Sendable {
    case embedding
    case attentionNorm
    case attention(AttentionProjection)
    case mlpNorm
    case mlp(MLPProjection)
    /// The MoE gate: one row of scores per routed expert.
    case router
    /// The auxiliary-loss-free selection bias of an MoE layer: saved with the weights but moved by the
    /// expert load, never by gradients, so it is not among `TransformerLM.parameters`.
    case routingBias
    /// Routed expert `e`'s SwiGLU.
    case expert(Int, MLPProjection)
    /// The shared experts, stored as one SwiGLU whose hidden size is their total.
    case sharedExperts(MLPProjection)
    case finalNorm
    case lmHead
    /// A reward model's scalar score per position (`ModelConfig.valueHead`).
    case valueHead
    /// Modular distillation's learned map `[teacher d, student d]` from a student layer's module output
    /// to its teacher layer's: trained beside the student, never part of a model artifact.
    case distillationProjection

    /// The family a role belongs to: what freezing and decay choose by.
    public var group: Group {
      switch self {
      case .embedding: return .embedding
      case .attentionNorm, .mlpNorm, .finalNorm: return .norm
      case .attention: return .attention
      case .mlp: return .mlp
      case .router, .routingBias: return .router
      case .expert, .sharedExperts: return .experts
      case .lmHead: return .lmHead
      case .valueHead: return .valueHead
      case .distillationProjection: return .distillation
      }
    }
  }

  /// Families of roles (e.g. "train only the value head", "no decay on norms").
  public enum Group: String, CaseIterable, Hashable, Sendable {
    case embedding, norm, attention, mlp, router, experts, lmHead = "lm_head", valueHead = "value_head", distillation
  }

  /// The block, or nil for the embedding, final norm and heads.
  public var layer: Int?
  public var role: Role

  public init(layer: Int?, role: Role) {
    self.layer = layer
    self.role = role
  }

  public static let embedding = ParameterID(layer: nil, role: .embedding)
  public static let finalNorm = ParameterID(layer: nil, role: .finalNorm)
  public static let lmHead = ParameterID(layer: nil, role: .lmHead)
  public static let valueHead = ParameterID(layer: nil, role: .valueHead)

  /// Whether AdamW's decoupled weight decay applies: not to norm weights, which are scales around 1
  /// rather than free weights.
  public var decays: Bool { role.group != .norm }

  public var description: String { safetensorsName }

  // MARK: - Safetensors names

  /// The checkpoint name (`model.layers.3.self_attn.q_proj.weight`, `lm_head.weight`, `score.weight`).
  public var safetensorsName: String {
    let block = "model.layers.\(layer ?? 0)"
    switch role {
    case .embedding: return "model.embed_tokens.weight"
    case .finalNorm: return "model.norm.weight"
    case .lmHead: return "lm_head.weight"
    case .valueHead: return "score.weight"   // transformers' *ForSequenceClassification head
    case .distillationProjection: return "distill.layers.\(layer ?? 0).projection.weight"
    case .attentionNorm: return "\(block).input_layernorm.weight"
    case .mlpNorm: return "\(block).post_attention_layernorm.weight"
    case .attention(let p): return "\(block).self_attn.\(p.rawValue)_proj.weight"
    case .mlp(let p): return "\(block).mlp.\(p.rawValue)_proj.weight"
    case .router: return "\(block).mlp.gate.weight"
    case .routingBias: return "\(block).mlp.gate.e_score_correction_bias"
    case .expert(let e, let p): return "\(block).mlp.experts.\(e).\(p.rawValue)_proj.weight"
    case .sharedExperts(let p): return "\(block).mlp.shared_experts.\(p.rawValue)_proj.weight"
    }
  }

  /// The identity a checkpoint name renders, or nil for a name this layout never writes.
  public init?(safetensorsName name: String) {
    switch name {
    case "model.embed_tokens.weight": self = .embedding; return
    case "model.norm.weight": self = .finalNorm; return
    case "lm_head.weight": self = .lmHead; return
    case "score.weight": self = .valueHead; return
    default: break
    }
    let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    if parts.count == 5, parts[0] == "distill", parts[1] == "layers", parts[3] == "projection", parts[4] == "weight",
       let layer = Int(parts[2]), layer >= 0, String(layer) == parts[2] {
      self.init(layer: layer, role: .distillationProjection)
      return
    }
    guard parts.count >= 5, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]), layer >= 0,
          String(layer) == parts[2] else { return nil }
    let rest = Array(parts[3...])
    func projection<P: RawRepresentable>(_ s: String, _: P.Type) -> P? where P.RawValue == String {
      s.hasSuffix("_proj") ? P(rawValue: String(s.dropLast(5))) : nil
    }
    let role: Role?
    switch rest.count {
    case 2 where rest[1] == "weight":
      role = rest[0] == "input_layernorm" ? .attentionNorm : rest[0] == "post_attention_layernorm" ? .mlpNorm : nil
    case 3 where rest[0] == "self_attn" && rest[2] == "weight":
      role = projection(rest[1], AttentionProjection.self).map { .attention($0) }
    case 3 where rest[0] == "mlp" && rest[1] == "gate":
      role = rest[2] == "weight" ? .router : rest[2] == "e_score_correction_bias" ? .routingBias : nil
    case 3 where rest[0] == "mlp" && rest[2] == "weight":
      role = projection(rest[1], MLPProjection.self).map { .mlp($0) }
    case 4 where rest[0] == "mlp" && rest[1] == "shared_experts" && rest[3] == "weight":
      role = projection(rest[2], MLPProjection.self).map { .sharedExperts($0) }
    case 5 where rest[0] == "mlp" && rest[1] == "experts" && rest[4] == "weight":
      if let e = Int(rest[2]), e >= 0, String(e) == rest[2] {
        role = projection(rest[3], MLPProjection.self).map { .expert(e, $0) }
      } else {
        role = nil
      }
    default: role = nil
    }
    guard let role else { return nil }
    self.init(layer: layer, role: role)
  }
}

/// Which parameters a training run updates, chosen by role family: everything (pretraining), or, e.g.,
/// only the value head on a frozen body. Frozen weights take no gradient at all: the forward pass
/// reads them as constants, so backward skips their weight gradients.
public struct ParameterSelection: Hashable, Sendable {
  private let groups: Set<ParameterID.Group>
  /// When set, only parameters of these layers (a parameter of no layer, like the embedding, is out).
  private var layers: Set<Int>?

  /// Every parameter.
  public static let all = ParameterSelection(groups: Set(ParameterID.Group.allCases))

  /// Only parameters of these families.
  public static func only(_ groups: Set<ParameterID.Group>) -> ParameterSelection { ParameterSelection(groups: groups) }

  /// Every parameter but those of these families.
  public static func allExcept(_ groups: Set<ParameterID.Group>) -> ParameterSelection {
    ParameterSelection(groups: Set(ParameterID.Group.allCases).subtracting(groups))
  }

  /// Only the parameters of these layers (their attention, MLP or experts, and norms): e.g. a
  /// retrieval layer learning on a frozen model.
  public static func layers(_ layers: Set<Int>) -> ParameterSelection {
    var selection = ParameterSelection.all
    selection.layers = layers
    return selection
  }

  private init(groups: Set<ParameterID.Group>) { self.groups = groups }

  public func contains(_ id: ParameterID) -> Bool {
    guard groups.contains(id.role.group) else { return false }
    guard let layers else { return true }
    return id.layer.map { layers.contains($0) } ?? false
  }
}
