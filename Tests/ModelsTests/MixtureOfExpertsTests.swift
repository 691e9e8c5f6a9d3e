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

  // MARK: - Upcycling

  /// A dense model whose MLPs matter: their weights ×8, so the MLP moves the logits far more than
  /// float rounding does (a wrong split could not hide under the tolerance).
  static func denseModel(seed: UInt64 = 5) throws -> TransformerLM {
    let model = TransformerLM(config: ModelConfig(vocabularySize: 263, modelDim: 32, layerCount: 2, headCount: 2,
                                                  contextLength: 64), seed: seed)
    var tensors = model.tensorsByID
    for (id, t) in tensors where id.role.group == .mlp { tensors[id] = Tensor(shape: t.shape, scalars: t.scalars.map { $0 * 8 }) }
    try model.load(tensors)
    return model
  }

  static let upcyclingTokens = [ByteTokenizer().encode("Upcycled experts compute what the dense MLP did."),
                                ByteTokenizer().encode("Los expertos copiados calculan lo que calculaba la MLP.")]
    .map { Array($0.prefix(40)) }

  /// max |a − b| / max |b|.
  static func relativeDifference(_ a: [Float], _ b: [Float]) -> Float {
    var worst: Float = 0, scale: Float = 0
    for i in b.indices { worst = max(worst, abs(a[i] - b[i])); scale = max(scale, abs(b[i])) }
    return worst / scale
  }

  static func upcyclingConfig(routed: Int, shared: Int, topK: Int, gate: MoEConfig.Gate = .sigmoid) -> MoEConfig {
    MoEConfig(routedExperts: routed, sharedExperts: shared, topK: topK, expertHiddenDim: 88 / (shared + 1), gate: gate,
              balancing: .auxiliaryLossFree(biasUpdateRate: 1e-3))
  }

  /// Before the perturbation the upcycled model is the dense one: its logits agree to float rounding,
  /// for top-1 (weights ½ or 1/E, the routed down projections scaled back) and for top-2
  /// (renormalised weights over identical copies), with and without a shared expert.
  @Test(arguments: [(4, 1, 1, MoEConfig.Gate.sigmoid), (4, 1, 2, .sigmoid), (3, 0, 1, .sigmoid), (4, 1, 1, .softmax),
                    (4, 1, 3, .softmax)])
  func upcyclingWithoutPerturbationKeepsTheDenseLogits(routed: Int, shared: Int, topK: Int, gate: MoEConfig.Gate) throws {
    let dense = try Self.denseModel()
    let moe = try dense.upcycled(to: Self.upcyclingConfig(routed: routed, shared: shared, topK: topK, gate: gate), seed: 9)
    let expected = dense.logits(Self.upcyclingTokens).value.scalars
    let found = moe.logits(Self.upcyclingTokens).value.scalars
    let difference = Self.relativeDifference(found, expected)
    #expect(difference <= 1e-5, "relative difference \(difference)")
    #expect(moe.config.moe?.expertHiddenDim == 88 / (shared + 1))
    #expect(moe.routingBias.allSatisfy { $0.allSatisfy { $0 == 0 } })
    // The same through the KV cache of generation.
    let incremental = Generator(model: moe).incrementalLogits(Self.upcyclingTokens[0], prefix: 7)
    let full = moe.logits([Self.upcyclingTokens[0]]).value.scalars
    #expect(Self.relativeDifference(incremental, full) < 1e-4)

    // The check can fail: without the routed experts' scale (top-1) or with one expert's copy
    // halved (top-k), the logits move far past the tolerance.
    var tensors = moe.tensorsByID
    let down = ParameterID(layer: 0, role: .expert(0, .down))
    tensors[down] = Tensor(shape: tensors[down]!.shape, scalars: tensors[down]!.scalars.map { $0 * 0.5 })
    try moe.load(tensors)
    let broken = Self.relativeDifference(moe.logits(Self.upcyclingTokens).value.scalars, expected)
    #expect(broken > 1e-3, "halving a routed expert moves the logits by only \(broken)")
  }

  /// With the perturbation the logits move, but little; the experts differ from one another, the
  /// router spreads tokens over several experts from the first forward pass, and the seed decides it all.
  @Test func thePerturbationMovesTheLogitsSlightlyAndSpreadsTheTokens() throws {
    let dense = try Self.denseModel()
    let config = Self.upcyclingConfig(routed: 4, shared: 1, topK: 1)
    let moe = try dense.upcycled(to: config, perturbation: 0.01, seed: 9)
    let expected = dense.logits(Self.upcyclingTokens).value.scalars
    let difference = Self.relativeDifference(moe.logits(Self.upcyclingTokens).value.scalars, expected)
    #expect(difference > 1e-5 && difference < 0.05, "relative difference \(difference)")
    for layer in moe.lastExpertLoad {
      #expect(layer.filter { $0 > 0 }.count >= 3, "tokens spread over the experts: \(layer)")
    }
    let e0 = moe.parameter(ParameterID(layer: 0, role: .expert(0, .gate)))!.value.scalars
    let e1 = moe.parameter(ParameterID(layer: 0, role: .expert(1, .gate)))!.value.scalars
    #expect(e0 != e1)
    let again = try dense.upcycled(to: config, perturbation: 0.01, seed: 9)
    #expect(again.safetensors() == moe.safetensors())
    let other = try dense.upcycled(to: config, perturbation: 0.01, seed: 10)
    #expect(other.safetensors() != moe.safetensors())
  }

  @Test func upcyclingRefusesWhatItCannotSplit() throws {
    let dense = try Self.denseModel()
    var config = Self.upcyclingConfig(routed: 4, shared: 1, topK: 1)
    config.expertHiddenDim = 40
    #expect(throws: UpcyclingError.hiddenMismatch(mlpHidden: 88, sharedExperts: 1, expertHidden: 40)) {
      try dense.upcycled(to: config, seed: 1)
    }
    #expect(UpcyclingError.hiddenMismatch(mlpHidden: 88, sharedExperts: 1, expertHidden: 40).description.contains("hidden: 44"))
    let moe = try dense.upcycled(to: Self.upcyclingConfig(routed: 4, shared: 1, topK: 1), seed: 1)
    #expect(throws: UpcyclingError.notDense(routedExperts: 4)) {
      try moe.upcycled(to: Self.upcyclingConfig(routed: 4, shared: 1, topK: 1), seed: 1)
    }
    #expect(throws: UpcyclingError.self) { try dense.upcycled(to: Self.upcyclingConfig(routed: 2, shared: 1, topK: 3), seed: 1) }
  }

  /// Auxiliary-loss-free balancing moves load toward balance, in the right direction: from a routing
  /// skewed toward expert 0 (its selection bias starts at +0.3, more than the random router's scores
  /// differ), each step lowers the bias of every expert above the mean load and raises it for every
  /// one below, and the over-loaded expert's load falls until the layer is near even.
  @Test func theRoutingBiasMovesLoadTowardBalance() throws {
    let config = ModelConfig(vocabularySize: 263, modelDim: 32, layerCount: 2, headCount: 2, contextLength: 64,
                             moe: MoEConfig(routedExperts: 4, sharedExperts: 1, topK: 1, expertHiddenDim: 16, gate: .sigmoid,
                                            balancing: .auxiliaryLossFree(biasUpdateRate: 0.02)))
    let model = TransformerLM(config: config, seed: 4)
    var tensors = model.tensorsByID
    for l in 0..<2 {
      // A router with some spread (N(0, 0.1²) rows) so that its scores, not ties, decide the rest.
      var rng = RandomStream(seed: UInt64(l), purpose: .initialization)
      tensors[ParameterID(layer: l, role: .router)] = Tensor(shape: [4, 32], scalars: (0..<128).map { _ in rng.normal() * 0.1 })
      tensors[ParameterID(layer: l, role: .routingBias)] = Tensor(shape: [4], scalars: [0.3, 0, 0, 0])
    }
    try model.load(tensors)
    var random = RandomStream(seed: 4, purpose: .dataOrder)
    let ids = ByteTokenizer().encode(String(repeating: TransformerTests.text, count: 3))
    let batch = TransformerTests.batch(ids, size: 8, seq: 32, random: &random).map { Array($0.dropLast()) }
    func variation(_ load: [Int]) -> Double {
      let mean = Double(load.reduce(0, +)) / Double(load.count)
      return (load.map { (Double($0) - mean) * (Double($0) - mean) }.reduce(0, +) / Double(load.count)).squareRoot() / mean
    }
    _ = model.logits(batch)
    let firstLoad = model.lastExpertLoad
    for layer in firstLoad { #expect(layer[0] == layer.max()!, "expert 0 starts over-loaded: \(layer)") }
    for _ in 0..<60 {
      _ = model.logits(batch)
      let load = model.lastExpertLoad, before = model.routingBias
      model.updateRoutingBias(load: load)
      for l in 0..<2 {
        let mean = Double(load[l].reduce(0, +)) / 4
        for e in 0..<4 {
          let moved = model.routingBias[l][e] - before[l][e]
          if Double(load[l][e]) > mean { #expect(moved < 0, "layer \(l) expert \(e) over-loaded \(load[l]), bias moved \(moved)") }
          if Double(load[l][e]) < mean { #expect(moved > 0, "layer \(l) expert \(e) under-loaded \(load[l]), bias moved \(moved)") }
        }
      }
    }
    _ = model.logits(batch)
    for l in 0..<2 {
      let last = model.lastExpertLoad[l]
      #expect(last[0] < firstLoad[l][0], "layer \(l): expert 0 \(firstLoad[l][0]) → \(last[0]) tokens")
      #expect(variation(last) < 0.5 * variation(firstLoad[l]), "layer \(l): load \(firstLoad[l]) → \(last)")
      #expect(model.routingBias[l][0] < 0.3)
    }
    #expect(model.lastDroppedTokens == [0, 0])
  }
}
