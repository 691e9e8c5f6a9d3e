internal import CBLAS

/// C = α·op(A)·op(B) + β·C through OpenBLAS `cblas_sgemm` (row-major).
///
/// Shapes: op(A) [m, k], op(B) [k, n], C [m, n]. `transposeA` means A is stored [k, m]; `transposeB`
/// means B is stored [n, k] (a linear layer's weight [out, in] used as y = x·Wᵀ).
///
/// Threads: OpenBLAS runs single-threaded (its idle workers spin in `sched_yield`, stealing the second
/// core from every other kernel between products); a large product is instead cut into two halves of
/// C's rows (or of its columns when it has few rows, as in decoding), computed at once on both cores.
/// The cut depends only on the shape, never on the thread count or the load, so a product gives the
/// same bits every time. (OpenBLAS's kernels may round a block differently from the whole product —
/// its Zen kernels do — so the halves are what is computed even under `Parallelism.forceSerial`,
/// which only runs them one after the other.)
func sgemm(_ a: UnsafePointer<Float>, transposeA: Bool, _ b: UnsafePointer<Float>, transposeB: Bool,
           _ c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0) {
  guard m > 0, n > 0 else { return }
  guard k > 0 else {
    if beta == 0 { c.update(repeating: 0, count: m * n) }
    return
  }
  _ = BLASConfiguration.singleThreaded
  let ap = SendableConstPointer(a), bp = SendableConstPointer(b), cp = SendablePointer(c)
  /// Both halves, on both cores (in turn when serial execution is forced).
  func halves(_ half: @Sendable (Int) -> Void) { parallelFor(2, half) }
  if m == 1 {
    // One row (decoding a single sequence): a matrix–vector product. OpenBLAS's gemm packs both
    // operands first, which for one row costs several times the product itself on some CPUs (5× with
    // its Zen kernels); gemv reads the matrix once. A's single row is contiguous either way.
    if beta == 0 { c.update(repeating: 0, count: n) }  // beta = 0 must ignore what C holds, NaN included
    /// Outputs c0..<c0+columns: rows of B when it is transposed ([n, k]), else columns of B ([k, n]).
    @Sendable func outputs(_ c0: Int, _ columns: Int) {
      cblas_sgemv(CblasRowMajor, transposeB ? CblasNoTrans : CblasTrans, Int32(transposeB ? columns : k),
                  Int32(transposeB ? k : columns), alpha, transposeB ? bp.pointer + c0 * k : bp.pointer + c0,
                  Int32(transposeB ? k : n), ap.pointer, 1, beta == 0 ? 0 : beta, cp.pointer + c0, 1)
    }
    // A large matrix is streamed from memory at a few GB/s per core (weights of a d256 model outgrow
    // the cache): each core reads half of it.
    if n >= 32 && n * k >= 1 << 16 {
      let split = (n / 2 + 15) / 16 * 16
      halves { $0 == 0 ? outputs(0, split) : outputs(split, n - split) }
    } else {
      outputs(0, n)
    }
    return
  }
  /// Rows r0..<r0+rows and columns c0..<c0+columns of C. A row offset moves along A (a column offset
  /// when A is transposed); a column offset moves along B (a row offset when B is transposed).
  @Sendable func block(_ r0: Int, _ rows: Int, _ c0: Int, _ columns: Int) {
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(rows), Int32(columns), Int32(k), alpha, transposeA ? ap.pointer + r0 : ap.pointer + r0 * k,
                Int32(transposeA ? m : k), transposeB ? bp.pointer + c0 * k : bp.pointer + c0,
                Int32(transposeB ? k : n), beta, cp.pointer + r0 * n + c0, Int32(n))
  }
  if m >= 64 && m * n * k >= 1 << 20 {
    let split = (m / 2 + 7) / 8 * 8  // halves of C's rows: a multiple of 8, fixed by the shape
    halves { $0 == 0 ? block(0, split, 0, n) : block(split, m - split, 0, n) }
  } else if n >= 128 && m * n * k >= 1 << 21 {
    let split = (n / 2 + 15) / 16 * 16  // few rows (decoding): halves of C's columns instead
    halves { $0 == 0 ? block(0, m, 0, split) : block(0, m, split, n - split) }
  } else {
    block(0, m, 0, n)
  }
}

