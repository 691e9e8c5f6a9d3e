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
