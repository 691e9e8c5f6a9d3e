import Foundation
@testable import Models
import Tensors
import Testing

@Suite struct TransformerTests {
  static let text = "The quick brown fox jumps over the lazy dog. El rápido zorro marrón salta sobre el perro perezoso. "

  static func tiny(vocabulary: Int = 263, context: Int = 64, kvHeads: Int? = nil,
                   attention: AttentionPattern = .dense) -> ModelConfig {
    ModelConfig(vocabularySize: vocabulary, modelDim: 64, layerCount: 2, headCount: 4, kvHeadCount: kvHeads,
                contextLength: context, attention: attention)
  }

  /// Windows of the text, `batch` of them, each seq + 1 tokens, chosen by a seeded stream.
  static func batch(_ ids: [Int32], size: Int, seq: Int, random: inout RandomStream) -> [[Int32]] {
    (0..<size).map { _ in
      let start = Int(random.nextUInt32() % UInt32(ids.count - seq - 1))
      return Array(ids[start..<(start + seq + 1)])
    }
  }

  static func train(_ model: TransformerLM, optimizer: AdamW, ids: [Int32], steps: Int, seed: UInt64, from: Int = 0) -> Float {
    var random = RandomStream(seed: seed, purpose: .dataOrder).advanced(by: UInt64(from * 1000))
    var loss: Float = 0
    for step in from..<(from + steps) {
      random = RandomStream(seed: seed, purpose: .dataOrder).advanced(by: UInt64(step * 1000))
      let tokens = batch(ids, size: 8, seq: 32, random: &random)
      model.zeroGradients()
      let l = model.loss(tokens)
      l.backward()
      optimizer.update()
      loss = l.value.scalars[0]
    }
    return loss
  }

  @Test func parameterCountMatchesTheWeights() {
    for config in [TransformerTests.tiny(), TransformerTests.tiny(kvHeads: 2),
                   ModelConfig(vocabularySize: 300, modelDim: 32, layerCount: 3, headCount: 2, contextLength: 16, tiedEmbeddings: true)] {
      let model = TransformerLM(config: config, seed: 1)
      #expect(model.parameters.reduce(0) { $0 + $1.variable.value.count } == config.parameterCount)
    }
    // by hand: d=64, f=176 (8/3·64 rounded up to 8), V=263, 2 layers
    #expect(TransformerTests.tiny().parameterCount == 263 * 64 * 2 + 2 * (4 * 64 * 64 + 3 * 64 * 176 + 2 * 64) + 64)
  }

  @Test func aSmallModelOverfitsAShortText() {
    let ids = ByteTokenizer().encode(TransformerTests.text)
    let model = TransformerLM(config: TransformerTests.tiny(), seed: 3)
    let optimizer = AdamW(parameters: model.parameters,
                          settings: .init(schedule: LearningRateSchedule(peak: 1e-2, warmupSteps: 10, totalSteps: 150), weightDecay: 0))
    var random = RandomStream(seed: 1, purpose: .dataOrder)
    let first = model.loss(TransformerTests.batch(ids, size: 8, seq: 32, random: &random)).value.scalars[0]
    let last = TransformerTests.train(model, optimizer: optimizer, ids: ids, steps: 150, seed: 9)
    #expect(first > 5, "starts near ln(263) = 5.57: \(first)")
    #expect(last < 0.25, "memorised after 150 steps: loss \(last)")
  }

