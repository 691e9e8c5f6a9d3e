#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// The sampled tokens of a batch of rollouts, one row of logits each, and what a clipped
/// policy-gradient loss needs to know about them.
public struct PolicyTokens: Sendable {
  /// The token sampled at each row.
  public var targets: [Int32]
  /// Each row's share of the loss (0 for prompt and padding rows). The loss divides by their sum, so
  /// 1 on every response token gives the token-level mean, 1/|oᵢ| on sample i's tokens the mean of
  /// per-sample means (DeepSeekMath's normalisation).
  public var weights: [Float]
  /// The advantage of the sample each row belongs to (GRPO: (r − mean)/(std + ε) within its group).
  public var advantages: [Float]
  /// log π_old(token): the policy that sampled the rollouts (the ratio is π/π_old).
  public var oldLogProbabilities: [Float]
  /// log π_ref(token) under the frozen reference model, for the KL penalty (nil: no penalty).
  public var referenceLogProbabilities: [Float]?

  public init(targets: [Int32], weights: [Float], advantages: [Float], oldLogProbabilities: [Float],
              referenceLogProbabilities: [Float]? = nil) {
    precondition(weights.count == targets.count && advantages.count == targets.count
                 && oldLogProbabilities.count == targets.count
                 && (referenceLogProbabilities?.count ?? targets.count) == targets.count)
    self.targets = targets
    self.weights = weights
    self.advantages = advantages
    self.oldLogProbabilities = oldLogProbabilities
    self.referenceLogProbabilities = referenceLogProbabilities
  }
}

/// What a policy-loss evaluation saw, weighted like the loss.
public struct PolicyLossStatistics: Equatable, Sendable {
  /// The k3 estimate of KL(π ‖ π_ref) (0 without a reference).
  public var kl: Double
  /// The share of rows where the clip bound the ratio (their gradient is zero).
  public var clippedShare: Double
  /// The mean ratio π/π_old.
  public var meanRatio: Double
}

extension Tensor {
  /// log softmax(row)[targets[row]] of logits `[rows, vocab]`: the log-probability of each row's token
  /// (no graph; for π_old and π_ref).
  public func tokenLogProbabilities(targets: [Int32]) -> [Float] {
    let rows = targets.count, vocab = count / max(rows, 1)
    precondition(rows * vocab == count)
    var out = [Float](repeating: 0, count: rows)
    withUnsafeBufferPointer { logits in
      for r in 0..<rows { out[r] = logSoftmaxAt(logits.baseAddress! + r * vocab, vocab, Int(targets[r])) }
    }
    return out
  }
}

/// log softmax(x)[index] of one row, stably (max subtracted, the sum in Double).
private func logSoftmaxAt(_ x: UnsafePointer<Float>, _ n: Int, _ index: Int) -> Float {
  var m = -Float.infinity
  for j in 0..<n { m = max(m, x[j]) }
  var s: Double = 0
  for j in 0..<n { s += Double(expf(x[j] - m)) }
  return x[index] - m - Float(log(s))
}

extension Variable {
  /// The clipped surrogate loss of PPO and GRPO, with GRPO's KL penalty, on logits `[rows, vocab]`:
  ///
  ///   ℓᵣ = −min(ρᵣ·Aᵣ, clip(ρᵣ, 1−ε, 1+ε)·Aᵣ) + β·k3ᵣ,   loss = Σ wᵣ·ℓᵣ / Σ wᵣ
  ///
  /// with ρ = π/π_old of the row's token and k3 = π_ref/π − log(π_ref/π) − 1, the unbiased,
  /// always-positive KL estimator of DeepSeekMath (Schulman's k3). One fused op: per row, a log-softmax,
  /// the two branches and their gradient through the softmax (ρ·A where the unclipped branch is the
  /// minimum, 0 where the clip binds; β·(1 − π_ref/π) for the penalty).
  ///
  /// - Parameters:
  ///   - clip: ε.
  ///   - klCoefficient: β (ignored without reference log-probabilities).
  public func clippedPolicyLoss(_ tokens: PolicyTokens, clip: Float, klCoefficient: Float)
    -> (loss: Variable, statistics: PolicyLossStatistics) {
    let logits = self, rows = tokens.targets.count, vocab = logits.value.count / max(rows, 1)
    precondition(rows > 0 && rows * vocab == logits.value.count)
    let weightSum = tokens.weights.reduce(0, +)
    let beta = tokens.referenceLogProbabilities == nil ? 0 : klCoefficient
    // dℓᵣ/d log πᵣ, kept for backward.
    var slope = [Float](repeating: 0, count: rows)
    var total: Double = 0, kl: Double = 0, clipped: Double = 0, ratios: Double = 0
    let logProbabilities = logits.value.tokenLogProbabilities(targets: tokens.targets)
    for r in 0..<rows where tokens.weights[r] != 0 {
      let w = Double(tokens.weights[r]) / Double(weightSum)
      let logP = logProbabilities[r], a = tokens.advantages[r]
      let ratio = expf(logP - tokens.oldLogProbabilities[r])
      let bounded = min(max(ratio, 1 - clip), 1 + clip)
      // The unclipped branch is the minimum (or both are equal inside the band): its gradient flows.
      let unclipped = ratio * a <= bounded * a || (ratio >= 1 - clip && ratio <= 1 + clip)
      var loss = -Double(min(ratio * a, bounded * a))
      var d: Float = unclipped ? -ratio * a : 0
      if let reference = tokens.referenceLogProbabilities {
        let q = expf(reference[r] - logP)          // π_ref/π
        let k3 = q - (reference[r] - logP) - 1
        loss += Double(beta * k3)
        d += beta * (1 - q)
        kl += w * Double(k3)
      }
      slope[r] = d
      total += w * loss
      ratios += w * Double(ratio)
      if !unclipped { clipped += w }
    }
    let statistics = PolicyLossStatistics(kl: kl, clippedShare: clipped, meanRatio: ratios)
    let loss = Variable(Tensor(Float(total)), op: DifferentiableOp.clippedPolicyLoss.rawValue, parents: [logits]) { out in
      let g = out.grad!.scalars[0]
      logits.value.withUnsafeBufferPointer { pl in
        logits.withGrad { dLogits in
          for r in 0..<rows where tokens.weights[r] != 0 && slope[r] != 0 {
            // d log softmax(x)[t] / dx = onehot(t) − softmax(x).
            let row = r * vocab, scale = g * slope[r] * tokens.weights[r] / weightSum
            var m = -Float.infinity
            for j in 0..<vocab { m = max(m, pl[row + j]) }
            var s: Float = 0
            for j in 0..<vocab { s += expf(pl[row + j] - m) }
            for j in 0..<vocab { dLogits[row + j] -= scale * expf(pl[row + j] - m) / s }
            dLogits[row + Int(tokens.targets[r])] += scale
          }
        }
      }
    }
    return (loss, statistics)
  }
}
