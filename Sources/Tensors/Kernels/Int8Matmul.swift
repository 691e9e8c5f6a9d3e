internal import CKernels

/// Matrix products with int8 weights: y = x·Wᵀ where W `[n, k]` is stored as int8 values with one float
/// scale per block of `block` consecutive elements of a row (per-channel: block = k; GGUF's Q8_0: 32).
///
/// Each activation row is quantized the same way, per block (symmetric, scale = max|x_block| / 127,
/// rounded to nearest, ties to even), so that a block's product is an exact Int32 sum of int8 × int8
/// products, scaled once: y[r, o] = Σ_b (sw[o, b] · sx[r, b]) · Σ_{i ∈ b} qw[o, i] · qx[r, i]
/// (llama.cpp's `vec_dot_q8_0_q8_0` does the same for Q8_0). Blocks are summed in order, so a result
/// depends only on its own row of x and of W: the same bits whatever the batch, the split over
/// threads, or the thread count.
///
/// Several implementations of the same arithmetic, bit-identical (Int32 sums are exact, and the float
/// steps are the same multiplies and adds in the same order, never fused; tested against the plain
/// loops): where the CPU has AVX2 or AVX-512 (BW, VNNI), the C kernels of `CKernels` (picked at run
/// time: 16–32 multiply–adds per instruction), with AVX-512 on weights packed 16 outputs to a vector
/// (`PackedInt8Weights`: one lane per output, so a block needs no horizontal sum) and the activation
/// rows quantized in C; elsewhere, and for a per-channel row whose length is not a multiple of 32, the
/// Swift loop below.
///
/// Why the Swift loop has this shape (TOOLCHAIN.md, measured): the package compiles for baseline x86-64 (SSE2),
/// where Swift's `SIMD…(truncatingIfNeeded:)` between integer widths is an out-of-line call and 32-bit
/// multiplies are emulated. So the kernel never converts lane types: it reads 32 weight bytes as
/// sixteen Int16 lanes, takes the low byte of each as `(v << 8) >> 8` and the high byte as `v >> 8`
/// (arithmetic shifts sign-extend), multiplies Int16 × Int16 against activations stored pre-split into
/// their even and odd elements, adds the two products (|sum| ≤ 2·127² < 2¹⁵), and widens to Int32 the
/// same way. Every step is one SSE2 instruction per 8 lanes (psllw, psraw, pmullw, paddw, pslld,
/// psrad, paddd): ≈ 0.06 ns per multiply–add on one core here, and a quarter of float32's bytes read.
/// That is no faster than OpenBLAS's AVX-512 sgemv (≈ 0.05 ns per multiply–add on one core, measured
/// at the d128 and d256 shapes), which is why the C kernels exist: with `vpmaddwd` / `vpdpwssd` a
/// 32-element block is one or two instructions.
///
/// Shapes: x `[rows, k]`, weights `[n, k]` int8, weightScales `[n, k / block]`, y `[rows, n]`.

/// Activation rows quantized per block, laid out for the kernel: for each 32-element chunk of a row
/// starting at element e, `even[e/2 + j]` = q[e + 2j] and `odd[e/2 + j]` = q[e + 2j + 1]; `plain` holds
/// every q (for the elements of a block past its last full chunk), `scales` one scale per block.
struct QuantizedRows {
  var even: [Int16]
  var odd: [Int16]
  var plain: [Int16]
  var scales: [Float]
  let k: Int
  let block: Int

