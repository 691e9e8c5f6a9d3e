/// Small vector routines for kernels, written with SIMD accumulators: float reductions never
/// vectorise on their own (TOOLCHAIN.md). The summation order is fixed by the length alone, so
/// results are deterministic.

/// Σ term(i) for i in 0..<n: 16 lanes at a time (`lanes(i)` gives terms i..<i+16), then the tail one by
/// one (`scalar(i)`). The order is fixed by n alone.
@inline(__always)
func simdSum(_ n: Int, lanes: (Int) -> SIMD16<Float>, scalar: (Int) -> Float) -> Float {
  var acc = SIMD16<Float>()
  var i = 0
  while i + 16 <= n {
    acc += lanes(i)
    i += 16
  }
  var s = acc.sum()
  while i < n {
    s += scalar(i)
    i += 1
  }
  return s
}

@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }

/// Σ a[i]·b[i] for i in 0..<n.
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
  simdSum(n, lanes: { load16(a + $0) * load16(b + $0) }, scalar: { a[$0] * b[$0] })
}

/// Σ a[i]·b[i]·c[i] for i in 0..<n.
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>, _ n: Int) -> Float {
  simdSum(n, lanes: { load16(a + $0) * load16(b + $0) * load16(c + $0) }, scalar: { a[$0] * b[$0] * c[$0] })
}

/// y[i] += α·x[i] for i in 0..<n.
@inline(__always)
func axpy(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ x: UnsafePointer<Float>, _ n: Int) {
  var i = 0
  let a = SIMD16<Float>(repeating: alpha)
  while i + 16 <= n {
    let yi = UnsafeMutableRawPointer(y + i)
    yi.storeBytes(of: yi.loadUnaligned(as: SIMD16<Float>.self) + a * UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self),
                  as: SIMD16<Float>.self)
    i += 16
  }
  while i < n {
    y[i] += alpha * x[i]
    i += 1
  }
}
