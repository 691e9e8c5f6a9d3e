import Tensors

/// How to pick each next token.
public struct SamplingSettings: Codable, Hashable, Sendable {
  /// 0 picks the most likely token (greedy).
  public var temperature: Float
  /// Keep only the k most likely tokens (nil: all).
  public var topK: Int?
  /// Keep the smallest set of tokens whose probability reaches p (nil: all).
  public var topP: Float?
  public var maxNewTokens: Int
  /// Stop a sequence when its generated text contains one of these (the text is cut before it).
  public var stopStrings: [String]
  /// Stop at the end-of-sequence token.
  public var stopAtEOS: Bool

  public init(temperature: Float = 0, topK: Int? = nil, topP: Float? = nil, maxNewTokens: Int,
              stopStrings: [String] = [], stopAtEOS: Bool = true) {
    self.temperature = temperature
    self.topK = topK
    self.topP = topP
    self.maxNewTokens = maxNewTokens
    self.stopStrings = stopStrings
    self.stopAtEOS = stopAtEOS
  }
}

/// One generated continuation.
public struct Generation: Equatable, Sendable {
  public enum FinishReason: String, Sendable { case length, eos, stopString }
  /// The new tokens (after the prompt), up to and including a final EOS.
  public var tokens: [Int32]
  /// Their text, cut before a stop string.
  public var text: String
  /// log p(token) of each new token under the model's softmax at temperature 1 (what policy-gradient
  /// methods such as GRPO need), whatever temperature or filter chose it.
  public var logProbabilities: [Float]
  public var finishReason: FinishReason
}

/// Batched generation with a key/value cache: each prompt is read once, then every step feeds one new
/// token per sequence. Prompts may have different lengths (each sequence keeps its own positions).
public final class Generator {
  public let model: TransformerLM
  private let vectors: [ParameterID: Variable]
  private let projections: [ParameterID: Projection]

  public init(model: TransformerLM) {
    self.model = model
    // Views without gradients: generation records no graph (the tensors are shared, not copied).
    var vectors: [ParameterID: Variable] = [:], projections: [ParameterID: Projection] = [:]
    for (id, v) in model.parameters { vectors[id] = Variable(v.value) }
    // Matrices only, float or int8 (a quantized model's int8 matrices are not among its parameters).
    for id in model.matrixIDs { projections[id] = model.projection(id).withoutGradient }
    self.vectors = vectors
    self.projections = projections
  }

