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
