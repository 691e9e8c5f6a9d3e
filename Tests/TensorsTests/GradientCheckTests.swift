@testable import Tensors
import Testing

/// Every differentiable op against central finite differences.
///
/// The loss is Σ cᵢ·yᵢ with fixed random coefficients c, so every output element matters; its
/// numeric gradient is taken in float32 with a step of 1e-2 and compared by relative error.
@Suite struct GradientCheckTests {
  func random(_ shape: [Int], seed: UInt32, scale: Float = 1) -> Tensor {
    var rng = RandomStream(seed: 99, purpose: .evaluation, substream: seed)
    return Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in rng.normal() * scale })
  }

  /// Checks ∂(Σ c·f(inputs))/∂input for every input against central differences.
  func check(_ inputs: [Tensor], step h: Float = 1e-2, tolerance: Float = 1e-3,
             sourceLocation: Testing.SourceLocation = #_sourceLocation, _ f: ([Variable]) -> Variable) {
    let probe = f(inputs.map { Variable($0) })
    let c = random(probe.shape, seed: 7)
    func loss(_ values: [Tensor]) -> Double {
      let y = f(values.map { Variable($0) }).value
      var s: Double = 0
      for i in 0..<y.count { s += Double(c.scalars[i]) * Double(y.scalars[i]) }
      return s
    }
    let variables = inputs.map { Variable($0, requiresGrad: true) }
    let y = f(variables)
    (y * Variable(c)).sum().backward()
    for (n, input) in inputs.enumerated() {
      let analytic = variables[n].grad ?? Tensor(zeros: input.shape)
      var worst: Float = 0
      for i in 0..<input.count {
        var plus = inputs, minus = inputs
        plus[n].scalars[i] += h
        minus[n].scalars[i] -= h
        let numeric = Float((loss(plus) - loss(minus)) / Double(2 * h))
        let error = abs(numeric - analytic.scalars[i]) / max(1, abs(numeric), abs(analytic.scalars[i]))
        worst = max(worst, error)
      }
      #expect(worst < tolerance, "input \(n): worst relative error \(worst)", sourceLocation: sourceLocation)
    }
  }

  @Test func linear() {
    check([random([5, 4], seed: 1), random([3, 4], seed: 2)]) { $0[0].linear($0[1]) }
  }

  @Test func matmul() {
    check([random([3, 4], seed: 1), random([4, 2], seed: 2)]) { $0[0].matmul($0[1]) }
  }

  @Test func addMultiplyScaleSum() {
    check([random([6], seed: 1), random([6], seed: 2)]) { ($0[0] + $0[1]) * $0[0] }
    check([random([6], seed: 3)]) { $0[0].scaled(by: -2.5) }
    check([random([2, 3], seed: 4)]) { $0[0].sum() }
  }

  @Test func embeddingAndRows() {
    check([random([5, 3], seed: 1)]) { Variable.embedding($0[0], [4, 0, 4, 2]) }
    check([random([5, 3], seed: 1)]) { Variable.gatherRows($0[0], [1, 1, 3]) }
    check([random([3, 2], seed: 1), random([3], seed: 2)]) {
      Variable.scatterRows($0[0], weights: $0[1], indices: [2, 0, 2], count: 4)
    }
    // Several parts into one result (an MoE layer's experts), sharing rows across parts.
    check([random([3, 2], seed: 1), random([3], seed: 2), random([2, 2], seed: 3), random([2], seed: 4)]) {
      Variable.scatterRows([Variable.RowPlacement(rows: $0[0], weights: $0[1], indices: [2, 0, 2]),
                            Variable.RowPlacement(rows: $0[2], weights: $0[3], indices: [0, 3])], count: 4)
    }
  }

  @Test func rmsNorm() {
    check([random([4, 6], seed: 1), random([6], seed: 2)]) { $0[0].rmsNorm($0[1]) }
  }

  /// A frozen norm scale under a trained input (a retrieval layer trained on a frozen model: the final
  /// norm): the input's gradient is the same as when the scale trains too, and nothing is written for
  /// the scale. (The kernel once wrote its scale's shares into an empty buffer here, corrupting the heap.)
  @Test func rmsNormWithAFrozenScale() {
    let x = random([300, 6], seed: 1), w = random([6], seed: 2), c = random([300, 6], seed: 3)
    func inputGradient(scaleTrains: Bool) -> (dx: [Float], dw: Tensor?) {
      let xv = Variable(x, requiresGrad: true), wv = Variable(w, requiresGrad: scaleTrains)
      (xv.rmsNorm(wv) * Variable(c)).sum().backward()
      return (xv.grad!.scalars, wv.grad)
    }
    let frozen = inputGradient(scaleTrains: false), trained = inputGradient(scaleTrains: true)
    #expect(frozen.dx == trained.dx)
    #expect(frozen.dw == nil)
    #expect(trained.dw != nil)
  }

  @Test func swiglu() {
    check([random([10], seed: 1), random([10], seed: 2)]) { Variable.swiglu(gate: $0[0], up: $0[1]) }
  }

  @Test(arguments: [RoPEScaling.none, .linear(factor: 4), .ntk(factor: 4), .yarn(factor: 4, originalContext: 8)])
  func rope(scaling: RoPEScaling) {
    let table = RoPETable(headDim: 4, base: 10_000, scaling: scaling)
    check([random([3, 2 * 4], seed: 1)]) { $0[0].rope(positions: [0, 5, 17], heads: 2, table: table) }
  }

  @Test(arguments: [AttentionPattern.dense, .slidingWindow(window: 2, globalTokens: 1),
                    .blockSparse(block: 1, topBlocks: 1)])
  func attention(pattern: AttentionPattern) {
    // batch 2, seq 4, 4 query heads sharing 2 kv heads, head dim 3
    check([random([8, 12], seed: 1), random([8, 6], seed: 2), random([8, 6], seed: 3)]) {
      Variable.attention(q: $0[0], k: $0[1], v: $0[2], batch: 2, heads: 4, kvHeads: 2, pattern: pattern)
    }
  }

  @Test func crossEntropy() {
    check([random([4, 5], seed: 1)]) { $0[0].crossEntropy(targets: [0, 4, 2, 2], weights: [1, 0, 0.5, 1]) }
  }

  @Test func clippedPolicyLoss() {
    let logits = random([6, 5], seed: 1)
    let targets: [Int32] = [0, 4, 2, 2, 1, 3]
    let now = logits.tokenLogProbabilities(targets: targets)
    // Ratios inside the band, above it (clipped for A > 0, not for A < 0) and below it; none on a kink.
    let offsets: [Float] = [0.05, -0.5, -0.5, 0.4, -0.1, 0.3]
    let tokens = PolicyTokens(targets: targets, weights: [1, 1, 0.5, 1, 0, 2], advantages: [1.5, 1, -1, -0.7, 2, 0.3],
                              oldLogProbabilities: zip(now, offsets).map { $0 + $1 },
                              referenceLogProbabilities: now.map { $0 - 0.3 })
    check([logits]) { $0[0].clippedPolicyLoss(tokens, clip: 0.2, klCoefficient: 0.05).loss }
  }

  @Test func routing() {
    check([random([3, 5], seed: 1)]) { $0[0].softmax() }
    check([random([7], seed: 2)]) { $0[0].sigmoid() }
    check([random([3, 4], seed: 3).scaledPositive()]) { $0[0].routingWeights(chosen: [[1, 3], [0, 2], [3, 0]], normalize: true) }
    check([random([3, 4], seed: 3)]) { $0[0].routingWeights(chosen: [[1, 3], [0, 2], [3, 0]], normalize: false) }
  }

  @Test func everyDifferentiableOpIsChecked() {
    // The names of the ops each test above exercises; a new op must be added to a test and here.
    let tested: Set<String> = ["linear", "matmul", "add", "multiply", "scale", "sum", "embedding", "gatherRows",
                               "scatterRows", "rmsNorm", "swiglu", "rope", "attention", "crossEntropy",
                               "softmax", "sigmoid", "routingWeights", "clippedPolicyLoss"]
    #expect(Set(DifferentiableOp.allCases.map(\.rawValue)) == tested)
  }
}

extension Tensor {
  /// |x| + 0.5: positive scores, as gates produce.
  func scaledPositive() -> Tensor { Tensor(shape: shape, scalars: scalars.map { abs($0) + 0.5 }) }
}
