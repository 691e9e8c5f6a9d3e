import Foundation
@testable import Models
import Tensors
import Testing

@Suite struct ParameterIDTests {
  static let dense = ModelConfig(vocabularySize: 263, modelDim: 16, layerCount: 2, headCount: 2, contextLength: 32)
  static let moe = ModelConfig(vocabularySize: 263, modelDim: 16, layerCount: 2, headCount: 2, contextLength: 32,
                               moe: MoEConfig(routedExperts: 3, sharedExperts: 1, topK: 2, expertHiddenDim: 16,
                                              balancing: .auxiliaryLossFree(biasUpdateRate: 0.01)))

  @Test(arguments: [dense, moe, { var c = dense; c.valueHead = .scalar; return c }()])
  func everyCheckpointNameParsesBackToItsIdentity(config: ModelConfig) {
    let model = TransformerLM(config: config, seed: 1)
    let ids = Array(model.tensorsByID.keys)
    #expect(Set(ids.map(\.safetensorsName)).count == ids.count, "names are unique")
    for id in ids { #expect(ParameterID(safetensorsName: id.safetensorsName) == id, "\(id)") }
    #expect(Set(model.tensors.keys) == Set(ids.map(\.safetensorsName)))
  }

  @Test func namesAreTheLlamaAndDeepSeekLayouts() {
    #expect(ParameterID(layer: 3, role: .attention(.query)).safetensorsName == "model.layers.3.self_attn.q_proj.weight")
    #expect(ParameterID(layer: 0, role: .mlp(.down)).safetensorsName == "model.layers.0.mlp.down_proj.weight")
    #expect(ParameterID(layer: 1, role: .mlpNorm).safetensorsName == "model.layers.1.post_attention_layernorm.weight")
    #expect(ParameterID(layer: 1, role: .expert(12, .up)).safetensorsName == "model.layers.1.mlp.experts.12.up_proj.weight")
    #expect(ParameterID(layer: 2, role: .sharedExperts(.gate)).safetensorsName
      == "model.layers.2.mlp.shared_experts.gate_proj.weight")
    #expect(ParameterID(layer: 2, role: .router).safetensorsName == "model.layers.2.mlp.gate.weight")
    #expect(ParameterID(layer: 2, role: .routingBias).safetensorsName == "model.layers.2.mlp.gate.e_score_correction_bias")
    #expect(ParameterID.valueHead.safetensorsName == "score.weight")
  }

  @Test(arguments: ["model.layers.01.self_attn.q_proj.weight", "model.layers.0.self_attn.x_proj.weight",
                    "model.layers.-1.mlp.up_proj.weight", "model.layers.0.mlp.experts.a.up_proj.weight",
                    "model.layers.0.mlp.up_proj.bias", "model.embed_tokens", "lm_head.weight.extra", ""])
  func namesThisLayoutNeverWritesAreRejected(name: String) {
    #expect(ParameterID(safetensorsName: name) == nil)
  }

  @Test func aCheckpointWithAForeignTensorIsRefusedByName() {
    let model = TransformerLM(config: ParameterIDTests.dense, seed: 1)
    var tensors = model.tensors
    tensors["model.layers.0.self_attn.rotary.inv_freq"] = Tensor(zeros: [4])
    #expect(throws: ModelError.unexpectedTensor("model.layers.0.self_attn.rotary.inv_freq")) { try model.load(tensors) }
    tensors = model.tensors
    tensors[ParameterID(layer: 5, role: .mlpNorm).safetensorsName] = Tensor(zeros: [16])   // a layer it does not have
    #expect(throws: ModelError.unexpectedTensor("model.layers.5.post_attention_layernorm.weight")) { try model.load(tensors) }
  }

