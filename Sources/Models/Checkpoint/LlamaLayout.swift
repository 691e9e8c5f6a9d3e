import Foundation
import Tensors

/// A Lineage model seen as a Llama model (Hugging Face `LlamaForCausalLM`, llama.cpp's `llama`
/// architecture): which settings carry over as they are, which are rewritten into an equivalent
/// form, and which cannot be expressed. Both exporters (`HuggingFaceExport`, `LlamaCppExport`) start
/// here, so they make the same decisions.
///
/// - The blocks are Llama's (pre-norm RMSNorm, RoPE attention with grouped-query heads, SwiGLU MLP)
///   and our checkpoint names are already Llama's.
/// - RoPE pairs: we rotate (i, i + headDim/2), as Hugging Face's `rotate_half`, so its q/k weights are
///   ours unchanged. llama.cpp rotates adjacent pairs (2i, 2i + 1): its q/k rows are permuted as its
///   own converter does (`llamaCppRowOrder`).
/// - NTK-aware scaling only changes the base (base · factor^(d/(d−2))): written as a plain `rope_theta`.
/// - Linear scaling is Llama's `linear` rope scaling with the same factor.
/// - YaRN: our per-frequency interpolation is, formula for formula, Llama 3's smoothed scaling
///   (`rope_type: llama3`, low_freq_factor 1, high_freq_factor 32, the original context); its attention
///   temperature m multiplies cos and sin, which equals multiplying the q and k projections by m, so
///   the exported q and k weights carry it (`queryKeyScale`).
/// - Sliding-window and block-sparse attention have no Llama form. They are exported as dense
///   attention with a warning: the two agree exactly for sequences of up to `denseEquivalentLength`
///   tokens (every query then sees every earlier token in our pattern too), and differ beyond.
/// - A reward model (a scalar value head) is Hugging Face's `LlamaForSequenceClassification` with one
///   label, whose output is the head's score at the last token: what our reward is (`head`).
///   llama.cpp's `llama` architecture has no such head, so `LlamaCppExport` refuses it.
/// - Mixture-of-Experts layers are refused (`LlamaExportError`).
public struct LlamaLayout: Sendable {
  public let config: ModelConfig
  /// The RoPE base with NTK scaling folded in.
  public let ropeTheta: Double
  public let ropeScaling: RoPEScalingForm
  /// Multiplies the q and k projections (YaRN's attention temperature; 1 otherwise).
  public let queryKeyScale: Float
  /// The longest sequence on which dense attention equals ours (the context length when dense).
  public let denseEquivalentLength: Int
  /// What a user of the export must know: where it is not exactly our model.
  public let warnings: [String]
  /// What the model outputs.
  public let head: Head

  /// The output a Llama form of the model has.
  public enum Head: Equatable, Sendable {
    /// Next-token logits (`LlamaForCausalLM`).
    case languageModel
    /// One score per sequence, the value head's at its last token (`LlamaForSequenceClassification`).
    case score
  }

  /// The Llama form of our RoPE scaling (NTK needs none: it is folded into `ropeTheta`).
  public enum RoPEScalingForm: Equatable, Sendable {
    case none
    case linear(factor: Float)
    /// Llama 3's: low frequencies divided by `factor`, high ones kept, a linear ramp in between.
    case llama3(factor: Float, lowFrequencyFactor: Float, highFrequencyFactor: Float, originalContext: Int)
  }

  /// The layout of `config`.
  ///
  /// - Throws: `LlamaExportError` for a model Llama cannot express.
  public init(_ config: ModelConfig) throws(LlamaExportError) {
    if let moe = config.moe { throw .mixtureOfExperts(routedExperts: moe.routedExperts) }
    if Set(config.attentionByLayer).count > 1 { throw .attentionDiffersByLayer(config.attentionByLayer.map { "\($0)" }) }
    self.config = config
    var theta = Double(config.ropeBase)
    var warnings: [String] = []
    head = config.valueHead == nil ? .languageModel : .score
    switch config.ropeScaling {
    case .none:
      ropeScaling = .none
      queryKeyScale = 1
    case .linear(let factor):
      ropeScaling = .linear(factor: factor)
      queryKeyScale = 1
    case .ntk(let factor):
      // As `RoPETable` computes it, in Double.
      theta *= pow(Double(factor), Double(config.headDim) / Double(config.headDim - 2))
      ropeScaling = .none
      queryKeyScale = 1
    case .yarn(let factor, let originalContext):
      ropeScaling = .llama3(factor: factor, lowFrequencyFactor: 1, highFrequencyFactor: 32, originalContext: originalContext)
      queryKeyScale = RoPETable(headDim: config.headDim, base: config.ropeBase, scaling: config.ropeScaling).magnitude
    }
    ropeTheta = theta
    denseEquivalentLength = config.attention.maximumKeys(length: config.contextLength)
    switch config.attention {
    case .dense: break
    case .slidingWindow(let window, let globalTokens):
      warnings.append("the model attends to a sliding window of \(window) tokens plus the first \(globalTokens); "
                      + "Llama attends to every earlier token, which is the same only for sequences of up to "
                      + "\(denseEquivalentLength) tokens (the pattern is recorded in the export's metadata)")
    case .blockSparse(let block, let topBlocks):
      warnings.append("the model attends to blocks of \(block) tokens (its own, the first and the \(topBlocks) best); "
                      + "Llama attends to every earlier token, which is the same only for sequences of up to "
                      + "\(denseEquivalentLength) tokens (the pattern is recorded in the export's metadata)")
    }
    self.warnings = warnings
  }

