import Foundation
@testable import Tensors
import Testing

/// The clipped policy loss against values computed by hand.
@Suite struct PolicyLossTests {
  /// Two equal logits: π(token 0) = 1/2.
  let even = Tensor(shape: [1, 2], scalars: [0, 0])

  @Test func atRatioOneTheLossIsMinusTheAdvantagePlusTheK3Penalty() {
    let half = Float(log(0.5)), quarter = Float(log(0.25))
    let tokens = PolicyTokens(targets: [0], weights: [1], advantages: [2], oldLogProbabilities: [half],
                              referenceLogProbabilities: [quarter])
    let logits = Variable(even, requiresGrad: true)
    let (loss, stats) = logits.clippedPolicyLoss(tokens, clip: 0.2, klCoefficient: 0.1)
    // k3 = q − log q − 1 with q = π_ref/π = 0.5: 0.5 + 0.693147 − 1 = 0.193147.
    #expect(abs(loss.value.scalars[0] - (-2 + 0.1 * 0.193147)) < 1e-5)
    #expect(abs(stats.kl - 0.193147) < 1e-5 && stats.meanRatio == 1 && stats.clippedShare == 0)
    loss.backward()
    // dℓ/dlog π = −ρ·A + β(1 − q) = −2 + 0.05; dlog π/dx = onehot − softmax = [0.5, −0.5].
    let g = logits.grad!.scalars
    #expect(abs(g[0] - (-1.95 * 0.5)) < 1e-5 && abs(g[1] - (1.95 * 0.5)) < 1e-5)
  }

  @Test func theClipBindsOnlyWhereItLowersTheObjective() {
    // π_old = 1/4, π = 1/2: ρ = 2, beyond 1 + ε = 1.2.
    let old = Float(log(0.25))
    for (advantage, expected, flows) in [(Float(1), Float(-1.2), false), (-1, 2, true)] {
      let logits = Variable(even, requiresGrad: true)
      let tokens = PolicyTokens(targets: [0], weights: [1], advantages: [advantage], oldLogProbabilities: [old])
      let (loss, stats) = logits.clippedPolicyLoss(tokens, clip: 0.2, klCoefficient: 0.1)
      #expect(abs(loss.value.scalars[0] - expected) < 1e-5, "A = \(advantage)")
      #expect(stats.clippedShare == (flows ? 0 : 1) && stats.kl == 0, "no reference: no KL")
      loss.backward()
      let g = logits.grad?.scalars ?? [0, 0]
      // Unclipped with A = −1: dℓ/dlog π = −ρ·A = 2, times [0.5, −0.5].
      #expect(flows ? abs(g[0] - 1) < 1e-5 && abs(g[1] + 1) < 1e-5 : g == [0, 0], "A = \(advantage): \(g)")
    }
  }

  @Test func weightsAverageOverTheRowsTheyCover() {
    // Two rows with the same token and ratio 1; advantages 1 and 3; the second row weighs 3×: (1 + 9)/4.
    let logits = Variable(Tensor(shape: [3, 2], scalars: [0, 0, 0, 0, 5, -5]), requiresGrad: true)
    let half = Float(log(0.5))
    let tokens = PolicyTokens(targets: [0, 0, 1], weights: [1, 3, 0], advantages: [1, 3, 100],
                              oldLogProbabilities: [half, half, 0])
    let (loss, _) = logits.clippedPolicyLoss(tokens, clip: 0.2, klCoefficient: 0)
    #expect(abs(loss.value.scalars[0] - (-(1 + 9) / 4)) < 1e-5, "the zero-weight row does not count")
    loss.backward()
    #expect(logits.grad!.scalars[4...] == [0, 0])
  }

  @Test func tokenLogProbabilitiesAreTheLogSoftmaxAtTheTarget() {
    let logits = Tensor(shape: [2, 3], scalars: [1, 2, 3, 1000, 0, 0])
    let lp = logits.tokenLogProbabilities(targets: [2, 1])
    let expected = 3 - log(exp(1.0) + exp(2.0) + exp(3.0))
    #expect(abs(Double(lp[0]) - expected) < 1e-5)
    #expect(lp[1] == -1000, "stable for large logits")
  }
}
