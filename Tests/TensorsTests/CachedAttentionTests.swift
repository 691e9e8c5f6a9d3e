import Testing
@testable import Tensors

/// A prompt read at once through the decoding cache: the blocked dense kernel against the pair-by-pair one.
@Suite struct CachedAttentionTests {
  /// Standard normal values from a fixed stream.
  static func values(_ count: Int, seed: UInt64) -> [Float] {
    var rng = RandomStream(seed: seed, purpose: .initialization)
    return (0..<count).map { _ in rng.normal() }
  }

  @Test(arguments: [(queries: 16, first: 0), (queries: 70, first: 0), (queries: 130, first: 9), (queries: 64, first: 64)])
  func blockedPromptEqualsPairByPair(_ c: (queries: Int, first: Int)) {
    let batch = 2, heads = 4, kvHeads = 2, d = 8, stride = c.first + c.queries + 3
    let q = Self.values(batch * c.queries * heads * d, seed: 1)
    let keys = Self.values(batch * kvHeads * stride * d, seed: 2), values = Self.values(batch * kvHeads * stride * d, seed: 3)
    let positions = (0..<batch).flatMap { _ in (0..<c.queries).map { Int32(c.first + $0) } }
    let blocked = Tensor.cachedAttention(q: Tensor(shape: [batch * c.queries, heads * d], scalars: q),
                                         keys: Tensor(shape: [keys.count], scalars: keys),
                                         values: Tensor(shape: [values.count], scalars: values), positions: positions,
                                         batch: batch, queries: c.queries, keyStride: stride, heads: heads,
                                         kvHeads: kvHeads, pattern: .dense).scalars
    let shape = AttentionShape(batch: batch, queries: c.queries, keyStride: stride, heads: heads, kvHeads: kvHeads,
                               headDim: d, pattern: .dense, scale: 1 / Float(d).squareRoot(), headMajorKeys: true)
    var pairwise = [Float](repeating: 0, count: q.count)
    pairwise.withUnsafeMutableBufferPointer { out in
      attentionForward(q: q, k: keys, v: values, out: out.baseAddress!, probs: nil, positions: positions, shape: shape)
    }
    let worst = zip(blocked, pairwise).map { abs($0 - $1) }.max()!
    #expect(worst < 1e-5, "largest difference \(worst)")
    // A key past a query's own position must not count: change one, and earlier queries are unchanged.
    var later = keys
    for b in 0..<batch { for h in 0..<kvHeads { later[((b * kvHeads + h) * stride + c.first + c.queries - 1) * d] += 100 } }
    let shifted = Tensor.cachedAttention(q: Tensor(shape: [batch * c.queries, heads * d], scalars: q),
                                         keys: Tensor(shape: [keys.count], scalars: later),
                                         values: Tensor(shape: [values.count], scalars: values), positions: positions,
                                         batch: batch, queries: c.queries, keyStride: stride, heads: heads,
                                         kvHeads: kvHeads, pattern: .dense).scalars
    for b in 0..<batch {
      for i in 0..<(c.queries - 1) {
        let row = (b * c.queries + i) * heads * d
        #expect(Array(shifted[row..<(row + heads * d)]) == Array(blocked[row..<(row + heads * d)]))
      }
    }
  }
}
