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
  for i in 0..<count {
    let g = gate[i]
    y[i] = g * sigmoid(g) * up[i]
  }
}

/// Accumulates into dGate and dUp.
func swigluBackward(dy: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                    dGate: UnsafeMutablePointer<Float>?, dUp: UnsafeMutablePointer<Float>?, count: Int) {
  for i in 0..<count {
    let g = gate[i], s = sigmoid(g)
    if let dUp { dUp[i] += dy[i] * g * s }
    if let dGate { dGate[i] += dy[i] * up[i] * s * (1 + g * (1 - s)) }
  }
}