  @Test func weightDecayIsChosenByRole() {
    let norms = [ParameterID.finalNorm, ParameterID(layer: 0, role: .attentionNorm), ParameterID(layer: 0, role: .mlpNorm)]
    #expect(norms.allSatisfy { !$0.decays })
    let model = TransformerLM(config: ParameterIDTests.moe, seed: 1)
    #expect(model.parameters.filter { !$0.id.decays }.count == 2 * 2 + 1)
    // With a zero gradient, one AdamW step changes exactly the decaying weights, by the factor 1 − lr·wd.
    let optimizer = AdamW(parameters: model.parameters, settings: .init(
      schedule: LearningRateSchedule(peak: 0.5, warmupSteps: 0, totalSteps: 1, shape: .constant), weightDecay: 0.1))
    let before = model.tensorsByID
    for (_, v) in model.parameters { v.grad = Tensor(zeros: v.value.shape) }
    optimizer.update()
    for (id, v) in model.parameters {
      let expected = before[id]!.scalars.map { id.decays ? $0 * (1 - 0.5 * 0.1) : $0 }
      #expect(zip(v.value.scalars, expected).allSatisfy { abs($0 - $1) <= 1e-7 * max(1, abs($1)) }, "\(id)")
    }
  }

  @Test func aValueHeadLeavesTheOtherWeightsAsTheyWereAndScoresStartAtZero() throws {
    var config = ParameterIDTests.dense
    config.valueHead = .scalar
    let plain = TransformerLM(config: ParameterIDTests.dense, seed: 7)
    let scored = TransformerLM(config: config, seed: 7)
    for (id, v) in plain.parameters { #expect(scored.parameter(id)!.value.scalars == v.value.scalars, "\(id)") }
    #expect(scored.parameters.count == plain.parameters.count + 1)
    #expect(config.parameterCount == ParameterIDTests.dense.parameterCount + 16)
    let scores = scored.scores([[1, 2, 3, 4], [5, 6, 7, 8]])
    #expect(scores.shape == [8, 1])
    #expect(scores.value.scalars.allSatisfy { $0 == 0 })
    // The JSON of a model without a value head does not mention it (artifact hashes stay as they were).
    let json = String(decoding: try JSONEncoder().encode(ParameterIDTests.dense), as: UTF8.self)
    #expect(!json.contains("valueHead"))
    let back = try JSONDecoder().decode(ModelConfig.self, from: JSONEncoder().encode(config))
    #expect(back.valueHead == .scalar)
  }

  @Test func frozenParametersTakeNoGradientAndDoNotMove() {
    var config = ParameterIDTests.dense
    config.valueHead = .scalar
    let model = TransformerLM(config: config, seed: 3)
    model.trainable = .only([.valueHead])
    let optimizer = AdamW(parameters: model.parameters, settings: .init(
      schedule: LearningRateSchedule(peak: 1e-2, warmupSteps: 0, totalSteps: 5)), trains: model.trainable)
    let before = model.tensorsByID
    for _ in 0..<3 {
      model.zeroGradients()
      let s = model.scores([[1, 2, 3, 4, 5]])
      (s * s).sum().backward()        // any loss that reaches every weight through the value head
      // The head starts at zero, so push it off first: otherwise its gradient, too, would vanish.
      if model.parameter(.valueHead)!.grad != nil { model.parameter(.valueHead)!.grad = Tensor(repeating: 1, shape: [1, 16]) }
      optimizer.update()
    }
    for (id, v) in model.parameters where id != .valueHead {
      #expect(v.grad == nil, "\(id) took a gradient")
      #expect(v.value.scalars == before[id]!.scalars, "\(id) moved")
    }
    #expect(model.parameter(.valueHead)!.value.scalars != before[.valueHead]!.scalars)
    #expect(ParameterSelection.allExcept([.norm]).contains(.embedding))
    #expect(!ParameterSelection.allExcept([.norm]).contains(.finalNorm))
  }

  @Test func aProjectionWithoutGradientComputesTheSameProductAndRecordsNoWeightGradient() {
    var random = RandomStream(seed: 5, purpose: .initialization)
    let w = Variable(Tensor(shape: [3, 4], scalars: (0..<12).map { _ in random.normal() }), requiresGrad: true)
    let x = Variable(Tensor(shape: [2, 4], scalars: (0..<8).map { _ in random.normal() }), requiresGrad: true)
    let trained = Projection(.float32(w)), frozen = trained.withoutGradient
    #expect(frozen.shape == [3, 4])
    #expect(trained.apply(x).value.scalars == x.linear(w).value.scalars)
    let y = frozen.apply(x)
    #expect(y.value.scalars == trained.apply(x).value.scalars)
    y.sum().backward()
    #expect(w.grad == nil && x.grad != nil)
  }
}
