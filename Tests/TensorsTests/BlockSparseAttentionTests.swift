@testable import Tensors
import Testing

/// Block-sparse attention through matrix products (`blockSparseAttentionForward/Backward`) against the
/// pair-by-pair kernel, which chooses the same blocks through `BlockChooser`; and the pattern's costs.
@Suite struct BlockSparseAttentionTests {
  func random(_ count: Int, seed: UInt32) -> [Float] {
    var rng = RandomStream(seed: 14, purpose: .evaluation, substream: seed)
    return (0..<count).map { _ in rng.normal() }
  }

  /// What one kernel computes: the output, the saved weights, and the three gradients of Σ w · out.
  struct Result {
    var out: [Float], probs: [Float], dq: [Float], dk: [Float], dv: [Float]
  }

  /// Runs the block kernel (`blocks`) or the pair-by-pair kernel, forward and backward, on training
  /// inputs q [batch, seq, heads, headDim], k, v [batch, seq, kvHeads, headDim].
  func run(blocks: Bool, q: [Float], k: [Float], v: [Float], dOut: [Float], shape s: AttentionShape) -> Result {
    var r = Result(out: [Float](repeating: 0, count: q.count), probs: [Float](repeating: 0, count: s.batch * s.heads * s.queries * s.maxKeys),
                   dq: [Float](repeating: 0, count: q.count), dk: [Float](repeating: 0, count: k.count),
                   dv: [Float](repeating: 0, count: v.count))
    let positions = (0..<(s.batch * s.queries)).map { Int32($0 % s.queries) }
    q.withUnsafeBufferPointer { pq in
      k.withUnsafeBufferPointer { pk in
        v.withUnsafeBufferPointer { pv in
          dOut.withUnsafeBufferPointer { pg in
            positions.withUnsafeBufferPointer { ppos in
              r.out.withUnsafeMutableBufferPointer { po in
                r.probs.withUnsafeMutableBufferPointer { pp in
                  if blocks {
                    blockSparseAttentionForward(q: pq.baseAddress!, k: pk.baseAddress!, v: pv.baseAddress!,
                                                out: po.baseAddress!, probs: pp.baseAddress!, shape: s)
                  } else {
                    attentionForward(q: pq.baseAddress!, k: pk.baseAddress!, v: pv.baseAddress!, out: po.baseAddress!,
                                     probs: pp.baseAddress!, positions: ppos.baseAddress!, shape: s)
                  }
                }
              }
              r.dq.withUnsafeMutableBufferPointer { dq in
                r.dk.withUnsafeMutableBufferPointer { dk in
                  r.dv.withUnsafeMutableBufferPointer { dv in
                    r.probs.withUnsafeBufferPointer { pp in
                      if blocks {
                        blockSparseAttentionBackward(dOut: pg.baseAddress!, q: pq.baseAddress!, k: pk.baseAddress!,
                                                     v: pv.baseAddress!, probs: pp.baseAddress!, dq: dq.baseAddress!,
                                                     dk: dk.baseAddress!, dv: dv.baseAddress!, shape: s)
                      } else {
                        attentionBackward(dOut: pg.baseAddress!, q: pq.baseAddress!, k: pk.baseAddress!, v: pv.baseAddress!,
                                          probs: pp.baseAddress!, positions: ppos.baseAddress!, dq: dq.baseAddress!,
                                          dk: dk.baseAddress!, dv: dv.baseAddress!, shape: s)
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    return r
  }

  func shape(batch: Int = 2, seq: Int, heads: Int = 4, kvHeads: Int = 2, headDim: Int = 20,
             block: Int, topBlocks: Int) -> AttentionShape {
    AttentionShape(batch: batch, queries: seq, keyStride: seq, heads: heads, kvHeads: kvHeads, headDim: headDim,
                   pattern: .blockSparse(block: block, topBlocks: topBlocks), scale: 1 / Float(headDim).squareRoot())
  }

  /// The largest of |a − b| / max(1, |b|).
  func worstRelativeDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    var worst: Float = 0
    for i in a.indices { worst = max(worst, abs(a[i] - b[i]) / max(1, abs(b[i]))) }
    return worst
  }

  /// Blocks of 16 over sequences that end at, just past and between block edges; no middle block
  /// chosen, one, three, and more than there are (every query then takes all of its middle blocks).
  /// GQA (4 heads over 2 kv heads), batch 2. The saved weights are compared too: the layout the pair
  /// kernel's backward reads.
  @Test(arguments: [16, 17, 47, 100], [0, 1, 3, 9])
  func blockKernelEqualsThePairwiseKernel(seq: Int, topBlocks: Int) {
    let s = shape(seq: seq, block: 16, topBlocks: topBlocks)
    let q = random(s.batch * seq * s.heads * s.headDim, seed: 1)
    let k = random(s.batch * seq * s.kvHeads * s.headDim, seed: 2), v = random(k.count, seed: 3)
    let dOut = random(q.count, seed: 4)
    let fast = run(blocks: true, q: q, k: k, v: v, dOut: dOut, shape: s)
    let reference = run(blocks: false, q: q, k: k, v: v, dOut: dOut, shape: s)
    for (name, a, b) in [("output", fast.out, reference.out), ("probs", fast.probs, reference.probs),
                         ("dq", fast.dq, reference.dq), ("dk", fast.dk, reference.dk), ("dv", fast.dv, reference.dv)] {
      let worst = worstRelativeDifference(a, b)
      #expect(worst <= 1e-5, "\(name): largest relative difference \(worst)")
    }
  }

  /// Queries of a block that all choose alike (identical rows) make the gathered products as wide as
  /// the block; the results are still those of the pair kernel.
  @Test func queriesThatAgreeShareTheirProducts() {
    let s = shape(batch: 1, seq: 64, heads: 2, kvHeads: 1, headDim: 8, block: 8, topBlocks: 2)
    let row = random(s.heads * s.headDim, seed: 5)
    let q = (0..<s.queries).flatMap { _ in row }
    let k = random(s.queries * s.headDim, seed: 6), v = random(k.count, seed: 7), dOut = random(q.count, seed: 8)
    let fast = run(blocks: true, q: q, k: k, v: v, dOut: dOut, shape: s)
    let reference = run(blocks: false, q: q, k: k, v: v, dOut: dOut, shape: s)
    for (name, a, b) in [("output", fast.out, reference.out), ("dq", fast.dq, reference.dq),
                         ("dk", fast.dk, reference.dk), ("dv", fast.dv, reference.dv)] {
      let worst = worstRelativeDifference(a, b)
      #expect(worst <= 1e-5, "\(name): largest relative difference \(worst)")
    }
  }

  /// Training dispatches block-sparse attention to the block kernel (`pairwise: false`) and keeps the
  /// pair kernel under `pairwise: true`: each gives its kernel's bits, and the two kernels round
  /// differently here, so a wrong dispatch would show.
  @Test func trainingRunsTheBlockKernel() {
    let s = shape(batch: 1, seq: 40, heads: 2, kvHeads: 2, headDim: 8, block: 8, topBlocks: 1)
    let q = random(s.queries * s.heads * s.headDim, seed: 9), k = random(q.count, seed: 10), v = random(q.count, seed: 11)
    let ones = [Float](repeating: 1, count: q.count)
    let block = run(blocks: true, q: q, k: k, v: v, dOut: ones, shape: s)
    let pair = run(blocks: false, q: q, k: k, v: v, dOut: ones, shape: s)
    #expect(block.out != pair.out)
    func attend(pairwise: Bool) -> (out: [Float], dk: [Float]) {
      let vq = Variable(Tensor(shape: [s.queries, s.heads * s.headDim], scalars: q))
      let vk = Variable(Tensor(shape: [s.queries, s.kvHeads * s.headDim], scalars: k), requiresGrad: true)
      let vv = Variable(Tensor(shape: [s.queries, s.kvHeads * s.headDim], scalars: v))
      let o = Variable.attention(q: vq, k: vk, v: vv, batch: 1, heads: s.heads, kvHeads: s.kvHeads, pattern: s.pattern,
                                 pairwise: pairwise)
      o.sum().backward()
      return (o.value.scalars, vk.grad!.scalars)
    }
    let trained = attend(pairwise: false), reference = attend(pairwise: true)
    #expect(trained.out == block.out && trained.dk == block.dk)
    #expect(reference.out == pair.out && reference.dk == pair.dk)
  }

  /// Decoding (`Tensor.cachedAttention`, the pair kernel over a head-major cache) gives what training's
  /// block kernel gives for the same sequence: both choose through `BlockChooser`.
  @Test func decodingAgreesWithTraining() {
    let seq = 45, heads = 4, kvHeads = 2, d = 8
    let pattern = AttentionPattern.blockSparse(block: 4, topBlocks: 2)
    let q = random(seq * heads * d, seed: 12), k = random(seq * kvHeads * d, seed: 13), v = random(k.count, seed: 14)
    let trained = Variable.attention(q: Variable(Tensor(shape: [seq, heads * d], scalars: q)),
                                     k: Variable(Tensor(shape: [seq, kvHeads * d], scalars: k)),
                                     v: Variable(Tensor(shape: [seq, kvHeads * d], scalars: v)),
                                     batch: 1, heads: heads, kvHeads: kvHeads, pattern: pattern).value
    func headMajor(_ x: [Float]) -> Tensor {  // [seq, kvHeads, d] → [kvHeads, seq, d]
      var out = [Float](repeating: 0, count: x.count)
      for j in 0..<seq { for h in 0..<kvHeads { for e in 0..<d { out[(h * seq + j) * d + e] = x[(j * kvHeads + h) * d + e] } } }
      return Tensor(shape: [1, kvHeads, seq, d], scalars: out)
    }
    let decoded = Tensor.cachedAttention(q: Tensor(shape: [seq, heads * d], scalars: q), keys: headMajor(k),
                                         values: headMajor(v), positions: (0..<seq).map { Int32($0) }, batch: 1,
                                         queries: seq, keyStride: seq, heads: heads, kvHeads: kvHeads, pattern: pattern)
    let worst = worstRelativeDifference(trained.scalars, decoded.scalars)
    #expect(worst <= 1e-5, "largest relative difference \(worst)")
  }

  /// Central differences on a tiny case with several blocks to choose from (block 2, top 1, seq 9,
  /// 2 heads over 1 kv head); no score lies near a tie, so the choice holds within the step.
  @Test func gradientsMatchFiniteDifferences() {
    let seq = 9, heads = 2, d = 3
    let pattern = AttentionPattern.blockSparse(block: 2, topBlocks: 1)
    let inputs = [random(seq * heads * d, seed: 15), random(seq * d, seed: 16), random(seq * d, seed: 17)]
    let widths = [heads * d, d, d]
    let c = random(seq * heads * d, seed: 18)
    func output(_ x: [[Float]], grad: Bool) -> ([Variable], Variable) {
      let vars = x.indices.map { Variable(Tensor(shape: [seq, widths[$0]], scalars: x[$0]), requiresGrad: grad) }
      let o = Variable.attention(q: vars[0], k: vars[1], v: vars[2], batch: 1, heads: heads, kvHeads: 1, pattern: pattern)
      return (vars, o)
    }
    func loss(_ x: [[Float]]) -> Double {
      let y = output(x, grad: false).1.value.scalars
      return zip(c, y).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }
    let (vars, o) = output(inputs, grad: true)
    (o * Variable(Tensor(shape: o.shape, scalars: c))).sum().backward()
    let h: Float = 1e-2
    for n in inputs.indices {
      let analytic = vars[n].grad!.scalars
      var worst: Float = 0
      for i in inputs[n].indices {
        var plus = inputs, minus = inputs
        plus[n][i] += h
        minus[n][i] -= h
        let numeric = Float((loss(plus) - loss(minus)) / Double(2 * h))
        worst = max(worst, abs(numeric - analytic[i]) / max(1, abs(numeric), abs(analytic[i])))
      }
      #expect(worst < 1e-3, "input \(n): worst relative error \(worst)")
    }
  }

  /// The same bits on one core as on all: tasks are (batch, kv head), large enough here to be split.
  @Test func resultsDoNotDependOnTheThreadCount() {
    let s = shape(seq: 128, headDim: 16, block: 16, topBlocks: 3)
    let q = random(s.batch * s.queries * s.heads * s.headDim, seed: 19)
    let k = random(s.batch * s.queries * s.kvHeads * s.headDim, seed: 20), v = random(k.count, seed: 21)
    let dOut = random(q.count, seed: 22)
    let parallel = run(blocks: true, q: q, k: k, v: v, dOut: dOut, shape: s)
    let serial = Parallelism.$forceSerial.withValue(true) { run(blocks: true, q: q, k: k, v: v, dOut: dOut, shape: s) }
    #expect(parallel.out == serial.out)
    #expect(parallel.probs == serial.probs)
    #expect(parallel.dq == serial.dq && parallel.dk == serial.dk && parallel.dv == serial.dv)
  }

  /// t = 8, blocks of 2, top 1, counted by hand. Queries 0–1 (block 0) attend to 1 and 2 keys;
  /// 2–3 to the first block and 1 or 2 own keys (3, 4); 4–5 and 6–7 to the first block, one chosen
  /// block and 1 or 2 own keys (5, 6, 5, 6): 32 pairs. Scores: queries 4–5 score block 1, queries 6–7
  /// blocks 1 and 2: 6. More than dense attention's 36 at this length.
  @Test func costsCountedByHand() {
    let pattern = AttentionPattern.blockSparse(block: 2, topBlocks: 1)
    #expect(pattern.attendedPairs(length: 8) == 32)
    #expect(pattern.blockScores(length: 8) == 6)
    #expect(pattern.scoredPairs(length: 8) == 38)
    #expect(AttentionPattern.dense.scoredPairs(length: 8) == 36)
    #expect(AttentionPattern.blockSparse(block: 2, topBlocks: 0).blockScores(length: 8) == 0, "nothing to choose, nothing scored")
    let window = AttentionPattern.slidingWindow(window: 256, globalTokens: 16)
    #expect(window.blockScores(length: 4096) == 0)
    #expect(window.scoredPairs(length: 4096) == window.attendedPairs(length: 4096))
  }

  /// The block scores are the dot products `BlockChooser` computes: per block of queries, its queries
  /// times the blocks between the first and its own (a last, partial block included).
  @Test func blockScoresCountWhatTheChooserScores() {
    let pattern = AttentionPattern.blockSparse(block: 16, topBlocks: 3)
    var expected = 0
    for own in 0..<7 { expected += min(16, 100 - own * 16) * max(0, own - 1) }
    #expect(pattern.blockScores(length: 100) == expected)
    #expect(expected == 16 * (1 + 2 + 3 + 4) + 4 * 5)
  }

  /// The chooser's partial selection picks what a full sort by (score descending, block ascending)
  /// picks, ties included: each block's keys are all one vector (so its mean is that vector), and
  /// blocks 2 and 5, and 3 and 6, are the same vector, so they tie for every query.
  @Test func theChooserPicksTheBestBlocksWithTiesToTheEarlier() {
    let block = 4, blocks = 9, d = 4, t = block * blocks
    var vectors = (0..<blocks).map { random(d, seed: UInt32(100 + $0)) }
    vectors[5] = vectors[2]
    vectors[6] = vectors[3]
    let keys = (0..<t).flatMap { vectors[$0 / block] }
    let positions = (0..<t).map { Int32($0) }
    for top in [1, 2, 3, 5, 8] {
      let s = AttentionShape(batch: 1, queries: t, keyStride: t, heads: 1, kvHeads: 1, headDim: d,
                             pattern: .blockSparse(block: block, topBlocks: top), scale: 1)
      keys.withUnsafeBufferPointer { pk in
        positions.withUnsafeBufferPointer { pp in
          var chooser = BlockChooser(shape: s, keys: pk.baseAddress!, positions: pp.baseAddress!, batch: 0, kvHead: 0)
          for probe in 0..<20 {
            let query = random(d, seed: UInt32(500 + probe))
            // Queries equal to a tied vector make the tied pair the best, so the tie decides.
            let q = probe < 2 ? vectors[2 + probe] : query
            for position in stride(from: 2 * block, to: t, by: 3) {
              let own = position / block
              let scored = (1..<own).map { j in (score: zip(q, vectors[j]).reduce(Float(0)) { $0 + $1.0 * $1.1 }, block: j) }
              let reference = scored.sorted { $0.score != $1.score ? $0.score > $1.score : $0.block < $1.block }
                .prefix(top).map(\.block).sorted()
              let chosen = q.withUnsafeBufferPointer { chooser.chosenBlocks(position: position, query: $0.baseAddress!) }
              #expect(chosen == reference, "top \(top), position \(position), probe \(probe)")
            }
          }
        }
      }
    }
  }
}
