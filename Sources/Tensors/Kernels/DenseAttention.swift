#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

// Shapes: q, out [batch, seq, heads, headDim]; k, v [batch, seq, kvHeads, headDim];
// probs [batch, heads, seq, seq]. Training only: queries are the keys' own sequence (positions 0..<seq).

/// Dense causal attention through matrix products: per (batch, head) S = Q·Kᵀ·scale, a causal
/// softmax, O = P·V, each product one strided sgemm. Computes the masked upper triangle too (twice the
/// arithmetic of the pair-by-pair kernel, `attentionForward`) but at sgemm speed. Same results as that
/// kernel up to summation order; tested against it.
func denseAttentionForward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                           out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>, shape s: AttentionShape) {
  let t = s.queries, d = s.headDim, group = s.heads / s.kvHeads
  let qStride = s.heads * d, kvStride = s.kvHeads * d
  let qp = SendableConstPointer(q), kp = SendableConstPointer(k), vp = SendableConstPointer(v)
  let op = SendablePointer(out), pp = SendablePointer(probs)
  parallelFor(s.batch * s.kvHeads, workPerItem: group * t * t * d * 2) { task in
    let b = task / s.kvHeads, kvh = task % s.kvHeads
    let kBase = kp.pointer + b * t * kvStride + kvh * d, vBase = vp.pointer + b * t * kvStride + kvh * d
    for h in (kvh * group)..<((kvh + 1) * group) {
      let qBase = qp.pointer + b * t * qStride + h * d
      let p = pp.pointer + (b * s.heads + h) * t * t
      sgemmStrided(qBase, lda: qStride, transposeA: false, kBase, ldb: kvStride, transposeB: true, p, ldc: t,
                   m: t, n: t, k: d, alpha: s.scale)
      for i in 0..<t {
        let row = p + i * t
        var m = -Float.infinity
        for j in 0...i { m = max(m, row[j]) }
        let inv = 1 / expShifted(row, row, i + 1, shift: m)
        for j in 0...i { row[j] *= inv }
        for j in (i + 1)..<t { row[j] = 0 }
      }
      sgemmStrided(p, lda: t, transposeA: false, vBase, ldb: kvStride, transposeB: false,
                   op.pointer + b * t * qStride + h * d, ldc: qStride, m: t, n: d, k: t)
    }
  }
}

/// Accumulates the gradients of `denseAttentionForward`: dV += Pᵀ·dO; dP = dO·Vᵀ;
/// dS = P ⊙ (dP − rowsum(P ⊙ dP)); dQ += dS·K·scale; dK += dSᵀ·Q·scale.
func denseAttentionBackward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                            v: UnsafePointer<Float>, probs: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>,
                            dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>, shape s: AttentionShape) {
  let t = s.queries, d = s.headDim, group = s.heads / s.kvHeads
  let qStride = s.heads * d, kvStride = s.kvHeads * d
  let qp = SendableConstPointer(q), kp = SendableConstPointer(k), vp = SendableConstPointer(v)
  let gp = SendableConstPointer(dOut), pp = SendableConstPointer(probs)
  let dqp = SendablePointer(dq), dkp = SendablePointer(dk), dvp = SendablePointer(dv)
  parallelFor(s.batch * s.kvHeads, workPerItem: group * t * t * d * 4) { task in
    let b = task / s.kvHeads, kvh = task % s.kvHeads
    var dScores = [Float](repeating: 0, count: t * t)
    let kOffset = b * t * kvStride + kvh * d
    dScores.withUnsafeMutableBufferPointer { dsBuffer in
      let ds = dsBuffer.baseAddress!
      for h in (kvh * group)..<((kvh + 1) * group) {
        let qOffset = b * t * qStride + h * d
        let p = pp.pointer + (b * s.heads + h) * t * t
        let dO = gp.pointer + qOffset
        sgemmStrided(p, lda: t, transposeA: true, dO, ldb: qStride, transposeB: false, dvp.pointer + kOffset,
                     ldc: kvStride, m: t, n: d, k: t, beta: 1)
        sgemmStrided(dO, lda: qStride, transposeA: false, vp.pointer + kOffset, ldb: kvStride, transposeB: true, ds,
                     ldc: t, m: t, n: t, k: d)
        for i in 0..<t {
          let pRow = p + i * t, dRow = ds + i * t
          let weighted = dot(pRow, dRow, i + 1)
          for j in 0...i { dRow[j] = pRow[j] * (dRow[j] - weighted) }
          for j in (i + 1)..<t { dRow[j] = 0 }
        }
        sgemmStrided(ds, lda: t, transposeA: false, kp.pointer + kOffset, ldb: kvStride, transposeB: false,
                     dqp.pointer + qOffset, ldc: qStride, m: t, n: d, k: t, alpha: s.scale, beta: 1)
        sgemmStrided(ds, lda: t, transposeA: true, qp.pointer + qOffset, ldb: qStride, transposeB: false,
                     dkp.pointer + kOffset, ldc: kvStride, m: t, n: d, k: t, alpha: s.scale, beta: 1)
      }
    }
  }
}