  /// Continues each prompt.
  ///
  /// - Parameters:
  ///   - prompts: token ids, one list per sequence (each non-empty).
  ///   - random: the sampling stream (unused when greedy).
  ///   - onToken: called with (sequence, token) as soon as each token is chosen, before the next
  ///     forward pass (a terminal streams text with it). It only observes: the tokens, the random
  ///     stream and the results are the same with or without it.
  public func generate(prompts: [[Int32]], settings: SamplingSettings, tokenizer: some Tokenizer,
                       random: inout RandomStream, onToken: (_ sequence: Int, _ token: Int32) -> Void = { _, _ in }) -> [Generation] {
    precondition(prompts.allSatisfy { !$0.isEmpty })
    let c = model.config
    let capacity = (prompts.map(\.count).max() ?? 0) + settings.maxNewTokens
    precondition(capacity <= c.contextLength, "prompt + new tokens (\(capacity)) exceed the context (\(c.contextLength))")
    var cache = KVCache(config: c, batch: prompts.count, capacity: capacity)
    var lastLogits: [[Float]] = []
    // A repeated prompt (a GRPO group) is read once: its cache rows and logits are copied, bit for bit.
    var firstReader: [[Int32]: Int] = [:]
    for (b, prompt) in prompts.enumerated() {
      if let first = firstReader[prompt] {
        cache.copy(sequence: first, to: b, positions: prompt.count)
        lastLogits.append(lastLogits[first])
        continue
      }
      firstReader[prompt] = b
      let logits = forward(tokens: prompt, sequences: [Int](repeating: b, count: prompt.count),
                           positions: (0..<prompt.count).map { Int32($0) }, cache: &cache, queriesPerSequence: prompt.count)
      lastLogits.append(Array(logits.scalars[((prompt.count - 1) * c.vocabularySize)...]))
    }
    var results = prompts.map { _ in Generation(tokens: [], text: "", logProbabilities: [], finishReason: .length) }
    var active = Array(repeating: true, count: prompts.count)
    var lengths = prompts.map(\.count)
    let eos = tokenizer.id(of: .eos)
    for _ in 0..<settings.maxNewTokens {
      var next = [Int32](repeating: 0, count: prompts.count)
      for b in prompts.indices where active[b] {
        let (token, logProbability) = Sampler.sample(lastLogits[b], settings: settings, random: &random)
        next[b] = token
        results[b].tokens.append(token)
        results[b].logProbabilities.append(logProbability)
        onToken(b, token)
        if settings.stopAtEOS && token == eos {
          active[b] = false
          results[b].finishReason = .eos
        } else if !settings.stopStrings.isEmpty {
          let text = tokenizer.decode(results[b].tokens)
          if settings.stopStrings.contains(where: { text.contains($0) }) {
            active[b] = false
            results[b].finishReason = .stopString
          }
        }
      }
      let feeding = prompts.indices.filter { active[$0] }
      guard !feeding.isEmpty, results[feeding[0]].tokens.count < settings.maxNewTokens else { break }
      let logits = forward(tokens: feeding.map { next[$0] }, sequences: feeding,
                           positions: feeding.map { Int32(lengths[$0]) }, cache: &cache, queriesPerSequence: 1)
      for (row, b) in feeding.enumerated() {
        lastLogits[b] = Array(logits.scalars[(row * c.vocabularySize)..<((row + 1) * c.vocabularySize)])
        lengths[b] += 1
      }
    }
    for b in results.indices {
      var text = tokenizer.decode(results[b].tokens.filter { !(settings.stopAtEOS && $0 == eos) })
      for stop in settings.stopStrings {
        if let r = text.firstRange(of: stop) { text = String(text[..<r.lowerBound]) }
      }
      results[b].text = text
    }
    return results
  }

  /// Logits at every position of `tokens`, computed through the cache: the prompt `prefix` at once, then
  /// one token at a time. Equals the full forward pass (tested); used to check the cache.
  public func incrementalLogits(_ tokens: [Int32], prefix: Int) -> [Float] {
    var cache = KVCache(config: model.config, batch: 1, capacity: tokens.count)
    var out = forward(tokens: Array(tokens[..<prefix]), sequences: [Int](repeating: 0, count: prefix),
                      positions: (0..<prefix).map { Int32($0) }, cache: &cache, queriesPerSequence: prefix).scalars
    for i in prefix..<tokens.count {
      out += forward(tokens: [tokens[i]], sequences: [0], positions: [Int32(i)], cache: &cache, queriesPerSequence: 1).scalars
    }
    return out
  }

  /// Runs new rows through the model, writing their keys and values into the cache.
  ///
  /// Rows are grouped by sequence, `queriesPerSequence` each, in the order of `sequences`.
  private func forward(tokens: [Int32], sequences: [Int], positions: [Int32], cache: inout KVCache,
                       queriesPerSequence: Int) -> Tensor {
    let c = model.config, rows = tokens.count
    let w = TransformerLM.Weights(vector: { [vectors] in vectors[$0]! }, projection: { [projections] in projections[$0]! })
    let groups = Array(stride(from: 0, to: rows, by: queriesPerSequence))
    let (hidden, _) = model.forward(tokens: tokens, positions: positions, weights: w) { l, q, k, v in
      cache.write(layer: l, keys: k.value, values: v.value, sequences: sequences, positions: positions)
      if queriesPerSequence == 1 {
        // One new token per sequence: all of them at once, each over its own cache rows.
        let (keys, values) = cache.gather(layer: l, sequences: sequences)
        return Variable(Tensor.cachedAttention(q: q.value, keys: keys, values: values, positions: positions,
                                               batch: rows, queries: 1, keyStride: cache.capacity, heads: c.headCount,
                                               kvHeads: c.kvHeadCount, pattern: c.attention(layer: l)))
      }
      var attended = [Float](repeating: 0, count: rows * c.modelDim)
      for start in groups {
        let (keys, values) = cache.gather(layer: l, sequences: [sequences[start]])
        let span = (start * c.modelDim)..<((start + queriesPerSequence) * c.modelDim)
        let a = Tensor.cachedAttention(q: Tensor(shape: [queriesPerSequence, c.modelDim], scalars: Array(q.value.scalars[span])),
                                       keys: keys, values: values, positions: Array(positions[start..<(start + queriesPerSequence)]),
                                       batch: 1, queries: queriesPerSequence, keyStride: cache.capacity, heads: c.headCount,
                                       kvHeads: c.kvHeadCount, pattern: c.attention(layer: l))
        attended.replaceSubrange(span, with: a.scalars)
      }
      return Variable(Tensor(shape: [rows, c.modelDim], scalars: attended))
    }
    return w.projection(.lmHead).apply(hidden).value
  }
}

