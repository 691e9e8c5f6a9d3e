// Shapes as in DenseAttention.swift: q, out [batch, seq, heads, headDim]; k, v [batch, seq, kvHeads,
// headDim]; probs [batch, heads, seq, maxKeys] in the pair-by-pair kernel's layout (each query's global
// keys, then its window, ascending). Training only: positions are 0..<seq.

/// Queries per block of the windowed kernels.
private let queryBlock = 64

/// The keys one block of queries i0..<i1 reads: the global tokens `0..<globals`, then `spanStart..<i1`.
private struct WindowBlock {
  let i0: Int, i1: Int
  let globals: Int
  let spanStart: Int
  var rows: Int { i1 - i0 }
  var span: Int { i1 - spanStart }
  var columns: Int { globals + span }

  init(i0: Int, length: Int, window: Int, globalTokens: Int) {
    self.i0 = i0
    i1 = min(i0 + queryBlock, length)
    globals = min(globalTokens, i1)
    spanStart = min(i1, max(globalTokens, i0 - window + 1))
  }

  /// Query i's attended columns in the block's score rows: global columns 0..<g, then window columns
  /// w..<w+n (keys `AttentionPattern.keys(for: i)`).
  @inline(__always)
  func columns(query i: Int, pattern: AttentionPattern) -> (globals: Int, windowColumn: Int, window: Int) {
    let (g, w) = pattern.keys(for: i)
    return (g.count, globals + w.lowerBound - spanStart, w.count)
  }

  /// The block's key ranges that are not empty, each with its first score column: the global tokens
  /// (column 0), then the span. Every product of the kernels runs once per part.
  @inline(__always)
  func forEachPart(_ body: (_ column: Int, _ key: Int, _ count: Int) -> Void) {
    if globals > 0 { body(0, 0, globals) }
    if span > 0 { body(globals, spanStart, span) }
  }
}

/// Sliding-window causal attention (with global tokens) through matrix products over blocks of 64
/// queries: a block scores its queries against its global tokens and the span from the first query's
/// window start to the last query (at most window + global tokens + 63 keys), masks each row to exactly
/// the keys `AttentionPattern.keys(for:)` gives, and multiplies by the values. Time and memory grow with
/// length · (window + global tokens), and the arithmetic runs at sgemm speed. Same results as the
/// pair-by-pair kernel up to summation order (tested).
func windowAttentionForward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                            out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, shape s: AttentionShape) {
  guard case .slidingWindow(let window, let globalTokens) = s.pattern else { preconditionFailure("not a window pattern") }
  let t = s.queries, d = s.headDim, group = s.heads / s.kvHeads, maxKeys = s.maxKeys
  let qStride = s.heads * d, kvStride = s.kvHeads * d
  let qp = SendableConstPointer(q), kp = SendableConstPointer(k), vp = SendableConstPointer(v)
  let op = SendablePointer(out), pp = SendablePointer(probs)
  parallelFor(s.batch * s.kvHeads, workPerItem: group * t * (maxKeys + queryBlock) * d * 4) { task in
    let b = task / s.kvHeads, kvh = task % s.kvHeads
    let kBase = kp.pointer + b * t * kvStride + kvh * d, vBase = vp.pointer + b * t * kvStride + kvh * d
    var scores = [Float](repeating: 0, count: queryBlock * (globalTokens + window + queryBlock))
    scores.withUnsafeMutableBufferPointer { buffer in
      let scoreBase = buffer.baseAddress!
      for h in (kvh * group)..<((kvh + 1) * group) {
        for i0 in stride(from: 0, to: t, by: queryBlock) {
          let blk = WindowBlock(i0: i0, length: t, window: window, globalTokens: globalTokens)
          let cols = blk.columns
          let qBlock = qp.pointer + (b * t + i0) * qStride + h * d
          blk.forEachPart { column, key, count in
            sgemmStrided(qBlock, lda: qStride, transposeA: false, kBase + key * kvStride, ldb: kvStride, transposeB: true,
                         scoreBase + column, ldc: cols, m: blk.rows, n: count, k: d, alpha: s.scale)
          }
          for r in 0..<blk.rows {
            let i = i0 + r
            let row = scoreBase + r * cols
            let (g, w0, n) = blk.columns(query: i, pattern: s.pattern)
            var m = -Float.infinity
            for j in 0..<g { m = max(m, row[j]) }
            for j in w0..<(w0 + n) { m = max(m, row[j]) }
            let sum = expShifted(row, row, g, shift: m) + expShifted(row + w0, row + w0, n, shift: m)
            let inv = 1 / sum
            let pRow = pp.pointer + ((b * s.heads + h) * t + i) * maxKeys
            for j in 0..<g { pRow[j] = row[j] * inv }
            for j in 0..<n { pRow[g + j] = row[w0 + j] * inv }
            for j in (g + n)..<maxKeys { pRow[j] = 0 }
            blockRow(row, columns: cols, from: pRow, globals: g, windowColumn: w0, window: n)
          }
          let oBlock = op.pointer + (b * t + i0) * qStride + h * d
          blk.forEachPart { column, key, count in  // the first part writes the output, the second adds
            sgemmStrided(scoreBase + column, lda: cols, transposeA: false, vBase + key * kvStride, ldb: kvStride,
                         transposeB: false, oBlock, ldc: qStride, m: blk.rows, n: d, k: count, beta: column == 0 ? 0 : 1)
          }
        }
      }
    }
  }
}