/// Queries per block of `denseCachedAttentionForward`.
private let cachedQueryBlock = 64

/// Dense causal attention of a run of consecutive queries over a decoding cache (a prompt read at
/// once), through matrix products over blocks of 64 queries: each block scores its queries against
/// every key up to its last query's position with one sgemm, masks each row at its own position, and
/// multiplies by the values with another. The pair-by-pair kernel reads the keys once per query with
/// dot products; this reads them once per block at sgemm speed, and its scratch is one block's
/// scores (64 × positions), never the [queries, keys] square. Same results as that kernel up to
/// summation order (tested).
///
/// - Precondition: `s.pattern == .dense`, `s.headMajorKeys`, and each sequence's query positions are
///   consecutive (`positions[b·queries + i] == positions[b·queries] + i`).
func denseCachedAttentionForward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                 out: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, shape s: AttentionShape) {
  precondition(s.pattern == .dense && s.headMajorKeys)
  let d = s.headDim, group = s.heads / s.kvHeads, qStride = s.heads * d
  let qp = SendableConstPointer(q), kp = SendableConstPointer(k), vp = SendableConstPointer(v)
  let op = SendablePointer(out), pos = SendableConstPointer(positions)
  // Work split by (batch, kv head), each task writing only its own heads' rows: results never depend on the cores.
  parallelFor(s.batch * s.kvHeads, workPerItem: group * s.queries * s.keyStride * d * 2) { task in
    let b = task / s.kvHeads, kvh = task % s.kvHeads
    let first = Int(pos.pointer[b * s.queries])
    let kBase = kp.pointer + s.keyOffset(batch: b, kvHead: kvh, position: 0)
    let vBase = vp.pointer + s.keyOffset(batch: b, kvHead: kvh, position: 0)
    var scores = [Float](repeating: 0, count: cachedQueryBlock * (first + s.queries))
    scores.withUnsafeMutableBufferPointer { buffer in
      let p = buffer.baseAddress!
      for h in (kvh * group)..<((kvh + 1) * group) {
        for i0 in stride(from: 0, to: s.queries, by: cachedQueryBlock) {
          let rows = min(cachedQueryBlock, s.queries - i0)
          let keys = first + i0 + rows  // every key up to the block's last query, itself included
          let qBlock = qp.pointer + (b * s.queries + i0) * qStride + h * d
          sgemmStrided(qBlock, lda: qStride, transposeA: false, kBase, ldb: d, transposeB: true, p, ldc: keys,
                       m: rows, n: keys, k: d, alpha: s.scale)
          for r in 0..<rows {
            let row = p + r * keys, seen = first + i0 + r + 1
            var m = -Float.infinity
            for j in 0..<seen { m = max(m, row[j]) }
            let inv = 1 / expShifted(row, row, seen, shift: m)
            for j in 0..<seen { row[j] *= inv }
            for j in seen..<keys { row[j] = 0 }
          }
          sgemmStrided(p, lda: keys, transposeA: false, vBase, ldb: d, transposeB: false,
                       op.pointer + (b * s.queries + i0) * qStride + h * d, ldc: qStride, m: rows, n: d, k: keys)
        }
      }
    }
  }
}
