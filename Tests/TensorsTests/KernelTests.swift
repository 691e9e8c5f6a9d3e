@testable import Tensors
import Testing

@Suite struct KernelTests {
  func random(_ count: Int, seed: UInt32) -> [Float] {
    var rng = RandomStream(seed: 5, purpose: .evaluation, substream: seed)
    return (0..<count).map { _ in rng.normal() }
  }

  /// Every layout, several rows and one row (the matrix–vector path), with β = 0 over garbage (NaN)
  /// and with α and β accumulating.
  @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
  func sgemmMatchesTheNaiveProduct(transposeA: Bool, transposeB: Bool) {
    for m in [7, 1] {
      let n = 5, k = 9
      let a = random(m * k, seed: 1), b = random(k * n, seed: 2), start = random(m * n, seed: 3)
      let reference = sgemmReference(a, transposeA: transposeA, b, transposeB: transposeB, m: m, n: n, k: k)
      for (alpha, beta) in [(Float(1), Float(0)), (0.5, 2)] {
        var c = beta == 0 ? [Float](repeating: .nan, count: m * n) : start
        a.withUnsafeBufferPointer { pa in
          b.withUnsafeBufferPointer { pb in
            c.withUnsafeMutableBufferPointer { pc in
              sgemm(pa.baseAddress!, transposeA: transposeA, pb.baseAddress!, transposeB: transposeB, pc.baseAddress!,
                    m: m, n: n, k: k, alpha: alpha, beta: beta)
            }
          }
        }
        for i in 0..<c.count {
          let expected = alpha * reference[i] + (beta == 0 ? 0 : beta * start[i])
          #expect(abs(c[i] - expected) < 1e-4, "m \(m), α \(alpha), β \(beta), element \(i)")
        }
      }
    }
  }

  func attend(_ q: Tensor, _ k: Tensor, _ v: Tensor, batch: Int, heads: Int, kvHeads: Int, pattern: AttentionPattern) -> Tensor {
    Variable.attention(q: Variable(q), k: Variable(k), v: Variable(v), batch: batch, heads: heads, kvHeads: kvHeads,
                       pattern: pattern).value
  }

  @Test func aWindowCoveringTheSequenceEqualsDenseAttention() {
    let q = Tensor(shape: [16, 8], scalars: random(128, seed: 1))
    let k = Tensor(shape: [16, 8], scalars: random(128, seed: 2)), v = Tensor(shape: [16, 8], scalars: random(128, seed: 3))
    // Dense attention runs as matrix products: equal up to summation order.
    func close(_ a: Tensor, _ b: Tensor) -> Bool { zip(a.scalars, b.scalars).allSatisfy { abs($0 - $1) < 1e-5 } }
    let dense = attend(q, k, v, batch: 2, heads: 2, kvHeads: 2, pattern: .dense)
    let window = attend(q, k, v, batch: 2, heads: 2, kvHeads: 2, pattern: .slidingWindow(window: 8, globalTokens: 0))
    #expect(close(dense, window))
    let global = attend(q, k, v, batch: 2, heads: 2, kvHeads: 2, pattern: .slidingWindow(window: 3, globalTokens: 8))
    #expect(window == global, "the same keys through the same kernel: bit for bit")
    let narrow = attend(q, k, v, batch: 2, heads: 2, kvHeads: 2, pattern: .slidingWindow(window: 3, globalTokens: 0))
    #expect(dense != narrow)
  }