  /// Quantizes `rows` rows of `x` (`[rows, k]`); `split` also fills `even` and `odd` (the Swift loop's layout).
  init(_ x: UnsafePointer<Float>, rows: Int, k: Int, block: Int, split: Bool = true) {
    self.k = k
    self.block = block
    let blocks = k / block, half = split ? (k + 1) / 2 : 0
    even = [Int16](repeating: 0, count: rows * half)
    odd = even
    plain = [Int16](repeating: 0, count: rows * k)
    scales = [Float](repeating: 0, count: rows * blocks)
    even.withUnsafeMutableBufferPointer { even in
      odd.withUnsafeMutableBufferPointer { odd in
        plain.withUnsafeMutableBufferPointer { plain in
          scales.withUnsafeMutableBufferPointer { scales in
            for r in 0..<rows {
              for b in 0..<blocks {
                let start = r * k + b * block
                let amax = maxMagnitude(x + start, block)
                let scale = amax / 127
                scales[r * blocks + b] = scale
                let inverse: Float = scale > 0 ? 1 / scale : 0
                quantize(x + start, block, inverse, plain.baseAddress! + start)
              }
              // The split layout of each full chunk within each block.
              for b in 0..<blocks where split {
                var e = b * block
                while e + 32 <= (b + 1) * block {
                  let q = plain.baseAddress! + r * k + e
                  let to = r * half + e / 2
                  for j in 0..<16 {
                    even[to + j] = q[2 * j]
                    odd[to + j] = q[2 * j + 1]
                  }
                  e += 32
                }
              }
            }
          }
        }
      }
    }
  }
}

/// The instructions the C kernels may use here (`lineage_int8_level`): 0 means none, use the Swift loop.
let int8SIMDLevel = Int(lineage_int8_level())

/// y = x·Wᵀ for int8 weights (see the file's comment). Splits the outputs in two halves, computed on
/// both cores, when the product is large; the halves are fixed by the shape.
///
/// - Parameter portable: use the Swift loop even where the C kernels run (tests compare the two).
func int8LinearForward(x: UnsafePointer<Float>, weights: UnsafePointer<Int8>, weightScales: UnsafePointer<Float>,
                       y: UnsafeMutablePointer<Float>, rows: Int, n: Int, k: Int, block: Int, portable: Bool = false,
                       packed: (values: UnsafePointer<Int8>, scales: UnsafePointer<Float>, groups: Int)? = nil) {
  precondition(block > 0 && k % block == 0 && (block == k || block % 32 == 0), "int8 blocks: \(block) does not fit \(k)")
  precondition(k <= 1 << 17, "int8 products accumulate in Int32: k = \(k) is too long")
  guard rows > 0, n > 0 else { return }
  /// Outputs are split in halves on both cores when the product is large (the halves fixed by the shape):
  /// from 2¹⁶ multiply–adds, the size at which `sgemm` splits a one-row product, so that a decoding step
  /// of the d128 reference model splits its MLP matrices as the float path does.
  func halves(_ outputs: @Sendable (Int, Int) -> Void) {
    if n >= 32 && rows * n * k >= 1 << 16 {
      let split = (n / 2 + 15) / 16 * 16
      parallelFor(2) { $0 == 0 ? outputs(0, split) : outputs(split, n - split) }
    } else {
      outputs(0, n)
    }
  }
  let level = int8SIMDLevel
  if level > 0 && block % 32 == 0 && !portable {
    // The activations on the stack when small (a decoding step's), quantized in C with AVX-512.
    withUnsafeTemporaryAllocation(of: Int16.self, capacity: rows * k) { plain in
      withUnsafeTemporaryAllocation(of: Float.self, capacity: rows * (k / block)) { xScales in
        if level >= 2 {
          lineage_int8_quantize_rows(x, plain.baseAddress!, xScales.baseAddress!, rows, k, block, Int32(level))
        } else {
          let a = QuantizedRows(x, rows: rows, k: k, block: block, split: false)
          _ = plain.initialize(fromContentsOf: a.plain)
          _ = xScales.initialize(fromContentsOf: a.scales)
        }
        let p = SendableConstPointer(UnsafePointer(plain.baseAddress!)), xs = SendableConstPointer(UnsafePointer(xScales.baseAddress!))
        let w = SendableConstPointer(weights), ws = SendableConstPointer(weightScales), out = SendablePointer(y)
        let pw = packed.map { SendableConstPointer($0.values) }, ps = packed.map { SendableConstPointer($0.scales) }
        let groups = packed?.groups ?? 0
        halves { o0, count in
          // Whole groups of 16 from the packed weights (the halves start at multiples of 16), the rest plain.
          var first = o0
          if let pw, let ps, level >= 2 {
            let g1 = min((o0 + count) / 16, groups)
            if g1 > o0 / 16 {
              lineage_int8_linear_packed(pw.pointer, ps.pointer, p.pointer, xs.pointer, out.pointer, rows, n, k, block,
                                         o0 / 16, g1, Int32(level))
              first = g1 * 16
            }
          }
          if first < o0 + count {
            lineage_int8_linear(w.pointer, ws.pointer, p.pointer, xs.pointer, out.pointer, rows, n, k, block, first, o0 + count,
                                Int32(level))
          }
        }
      }
    }
    return
  }
  let activations = QuantizedRows(x, rows: rows, k: k, block: block)
  activations.even.withUnsafeBufferPointer { even in
    activations.odd.withUnsafeBufferPointer { odd in
      activations.plain.withUnsafeBufferPointer { plain in
        activations.scales.withUnsafeBufferPointer { xScales in
          let e = SendableConstPointer(even.baseAddress!), o = SendableConstPointer(odd.baseAddress!)
          let p = SendableConstPointer(plain.baseAddress!), xs = SendableConstPointer(xScales.baseAddress!)
          let w = SendableConstPointer(weights), ws = SendableConstPointer(weightScales), out = SendablePointer(y)
          halves { o0, count in
            int8Block(even: e.pointer, odd: o.pointer, plain: p.pointer, xScales: xs.pointer, weights: w.pointer,
                      weightScales: ws.pointer, y: out.pointer, rows: rows, n: n, k: k, block: block, from: o0, count: count)
          }
        }
      }
    }
  }
}