/// A single-threaded product over strided rows, for kernels that already run one task per core:
/// C[m, n] = α·op(A)·op(B) + β·C, each matrix with its own leading dimension (row stride).
func sgemmStrided(_ a: UnsafePointer<Float>, lda: Int, transposeA: Bool, _ b: UnsafePointer<Float>, ldb: Int,
                  transposeB: Bool, _ c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, k: Int,
                  alpha: Float = 1, beta: Float = 0) {
  _ = BLASConfiguration.singleThreaded
  cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
              Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// OpenBLAS is set to one thread once, before its first product (see `sgemm`).
///
/// A no-op in an executable, where `openBLASStartsNoThreads` has done it before the library loaded;
/// kept for a binary that links Tensors without that hook.
enum BLASConfiguration {
  static let singleThreaded: Void = openblas_set_num_threads(1)
}

extension KernelThreads {
  /// The helper threads OpenBLAS keeps for its own parallel products: 0, since every product runs
  /// single-threaded inside it (see `sgemm`), and none is started when the library loads.
  ///
  /// OpenBLAS's load-time constructor otherwise starts one thread per extra core, each polling with
  /// `sched_yield` for 2²⁸ time-stamp ticks (≈ 0.1 s here) before it sleeps: every command paid for
  /// them, `lineage --help` included (0 to 5,000 `sched_yield` calls per command under `strace -f`,
  /// the more the busier the machine).
  public static var openBLASHelperCount: Int { Int(openblas_helper_thread_count()) }
}

#if os(Linux)
/// Keeps OpenBLAS from starting its helper threads when the library loads, by presetting the pool
/// size its constructor reads (`blas_num_threads`; see CBLAS/shim.h) to one thread, the caller.
///
/// A function in an executable's `.preinit_array` (SE-0492 `@section`) runs after relocation and
/// before the initialiser of any shared library, OpenBLAS's `gotoblas_init` included: the only moment
/// the pool size can be set from inside the process. (`OPENBLAS_NUM_THREADS` cannot be set here
/// instead: glibc's initialiser, which runs later, resets `environ`, and the variable was found
/// missing.) It runs before the Swift runtime is initialised, so it only calls a C function that
/// stores two integers. A later `openblas_set_num_threads(n)` with `n > 1` still starts helpers, then.
/// In a shared library the section has no effect, and OpenBLAS starts its threads at load as before.
@section(".preinit_array") @used
let openBLASStartsNoThreads: @convention(c) () -> Void = { openblas_preset_single_thread() }
#endif

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
    return Tensor(overwrittenShape: [m, n]) { pc in  // beta = 0: sgemm writes every element
      a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
          sgemm(pa.baseAddress!, transposeA: transposeA, pb.baseAddress!, transposeB: transposeB, pc.baseAddress!,
                m: m, n: n, k: k)
        }
      }
    }
  }
}

/// Seconds per call of sgemm at one shape, for `lineage bench engine`, measured both ways in turn
/// (so that both meet the same phases of a shared machine): `raw` calls OpenBLAS on preallocated
/// buffers (the physical ceiling), `wrapped` goes through `Tensor.matmul` (our wrapper, allocation
/// included). One sample of each per repeat.
public func timeMatmul(m: Int, n: Int, k: Int, transposeB: Bool, repeats: Int,
                       clock: () -> Double) -> (raw: [Double], wrapped: [Double]) {
  var rng = RandomStream(seed: 1, purpose: .evaluation)
  let a = Tensor(shape: [m, k], scalars: (0..<(m * k)).map { _ in rng.uniform() })
  let b = Tensor(shape: transposeB ? [n, k] : [k, n], scalars: (0..<(n * k)).map { _ in rng.uniform() })
  var c = [Float](repeating: 0, count: m * n)
  var raw: [Double] = [], wrapped: [Double] = []
  for _ in 0..<(repeats + 1) {  // the first round warms caches and threads
    var start = clock()
    a.withUnsafeBufferPointer { pa in
      b.withUnsafeBufferPointer { pb in
        c.withUnsafeMutableBufferPointer { pc in
          sgemm(pa.baseAddress!, transposeA: false, pb.baseAddress!, transposeB: transposeB, pc.baseAddress!, m: m, n: n, k: k)
        }
      }
    }
    raw.append(clock() - start)
    start = clock()
    _ = Tensor.matmul(a, b, transposeB: transposeB)
    wrapped.append(clock() - start)
  }
  return (Array(raw.dropFirst()), Array(wrapped.dropFirst()))
}