  @Test func theSameSeedGivesTheSameWeights() {
    let ids = ByteTokenizer().encode(TransformerTests.text)
    func run() -> [UInt8] {
      let model = TransformerLM(config: TransformerTests.tiny(kvHeads: 2), seed: 11)
      let optimizer = AdamW(parameters: model.parameters, settings: .init(schedule: LearningRateSchedule(peak: 3e-3, warmupSteps: 2, totalSteps: 5)))
      _ = TransformerTests.train(model, optimizer: optimizer, ids: ids, steps: 5, seed: 2)
      return model.safetensors()
    }
    #expect(run() == run())
    #expect(TransformerLM(config: TransformerTests.tiny(), seed: 1).safetensors()
              != TransformerLM(config: TransformerTests.tiny(), seed: 2).safetensors())
  }

  @Test func aResumedRunContinuesBitForBit() throws {
    let ids = ByteTokenizer().encode(TransformerTests.text)
    let settings = AdamW.Settings(schedule: LearningRateSchedule(peak: 3e-3, warmupSteps: 2, totalSteps: 6))
    let straight = TransformerLM(config: TransformerTests.tiny(), seed: 5)
    _ = TransformerTests.train(straight, optimizer: AdamW(parameters: straight.parameters, settings: settings), ids: ids, steps: 6, seed: 4)

    let first = TransformerLM(config: TransformerTests.tiny(), seed: 5)
    let firstOptimizer = AdamW(parameters: first.parameters, settings: settings)
    _ = TransformerTests.train(first, optimizer: firstOptimizer, ids: ids, steps: 3, seed: 4)
    let weights = first.safetensors(), state = firstOptimizer.serialized()

    let resumed = try TransformerLM(safetensors: weights)
    let optimizer = AdamW(parameters: resumed.parameters, settings: settings)
    try optimizer.restore(state)
    #expect(optimizer.step == 3)
    _ = TransformerTests.train(resumed, optimizer: optimizer, ids: ids, steps: 3, seed: 4, from: 3)
    #expect(resumed.safetensors() == straight.safetensors())
  }

  @Test(arguments: [AttentionPattern.dense, .slidingWindow(window: 5, globalTokens: 2), .blockSparse(block: 3, topBlocks: 2)])
  func cachedGenerationMatchesRecomputation(pattern: AttentionPattern) {
    let model = TransformerLM(config: TransformerTests.tiny(kvHeads: 2, attention: pattern), seed: 8)
    let tokens = ByteTokenizer().encode("Hola, ¿qué tal? 12 + 5")
    let full = model.logits([tokens]).value.scalars
    let incremental = Generator(model: model).incrementalLogits(tokens, prefix: 4)
    #expect(full.count == incremental.count)
    var worst: Float = 0
    for i in full.indices { worst = max(worst, abs(full[i] - incremental[i])) }
    #expect(worst < 1e-4, "largest logit difference \(worst)")
  }

  @Test func raggedBatchesGenerateWhatEachPromptGeneratesAlone() {
    let model = TransformerLM(config: TransformerTests.tiny(), seed: 8)
    let tokenizer = ByteTokenizer()
    let prompts = ["a", "The quick brown", "¿Dónde?"].map { tokenizer.encode($0) }
    let settings = SamplingSettings(temperature: 0, maxNewTokens: 12, stopAtEOS: false)
    var random = RandomStream(seed: 1, purpose: .sampling)
    let together = Generator(model: model).generate(prompts: prompts, settings: settings, tokenizer: tokenizer, random: &random)
    for (i, prompt) in prompts.enumerated() {
      let alone = Generator(model: model).generate(prompts: [prompt], settings: settings, tokenizer: tokenizer, random: &random)[0]
      #expect(alone.tokens == together[i].tokens)
      #expect(together[i].tokens.count == 12)
      #expect(together[i].logProbabilities.allSatisfy { $0 <= 0 })
    }
  }

  @Test func samplingIsSeededAndStopsAtStopStrings() {
    let ids = ByteTokenizer().encode(TransformerTests.text)
    let model = TransformerLM(config: TransformerTests.tiny(), seed: 3)
    let optimizer = AdamW(parameters: model.parameters,
                          settings: .init(schedule: LearningRateSchedule(peak: 1e-2, warmupSteps: 10, totalSteps: 120), weightDecay: 0))
    _ = TransformerTests.train(model, optimizer: optimizer, ids: ids, steps: 120, seed: 9)
    let tokenizer = ByteTokenizer()
    let settings = SamplingSettings(temperature: 0.8, topK: 20, topP: 0.95, maxNewTokens: 40, stopStrings: ["dog"])
    var a = RandomStream(seed: 7, purpose: .sampling), b = RandomStream(seed: 7, purpose: .sampling)
    let x = Generator(model: model).generate(prompts: [tokenizer.encode("The quick")], settings: settings, tokenizer: tokenizer, random: &a)
    let y = Generator(model: model).generate(prompts: [tokenizer.encode("The quick")], settings: settings, tokenizer: tokenizer, random: &b)
    #expect(x == y)
    let greedy = Generator(model: model).generate(prompts: [tokenizer.encode("The quick brown fox jumps over the lazy")],
                                                  settings: SamplingSettings(maxNewTokens: 10, stopStrings: ["dog"]),
                                                  tokenizer: tokenizer, random: &a)[0]
    #expect(greedy.finishReason == .stopString)
    #expect(greedy.text == " ")
  }
}