/// Outputs o0..<o0+count of every row.
private func int8Block(even: UnsafePointer<Int16>, odd: UnsafePointer<Int16>, plain: UnsafePointer<Int16>,
                       xScales: UnsafePointer<Float>, weights: UnsafePointer<Int8>, weightScales: UnsafePointer<Float>,
                       y: UnsafeMutablePointer<Float>, rows: Int, n: Int, k: Int, block: Int, from o0: Int, count: Int) {
  let blocks = k / block, half = (k + 1) / 2
  for o in o0..<(o0 + count) {
    let wRow = weights + o * k, wScales = weightScales + o * blocks
    for r in 0..<rows {
      let xe = UnsafeRawPointer(even + r * half), xo = UnsafeRawPointer(odd + r * half)
      let xq = plain + r * k, xScale = xScales + r * blocks
      var total: Float = 0
      for b in 0..<blocks {
        var e = b * block
        let end = e + block
        var acc = SIMD8<Int32>()
        while e + 32 <= end {
          let v = UnsafeRawPointer(wRow + e).loadUnaligned(as: SIMD16<Int16>.self)
          let products = ((v &<< 8) &>> 8) &* xe.loadUnaligned(fromByteOffset: e, as: SIMD16<Int16>.self)
            &+ (v &>> 8) &* xo.loadUnaligned(fromByteOffset: e, as: SIMD16<Int16>.self)
          let pairs = unsafeBitCast(products, to: SIMD8<Int32>.self)
          acc &+= ((pairs &<< 16) &>> 16) &+ (pairs &>> 16)
          e += 32
        }
        var sum = acc.wrappedSum()
        while e < end {
          sum &+= Int32(wRow[e]) &* Int32(xq[e])
          e += 1
        }
        total += Float(sum) * (wScales[b] * xScale[b])
      }
      y[r * n + o] = total
    }
  }
}

/// max |x[i]| for i in 0..<n (16 lanes at a time: `pointwiseMax` is a per-lane loop here).
@inline(__always)
private func maxMagnitude(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
  var m = SIMD16<Float>()
  let mask = SIMD16<UInt32>(repeating: 0x7fff_ffff)
  var i = 0
  while i + 16 <= n {
    let a = unsafeBitCast(unsafeBitCast(load16(x + i), to: SIMD16<UInt32>.self) & mask, to: SIMD16<Float>.self)
    m.replace(with: a, where: a .> m)
    i += 16
  }
  var s = m.max()
  while i < n {
    s = max(s, abs(x[i]))
    i += 1
  }
  return s
}

