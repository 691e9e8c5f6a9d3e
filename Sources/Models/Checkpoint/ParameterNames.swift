/// Checkpoint names of every parameter, in one place: the Llama layout for dense models, so that
/// other tools can load our safetensors.
public enum ParameterNames {
  public static let embedding = "model.embed_tokens.weight"
  public static let finalNorm = "model.norm.weight"
  public static let lmHead = "lm_head.weight"

  public static func attentionNorm(_ layer: Int) -> String { "model.layers.\(layer).input_layernorm.weight" }
  public static func mlpNorm(_ layer: Int) -> String { "model.layers.\(layer).post_attention_layernorm.weight" }
  /// `q`, `k`, `v` or `o`.
  public static func attention(_ layer: Int, _ projection: String) -> String {
    "model.layers.\(layer).self_attn.\(projection)_proj.weight"
  }
  /// `gate`, `up` or `down`.
  public static func mlp(_ layer: Int, _ projection: String) -> String { "model.layers.\(layer).mlp.\(projection)_proj.weight" }

  // Mixture of Experts, in the DeepSeek layout.
  public static func moeGate(_ layer: Int) -> String { "model.layers.\(layer).mlp.gate.weight" }
  public static func moeBias(_ layer: Int) -> String { "model.layers.\(layer).mlp.gate.e_score_correction_bias" }
  public static func expert(_ layer: Int, _ expert: Int, _ projection: String) -> String {
    "model.layers.\(layer).mlp.experts.\(expert).\(projection)_proj.weight"
  }
  /// The shared experts, stored as one SwiGLU whose hidden size is their total.
  public static func sharedExpert(_ layer: Int, _ projection: String) -> String {
    "model.layers.\(layer).mlp.shared_experts.\(projection)_proj.weight"
  }
}
