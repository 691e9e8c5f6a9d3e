internal import CBLAS

/// C = α·op(A)·op(B) + β·C through OpenBLAS `cblas_sgemm` (row-major).
///
/// Shapes: op(A) [m, k], op(B) [k, n], C [m, n]. `transposeA` means A is stored [k, m]; `transposeB`
/// means B is stored [n, k] (a linear layer's weight [out, in] used as y = x·Wᵀ).
func sgemm(_ a: UnsafePointer<Float>, transposeA: Bool, _ b: UnsafePointer<Float>, transposeB: Bool,
           _ c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0) {
  guard m > 0, n > 0 else { return }
  guard k > 0 else {
    if beta == 0 { c.update(repeating: 0, count: m * n) }
    return
  }
  cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
              Int32(m), Int32(n), Int32(k), alpha, a, Int32(transposeA ? m : k), b, Int32(transposeB ? k : n),
              beta, c, Int32(n))
}

/// The naive triple loop, kept as the reference the tests check `sgemm` against.
func sgemmReference(_ a: [Float], transposeA: Bool, _ b: [Float], transposeB: Bool, m: Int, n: Int, k: Int) -> [Float] {
  var c = [Float](repeating: 0, count: m * n)
  for i in 0..<m {
    for j in 0..<n {
      var s: Float = 0
      for p in 0..<k {
        s += (transposeA ? a[p * m + i] : a[i * k + p]) * (transposeB ? b[j * k + p] : b[p * n + j])
      }
      c[i * n + j] = s
    }
  }
  return c
}

/// Caps OpenBLAS's threads (benchmarks compare at equal thread counts).
public func setBLASThreads(_ count: Int) { openblas_set_num_threads(Int32(count)) }

extension Tensor {
  /// The matrix product op(a)·op(b) of two rank-2 tensors.
  ///
  /// - Parameters:
  ///   - a: `[m, k]`, or `[k, m]` when `transposeA`.
  ///   - b: `[k, n]`, or `[n, k]` when `transposeB`.
  /// - Returns: `[m, n]`.
  public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
    precondition(a.rank == 2 && b.rank == 2, "matmul takes rank-2 tensors, got \(a.shape) and \(b.shape)")
    let m = transposeA ? a.shape[1] : a.shape[0], k = transposeA ? a.shape[0] : a.shape[1]
    let n = transposeB ? b.shape[0] : b.shape[1]
    precondition((transposeB ? b.shape[1] : b.shape[0]) == k, "matmul: \(a.shape) and \(b.shape) do not fit")
    var c = Tensor(zeros: [m, n])
    a.withUnsafeBufferPointer { pa in
      b.withUnsafeBufferPointer { pb in
        c.withUnsafeMutableBufferPointer { pc in
          sgemm(pa.baseAddress!, transposeA: transposeA, pb.baseAddress!, transposeB: transposeB, pc.baseAddress!,
                m: m, n: n, k: k)
        }
      }
    }
    return c
  }
}
