import Models
import Testing
@testable import lineage

/// Training FLOPs per token of the reference configurations (PERFORMANCE.md), computed by hand.
@Suite struct ModelFLOPsTests {
  static let d128 = ModelConfig(vocabularySize: 256, modelDim: 128, layerCount: 4, headCount: 4, mlpHiddenDim: 512,
                                contextLength: 128)

  /// d128: per layer q, k, v, o 4·128² = 65,536 and SwiGLU 3·128·512 = 196,608 weights, ×4 layers,
  /// plus the LM head 256·128 = 32,768: N = 1,081,344, 6·N = 6,488,064. Causal attention:
  /// 12 · 4 layers · 128 wide · 64 keys (half of 128) = 393,216. PaLM's full count would add as much again
  /// (7,274,496, the 7.27M of PERFORMANCE.md).
  @Test func denseD128() {
    let flops = ModelFLOPs(config: Self.d128, sequenceLength: 128)
    #expect(flops.matmulWeights == 1_081_344)
    #expect(flops.weightFLOPs == 6_488_064)
    #expect(flops.attentionFLOPs == 393_216)
    #expect(flops.perToken == 6_881_280)
    #expect(flops.perToken + flops.attentionFLOPs == 7_274_496)
  }

  /// d256: per layer 4·256² + 3·256·1,024 = 1,048,576, ×4, + head 65,536: N = 4,259,840;
  /// attention 12 · 4 · 256 · 64 = 786,432.
  @Test func denseD256() {
    let config = ModelConfig(vocabularySize: 256, modelDim: 256, layerCount: 4, headCount: 4, mlpHiddenDim: 1024,
                             contextLength: 128)
    let flops = ModelFLOPs(config: config, sequenceLength: 128)
    #expect(flops.matmulWeights == 4_259_840)
    #expect(flops.perToken == 25_559_040 + 786_432)
  }

  /// MoE d128, 8 routed top-2 + 1 shared expert of hidden 256: a token multiplies the router (128·8) and
  /// 3 experts of 3·128·256: 1,024 + 294,912, with attention 65,536, per layer; ×4, + head 32,768:
  /// N = 1,478,656 (the 1.48M active of PERFORMANCE.md).
  @Test func mixtureOfExpertsCountsActiveExpertsOnly() {
    let config = ModelConfig(vocabularySize: 256, modelDim: 128, layerCount: 4, headCount: 4, contextLength: 128,
                             moe: MoEConfig(routedExperts: 8, sharedExperts: 1, topK: 2, expertHiddenDim: 256))
    let flops = ModelFLOPs(config: config, sequenceLength: 128)
    #expect(flops.matmulWeights == 1_478_656)
    #expect(flops.perToken == 6 * 1_478_656 + 393_216)
  }

  /// A tied table is still multiplied as the LM head: the same N as untied.
  @Test func tiedEmbeddingsStillCountTheHead() {
    var tied = Self.d128
    tied.tiedEmbeddings = true
    #expect(ModelFLOPs(config: tied, sequenceLength: 128).matmulWeights == 1_081_344)
  }

  /// A reward model's value head (`[1, d]`) is a product too: d more weights.
  @Test func aValueHeadIsCounted() {
    var scored = Self.d128
    scored.valueHead = .scalar
    #expect(ModelFLOPs(config: scored, sequenceLength: 128).matmulWeights == 1_081_344 + 128)
  }

  /// A 32-token window over 128 tokens: queries 0…31 see 1…32 keys, the other 96 see 32:
  /// (528 + 3,072) / 128 = 28.125 keys per query; 12 · 4 · 128 · 28.125 = 172,800.
  @Test func slidingWindowCountsThePairsItScores() {
    var windowed = Self.d128
    windowed.attention = .slidingWindow(window: 32, globalTokens: 0)
    let flops = ModelFLOPs(config: windowed, sequenceLength: 128)
    #expect(flops.keysPerQuery == 28.125)
    #expect(flops.attentionFLOPs == 172_800)
  }
}
