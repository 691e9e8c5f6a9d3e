/// Small vector routines for kernels, written with SIMD accumulators: float reductions never
/// vectorise on their own (TOOLCHAIN.md). The summation order is fixed by the length alone, so
/// results are deterministic.

/// Σ a[i]·b[i] for i in 0..<n.
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
  var acc = SIMD16<Float>()
  var i = 0
  while i + 16 <= n {
    acc += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
      * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
    i += 16
  }
  var s = acc.sum()
  while i < n {
    s += a[i] * b[i]
    i += 1
  }
  return s
}

/// Σ a[i]·b[i]·c[i] for i in 0..<n.
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>, _ n: Int) -> Float {
  var acc = SIMD16<Float>()
  var i = 0
  while i + 16 <= n {
    acc += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
      * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
      * UnsafeRawPointer(c + i).loadUnaligned(as: SIMD16<Float>.self)
    i += 16
  }
  var s = acc.sum()
  while i < n {
    s += a[i] * b[i] * c[i]
    i += 1
  }
  return s
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
