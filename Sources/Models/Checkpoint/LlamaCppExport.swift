import Foundation
import Tensors

/// A dense model as one GGUF file for llama.cpp's `llama` architecture: its metadata keys, tensor
/// names (`token_embd.weight`, `blk.N.attn_q.weight`, …, `output_norm.weight`, `output.weight`), q and
/// k rows permuted to llama.cpp's RoPE pairing (`LlamaLayout.llamaCppRowOrder`), and our tokenizer as a
/// `gpt2` (byte-level BPE) vocabulary with merges and special ids.
///
/// Matrices are F32 or Q8_0 (`WeightType`); norms stay F32, as llama.cpp's converter keeps them, and
/// so does a matrix whose rows are not a multiple of 32 (the export says so). A YaRN model gets
/// `rope_freqs.weight`, llama.cpp's per-pair frequency divisors, which reproduce our frequencies.
///
/// Where it cannot be exact: llama.cpp chooses its pre-tokenizer from a fixed list of presets, none of
/// which is our word rule; `tokenizer.ggml.pre` is `default` (GPT-2's), which cuts text differently
/// only inside runs of white space before a word and at letters that are not `\p{L}`. Token ids fed in
/// directly, and decoding, are exact. Sparse attention patterns are recorded under `lineage.attention.*`
/// and run dense there (`LlamaLayout`).
public struct LlamaCppExport {
  /// The type of the exported matrices.
  public enum WeightType: String, CaseIterable, Sendable {
    case f32
    case q8_0

    /// llama.cpp's `general.file_type` (`LLAMA_FTYPE_ALL_F32`, `LLAMA_FTYPE_MOSTLY_Q8_0`).
    var fileType: UInt32 { self == .f32 ? 0 : 7 }
  }

  public let file: GGUFFile
  /// Where the export is not exactly the model.
  public let warnings: [String]

  /// The export of `model`, read with `tokenizer`, named `name` in the file.
  ///
  /// - Parameter quantized: matrices quantized already (an int8 artifact's Q8_0 blocks, made with
  ///   `Q8_0Blocks(values:scales:)`), written as they are in place of quantizing the float weight; only
  ///   with `.q8_0`, and not for a YaRN model's q and k (which carry a scale).
  /// - Throws: `LlamaExportError` for a model Llama cannot express, `LlamaCppExportError` for weights
  ///   that cannot be written in the type asked for.
  public init(model: TransformerLM, tokenizer: BPETokenizer, name: String, weightType: WeightType,
              quantized: [ParameterID: Q8_0Blocks] = [:]) throws {
    let layout = try LlamaLayout(model.config)
    guard layout.head == .languageModel else { throw LlamaExportError.valueHead }
    let c = model.config
    var warnings = layout.warnings
    if !quantized.isEmpty && weightType != .q8_0 { throw LlamaCppExportError.quantizedWithoutQ8_0 }
    if layout.queryKeyScale != 1, let id = quantized.keys.first(where: { LlamaCppExport.isQueryOrKey($0) }) {
      throw LlamaCppExportError.scaledQuantized(id.safetensorsName)
    }
    var metadata: [(key: String, value: GGUFValue)] = [
      ("general.architecture", .string("llama")),
      ("general.name", .string(name)),
      ("general.alignment", .uint32(UInt32(GGUFFile.defaultAlignment))),
      ("general.file_type", .uint32(weightType.fileType)),
      ("llama.vocab_size", .uint32(UInt32(c.vocabularySize))),
      ("llama.context_length", .uint32(UInt32(c.contextLength))),
      ("llama.embedding_length", .uint32(UInt32(c.modelDim))),
      ("llama.block_count", .uint32(UInt32(c.layerCount))),
      ("llama.feed_forward_length", .uint32(UInt32(c.mlpHiddenDim))),
      ("llama.attention.head_count", .uint32(UInt32(c.headCount))),
      ("llama.attention.head_count_kv", .uint32(UInt32(c.kvHeadCount))),
      ("llama.rope.dimension_count", .uint32(UInt32(c.headDim))),
      ("llama.rope.freq_base", .float32(Float(layout.ropeTheta))),
      ("llama.attention.layer_norm_rms_epsilon", .float32(c.normEps)),
    ]
    if case .linear(let factor) = layout.ropeScaling {
      metadata.append(("llama.rope.scaling.type", .string("linear")))
      metadata.append(("llama.rope.scaling.factor", .float32(factor)))
    }
    switch c.attention {
    case .dense: break
    case .slidingWindow(let window, let globalTokens):
      metadata.append(("lineage.attention.pattern", .string("sliding_window")))
      metadata.append(("lineage.attention.window", .uint32(UInt32(window))))
      metadata.append(("lineage.attention.global_tokens", .uint32(UInt32(globalTokens))))
      metadata.append(("lineage.attention.dense_equivalent_length", .uint32(UInt32(layout.denseEquivalentLength))))
    case .blockSparse(let block, let topBlocks):
      metadata.append(("lineage.attention.pattern", .string("block_sparse")))
      metadata.append(("lineage.attention.block", .uint32(UInt32(block))))
      metadata.append(("lineage.attention.top_blocks", .uint32(UInt32(topBlocks))))
      metadata.append(("lineage.attention.dense_equivalent_length", .uint32(UInt32(layout.denseEquivalentLength))))
    }
    let vocabulary = ByteLevelVocabulary(tokenizer)
    metadata += LlamaCppExport.tokenizerMetadata(vocabulary, modelVocabulary: c.vocabularySize)
    warnings += vocabulary.warnings

    // Tensors in llama.cpp's converter order.
    let weights = layout.weights(of: model)
    var tensors: [GGUFTensor] = []
    var keptFloat: [String] = []
    func add(_ id: ParameterID, as name: String, rows order: [Int]? = nil) throws {
      var t = weights[id]!
      if let order { t = permutingRows(t, order) }
      if t.rank == 2, weightType == .q8_0 {
        if var blocks = quantized[id] {
          guard blocks.values.count == t.count else { throw LlamaCppExportError.quantizedShape(id.safetensorsName) }
          if let order { blocks = blocks.permutingRows(order, columns: t.shape[1]) }
          tensors.append(GGUFTensor(name: name, shape: t.shape, data: .q8_0(blocks)))
          return
        }
        if t.shape[1] % Q8_0Blocks.blockSize == 0 {
          tensors.append(GGUFTensor(name: name, shape: t.shape, data: .q8_0(try Q8_0Blocks(quantizing: t.scalars))))
          return
        }
        keptFloat.append(name)
      }
      tensors.append(GGUFTensor(name: name, shape: t.shape, data: .f32(t.scalars)))
    }
    try add(.embedding, as: "token_embd.weight")
    if case .llama3 = layout.ropeScaling {
      // llama.cpp divides each base frequency by its factor: base / ours gives ours back.
      let factors = zip(layout.baseFrequencies, layout.frequencies).map { $0 / $1 }
      tensors.append(GGUFTensor(name: "rope_freqs.weight", shape: [factors.count], data: .f32(factors)))
    }
    for l in 0..<c.layerCount {
      func id(_ role: ParameterID.Role) -> ParameterID { ParameterID(layer: l, role: role) }
      try add(id(.attentionNorm), as: "blk.\(l).attn_norm.weight")
      try add(id(.attention(.query)), as: "blk.\(l).attn_q.weight", rows: layout.llamaCppRowOrder(heads: c.headCount))
      try add(id(.attention(.key)), as: "blk.\(l).attn_k.weight", rows: layout.llamaCppRowOrder(heads: c.kvHeadCount))
      try add(id(.attention(.value)), as: "blk.\(l).attn_v.weight")
      try add(id(.attention(.output)), as: "blk.\(l).attn_output.weight")
      try add(id(.mlpNorm), as: "blk.\(l).ffn_norm.weight")
      try add(id(.mlp(.gate)), as: "blk.\(l).ffn_gate.weight")
      try add(id(.mlp(.up)), as: "blk.\(l).ffn_up.weight")
      try add(id(.mlp(.down)), as: "blk.\(l).ffn_down.weight")
    }
    try add(.finalNorm, as: "output_norm.weight")
    if !c.tiedEmbeddings { try add(.lmHead, as: "output.weight") }   // absent: llama.cpp reuses token_embd
    if !keptFloat.isEmpty {
      warnings.append("kept as F32 (rows not a multiple of 32, which Q8_0 needs): " + keptFloat.joined(separator: ", "))
    }
    file = GGUFFile(metadata: metadata, tensors: tensors)
    self.warnings = warnings
  }