  /// The base frequency θᵢ of each rotated pair under `ropeTheta` alone: what Llama computes before
  /// any rope scaling.
  var baseFrequencies: [Float] {
    RoPETable(headDim: config.headDim, base: Float(ropeTheta), scaling: .none).frequencies
  }

  /// Our frequencies, scaling included (what the model was trained with).
  var frequencies: [Float] {
    RoPETable(headDim: config.headDim, base: config.ropeBase, scaling: config.ropeScaling).frequencies
  }

  /// The model's weights by identity, with the q and k projections multiplied by `queryKeyScale`.
  public func weights(of model: TransformerLM) -> [ParameterID: Tensor] {
    // An int8 model's matrices as the float values it computes with (value × scale): exports that
    // have no int8 form of ours write these; a Q8_0 GGUF export writes the blocks themselves.
    var out = model.tensorsByID.merging(model.dequantizedMatrices) { $1 }
    guard queryKeyScale != 1 else { return out }
    for (id, t) in out {
      if case .attention(let p) = id.role, p == .query || p == .key {
        out[id] = Tensor(shape: t.shape, scalars: t.scalars.map { $0 * queryKeyScale })
      }
    }
    return out
  }

  /// The order of the rows of a q (`heads` = head count) or k (`heads` = KV head count) projection in
  /// llama.cpp: row (head, 2i + s) is our row (head, s · headDim/2 + i), so that the pair we rotate
  /// together, (i, i + headDim/2), becomes llama.cpp's adjacent pair (2i, 2i + 1). The same
  /// permutation as `permute` in llama.cpp's `convert_hf_to_gguf.py`.
  public func llamaCppRowOrder(heads: Int) -> [Int] {
    let d = config.headDim, half = d / 2
    var order: [Int] = []
    order.reserveCapacity(heads * d)
    for h in 0..<heads {
      for i in 0..<half {
        order.append(h * d + i)          // s = 0
        order.append(h * d + half + i)   // s = 1
      }
    }
    return order
  }
}

/// A model that has no faithful Llama form.
public enum LlamaExportError: Error, Equatable, CustomStringConvertible {
  case mixtureOfExperts(routedExperts: Int)
  case valueHead
  /// Layers with different attention patterns (retrieval layers): the formats record one per model.
  case attentionDiffersByLayer([String])

  public var description: String {
    switch self {
    case .mixtureOfExperts(let n):
      return "the model is a Mixture of Experts (\(n) routed experts), which Llama cannot express; "
        + "`lineage checkout` writes its weights under DeepSeek's names"
    case .valueHead:
      return "the model is a reward model (a value head beside the LM head), which llama.cpp's llama architecture "
        + "cannot express; --format safetensors exports it as LlamaForSequenceClassification"
    case .attentionDiffersByLayer(let patterns):
      return "the model's layers attend differently (\(patterns.joined(separator: ", "))), and the exported "
        + "config records one attention pattern for every layer"
    }
  }
}

/// Rows of a `[rows, columns]` tensor in a new order: row r of the result is row `order[r]`.
func permutingRows(_ t: Tensor, _ order: [Int]) -> Tensor {
  let columns = t.shape[1]
  var out: [Float] = []
  out.reserveCapacity(t.count)
  t.withUnsafeBufferPointer { p in
    for r in order { out += p[(r * columns)..<((r + 1) * columns)] }
  }
  return Tensor(shape: t.shape, scalars: out)
}