/// Keys and values of every layer for every sequence: `[layers][batch, kvHeads, capacity, headDim]`, so
/// that attention reads each head's keys as one contiguous block.
struct KVCache {
  let capacity: Int
  let kvHeads: Int
  let headDim: Int
  var keys: [[Float]]
  var values: [[Float]]

  init(config: ModelConfig, batch: Int, capacity: Int) {
    self.capacity = capacity
    kvHeads = config.kvHeadCount
    headDim = config.headDim
    keys = Array(repeating: [Float](repeating: 0, count: batch * capacity * kvHeads * headDim), count: config.layerCount)
    values = keys
  }

  /// Stores rows of `k` and `v` (`[rows, kvHeads·headDim]`): row r belongs to `sequences[r]` at `positions[r]`.
  mutating func write(layer: Int, keys k: Tensor, values v: Tensor, sequences: [Int], positions: [Int32]) {
    let (capacity, kvHeads, d) = (capacity, kvHeads, headDim)
    func store(_ source: Tensor, into cache: inout [Float]) {
      source.withUnsafeBufferPointer { src in
        cache.withUnsafeMutableBufferPointer { dst in
          for (row, b) in sequences.enumerated() {
            for h in 0..<kvHeads {
              let to = dst.baseAddress! + ((b * kvHeads + h) * capacity + Int(positions[row])) * d
              to.update(from: src.baseAddress! + (row * kvHeads + h) * d, count: d)
            }
          }
        }
      }
    }
    store(k, into: &keys[layer])
    store(v, into: &values[layer])
  }

  /// Copies the first `positions` keys and values of sequence `source` into sequence `target`, in every layer.
  mutating func copy(sequence source: Int, to target: Int, positions: Int) {
    let (capacity, kvHeads, d) = (capacity, kvHeads, headDim)
    func copy(_ cache: inout [Float]) {
      cache.withUnsafeMutableBufferPointer { p in
        for h in 0..<kvHeads {
          let from = p.baseAddress! + (source * kvHeads + h) * capacity * d
          (p.baseAddress! + (target * kvHeads + h) * capacity * d).update(from: from, count: positions * d)
        }
      }
    }
    for layer in keys.indices {
      copy(&keys[layer])
      copy(&values[layer])
    }
  }

  /// The caches of some sequences, in that order, as `[count, kvHeads, capacity, headDim]` tensors.
  func gather(layer: Int, sequences: [Int]) -> (Tensor, Tensor) {
    let perSequence = kvHeads * capacity * headDim
    let batch = keys[layer].count / perSequence
    let shape = [sequences.count, kvHeads, capacity, headDim]
    if sequences == Array(0..<batch) {  // every sequence in order: share the buffers, copy nothing
      return (Tensor(shape: shape, scalars: keys[layer]), Tensor(shape: shape, scalars: values[layer]))
    }
    var k: [Float] = [], v: [Float] = []
    k.reserveCapacity(sequences.count * perSequence)
    v.reserveCapacity(sequences.count * perSequence)
    for b in sequences {
      k += keys[layer][(b * perSequence)..<((b + 1) * perSequence)]
      v += values[layer][(b * perSequence)..<((b + 1) * perSequence)]
    }
    return (Tensor(shape: shape, scalars: k), Tensor(shape: shape, scalars: v))
  }
}
