import Tensors

/// A weight matrix `[out, in]` stored as symmetric int8 values with float scales: what a quantized
/// model keeps instead of float32 (a quarter of the bytes), and what its projections multiply with
/// int8 products (`Tensor.int8Linear`).
///
/// Two schemes:
/// - `perChannel`: one scale per output row, d = max|row| / 127.
/// - `q8_0`: GGUF's Q8_0, blocks of 32 consecutive elements of a row, one scale each, d = max|block| /
///   127 rounded to Float16 (GGUF stores it as F16), q = round(x / d) with that rounded d, clamped to
///   −127…127. The values and scales are GGUF's bytes as they are: a GGUF writer emits, per block, the
///   scale as Float16 (exactly representable, so the conversion is lossless) and the 32 values.
///
/// In both, q = round(x / d) (ties away from zero, as C's `roundf`), so |x − q·d| ≤ d/2 for every element
/// (tested); a row or block of zeros has d = 0 and q = 0.
public struct QuantizedMatrix: Equatable, Sendable {
  /// How scales are shared; the YAML words are the artifact's `lineage_quantization` values.
  public enum Scheme: String, CaseIterable, Codable, Sendable {
    case perChannel = "per_channel"
    case q8_0 = "q8_0"
  }

  /// Elements per Q8_0 block (GGUF's `QK8_0`).
  public static let q8_0BlockSize = 32

  public let scheme: Scheme
  /// `[out, in]`.
  public let shape: [Int]
  /// The int8 values, row-major `[out, in]`, each in −127…127.
  public let values: [Int8]
  /// One per block, row-major: `[out]` (per-channel) or `[out, in / 32]` (Q8_0).
  public let scales: [Float]
  /// The same values and scales in the AVX-512 kernel's layout, made once (empty where it does not run).
  let packed: PackedInt8Weights

  /// Elements sharing one scale: the whole row (per-channel) or 32 (Q8_0).
  public var blockSize: Int { scheme == .perChannel ? shape[1] : QuantizedMatrix.q8_0BlockSize }

  /// The shape of `scales`: `[out]` or `[out, in / 32]`.
  public var scaleShape: [Int] { scheme == .perChannel ? [shape[0]] : [shape[0], shape[1] / QuantizedMatrix.q8_0BlockSize] }

  /// Quantizes a float matrix.
  ///
  /// - Parameter weight: `[out, in]`, finite.
  /// - Throws: `QuantizationError` when the weight is not a finite matrix, when `in` is not a multiple of
  ///   32 for Q8_0, or when a Q8_0 scale exceeds Float16's range.
  public init(quantizing weight: Tensor, scheme: Scheme) throws(QuantizationError) {
    guard weight.rank == 2 else { throw .notAMatrix(weight.shape) }
    let (rows, columns) = (weight.shape[0], weight.shape[1])
    let block = scheme == .perChannel ? columns : QuantizedMatrix.q8_0BlockSize
    if scheme == .q8_0 && columns % block != 0 { throw .columnsNotMultipleOfBlock(columns: columns, block: block) }
    let x = weight.scalars
    guard x.allSatisfy(\.isFinite) else { throw .notFinite }
    var values = [Int8](repeating: 0, count: x.count)
    var scales: [Float] = []
    scales.reserveCapacity(columns == 0 ? 0 : rows * (columns / block))
    if columns > 0 {
      for r in 0..<rows {
        for start in stride(from: r * columns, to: (r + 1) * columns, by: block) {
          let span = start..<(start + block)
          let amax = x[span].reduce(Float(0)) { max($0, abs($1)) }
          var d = amax / 127
          if scheme == .q8_0 {
            guard d <= Float(Float16.greatestFiniteMagnitude) else { throw .scaleOutOfFloat16Range(amax) }
            d = Float(Float16(d))
          }
          scales.append(d)
          guard d > 0 else { continue }  // a block of zeros (or one whose d rounds to 0 in Float16): q = 0
          for i in span { values[i] = Int8(max(-127, min(127, (x[i] / d).rounded(.toNearestOrAwayFromZero)))) }
        }
      }
    }
    self.scheme = scheme
    self.shape = [rows, columns]
    self.values = values
    self.scales = scales
    packed = PackedInt8Weights(values: values, scales: scales, outputs: rows, block: block)
  }

