import Foundation
import Models
import Pipeline
@testable import Recipes
import Tensors
import Testing

/// The pieces of `long_context` that its numbers rest on: held-out passkeys and filler that training
/// never sees, the retrieval layers' configuration, perplexity by position and the attention cost.
@Suite struct LongContextOpTests {
  /// Every held-out passkey is a key no training document can hold, and no held-out document has a
  /// training filler sentence (nor a training document a held-out one).
  @Test func heldOutPasskeysAndFillerAreDisjointFromTraining() {
    var rng = TaskRandom(seed: 3, stream: "passkey-split")
    let task = PasskeyTask(length: 2048)
    var trainingKeys = Set<String>(), heldoutKeys = Set<String>()
    for _ in 0..<200 {
      let train = task.example(split: .train, using: &rng), heldout = task.example(split: .heldout, using: &rng)
      trainingKeys.insert(train.answer)
      heldoutKeys.insert(heldout.answer)
      #expect(PasskeyTask.split(ofKey: train.answer) == .train)
      #expect(PasskeyTask.split(ofKey: heldout.answer) == .heldout)
      #expect(!PasskeyTask.trainingFillers.contains { heldout.prompt.contains($0) })
      #expect(!PasskeyTask.heldoutFillers.contains { train.prompt.contains($0) })
      #expect(heldout.prompt.contains("The pass key is \(heldout.answer). Remember it."))
    }
    #expect(trainingKeys.isDisjoint(with: heldoutKeys))
    #expect(heldoutKeys.count > 150, "held-out keys vary: \(heldoutKeys.count) distinct of 200")
    #expect(Set(PasskeyTask.trainingFillers).isDisjoint(with: PasskeyTask.heldoutFillers))
  }

  static let input = ModelConfig(vocabularySize: 64, modelDim: 16, layerCount: 4, headCount: 2, contextLength: 256,
                                 attention: .slidingWindow(window: 32, globalTokens: 2))

  @Test func retrievalLayersReplaceThePatternOfTheirLayersOnly() throws {
    var settings = LongContextOp.Settings()
    settings.context = 4096
    settings.retrieval = LongContextOp.RetrievalSettings(layers: [1, 3], kind: .blockSparse, block: 32, topBlocks: 2)
    let config = try LongContextOp.extended(Self.input, settings: settings)
    let window = AttentionPattern.slidingWindow(window: 32, globalTokens: 2), blocks = AttentionPattern.blockSparse(block: 32, topBlocks: 2)
    #expect(config.attentionByLayer == [window, blocks, window, blocks])
    #expect(config.contextLength == 4096)
    #expect(config.problems.isEmpty)
    // Without retrieval: every layer as it was, and the config's JSON has no per-layer list.
    settings.retrieval = nil
    let plain = try LongContextOp.extended(Self.input, settings: settings)
    #expect(plain.layerAttention == nil)
    #expect(!String(decoding: try JSONEncoder().encode(plain), as: UTF8.self).contains("layerAttention"))
  }

  @Test func aRetrievalLayerPastTheLastIsAClearFailure() {
    var settings = LongContextOp.Settings()
    settings.retrieval = LongContextOp.RetrievalSettings(layers: [4])
    #expect {
      _ = try LongContextOp.extended(Self.input, settings: settings)
    } throws: { error in
      "\(error)".contains("retrieval.layers: layer 4 does not exist (the model has 4 layers, 0–3)")
    }
    settings.retrieval = LongContextOp.RetrievalSettings(layers: [2, 2])
    #expect(LongContextOp().problems(in: settings).map(\.path) == ["retrieval.layers"])
  }

  @Test func aLayerSelectionHoldsOnlyThoseLayersWeights() {
    let selection = ParameterSelection.layers([2])
    #expect(selection.contains(ParameterID(layer: 2, role: .attention(.query))))
    #expect(selection.contains(ParameterID(layer: 2, role: .mlpNorm)))
    #expect(!selection.contains(ParameterID(layer: 1, role: .attention(.query))))
    #expect(!selection.contains(.embedding))
    #expect(!selection.contains(.lmHead))
    #expect(selection != .all)
  }

  @Test func positionBucketsDoubleUpToTheContext() {
    #expect(PositionBuckets(context: 8192).ranges == [0..<1024, 1024..<2048, 2048..<4096, 4096..<8192])
    #expect((0..<4).map { PositionBuckets(context: 8192).label($0) } == ["0k-1k", "1k-2k", "2k-4k", "4k-8k"])
    #expect(PositionBuckets(context: 1536).ranges == [0..<1024, 1024..<1536])
    #expect(PositionBuckets(context: 512).ranges == [0..<512])
  }

  /// Perplexity by position through the cache equals exp of the training path's mean cross-entropy.
  @Test func perplexityByPositionMatchesTheTrainingLoss() {
    let config = ModelConfig(vocabularySize: 64, modelDim: 16, layerCount: 2, headCount: 2, contextLength: 64)
    let model = TransformerLM(config: config, seed: 5)
    let row = (0..<41).map { Int32(($0 * 7 + 3) % 64) }
    let buckets = PositionBuckets(context: 40)
    let perplexity = buckets.perplexity(of: model, on: [row])
    let loss = Double(model.loss([row]).value.scalars[0])
    #expect(perplexity.count == 1)
    #expect(abs(log(perplexity[0]) - loss) < 1e-4, "log perplexity \(log(perplexity[0])) vs loss \(loss)")
  }

  /// Hand-counted: 2 heads of 8 dims at 8 tokens. Dense: 36 pairs, 8 keys at most; a window of 2 with
  /// no globals: 15 pairs, 2 keys at most.
  @Test func attentionCostCountsEveryLayer() {
    var config = ModelConfig(vocabularySize: 64, modelDim: 16, layerCount: 2, headCount: 2, contextLength: 8)
    config.layerAttention = [.dense, .slidingWindow(window: 2, globalTokens: 0)]
    let cost = AttentionCost(config: config, length: 8)
    #expect(cost.bytesPerToken == Double(2 * 8 * 4 + 2 * 2 * 4))
    #expect(cost.flopsPerToken == Double(2 * 8) * Double(4 * (36 + 15)) / 8)
    #expect(AttentionCost.lengths(upTo: 8192) == [512, 1024, 2048, 4096, 8192])
    #expect(AttentionCost.lengths(upTo: 3000) == [512, 1024, 2048, 3000])
  }
}