/// q[i] = round(x[i] · inverse), ties to even, for |x · inverse| ≤ 127: adding 1.5 · 2²³ leaves the
/// rounded integer in the low mantissa bits (a vector add instead of a per-lane `rounded()`).
@inline(__always)
private func quantize(_ x: UnsafePointer<Float>, _ n: Int, _ inverse: Float, _ q: UnsafeMutablePointer<Int16>) {
  let magic: Float = 12_582_912
  let scale = SIMD16<Float>(repeating: inverse), shift = SIMD16<Float>(repeating: magic)
  var i = 0
  while i + 16 <= n {
    let bits = unsafeBitCast(load16(x + i) * scale + shift, to: SIMD16<Int32>.self) &- magic.bitPattern.toInt32
    for j in 0..<16 { q[i + j] = Int16(truncatingIfNeeded: bits[j]) }
    i += 16
  }
  while i < n {
    q[i] = Int16(truncatingIfNeeded: Int32(bitPattern: (x[i] * inverse + magic).bitPattern) &- magic.bitPattern.toInt32)
    i += 1
  }
}

private extension UInt32 {
  var toInt32: Int32 { Int32(bitPattern: self) }
}

/// The plain loops, kept as the reference the tests check `int8LinearForward` against: the same
/// activation quantization (`QuantizedRows`), then Int32 sums element by element.
func int8LinearReference(x: [Float], weights: [Int8], weightScales: [Float], rows: Int, n: Int, k: Int, block: Int) -> [Float] {
  let blocks = k / block
  let a = x.withUnsafeBufferPointer { QuantizedRows($0.baseAddress!, rows: rows, k: k, block: block) }
  var y = [Float](repeating: 0, count: rows * n)
  for r in 0..<rows {
    for o in 0..<n {
      var total: Float = 0
      for b in 0..<blocks {
        var sum: Int32 = 0
        for i in (b * block)..<((b + 1) * block) { sum += Int32(weights[o * k + i]) * Int32(a.plain[r * k + i]) }
        total += Float(sum) * (weightScales[o * blocks + b] * a.scales[r * blocks + b])
      }
      y[r * n + o] = total
    }
  }
  return y
}

extension Tensor {
  /// x·Wᵀ for a weight matrix W `[n, k]` stored as int8 `weights` (row-major) with one scale per block
  /// of `block` elements of a row (`weightScales` `[n, k / block]`), computed with int8 × int8 products
  /// and Int32 sums (activations quantized per block on the fly; see `Int8Matmul.swift`).
  ///
  /// For inference only: no gradient flows through it. The result is within the quantization error of
  /// x·dequantized(W)ᵀ: per block, |error| ≤ sw·sx·(Σ|qw|/2 + Σ|qx|/2 + block/4) before float rounding.
  ///
  /// - Parameters:
  ///   - x: `[rows, k]` (any shape whose last axis is k; rows = count / k).
  ///   - block: k (one scale per row: per-channel) or a divisor of k that is a multiple of 32 (Q8_0: 32).
  /// - Returns: `[rows, n]`.
  ///   - packed: the same weights in the AVX-512 kernel's layout (`PackedInt8Weights`), when the caller keeps them.
  public static func int8Linear(_ x: Tensor, weights: [Int8], weightScales: [Float], outputs n: Int, block: Int,
                                packed: PackedInt8Weights? = nil) -> Tensor {
    let k = weights.count / max(n, 1)
    precondition(weights.count == n * k && x.count % max(k, 1) == 0, "int8Linear: \(x.shape) does not end in \(k)")
    precondition(weightScales.count == n * (k / block), "int8Linear: \(weightScales.count) scales for [\(n), \(k)] in blocks of \(block)")
    let rows = k == 0 ? 0 : x.count / k
    if k == 0 { return Tensor(zeros: [rows, n]) }
    return Tensor(overwrittenShape: [rows, n]) { py in
      x.withUnsafeBufferPointer { px in
        weights.withUnsafeBufferPointer { pw in
          weightScales.withUnsafeBufferPointer { ps in
            guard let packed, packed.groups > 0 else {
              int8LinearForward(x: px.baseAddress!, weights: pw.baseAddress!, weightScales: ps.baseAddress!,
                                y: py.baseAddress!, rows: rows, n: n, k: k, block: block)
              return
            }
            precondition(packed.shape == [n, k, block], "int8Linear: packed weights of another matrix")
            packed.values.withUnsafeBufferPointer { pv in
              packed.scales.withUnsafeBufferPointer { pps in
                int8LinearForward(x: px.baseAddress!, weights: pw.baseAddress!, weightScales: ps.baseAddress!,
                                  y: py.baseAddress!, rows: rows, n: n, k: k, block: block,
                                  packed: (pv.baseAddress!, pps.baseAddress!, packed.groups))
              }
            }
          }
        }
      }
    }
  }
}

