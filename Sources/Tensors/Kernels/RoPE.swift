#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// How rotary positions are stretched for a context longer than the one trained on.
public enum RoPEScaling: Codable, Hashable, Sendable {
  case none
  /// Position interpolation: positions divided by `factor`.
  case linear(factor: Float)
  /// NTK-aware: the base grows to base · factor^(d / (d − 2)), stretching low frequencies most.
  case ntk(factor: Float)
  /// YaRN: each frequency is interpolated by an amount that depends on its wavelength relative to
  /// the original context (high frequencies kept, low ones divided by `factor`, a linear ramp
  /// between), and attention logits are sharpened by 0.1·ln(factor) + 1 (Peng et al., 2023).
  case yarn(factor: Float, originalContext: Int)
}

/// The per-dimension rotation frequencies and the cos/sin scale for a head dimension and scaling.
public struct RoPETable: Sendable, Equatable {
  public let headDim: Int
  /// θᵢ for i in 0..<headDim/2.
  public let frequencies: [Float]
  /// Multiplies cos and sin (YaRN's attention temperature; 1 otherwise).
  public let magnitude: Float

  public init(headDim: Int, base: Float, scaling: RoPEScaling) {
    precondition(headDim % 2 == 0, "RoPE needs an even head dimension")
    self.headDim = headDim
    let half = headDim / 2
    var effectiveBase = Double(base)
    var positionScale: Double = 1
    var magnitude: Float = 1
    switch scaling {
    case .none, .yarn: break
    case .linear(let factor): positionScale = 1 / Double(factor)
    case .ntk(let factor): effectiveBase *= pow(Double(factor), Double(headDim) / Double(headDim - 2))
    }
    var freqs = (0..<half).map { i in positionScale * pow(effectiveBase, -2 * Double(i) / Double(headDim)) }
    if case .yarn(let factor, let original) = scaling {
      let alpha = 1.0, beta = 32.0
      freqs = freqs.map { theta in
        let rotations = Double(original) * theta / (2 * Double.pi)  // turns over the original context
        let ramp = min(1, max(0, (rotations - alpha) / (beta - alpha)))
        return theta / Double(factor) * (1 - ramp) + theta * ramp
      }
      magnitude = Float(0.1 * log(Double(factor)) + 1)
    }
    frequencies = freqs.map { Float($0) }
    self.magnitude = magnitude
  }
}

// Shapes: x, y [rows, heads, headDim]; positions [rows]. Pairs are (i, i + headDim/2), as in the Llama
// reference code (rotate_half), so exported weights load elsewhere unchanged.

/// Rotates each head's pairs by position · θᵢ (inverse = true rotates back: the backward pass).
///
/// cos and sin are computed once per distinct position when positions repeat (training: every
/// sequence of the batch has positions 0..<seq), else once per row; rows run on both cores in
/// fixed-size chunks. Either way each value is the same `cosf`/`sinf` of the same angle.
func ropeApply(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>,
               rows: Int, heads: Int, table: RoPETable, inverse: Bool, accumulate: Bool) {
  let d = table.headDim, half = d / 2
  let sign: Float = inverse ? -1 : 1
  var largest = 0
  for r in 0..<rows { largest = max(largest, Int(positions[r])) }
  // One row of cos·m, then sin·m·sign, per position (or per row).
  let perPosition = largest + 1 <= rows
  let entries = perPosition ? largest + 1 : rows
  var angles = [Float](repeating: 0, count: entries * d)
  angles.withUnsafeMutableBufferPointer { buffer in
    let a = buffer.baseAddress!
    for e in 0..<entries {
      let p = Float(perPosition ? e : Int(positions[e]))
      for i in 0..<half {
        let angle = p * table.frequencies[i]
        a[e * d + i] = cosf(angle) * table.magnitude
        a[e * d + half + i] = sign * sinf(angle) * table.magnitude
      }
    }
  }
  let xp = SendableConstPointer(x), yp = SendablePointer(y), pp = SendableConstPointer(positions)
  angles.withUnsafeBufferPointer { buffer in
    let ap = SendableConstPointer(buffer.baseAddress!)
    let chunk = 64
    parallelFor((rows + chunk - 1) / chunk, workPerItem: chunk * heads * d * 3) { c in
      let x = xp.pointer, y = yp.pointer
      for r in (c * chunk)..<min(rows, (c + 1) * chunk) {
        let cosines = ap.pointer + (perPosition ? Int(pp.pointer[r]) : r) * d, sines = cosines + half
        for h in 0..<heads {
          let base = (r * heads + h) * d
          for i in 0..<half {
            let a = x[base + i], b = x[base + i + half]
            let ra = a * cosines[i] - b * sines[i]
            let rb = b * cosines[i] + a * sines[i]
            if accumulate {
              y[base + i] += ra
              y[base + i + half] += rb
            } else {
              y[base + i] = ra
              y[base + i + half] = rb
            }
          }
        }
      }
    }
  }
}
