#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

// Shapes: logits, probabilities [rows, vocab]; targets [rows]; weights [rows].

/// Σ weightsᵣ · −log softmax(logitsᵣ)[targetᵣ] / Σ weights, and the softmax rows (saved for backward).
func crossEntropyForward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, weights: UnsafePointer<Float>,
                         probabilities: UnsafeMutablePointer<Float>, rows: Int, vocab: Int) -> Float {
  var total: Double = 0, weightSum: Double = 0
  for r in 0..<rows {
    let row = r * vocab
    softmaxRow(logits + row, probabilities + row, vocab)
    guard weights[r] != 0 else { continue }
    total += Double(weights[r]) * -Double(logf(max(probabilities[row + Int(targets[r])], 1e-30)))
    weightSum += Double(weights[r])
  }
  return weightSum > 0 ? Float(total / weightSum) : 0
}

/// Accumulates dLoss · ∂loss/∂logits = dLoss · wᵣ/Σw · (softmax − onehot) into dLogits.
func crossEntropyBackward(dLoss: Float, probabilities: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                          weights: UnsafePointer<Float>, dLogits: UnsafeMutablePointer<Float>, rows: Int, vocab: Int) {
  var weightSum: Float = 0
  for r in 0..<rows { weightSum += weights[r] }
  guard weightSum > 0 else { return }
  for r in 0..<rows where weights[r] != 0 {
    let scale = dLoss * weights[r] / weightSum, row = r * vocab
    for j in 0..<vocab { dLogits[row + j] += scale * probabilities[row + j] }
    dLogits[row + Int(targets[r])] -= scale
  }
}

/// Numerically stable softmax of one row.
func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
  var m = -Float.infinity
  for i in 0..<n { m = max(m, x[i]) }
  let inv = 1 / expShifted(x, y, n, shift: m)
  for i in 0..<n { y[i] *= inv }
}

/// log-softmax of one row.
func logSoftmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
  var m = -Float.infinity
  for i in 0..<n { m = max(m, x[i]) }
  var s: Float = 0
  for i in 0..<n { s += expf(x[i] - m) }
  let lse = m + logf(s)
  for i in 0..<n { y[i] = x[i] - lse }
}
