/// GGUF's Q8_0 tensor encoding: the values cut into blocks of 32, each stored as one Float16 scale d
/// followed by 32 int8 values q, so that a value reads back as d · q (34 bytes per 32 values).
///
/// Two ways in:
/// - `init(quantizing:)` quantizes floats exactly as ggml's reference `quantize_row_q8_0_ref` (and the
///   `gguf` Python package's `quants.quantize`) do: d = max|x| / 127 in Float32, q = roundf(x · (1/d)),
///   d stored rounded to Float16. The same floats give the same bytes as llama.cpp's converter, which
///   is what `Scripts/check_export.py` compares.
/// - `init(values:scales:)` takes blocks that were quantized already (an int8 model artifact whose
///   scales are Float16 values), so they are written as they are and no second rounding happens.
public struct Q8_0Blocks: Equatable, Sendable {
  /// Values per block (ggml's `QK8_0`).
  public static let blockSize = 32
  /// Bytes per block: a Float16 scale and 32 int8 values.
  public static let bytesPerBlock = 2 + blockSize

  /// One scale per block.
  public let scales: [Float16]
  /// The int8 values, `scales.count · 32` of them, in the tensor's order.
  public let values: [Int8]

  /// Quantizes `x` (its count a multiple of 32) as ggml's reference quantizer does.
  ///
  /// - Throws: `Q8_0Error` when the count is not a multiple of 32, a value is not finite, or a
  ///   block's scale is too large for Float16.
  public init(quantizing x: [Float]) throws(Q8_0Error) {
    guard x.count % Q8_0Blocks.blockSize == 0 else { throw .countNotMultipleOfBlock(x.count) }
    var scales: [Float16] = []
    var values = [Int8](repeating: 0, count: x.count)
    scales.reserveCapacity(x.count / Q8_0Blocks.blockSize)
    for start in stride(from: 0, to: x.count, by: Q8_0Blocks.blockSize) {
      var amax: Float = 0
      for i in start..<(start + Q8_0Blocks.blockSize) {
        guard x[i].isFinite else { throw .notFinite(index: i) }
        amax = max(amax, abs(x[i]))
      }
      let d = amax / 127
      guard d <= Float(Float16.greatestFiniteMagnitude) else { throw .scaleOutOfFloat16Range(block: scales.count, scale: d) }
      let inverse: Float = d == 0 ? 0 : 1 / d
      for i in start..<(start + Q8_0Blocks.blockSize) {
        // |x · (1/d)| ≤ 127 up to three roundings, so the rounded value fits an Int8. A subnormal d
        // has an infinite inverse (ggml would then write garbage): divide instead.
        let scaled = inverse.isFinite ? x[i] * inverse : x[i] / d
        values[i] = Int8(scaled.rounded(.toNearestOrAwayFromZero))
      }
      scales.append(Float16(d))
    }
    self.scales = scales
    self.values = values
  }

  /// Blocks quantized elsewhere, kept bit for bit: 32 values per scale, each scale a Float16 value.
  ///
  /// This is the entry for an int8 model artifact in GGUF's layout (Q8_0 scheme): its values and
  /// scales become the file's blocks unchanged.
  ///
  /// - Throws: `Q8_0Error` when the counts disagree or a scale is not exactly a Float16 value.
  public init(values: [Int8], scales: [Float]) throws(Q8_0Error) {
    guard values.count == scales.count * Q8_0Blocks.blockSize else {
      throw .countsDisagree(values: values.count, scales: scales.count)
    }
    var halves: [Float16] = []
    halves.reserveCapacity(scales.count)
    for (b, s) in scales.enumerated() {
      let h = Float16(s)
      guard Float(h) == s else { throw .scaleNotFloat16(block: b, scale: s) }
      halves.append(h)
    }
    self.scales = halves
    self.values = values
  }

  private init(scales: [Float16], values: [Int8]) {
    self.scales = scales
    self.values = values
  }

  /// d · q for every value, as llama.cpp's `dequantize_row_q8_0` computes it.
  public var dequantized: [Float] {
    values.indices.map { Float(scales[$0 / Q8_0Blocks.blockSize]) * Float(values[$0]) }
  }

  /// The blocks with the rows of a `[rows, columns]` matrix reordered: row r of the result is row
  /// `order[r]` of this one. Blocks never straddle rows (columns are a multiple of 32), so this is exact.
  ///
  /// - Precondition: `columns` is a multiple of 32 and `order` is a permutation of the rows.
  public func permutingRows(_ order: [Int], columns: Int) -> Q8_0Blocks {
    precondition(columns % Q8_0Blocks.blockSize == 0 && order.count * columns == values.count)
    let perRow = columns / Q8_0Blocks.blockSize
    var scales: [Float16] = [], values: [Int8] = []
    scales.reserveCapacity(self.scales.count)
    values.reserveCapacity(self.values.count)
    for r in order {
      scales += self.scales[(r * perRow)..<((r + 1) * perRow)]
      values += self.values[(r * columns)..<((r + 1) * columns)]
    }
    return Q8_0Blocks(scales: scales, values: values)
  }

  /// The file bytes: per block, the scale (Float16, little-endian) then the 32 values.
  public var bytes: [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(scales.count * Q8_0Blocks.bytesPerBlock)
    for (b, scale) in scales.enumerated() {
      let bits = scale.bitPattern
      out.append(UInt8(bits & 0xFF))
      out.append(UInt8(bits >> 8))
      for q in values[(b * Q8_0Blocks.blockSize)..<((b + 1) * Q8_0Blocks.blockSize)] { out.append(UInt8(bitPattern: q)) }
    }
    return out
  }

  /// Blocks read back from file bytes (`bytes.count` a multiple of 34).
  init(bytes: ArraySlice<UInt8>) {
    precondition(bytes.count % Q8_0Blocks.bytesPerBlock == 0)
    var scales: [Float16] = [], values: [Int8] = []
    var i = bytes.startIndex
    while i < bytes.endIndex {
      scales.append(Float16(bitPattern: UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8))
      for j in 0..<Q8_0Blocks.blockSize { values.append(Int8(bitPattern: bytes[i + 2 + j])) }
      i += Q8_0Blocks.bytesPerBlock
    }
    self.init(scales: scales, values: values)
  }
}

/// Values that cannot be written as Q8_0 blocks.
public enum Q8_0Error: Error, Equatable, CustomStringConvertible {
  case countNotMultipleOfBlock(Int)
  case notFinite(index: Int)
  case scaleOutOfFloat16Range(block: Int, scale: Float)
  case countsDisagree(values: Int, scales: Int)
  case scaleNotFloat16(block: Int, scale: Float)

  public var description: String {
    switch self {
    case .countNotMultipleOfBlock(let n): return "Q8_0 needs a multiple of 32 values, got \(n)"
    case .notFinite(let i): return "value \(i) is not finite"
    case .scaleOutOfFloat16Range(let b, let s): return "block \(b)'s scale \(s) is beyond Float16's range"
    case .countsDisagree(let v, let s): return "\(v) int8 values do not make 32 per scale for \(s) scales"
    case .scaleNotFloat16(let b, let s): return "block \(b)'s scale \(s) is not a Float16 value"
    }
  }
}