  @Test func blockSparseWithEveryBlockChosenEqualsDenseAndOtherwiseAttendsLess() {
    let q = Tensor(shape: [32, 8], scalars: random(256, seed: 1))
    let k = Tensor(shape: [32, 8], scalars: random(256, seed: 2)), v = Tensor(shape: [32, 8], scalars: random(256, seed: 3))
    let dense = attend(q, k, v, batch: 1, heads: 2, kvHeads: 2, pattern: .dense)
    let all = attend(q, k, v, batch: 1, heads: 2, kvHeads: 2, pattern: .blockSparse(block: 4, topBlocks: 8))
    for i in 0..<dense.count { #expect(abs(dense.scalars[i] - all.scalars[i]) < 1e-5) }
    let sparse = attend(q, k, v, batch: 1, heads: 2, kvHeads: 2, pattern: .blockSparse(block: 4, topBlocks: 1))
    #expect(sparse != dense)
    // the first two blocks have nothing to choose: identical to dense there
    for i in 0..<(8 * 8) { #expect(abs(dense.scalars[i] - sparse.scalars[i]) < 1e-5) }
    let pattern = AttentionPattern.blockSparse(block: 64, topBlocks: 2)
    #expect(pattern.attendedPairs(length: 4096) < 4096 * 64 * 4)
    #expect(Double(AttentionPattern.dense.attendedPairs(length: 4096)) / Double(pattern.attendedPairs(length: 4096)) > 8)
  }

  @Test func slidingWindowCostGrowsWithTheWindowNotTheSquare() {
    let dense = AttentionPattern.dense.attendedPairs(length: 4096)
    let window = AttentionPattern.slidingWindow(window: 256, globalTokens: 16).attendedPairs(length: 4096)
    #expect(dense == 4096 * 4097 / 2)
    #expect(window < 4096 * (256 + 16))
    #expect(Double(dense) / Double(window) > 7)
  }

  /// Dense and sliding-window attention through matrix products (the whole square; blocks of 64
  /// queries) against the pair-by-pair kernel: outputs and all three gradients. The long cases span
  /// several query blocks, with windows that cross block edges and global tokens.
  @Test(arguments: [(AttentionPattern.dense, 24), (.slidingWindow(window: 5, globalTokens: 0), 24),
                    (.slidingWindow(window: 7, globalTokens: 3), 24), (.slidingWindow(window: 40, globalTokens: 2), 150),
                    (.slidingWindow(window: 100, globalTokens: 0), 200), (.slidingWindow(window: 3, globalTokens: 70), 90)])
  func attentionByMatrixProductsEqualsThePairwiseKernel(pattern: AttentionPattern, seq: Int) {
    let rows = 2 * seq, heads = 4, kvHeads = 2, d = 8
    let q = Tensor(shape: [rows, heads * d], scalars: random(rows * heads * d, seed: 1))
    let k = Tensor(shape: [rows, kvHeads * d], scalars: random(rows * kvHeads * d, seed: 2))
    let v = Tensor(shape: [rows, kvHeads * d], scalars: random(rows * kvHeads * d, seed: 3))
    let weights = Tensor(shape: [rows, heads * d], scalars: random(rows * heads * d, seed: 4))
    func run(pairwise: Bool) -> [Tensor] {
      let vq = Variable(q, requiresGrad: true), vk = Variable(k, requiresGrad: true), vv = Variable(v, requiresGrad: true)
      let o = Variable.attention(q: vq, k: vk, v: vv, batch: 2, heads: heads, kvHeads: kvHeads, pattern: pattern,
                                 pairwise: pairwise)
      (o * Variable(weights)).sum().backward()
      return [o.value, vq.grad!, vk.grad!, vv.grad!]
    }
    let fast = run(pairwise: false)
    let reference = run(pairwise: true)
    for (name, (a, b)) in zip(["output", "dq", "dk", "dv"], zip(fast, reference)) {
      var worst: Float = 0
      for i in 0..<a.count { worst = max(worst, abs(a.scalars[i] - b.scalars[i])) }
      #expect(worst < 1e-5, "\(name): largest difference \(worst)")
    }
  }

  @Test func groupedQueryAttentionEqualsRepeatedKVHeads() {
    // 4 query heads over 2 kv heads equals 4 kv heads where heads 0,1 copy kv head 0 and 2,3 kv head 1.
    let rows = 6, d = 2
    let q = Tensor(shape: [rows, 4 * d], scalars: random(rows * 4 * d, seed: 1))
    let k = Tensor(shape: [rows, 2 * d], scalars: random(rows * 2 * d, seed: 2))
    let v = Tensor(shape: [rows, 2 * d], scalars: random(rows * 2 * d, seed: 3))
    func expand(_ t: Tensor) -> Tensor {
      var out: [Float] = []
      for r in 0..<rows {
        for h in 0..<4 {
          let start: Int = (r * 2 + h / 2) * d
          out.append(contentsOf: t.scalars[start..<(start + d)])
        }
      }
      return Tensor(shape: [rows, 4 * d], scalars: out)
    }
    let grouped = attend(q, k, v, batch: 1, heads: 4, kvHeads: 2, pattern: .dense)
    let full = attend(q, expand(k), expand(v), batch: 1, heads: 4, kvHeads: 4, pattern: .dense)
    for i in 0..<grouped.count { #expect(abs(grouped.scalars[i] - full.scalars[i]) < 1e-6) }
  }

  @Test func parallelKernelsGiveTheSameBitsAsSerial() {
    let rows = 2 * 64, heads = 4, d = 16
    let q = Tensor(shape: [rows, heads * d], scalars: random(rows * heads * d, seed: 1))
    let k = Tensor(shape: [rows, heads * d], scalars: random(rows * heads * d, seed: 2))
    let v = Tensor(shape: [rows, heads * d], scalars: random(rows * heads * d, seed: 3))
    func run() -> (Tensor, Tensor) {
      let vq = Variable(q, requiresGrad: true), vk = Variable(k, requiresGrad: true), vv = Variable(v, requiresGrad: true)
      let o = Variable.attention(q: vq, k: vk, v: vv, batch: 2, heads: heads, kvHeads: heads, pattern: .dense)
      o.sum().backward()
      return (o.value, vk.grad!)
    }
    let parallel = run()
    let serial = Parallelism.$forceSerial.withValue(true) { run() }
    #expect(parallel.0 == serial.0)
    #expect(parallel.1 == serial.1)

    // Products split across cores by rows (training) and by columns (few rows, or one, decoding): the same
    // bits whether the halves run at once or one after the other.
    for (m, n, kk) in [(256, 384, 128), (16, 1024, 256), (1, 1024, 256)] {
      let a = Variable(Tensor(shape: [m, kk], scalars: random(m * kk, seed: 5)), requiresGrad: true)
      let w = Variable(Tensor(shape: [n, kk], scalars: random(n * kk, seed: 6)), requiresGrad: true)
      func product() -> (Tensor, Tensor) {
        a.zeroGrad()
        w.zeroGrad()
        let y = a.linear(w)
        y.sum().backward()
        return (y.value, w.grad!)
      }
      let split = product()
      let whole = Parallelism.$forceSerial.withValue(true) { product() }
      #expect(split.0 == whole.0, "\(m)×\(kk)×\(n) forward")
      #expect(split.1 == whole.1, "\(m)×\(kk)×\(n) weight gradient")
    }
  }

  @Test func ropeAtAnOffsetEqualsTheSameRowsOfTheFullSequence() {
    let table = RoPETable(headDim: 8, base: 10_000, scaling: .none)
    let x = Tensor(shape: [6, 16], scalars: random(96, seed: 4))
    let full = Variable(x).rope(positions: [0, 1, 2, 3, 4, 5], heads: 2, table: table).value
    let tail = Variable(Tensor(shape: [2, 16], scalars: Array(x.scalars[64...]))).rope(positions: [4, 5], heads: 2, table: table).value
    #expect(Array(full.scalars[64...]) == tail.scalars)
    // position 0 is the identity rotation
    #expect(Array(full.scalars[0..<16]) == Array(x.scalars[0..<16]))
  }

  @Test func ropeScalingStretchesRotations() {
    let plain = RoPETable(headDim: 8, base: 10_000, scaling: .none)
    let linear = RoPETable(headDim: 8, base: 10_000, scaling: .linear(factor: 4))
    #expect(linear.frequencies.map { $0 * 4 }.elementsEqual(plain.frequencies) { abs($0 - $1) < 1e-6 * max(1, abs($1)) })
    let ntk = RoPETable(headDim: 8, base: 10_000, scaling: .ntk(factor: 4))
    #expect(ntk.frequencies[0] == plain.frequencies[0], "NTK keeps the highest frequency")
    #expect(ntk.frequencies[3] < plain.frequencies[3], "and stretches the lowest")
    let yarn = RoPETable(headDim: 8, base: 10_000, scaling: .yarn(factor: 4, originalContext: 1024))
    #expect(yarn.magnitude > 1)
    #expect(yarn.frequencies[0] == plain.frequencies[0], "many turns over the context: kept")
    #expect(abs(yarn.frequencies[3] - plain.frequencies[3] / 4) < 1e-9, "under one turn: interpolated")
  }

  @Test func randomStreamsAreReproducibleAndIndependent() {
    var a = RandomStream(seed: 1, purpose: .initialization), b = RandomStream(seed: 1, purpose: .initialization)
    var c = RandomStream(seed: 1, purpose: .sampling), d = RandomStream(seed: 2, purpose: .initialization)
    let xa = (0..<100).map { _ in a.nextUInt32() }
    #expect(xa == (0..<100).map { _ in b.nextUInt32() })
    #expect(xa != (0..<100).map { _ in c.nextUInt32() })
    #expect(xa != (0..<100).map { _ in d.nextUInt32() })
    // resuming a stream at a position continues it exactly
    var e = RandomStream(seed: 1, purpose: .initialization)
    for _ in 0..<40 { _ = e.nextUInt32() }
    var f = RandomStream(seed: 1, purpose: .initialization).advanced(by: 10)
    #expect((0..<20).map { _ in e.nextUInt32() } == (0..<20).map { _ in f.nextUInt32() })
    // normals look normal
    var g = RandomStream(seed: 3, purpose: .initialization)
    let samples = (0..<20_000).map { _ in Double(g.normal()) }
    let mean = samples.reduce(0, +) / Double(samples.count)
    let variance = samples.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(samples.count)
    #expect(abs(mean) < 0.03 && abs(variance - 1) < 0.05)
  }

  @Test func crossEntropyIgnoresMaskedRows() {
    let logits = Tensor(shape: [2, 3], scalars: [1, 2, 3, 100, -100, 0])
    let masked = Variable(logits).crossEntropy(targets: [2, 1], weights: [1, 0]).value.scalars[0]
    let alone = Variable(Tensor(shape: [1, 3], scalars: [1, 2, 3])).crossEntropy(targets: [2]).value.scalars[0]
    #expect(abs(masked - alone) < 1e-6)
  }

  /// The kernel threads under several callers at once (concurrent stages): every index of every job
  /// runs exactly once, whether a caller got the helpers or ran its job alone, and nothing deadlocks.
  @Test func kernelThreadsRunEveryIndexOnceUnderConcurrentCallers() async {
    let results = await withTaskGroup(of: Bool.self) { group in
      for caller in 0..<4 {
        group.addTask {
          var ok = true
          for job in 0..<300 {
            let count = 2 + (caller * 7 + job) % 37
            var hits = [Int](repeating: 0, count: count)
            hits.withUnsafeMutableBufferPointer { h in
              let p = SendablePointer(h.baseAddress!)
              parallelFor(count) { i in p.pointer[i] += 1 }
            }
            ok = ok && hits.allSatisfy { $0 == 1 }
          }
          return ok
        }
      }
      return await group.reduce(into: [Bool]()) { $0.append($1) }
    }
    #expect(results == [true, true, true, true])
  }
}
