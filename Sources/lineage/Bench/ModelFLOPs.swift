import Models
import Tensors

/// Training FLOPs per token of a transformer as MFU counts them: 6 per weight a token multiplies, plus
/// the attention products with the causal mask's half of the score matrix.
///
/// Forward and backward cost 2 + 4 FLOPs per weight and token (PaLM, Chowdhery et al. 2022, appendix B:
/// `6N`). Attention adds, per layer and token, `4·d·keys` forward (QKᵀ and the weighted sum of V, each
/// `2·d` per key, d = heads × head dimension), three times that with backward: `12·d·keys`. PaLM's
/// `12·L·H·Q·T` counts every query against all `T` keys; a causal model's query sees on average half
/// of them, so dense attention is counted with `T/2` keys (as FlashAttention's benchmarks count causal
/// attention), a sliding window or block-sparse pattern with the pairs it scores. Elementwise work
/// (norms, softmax, SwiGLU, the optimizer) is not counted, as in the papers.
struct ModelFLOPs: Equatable {
  /// N: weights a token multiplies — its active experts only; no embedding lookup, no norm gains.
  var matmulWeights: Int
  var layers: Int
  /// heads × head dimension.
  var attentionWidth: Int
  /// Keys a query attends to, averaged over a training sequence.
  var keysPerQuery: Double

  init(config c: ModelConfig, sequenceLength t: Int) {
    let embedding = c.tiedEmbeddings ? 0 : c.vocabularySize * c.modelDim  // a tied table is also the LM head
    let norms = (2 * c.layerCount + 1) * c.modelDim
    matmulWeights = c.activeParameterCount - embedding - norms
    layers = c.layerCount
    attentionWidth = c.headCount * c.headDim
    switch c.attention {
    case .dense: keysPerQuery = Double(t) / 2
    default: keysPerQuery = Double(c.attention.attendedPairs(length: t)) / Double(t)
    }
  }

  /// 6·N per token for the weights.
  var weightFLOPs: Double { 6 * Double(matmulWeights) }
  /// 12·L·d·keys per token for attention, forward and backward.
  var attentionFLOPs: Double { 12 * Double(layers * attentionWidth) * keysPerQuery }
  var perToken: Double { weightFLOPs + attentionFLOPs }
}
