#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// One AdamW step in place (Loshchilov & Hutter, "Decoupled weight decay regularization"):
/// m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p − lr·(m̂ / (√v̂ + ε) + λ·p), with bias-corrected m̂, v̂.
///
/// Shapes: parameter, gradient, m, v [count]. `step` counts from 1.
func adamWStep(parameter: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
               v: UnsafeMutablePointer<Float>, count: Int, learningRate: Float, beta1: Float, beta2: Float,
               epsilon: Float, weightDecay: Float, step: Int) {
  let c1 = 1 / (1 - powf(beta1, Float(step))), c2 = 1 / (1 - powf(beta2, Float(step)))
  for i in 0..<count {
    let g = gradient[i]
    m[i] = beta1 * m[i] + (1 - beta1) * g
    v[i] = beta2 * v[i] + (1 - beta2) * g * g
    let update = (m[i] * c1) / ((v[i] * c2).squareRoot() + epsilon)
    parameter[i] -= learningRate * (update + weightDecay * parameter[i])
  }
}

extension Tensor {
  /// Applies one AdamW step to this parameter in place; `m` and `v` are its moment buffers.
  public mutating func adamWUpdate(gradient: Tensor, m: inout [Float], v: inout [Float], learningRate: Float,
                                   beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float, step: Int) {
    precondition(gradient.count == count && m.count == count && v.count == count)
    withUnsafeMutableBufferPointer { p in
      gradient.withUnsafeBufferPointer { g in
        m.withUnsafeMutableBufferPointer { pm in
          v.withUnsafeMutableBufferPointer { pv in
            adamWStep(parameter: p.baseAddress!, gradient: g.baseAddress!, m: pm.baseAddress!, v: pv.baseAddress!,
                      count: p.count, learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                      weightDecay: weightDecay, step: step)
          }
        }
      }
    }
  }

  /// Multiplies every element by `s` in place.
  public mutating func scale(by s: Float) {
    withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] *= s } }
  }
}
