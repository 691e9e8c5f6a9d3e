import Foundation
@testable import Models
import Tensors
import Testing

/// The Llama forms of a model: config.json, tokenizer.json, the GGUF file, and the decisions behind
/// them (RoPE pairing and scaling, attention patterns, what is refused).
@Suite struct LlamaExportTests {
  static func config(_ edit: (inout ModelConfig) -> Void = { _ in }) -> ModelConfig {
    var c = ModelConfig(vocabularySize: 300, modelDim: 64, layerCount: 2, headCount: 4, kvHeadCount: 2,
                        contextLength: 64, ropeBase: 10_000, tiedEmbeddings: true, normEps: 1e-5)
    edit(&c)
    return c
  }

  static let tokenizer = BPETokenizer.train(texts: ["the cat sat on the mat", "the hat is 12 and the cat is 7"],
                                            vocabularySize: 280)

  static func json(_ bytes: [UInt8]) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
  }

  static func file(_ export: HuggingFaceExport, _ name: String) throws -> [UInt8] {
    try #require(export.files.first { $0.name == name }?.bytes)
  }

  @Test func configHoldsLlamaFields() throws {
    let config = LlamaExportTests.config { $0.ropeScaling = .ntk(factor: 4) }
    let model = TransformerLM(config: config, seed: 1)
    let export = try HuggingFaceExport(model: model, tokenizer: LlamaExportTests.tokenizer)
    #expect(export.files.map(\.name) == ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"])
    let json = try LlamaExportTests.json(try LlamaExportTests.file(export, "config.json"))
    #expect(json["architectures"] as? [String] == ["LlamaForCausalLM"] && json["model_type"] as? String == "llama")
    #expect(json["hidden_size"] as? Int == 64 && json["intermediate_size"] as? Int == config.mlpHiddenDim)
    #expect(json["num_hidden_layers"] as? Int == 2 && json["num_attention_heads"] as? Int == 4)
    #expect(json["num_key_value_heads"] as? Int == 2 && json["vocab_size"] as? Int == 300)
    #expect(json["max_position_embeddings"] as? Int == 64 && json["rms_norm_eps"] as? Double == 1e-5)
    #expect(json["tie_word_embeddings"] as? Bool == true)
    #expect(json["bos_token_id"] as? Int == 256 && json["eos_token_id"] as? Int == 257)
    // NTK folds into the base: 10000 · 4^(16/14), and no rope_scaling.
    let theta = try #require(json["rope_theta"] as? Double)
    #expect(abs(theta - 10_000 * pow(4, 16.0 / 14)) < 1e-6)
    #expect(json["rope_scaling"] is NSNull && json["lineage_attention"] == nil)
    #expect(export.warnings.isEmpty)
    // The RoPE frequencies Llama computes from that base are ours.
    let layout = try LlamaLayout(config)
    for (a, b) in zip(layout.baseFrequencies, layout.frequencies) { #expect(abs(a - b) <= 1e-6 * b) }
    // Tied: no lm_head in the weights, which keep their names and values.
    let (tensors, metadata) = try SafeTensors.read(try LlamaExportTests.file(export, "model.safetensors"))
    #expect(tensors["lm_head.weight"] == nil && metadata == ["format": "pt"])
    #expect(tensors == model.tensors)
  }

  @Test func slidingWindowIsExportedDenseWithAWarning() throws {
    let config = LlamaExportTests.config { $0.attention = .slidingWindow(window: 16, globalTokens: 4) }
    let export = try HuggingFaceExport(model: TransformerLM(config: config, seed: 1), tokenizer: LlamaExportTests.tokenizer)
    #expect(export.warnings.count == 1 && export.warnings[0].contains("up to 20 tokens"), "\(export.warnings)")
    let json = try LlamaExportTests.json(try LlamaExportTests.file(export, "config.json"))
    let attention = try #require(json["lineage_attention"] as? [String: Any])
    #expect(attention["kind"] as? String == "sliding_window" && attention["window"] as? Int == 16)
    #expect(attention["global_tokens"] as? Int == 4 && attention["dense_equivalent_length"] as? Int == 20)
  }

  /// Within `denseEquivalentLength` tokens the sparse model's logits are the dense model's (up to the
  /// rounding of two attention kernels); beyond, they differ.
  @Test func sparseEqualsDenseUpToTheDenseEquivalentLength() throws {
    let sparse = LlamaExportTests.config { $0.attention = .slidingWindow(window: 6, globalTokens: 2) }
    let layout = try LlamaLayout(sparse)
    let a = TransformerLM(config: sparse, seed: 2)
    let b = try TransformerLM(config: LlamaExportTests.config(), tensors: a.tensors)
    let tokens: [Int32] = (0..<20).map { Int32($0 * 7 % 300) }
    let n = layout.denseEquivalentLength
    #expect(n == 8)
    func difference(_ length: Int) -> Float {
      let x = a.logits([Array(tokens.prefix(length))]).value.scalars, y = b.logits([Array(tokens.prefix(length))]).value.scalars
      return zip(x, y).map { abs($0 - $1) }.max()!
    }
    #expect(difference(n) < 1e-5, "the two kernels may round differently, nothing more")
    #expect(difference(tokens.count) > 1e-3, "beyond it the two differ")
  }

  /// A model whose layers attend differently (a retrieval layer among sliding windows) is refused with
  /// each layer's pattern named; one pattern in every layer's list is not a difference.
  @Test func perLayerAttentionPatternsAreRefused() throws {
    let mixed = LlamaExportTests.config {
      $0.layerAttention = (0..<$0.layerCount).map { $0 == 1 ? .dense : .slidingWindow(window: 8, globalTokens: 1) }
    }
    #expect(throws: LlamaExportError.attentionDiffersByLayer(mixed.attentionByLayer.map { "\($0)" })) { try LlamaLayout(mixed) }
    #expect("\(LlamaExportError.attentionDiffersByLayer(["dense", "dense"]))".contains("attend differently"))
    let uniform = LlamaExportTests.config { $0.layerAttention = Array(repeating: .dense, count: $0.layerCount) }
    _ = try LlamaLayout(uniform)
  }

  /// Mixture of Experts has no Llama form; a reward model is LlamaForSequenceClassification (its score
  /// head, no LM head), which llama.cpp's llama architecture cannot hold.
  @Test func mixtureOfExpertsIsRefusedAndARewardModelIsASequenceClassifier() throws {
    let moe = LlamaExportTests.config { $0.moe = MoEConfig(routedExperts: 4, sharedExperts: 1, topK: 2, expertHiddenDim: 32) }
    #expect(throws: LlamaExportError.mixtureOfExperts(routedExperts: 4)) { try LlamaLayout(moe) }
    let reward = TransformerLM(config: LlamaExportTests.config { $0.valueHead = .scalar; $0.tiedEmbeddings = false }, seed: 1)
    let export = try HuggingFaceExport(model: reward, tokenizer: LlamaExportTests.tokenizer)
    let json = try LlamaExportTests.json(try LlamaExportTests.file(export, "config.json"))
    #expect(json["architectures"] as? [String] == ["LlamaForSequenceClassification"])
    #expect((json["id2label"] as? [String: String])?.count == 1)
    let (tensors, _) = try SafeTensors.read(try LlamaExportTests.file(export, "model.safetensors"))
    #expect(tensors["score.weight"]?.shape == [1, 64] && tensors["lm_head.weight"] == nil)
    #expect(export.warnings.contains { $0.contains("LlamaForSequenceClassification") })
    #expect(throws: LlamaExportError.valueHead) {
      try LlamaCppExport(model: reward, tokenizer: LlamaExportTests.tokenizer, name: "rm", weightType: .f32)
    }
  }

  /// Our YaRN frequencies are Llama 3's rope scaling, written here from transformers'
  /// `_compute_llama3_parameters`; the attention temperature goes into q and k.
  @Test func yarnIsLlama3ScalingWithTheTemperatureInQueryAndKey() throws {
    let config = LlamaExportTests.config { $0.ropeScaling = .yarn(factor: 8, originalContext: 16); $0.contextLength = 128 }
    let layout = try LlamaLayout(config)
    guard case .llama3(let factor, let low, let high, let original) = layout.ropeScaling else {
      Issue.record("not llama3: \(layout.ropeScaling)")
      return
    }
    for (i, ours) in layout.frequencies.enumerated() {
      let inv = Double(layout.baseFrequencies[i]), wavelength = 2 * Double.pi / inv
      let lowWavelength = Double(original) / Double(low), highWavelength = Double(original) / Double(high)
      var llama = wavelength > lowWavelength ? inv / Double(factor) : inv
      if !(wavelength < highWavelength) && !(wavelength > lowWavelength) {
        let smooth = (Double(original) / wavelength - Double(low)) / (Double(high) - Double(low))
        llama = (1 - smooth) * llama / Double(factor) + smooth * llama
      }
      #expect(abs(Double(ours) - llama) <= 1e-6 * llama, "pair \(i)")
    }
    let model = TransformerLM(config: config, seed: 1)
    let scale = layout.queryKeyScale
    #expect(abs(scale - Float(0.1 * log(8.0) + 1)) < 1e-6)
    let weights = layout.weights(of: model)
    let q = ParameterID(layer: 1, role: .attention(.query)), v = ParameterID(layer: 1, role: .attention(.value))
    #expect(weights[q]!.scalars == model.tensorsByID[q]!.scalars.map { $0 * scale })
    #expect(weights[v] == model.tensorsByID[v])
  }

  /// llama.cpp rotates adjacent pairs: rotating our q then permuting its rows equals permuting then
  /// rotating adjacent pairs.
  @Test func llamaCppRowOrderTurnsOurRoPEPairsIntoAdjacentPairs() throws {
    let config = LlamaExportTests.config()
    let layout = try LlamaLayout(config)
    let heads = 4, d = config.headDim, position: Int32 = 5
    var random = RandomStream(seed: 9, purpose: .evaluation)
    let q = (0..<(heads * d)).map { _ in random.normal() }
    let table = RoPETable(headDim: d, base: config.ropeBase, scaling: .none)
    let rotated = Variable(Tensor(shape: [1, heads * d], scalars: q)).rope(positions: [position], heads: heads, table: table).value.scalars
    let order = layout.llamaCppRowOrder(heads: heads)
    let permuted = order.map { q[$0] }
    var adjacent = permuted
    for h in 0..<heads {
      for i in 0..<(d / 2) {
        let angle = Float(position) * table.frequencies[i]
        let a = permuted[h * d + 2 * i], b = permuted[h * d + 2 * i + 1]
        adjacent[h * d + 2 * i] = a * cosf(angle) - b * sinf(angle)
        adjacent[h * d + 2 * i + 1] = b * cosf(angle) + a * sinf(angle)
      }
    }
    for (x, y) in zip(order.map { rotated[$0] }, adjacent) { #expect(abs(x - y) < 1e-5) }
  }

  /// tokenizer.json: the byte-level vocabulary (a space is `Ġ`), the merges in rank order, the specials.
  @Test func tokenizerJSONHoldsTheVocabularyAndMerges() throws {
    let tokenizer = LlamaExportTests.tokenizer
    let export = try HuggingFaceExport(model: TransformerLM(config: LlamaExportTests.config(), seed: 1), tokenizer: tokenizer)
    let json = try LlamaExportTests.json(try LlamaExportTests.file(export, "tokenizer.json"))
    let model = try #require(json["model"] as? [String: Any])
    let vocab = try #require(model["vocab"] as? [String: Int])
    let merges = try #require(model["merges"] as? [String])
    #expect(vocab.count == tokenizer.vocabularySize && merges.count == tokenizer.merges.count)
    #expect(vocab["Ġ"] == 32 && vocab["a"] == 97 && vocab["Ċ"] == 10 && vocab["</s>"] == 257)
    let vocabulary = ByteLevelVocabulary(tokenizer)
    #expect(vocabulary.duplicates.isEmpty)
    for (rank, merge) in merges.enumerated() {
      let parts = merge.split(separator: " ").map(String.init)
      let pair = tokenizer.merges[rank]
      #expect(parts.count == 2 && vocab[parts[0]] == Int(pair.first) && vocab[parts[1]] == Int(pair.second))
      #expect(vocab[parts[0] + parts[1]] == 263 + rank)
    }
    let added = try #require(json["added_tokens"] as? [[String: Any]])
    #expect(added.map { $0["content"] as? String } == SpecialToken.allCases.map(\.text))
    // The word rule as a regex cuts text as `BPETokenizer.words` does (ICU here, Oniguruma in tokenizers).
    let regex = try NSRegularExpression(pattern: HuggingFaceExport.wordPattern)
    for text in ["the cat  sat,\t\tthen 12.5 more!  ", "   a\n b\u{00A0}c", "café über 3x4", "x. a  (b)"] {
      let range = NSRange(text.startIndex..., in: text)
      let pieces = regex.matches(in: text, range: range).map { String(text[Range($0.range, in: text)!]) }
      #expect(pieces.joined() == text)
      #expect(pieces.map { Array($0.utf8) } == BPETokenizer.words(text), "\(text.debugDescription): \(pieces)")
    }
  }

  /// Matrices quantized already (an int8 artifact's Q8_0 blocks) are written as they are, q and k rows
  /// permuted block by block; a YaRN model's q and k, which carry a scale, cannot be passed that way.
  @Test func preQuantizedMatricesAreWrittenAsTheyAre() throws {
    let config = LlamaExportTests.config()
    let model = TransformerLM(config: config, seed: 4)
    let q = ParameterID(layer: 0, role: .attention(.query)), up = ParameterID(layer: 1, role: .mlp(.up))
    func blocks(_ id: ParameterID, _ step: Float) throws -> Q8_0Blocks {
      let t = model.tensorsByID[id]!
      let values = (0..<t.count).map { Int8($0 % 255 - 127) }   // not what quantizing the weight gives
      return try Q8_0Blocks(values: values, scales: [Float](repeating: step, count: t.count / 32))
    }
    let given = [q: try blocks(q, 0.25), up: try blocks(up, 0.5)]
    let export = try LlamaCppExport(model: model, tokenizer: LlamaExportTests.tokenizer, name: "int8", weightType: .q8_0, quantized: given)
    let order = try LlamaLayout(config).llamaCppRowOrder(heads: 4)
    #expect(export.file.tensor("blk.0.attn_q.weight")?.data == .q8_0(given[q]!.permutingRows(order, columns: 64)))
    #expect(export.file.tensor("blk.1.ffn_up.weight")?.data == .q8_0(given[up]!))
    #expect(throws: LlamaCppExportError.quantizedWithoutQ8_0) {
      try LlamaCppExport(model: model, tokenizer: LlamaExportTests.tokenizer, name: "int8", weightType: .f32, quantized: given)
    }
    let yarn = TransformerLM(config: LlamaExportTests.config { $0.ropeScaling = .yarn(factor: 2, originalContext: 32) }, seed: 4)
    #expect(throws: LlamaCppExportError.scaledQuantized(q.safetensorsName)) {
      try LlamaCppExport(model: yarn, tokenizer: LlamaExportTests.tokenizer, name: "int8", weightType: .q8_0, quantized: [q: given[q]!])
    }
  }

  /// The GGUF export: llama keys, llama.cpp names in order, q/k rows permuted, Q8_0 matrices, F32 norms,
  /// the vocabulary padded to the model's size.
  @Test func ggufExportHoldsLlamaKeysAndTensors() throws {
    let config = LlamaExportTests.config { $0.tiedEmbeddings = false }
    let model = TransformerLM(config: config, seed: 4)
    let export = try LlamaCppExport(model: model, tokenizer: LlamaExportTests.tokenizer, name: "tiny", weightType: .q8_0)
    let file = try GGUFFile(bytes: export.file.bytes)
    #expect(file == export.file)
    #expect(file["general.architecture"] == .string("llama") && file["llama.block_count"] == .uint32(2))
    #expect(file["llama.attention.head_count_kv"] == .uint32(2) && file["llama.feed_forward_length"] == .uint32(UInt32(config.mlpHiddenDim)))
    #expect(file["llama.rope.freq_base"] == .float32(10_000) && file["llama.attention.layer_norm_rms_epsilon"] == .float32(1e-5))
    #expect(file["tokenizer.ggml.model"] == .string("gpt2") && file["tokenizer.ggml.bos_token_id"] == .uint32(256))
    guard case .array(_, let tokens)? = file["tokenizer.ggml.tokens"], case .array(_, let merges)? = file["tokenizer.ggml.merges"] else {
      Issue.record("no token or merge arrays")
      return
    }
    #expect(tokens.count == 300 && tokens[280] == .string("[PAD280]") && merges.count == LlamaExportTests.tokenizer.merges.count)
    #expect(file.tensors.map(\.name).prefix(4) == ["token_embd.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight"])
    #expect(file.tensors.map(\.name).suffix(2) == ["output_norm.weight", "output.weight"] && file.tensors.count == 1 + 9 * 2 + 2)
    #expect(file.tensor("blk.0.attn_norm.weight")?.data.type == .f32 && file.tensor("output.weight")?.data.type == .q8_0)
    let k = try #require(file.tensor("blk.1.attn_k.weight"))
    let ours = model.tensorsByID[ParameterID(layer: 1, role: .attention(.key))]!
    let expected = try Q8_0Blocks(quantizing: permutingRows(ours, try LlamaLayout(config).llamaCppRowOrder(heads: 2)).scalars)
    #expect(k.shape == ours.shape && k.data == .q8_0(expected))
    let f32 = try LlamaCppExport(model: model, tokenizer: LlamaExportTests.tokenizer, name: "tiny", weightType: .f32)
    #expect(f32.file.tensor("blk.1.ffn_down.weight")?.data == .f32(model.tensorsByID[ParameterID(layer: 1, role: .mlp(.down))]!.scalars))
  }
}