  private static func isQueryOrKey(_ id: ParameterID) -> Bool {
    if case .attention(let p) = id.role { return p == .query || p == .key }
    return false
  }

  /// llama.cpp's token types.
  enum TokenType: Int32 { case normal = 1, control = 3, unused = 5 }

  /// The `tokenizer.ggml.*` keys: a `gpt2` vocabulary padded with unused tokens to the model's
  /// vocabulary size (llama.cpp sizes the embedding by it), the merges and the special ids.
  static func tokenizerMetadata(_ vocabulary: ByteLevelVocabulary, modelVocabulary: Int) -> [(key: String, value: GGUFValue)] {
    var tokens = vocabulary.tokens, types = [TokenType](repeating: .normal, count: tokens.count)
    for special in SpecialToken.allCases { types[Int(special.id)] = .control }
    while tokens.count < modelVocabulary {
      tokens.append("[PAD\(tokens.count)]")
      types.append(.unused)
    }
    return [
      ("tokenizer.ggml.model", .string("gpt2")),
      ("tokenizer.ggml.pre", .string("default")),
      ("tokenizer.ggml.tokens", .strings(tokens)),
      ("tokenizer.ggml.token_type", .int32s(types.map(\.rawValue))),
      ("tokenizer.ggml.merges", .strings(vocabulary.merges)),
      ("tokenizer.ggml.bos_token_id", .uint32(UInt32(SpecialToken.bos.id))),
      ("tokenizer.ggml.eos_token_id", .uint32(UInt32(SpecialToken.eos.id))),
      ("tokenizer.ggml.padding_token_id", .uint32(UInt32(SpecialToken.pad.id))),
      ("tokenizer.ggml.add_bos_token", .bool(false)),
      ("tokenizer.ggml.add_eos_token", .bool(false)),
      ("tokenizer.chat_template", .string(HuggingFaceExport.chatTemplate)),
    ]
  }
}

/// Weights that cannot be written as asked.
public enum LlamaCppExportError: Error, Equatable, CustomStringConvertible {
  case quantizedWithoutQ8_0
  case scaledQuantized(String)
  case quantizedShape(String)

  public var description: String {
    switch self {
    case .quantizedWithoutQ8_0: return "quantized blocks can only be written into a Q8_0 export"
    case .scaledQuantized(let n):
      return "'\(n)' is quantized, but a YaRN model's q and k carry its attention temperature, which would quantize them again"
    case .quantizedShape(let n): return "the quantized blocks of '\(n)' do not have the weight's size"
    }
  }
}
