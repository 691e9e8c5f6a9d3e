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

/// Elements per task of the element-wise kernels: fixed, so the split never depends on the cores
/// (and each element's arithmetic does not depend on the split at all).
let elementChunk = 1 << 14

/// y = silu(gate) · up, where silu(g) = g · σ(g).
func swigluForward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count: Int) {
  let g = SendableConstPointer(gate), u = SendableConstPointer(up), out = SendablePointer(y)
  parallelFor((count + elementChunk - 1) / elementChunk, workPerItem: elementChunk * 8) { chunk in
    let start = chunk * elementChunk, end = min(count, start + elementChunk)
    sigmoidVector(g.pointer + start, out.pointer + start, end - start)
    for i in start..<end { out.pointer[i] *= g.pointer[i] * u.pointer[i] }
  }
}

/// Accumulates into dGate and dUp.
func swigluBackward(dy: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                    dGate: UnsafeMutablePointer<Float>?, dUp: UnsafeMutablePointer<Float>?, count: Int) {
  let d = SendableConstPointer(dy), g = SendableConstPointer(gate), u = SendableConstPointer(up)
  let dg = dGate.map { SendablePointer($0) }, du = dUp.map { SendablePointer($0) }
  parallelFor((count + elementChunk - 1) / elementChunk, workPerItem: elementChunk * 12) { chunk in
    let start = chunk * elementChunk, n = min(count, start + elementChunk) - start
    let dy = d.pointer + start, gate = g.pointer + start, up = u.pointer + start
    withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { sig in
      let s = sig.baseAddress!
      sigmoidVector(gate, s, n)
      if let du { let dUp = du.pointer + start; for i in 0..<n { dUp[i] += dy[i] * gate[i] * s[i] } }
      if let dg {
        let dGate = dg.pointer + start
        for i in 0..<n { dGate[i] += dy[i] * up[i] * s[i] * (1 + gate[i] * (1 - s[i])) }
      }
    }
  }
}
