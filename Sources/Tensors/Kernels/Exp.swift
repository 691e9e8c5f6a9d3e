/// e^x on 16 lanes at once: Cephes' `expf` polynomial with the exponent built from bits, so it
/// vectorises (libm's `expf` is one call per element). Relative error ≈ 2 ulp over [-87, 88]; inputs
/// outside are clamped (e^x then under- or overflows as it would).
@inline(__always)
func exp16(_ input: SIMD16<Float>) -> SIMD16<Float> {
  var x = input.replacing(with: 88.37626, where: input .> 88.37626)
  x = x.replacing(with: -87.33654, where: x .< -87.33654)
  // n = round(x / ln 2) with the 1.5·2²³ trick: the float's low bits become the integer.
  let magic: Float = 12_582_912
  let shifted = x * 1.442_695_04 + magic
  let n = shifted - magic
  let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4
  var p = SIMD16<Float>(repeating: 1.987_569_15e-4)
  p = p * r + 1.398_199_95e-3
  p = p * r + 8.333_451_9e-3
  p = p * r + 4.166_579_59e-2
  p = p * r + 1.666_666_55e-1
  p = p * r + 5.000_000_12e-1
  let er = p * r * r + r + 1
  let bits = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- unsafeBitCast(SIMD16<Float>(repeating: magic), to: SIMD16<Int32>.self)
  let scale = unsafeBitCast((bits &+ 127) &<< 23, to: SIMD16<Float>.self)
  return er * scale
}

/// y[i] = e^(x[i] − shift) for i in 0..<n, returning Σ y (in a fixed order). x and y may be the same.
@inline(__always)
func expShifted(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
  var sum = SIMD16<Float>()
  var i = 0
  let s = SIMD16<Float>(repeating: shift)
  while i + 16 <= n {
    let e = exp16(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) - s)
    UnsafeMutableRawPointer(y + i).storeBytes(of: e, as: SIMD16<Float>.self)
    sum += e
    i += 16
  }
  if i < n {  // the tail through the same lanes, so every element sees the same arithmetic
    var tail = SIMD16<Float>(repeating: -.infinity)
    for j in i..<n { tail[j - i] = x[j] - shift }
    let e = exp16(tail)
    for j in i..<n {
      y[j] = e[j - i]
      sum[j - i] += e[j - i]
    }
  }
  return sum.sum()
}

/// σ(x) = 1 / (1 + e^−x) for i in 0..<n into `y`.
@inline(__always)
func sigmoidVector(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
  var i = 0
  while i + 16 <= n {
    let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
    UnsafeMutableRawPointer(y + i).storeBytes(of: 1 / (1 + exp16(-v)), as: SIMD16<Float>.self)
    i += 16
  }
  if i < n {
    var tail = SIMD16<Float>()
    for j in i..<n { tail[j - i] = x[j] }
    let s = 1 / (1 + exp16(-tail))
    for j in i..<n { y[j] = s[j - i] }
  }
}
