@testable import Models
import Tensors
import Testing

@Suite struct MixtureOfExpertsTests {
  static func config(_ balancing: MoEConfig.Balancing, gate: MoEConfig.Gate = .softmax) -> ModelConfig {
    ModelConfig(vocabularySize: 263, modelDim: 32, layerCount: 2, headCount: 2, contextLength: 64,
                moe: MoEConfig(routedExperts: 4, sharedExperts: 1, topK: 2, expertHiddenDim: 32, gate: gate, balancing: balancing))
  }

  @Test func parameterCountsCountEveryAndTheActiveWeights() {
    let c = MixtureOfExpertsTests.config(.auxiliaryLoss(weight: 0.01))
    let model = TransformerLM(config: c, seed: 1)
    #expect(model.parameters.reduce(0) { $0 + $1.variable.value.count } == c.parameterCount)
    // per layer: attention 4·32², gate 4·32, experts (4 routed + 1 shared) · 3·32·32, norms 2·32
    #expect(c.parameterCount == 263 * 32 * 2 + 2 * (4 * 32 * 32 + 4 * 32 + 5 * 3 * 32 * 32 + 2 * 32) + 32)
    #expect(c.parameterCount - c.activeParameterCount == 2 * 2 * 3 * 32 * 32, "two routed experts idle per token per layer")
  }

  @Test(arguments: [MoEConfig.Balancing.auxiliaryLoss(weight: 0.01), .auxiliaryLossFree(biasUpdateRate: 0.01)])
  func anMoEModelTrainsAndEveryExpertGetsTokens(balancing: MoEConfig.Balancing) {
    let ids = ByteTokenizer().encode(TransformerTests.text)
    let model = TransformerLM(config: MixtureOfExpertsTests.config(balancing), seed: 2)
    let optimizer = AdamW(parameters: model.parameters,
                          settings: .init(schedule: LearningRateSchedule(peak: 1e-2, warmupSteps: 5, totalSteps: 60), weightDecay: 0))
    var random = RandomStream(seed: 4, purpose: .dataOrder)
    var first: Float = 0, last: Float = 0
    var totalLoad = [[Int]](repeating: [0, 0, 0, 0], count: 2)
    for step in 0..<60 {
      let tokens = TransformerTests.batch(ids, size: 8, seq: 32, random: &random)
      model.zeroGradients()
      let loss = model.loss(tokens)
      loss.backward()
      optimizer.update()
      model.updateRoutingBias(load: model.lastExpertLoad)
      if step == 0 { first = loss.value.scalars[0] }
      last = loss.value.scalars[0]
      for l in 0..<2 { for e in 0..<4 { totalLoad[l][e] += model.lastExpertLoad[l][e] } }
      // each token goes to exactly top-k experts
      #expect(model.lastExpertLoad.allSatisfy { $0.reduce(0, +) == 8 * 32 * 2 })
    }
    #expect(last < first - 1, "loss falls: \(first) → \(last)")
    for l in 0..<2 {
      let share = totalLoad[l].map { Double($0) / Double(totalLoad[l].reduce(0, +)) }
      #expect(share.allSatisfy { $0 > 0.05 }, "layer \(l) loads \(totalLoad[l])")
    }
    if case .auxiliaryLossFree = balancing { #expect(model.routingBias.contains { $0.contains { $0 != 0 } }) }
  }

  @Test func generationThroughTheCacheMatchesRecomputation() {
    let model = TransformerLM(config: MixtureOfExpertsTests.config(.auxiliaryLossFree(biasUpdateRate: 0.01), gate: .sigmoid), seed: 3)
    let tokens = ByteTokenizer().encode("mixture of experts 123")
    let full = model.logits([tokens]).value.scalars
    let incremental = Generator(model: model).incrementalLogits(tokens, prefix: 5)
    var worst: Float = 0
    for i in full.indices { worst = max(worst, abs(full[i] - incremental[i])) }
    #expect(worst < 1e-4)
  }

  @Test func routingBiasIsSavedWithTheWeights() throws {
    let model = TransformerLM(config: MixtureOfExpertsTests.config(.auxiliaryLossFree(biasUpdateRate: 0.5)), seed: 3)
    _ = model.loss([ByteTokenizer().encode("some text to route")])
    model.updateRoutingBias(load: model.lastExpertLoad)
    let restored = try TransformerLM(safetensors: model.safetensors())
    #expect(restored.routingBias == model.routingBias)
    #expect(restored.safetensors() == model.safetensors())
  }
}