  /// A matrix from stored values and scales (a checkpoint's), validated.
  ///
  /// - Throws: `QuantizationError` when the counts do not fit the shape and scheme, a value is −128,
  ///   or a Q8_0 scale is not a Float16 value.
  public init(scheme: Scheme, shape: [Int], values: [Int8], scales: [Float]) throws(QuantizationError) {
    guard shape.count == 2, shape.allSatisfy({ $0 >= 0 }) else { throw .notAMatrix(shape) }
    if scheme == .q8_0 && shape[1] % QuantizedMatrix.q8_0BlockSize != 0 {
      throw .columnsNotMultipleOfBlock(columns: shape[1], block: QuantizedMatrix.q8_0BlockSize)
    }
    let blocks = scheme == .perChannel ? 1 : shape[1] / QuantizedMatrix.q8_0BlockSize
    guard values.count == shape[0] * shape[1], scales.count == shape[0] * blocks else {
      throw .countMismatch(shape: shape, values: values.count, scales: scales.count)
    }
    guard !values.contains(-128) else { throw .valueOutOfRange }
    guard scales.allSatisfy({ $0.isFinite && $0 >= 0 }) else { throw .notFinite }
    if scheme == .q8_0, let bad = scales.first(where: { Float(Float16($0)) != $0 }) { throw .scaleNotFloat16(bad) }
    self.scheme = scheme
    self.shape = shape
    self.values = values
    self.scales = scales
    packed = PackedInt8Weights(values: values, scales: scales, outputs: shape[0],
                               block: scheme == .perChannel ? shape[1] : QuantizedMatrix.q8_0BlockSize)
  }

  /// The float matrix the values and scales stand for: q · d, `[out, in]`.
  public func dequantized() -> Tensor {
    let block = blockSize
    var out = [Float](repeating: 0, count: values.count)
    for i in values.indices { out[i] = Float(values[i]) * scales[i / block] }
    return Tensor(shape: shape, scalars: out)
  }

  /// Bytes as stored in an artifact: one per value and four per scale.
  public var byteCount: Int { values.count + 4 * scales.count }

  /// y = x·Wᵀ with int8 products (no gradient).
  ///
  /// - Parameter x: `[n, in]`.
  /// - Returns: `[n, out]`.
  public func apply(_ x: Tensor) -> Tensor {
    Tensor.int8Linear(x, weights: values, weightScales: scales, outputs: shape[0], block: blockSize, packed: packed)
  }

  /// y = x·Wᵀ with int8 products on a variable: no gradient reaches the weights, and a backward pass
  /// through the result is a precondition failure (`Variable.int8Linear`).
  public func apply(_ x: Variable) -> Variable {
    x.int8Linear(weights: values, weightScales: scales, outputs: shape[0], block: blockSize, packed: packed)
  }
}

/// A matrix that cannot be quantized, or stored quantized values that do not make one.
public enum QuantizationError: Error, Equatable, CustomStringConvertible {
  case notAMatrix([Int])
  case columnsNotMultipleOfBlock(columns: Int, block: Int)
  case notFinite
  case scaleOutOfFloat16Range(Float)
  case countMismatch(shape: [Int], values: Int, scales: Int)
  case valueOutOfRange
  case scaleNotFloat16(Float)

  public var description: String {
    switch self {
    case .notAMatrix(let shape): return "only matrices are quantized, not shape \(shape)"
    case .columnsNotMultipleOfBlock(let columns, let block):
      return "q8_0 needs rows whose length is a multiple of \(block); this matrix has \(columns) columns (use per_channel)"
    case .notFinite: return "the weights hold a value that is not finite"
    case .scaleOutOfFloat16Range(let amax): return "a block's largest magnitude \(amax) needs a scale beyond Float16's range"
    case .countMismatch(let shape, let values, let scales):
      return "\(values) values and \(scales) scales do not make a quantized matrix of shape \(shape)"
    case .valueOutOfRange: return "a quantized value is −128 (symmetric int8 stays within −127…127)"
    case .scaleNotFloat16(let s): return "q8_0 scale \(s) is not a Float16 value"
    }
  }
}