extension Variable {
  /// `Tensor.int8Linear` on a variable, for inference through a quantized model.
  ///
  /// Not differentiable: when `self` needs a gradient (the forward pass of a training step), the result
  /// is a graph node whose backward is a precondition failure, so that training through int8 weights
  /// stops at the first backward pass instead of silently skipping the layers behind it. (Stages check
  /// for a quantized model before training and fail with a message; reaching this is a bug.)
  public func int8Linear(weights: [Int8], weightScales: [Float], outputs n: Int, block: Int,
                         packed: PackedInt8Weights? = nil) -> Variable {
    let y = Tensor.int8Linear(value, weights: weights, weightScales: weightScales, outputs: n, block: block, packed: packed)
    guard requiresGrad else { return Variable(y) }
    return Variable(y, op: "int8Linear", parents: [self]) { _ in
      preconditionFailure("int8 projections have no gradient: a quantized model cannot be trained")
    }
  }
}

/// Int8 weights and their scales laid out for the AVX-512 kernel (`lineage_int8_linear_packed`): per
/// group of 16 output rows and pair of elements, the 16 rows' two values side by side, so that each
/// 32-bit lane of an accumulator is one output and no horizontal sum is needed. A copy of the plain
/// `[n, k]` values (the same bytes again), made once per matrix; empty where the kernel cannot run
/// (no AVX-512 here, or blocks that are not multiples of 32), and then the plain kernels run instead.
/// The results are the same bits either way.
public struct PackedInt8Weights: Sendable, Equatable {
  /// `[n / 16, k / 2, 16, 2]`.
  let values: [Int8]
  /// `[n / 16, k / block, 16]`.
  let scales: [Float]
  /// Whole groups of 16 outputs packed (0: none).
  let groups: Int
  /// `[n, k, block]` of the matrix packed.
  let shape: [Int]

  /// - Parameters:
  ///   - values: `[n, k]` row-major.
  ///   - scales: `[n, k / block]`.
  public init(values: [Int8], scales: [Float], outputs n: Int, block: Int) {
    let k = n == 0 ? 0 : values.count / n
    shape = [n, k, block]
    guard int8SIMDLevel >= 2, n >= 16, k > 0, block % 32 == 0, k % block == 0 else {
      (self.values, self.scales, groups) = ([], [], 0)
      return
    }
    let groups = n / 16, blocks = k / block
    var packed = [Int8](repeating: 0, count: groups * 16 * k)
    var packedScales = [Float](repeating: 0, count: groups * 16 * blocks)
    for g in 0..<groups {
      for l in 0..<16 {
        let o = g * 16 + l
        for i in 0..<(k / 2) {
          packed[g * 16 * k + i * 32 + l * 2] = values[o * k + 2 * i]
          packed[g * 16 * k + i * 32 + l * 2 + 1] = values[o * k + 2 * i + 1]
        }
        for b in 0..<blocks { packedScales[(g * blocks + b) * 16 + l] = scales[o * blocks + b] }
      }
    }
    self.values = packed
    self.scales = packedScales
    self.groups = groups
  }
}
