#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Knowledge distillation's soft-target loss over rows of logits (Hinton et al., 2015):
///
///   loss = T² · Σᵣ wᵣ · KL(pᵣ ‖ qᵣ) / Σᵣ wᵣ,  p = softmax(teacher / T), q = softmax(student / T).
///
/// T² keeps the gradient's size independent of the temperature, so `alpha` mixes it with the
/// hard-label cross-entropy on the same footing. The forward pass leaves q and p in `studentProbs`
/// and `teacherProbs` for the backward pass. Rows are summed in order, in Double: the loss does not
/// depend on how a caller splits its work.
func distillationForward(student: UnsafePointer<Float>, teacher: UnsafePointer<Float>, weights: UnsafePointer<Float>,
                         temperature: Float, studentProbs: UnsafeMutablePointer<Float>,
                         teacherProbs: UnsafeMutablePointer<Float>, rows: Int, vocab: Int) -> Float {
  var total: Double = 0, weightSum: Double = 0
  let inverse = 1 / temperature
  var scaled = [Float](repeating: 0, count: vocab)
  scaled.withUnsafeMutableBufferPointer { buffer in
    let s = buffer.baseAddress!
    for r in 0..<rows where weights[r] != 0 {
      let row = r * vocab
      for i in 0..<vocab { s[i] = student[row + i] * inverse }
      let logZq = logSumExp(s, studentProbs + row, vocab)
      for i in 0..<vocab { s[i] = teacher[row + i] * inverse }
      let logZp = logSumExp(s, teacherProbs + row, vocab)
      // KL = Σ p (log p − log q) with log p = t/T − log Zp and log q = s/T − log Zq.
      var kl: Double = 0
      for i in 0..<vocab {
        let p = teacherProbs[row + i]
        guard p > 0 else { continue }
        let logP = teacher[row + i] * inverse - logZp, logQ = student[row + i] * inverse - logZq
        kl += Double(p) * Double(logP - logQ)
      }
      total += Double(weights[r]) * kl
      weightSum += Double(weights[r])
    }
  }
  return weightSum > 0 ? Float(Double(temperature * temperature) * total / weightSum) : 0
}

/// Accumulates dLoss · ∂loss/∂student = dLoss · T · wᵣ/Σw · (q − p) into `dStudent`.
func distillationBackward(dLoss: Float, studentProbs: UnsafePointer<Float>, teacherProbs: UnsafePointer<Float>,
                          weights: UnsafePointer<Float>, temperature: Float, dStudent: UnsafeMutablePointer<Float>,
                          rows: Int, vocab: Int) {
  var weightSum: Float = 0
  for r in 0..<rows { weightSum += weights[r] }
  guard weightSum > 0 else { return }
  for r in 0..<rows where weights[r] != 0 {
    let scale = dLoss * temperature * weights[r] / weightSum, row = r * vocab
    for j in 0..<vocab { dStudent[row + j] += scale * (studentProbs[row + j] - teacherProbs[row + j]) }
  }
}

/// log Σ e^x over `n` values, leaving softmax(x) in `probabilities`.
private func logSumExp(_ x: UnsafePointer<Float>, _ probabilities: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
  var m = -Float.infinity
  for i in 0..<n { m = max(m, x[i]) }
  let sum = expShifted(x, probabilities, n, shift: m)
  let inverse = 1 / sum
  for i in 0..<n { probabilities[i] *= inverse }
  return m + logf(sum)
}
