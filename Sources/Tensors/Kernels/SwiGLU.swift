#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

// Shapes: gate, up, y [n] (any shape, element by element).

@inline(__always) func sigmoid(_ x: Float) -> Float { 1 / (1 + (-x).exponential) }

extension Float {
  /// e^x through the C library (`-fno-math-errno` lets it vectorise).
  @inline(__always) var exponential: Float { expf(self) }
}

/// y = silu(gate) · up, where silu(g) = g · σ(g).
func swigluForward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int) {
  sigmoidVector(gate, y, count)
  for i in 0..<count { y[i] *= gate[i] * up[i] }
}

/// Accumulates into dGate and dUp.
func swigluBackward(dy: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                    dGate: UnsafeMutablePointer<Float>?, dUp: UnsafeMutablePointer<Float>?, count: Int) {
  var sig = [Float](repeating: 0, count: count)
  sig.withUnsafeMutableBufferPointer { s in
    sigmoidVector(gate, s.baseAddress!, count)
    if let dUp { for i in 0..<count { dUp[i] += dy[i] * gate[i] * s[i] } }
    if let dGate { for i in 0..<count { dGate[i] += dy[i] * up[i] * s[i] * (1 + gate[i] * (1 - s[i])) } }
  }
}