@Suite struct SafeTensorsTests {
  @Test func roundTripIsBitExactAndTheHeaderFollowsTheSpec() throws {
    let model = TransformerLM(config: TransformerTests.tiny(), seed: 4)
    let bytes = model.safetensors()
    let (tensors, metadata) = try SafeTensors.read(bytes)
    #expect(tensors == model.tensors)
    #expect(metadata["format"] == "pt")
    #expect(try TransformerLM(safetensors: bytes).safetensors() == bytes)

    // The header, parsed by hand: u64 little-endian length, JSON padded to 8, offsets tiling the data.
    let n = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
    #expect(n % 8 == 0)
    let header = try #require(try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any])
    #expect(header["model.embed_tokens.weight"] != nil)
    #expect(header["model.layers.1.self_attn.q_proj.weight"] != nil)
    #expect(header["model.layers.0.mlp.gate_proj.weight"] != nil)
    #expect(header["lm_head.weight"] != nil && header["model.norm.weight"] != nil)
    let offsets = header.filter { $0.key != "__metadata__" }.compactMap { ($0.value as? [String: Any])?["data_offsets"] as? [Int] }
      .sorted { $0[0] < $1[0] }
    var expected = 0
    for o in offsets {
      #expect(o[0] == expected)
      expected = o[1]
    }
    #expect(8 + n + expected == bytes.count)
  }

  @Test func malformedFilesAreRejected() {
    let good = SafeTensors.write(["a": Tensor(shape: [2], scalars: [1, 2])])
    #expect(throws: SafeTensorsError.self) { _ = try SafeTensors.read(Array(good.prefix(5))) }
    #expect(throws: SafeTensorsError.self) { _ = try SafeTensors.read(Array(good.dropLast(1))) }
    var wrongLength = good
    wrongLength[0] = 0xFF
    #expect(throws: SafeTensorsError.self) { _ = try SafeTensors.read(wrongLength) }
    let badType = Array(String(decoding: good, as: UTF8.self).replacingOccurrences(of: "F32", with: "F64").utf8)
    #expect(throws: SafeTensorsError.self) { _ = try SafeTensors.read(badType) }
  }
}

@Suite struct GradientAccumulationTests {
  /// Micro-batches whose losses are scaled by 1/count accumulate the gradient of the whole batch.
  @Test func microBatchesAccumulateTheGradientOfTheWholeBatch() {
    let ids = ByteTokenizer().encode(TransformerTests.text)
    var random = RandomStream(seed: 3, purpose: .dataOrder)
    let tokens = TransformerTests.batch(ids, size: 8, seq: 16, random: &random)
    let whole = TransformerLM(config: TransformerTests.tiny(), seed: 6)
    whole.loss(tokens).backward()
    let parts = TransformerLM(config: TransformerTests.tiny(), seed: 6)
    parts.loss(Array(tokens[..<4])).scaled(by: 0.5).backward()
    parts.loss(Array(tokens[4...])).scaled(by: 0.5).backward()
    for ((name, a), (_, b)) in zip(whole.parameters, parts.parameters) {
      let ga = a.grad!.scalars, gb = b.grad!.scalars
      let scale = ga.map(abs).max() ?? 1
      let worst = zip(ga, gb).map { abs($0 - $1) }.max() ?? 0
      #expect(worst <= 1e-4 * max(scale, 1e-3), "\(name): \(worst) of \(scale)")
    }
  }
}