/// Writes a query's saved weights back into its block score row: its attended columns, zeros elsewhere.
@inline(__always)
private func blockRow(_ row: UnsafeMutablePointer<Float>, columns: Int, from pRow: UnsafePointer<Float>, globals g: Int,
                      windowColumn w0: Int, window n: Int) {
  row.update(repeating: 0, count: columns)
  row.update(from: pRow, count: g)
  (row + w0).update(from: pRow + g, count: n)
}

/// Accumulates the gradients of `windowAttentionForward` block by block, as `denseAttentionBackward`
/// does for the whole square: dV += Pᵀ·dO; dP = dO·Vᵀ; dS = P ⊙ (dP − rowsum(P ⊙ dP));
/// dQ += dS·K·scale; dK += dSᵀ·Q·scale.
func windowAttentionBackward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                             v: UnsafePointer<Float>, probs: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>,
                             dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>, shape s: AttentionShape) {
  guard case .slidingWindow(let window, let globalTokens) = s.pattern else { preconditionFailure("not a window pattern") }
  let t = s.queries, d = s.headDim, group = s.heads / s.kvHeads, maxKeys = s.maxKeys
  let qStride = s.heads * d, kvStride = s.kvHeads * d
  let qp = SendableConstPointer(q), kp = SendableConstPointer(k), vp = SendableConstPointer(v)
  let gp = SendableConstPointer(dOut), pp = SendableConstPointer(probs)
  let dqp = SendablePointer(dq), dkp = SendablePointer(dk), dvp = SendablePointer(dv)
  parallelFor(s.batch * s.kvHeads, workPerItem: group * t * (maxKeys + queryBlock) * d * 8) { task in
    let b = task / s.kvHeads, kvh = task % s.kvHeads
    let kvOffset = b * t * kvStride + kvh * d
    let width = queryBlock * (globalTokens + window + queryBlock)
    var buffers = [Float](repeating: 0, count: 2 * width)
    buffers.withUnsafeMutableBufferPointer { buffer in
      let p = buffer.baseAddress!, ds = p + width
      for h in (kvh * group)..<((kvh + 1) * group) {
        for i0 in stride(from: 0, to: t, by: queryBlock) {
          let blk = WindowBlock(i0: i0, length: t, window: window, globalTokens: globalTokens)
          let cols = blk.columns
          for r in 0..<blk.rows {
            let (g, w0, n) = blk.columns(query: i0 + r, pattern: s.pattern)
            blockRow(p + r * cols, columns: cols, from: pp.pointer + ((b * s.heads + h) * t + i0 + r) * maxKeys,
                     globals: g, windowColumn: w0, window: n)
          }
          let qOffset = (b * t + i0) * qStride + h * d
          let dO = gp.pointer + qOffset
          blk.forEachPart { column, key, count in
            sgemmStrided(p + column, lda: cols, transposeA: true, dO, ldb: qStride, transposeB: false,
                         dvp.pointer + kvOffset + key * kvStride, ldc: kvStride, m: count, n: d, k: blk.rows, beta: 1)
            sgemmStrided(dO, lda: qStride, transposeA: false, vp.pointer + kvOffset + key * kvStride, ldb: kvStride,
                         transposeB: true, ds + column, ldc: cols, m: blk.rows, n: count, k: d)
          }
          for r in 0..<blk.rows {
            let pRow = p + r * cols, dRow = ds + r * cols
            let weighted = dot(pRow, dRow, cols)
            for j in 0..<cols { dRow[j] = pRow[j] * (dRow[j] - weighted) }
          }
          blk.forEachPart { column, key, count in
            sgemmStrided(ds + column, lda: cols, transposeA: false, kp.pointer + kvOffset + key * kvStride,
                         ldb: kvStride, transposeB: false, dqp.pointer + qOffset, ldc: qStride, m: blk.rows, n: d,
                         k: count, alpha: s.scale, beta: 1)
            sgemmStrided(ds + column, lda: cols, transposeA: true, qp.pointer + qOffset, ldb: qStride, transposeB: false,
                         dkp.pointer + kvOffset + key * kvStride, ldc: kvStride, m: count, n: d, k: blk.rows,
                         alpha: s.scale, beta: 1)
          }
        }
      }
    }
  }
}
