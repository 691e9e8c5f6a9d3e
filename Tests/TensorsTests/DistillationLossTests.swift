import Foundation
@testable import Tensors
import Testing

/// Knowledge distillation's soft-target loss: by hand, its limits, and its gradient by finite differences.
@Suite struct DistillationLossTests {
  func random(_ shape: [Int], seed: UInt32, scale: Float = 1) -> Tensor {
    var rng = RandomStream(seed: 5, purpose: .evaluation, substream: seed)
    return Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in rng.normal() * scale })
  }

  /// T² · KL(softmax(t/T) ‖ softmax(s/T)) for one row, in Double.
  func reference(student: [Float], teacher: [Float], temperature: Double) -> Double {
    func softmax(_ x: [Float]) -> [Double] {
      let scaled = x.map { Double($0) / temperature }, m = scaled.max()!
      let e = scaled.map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
      return e.map { $0 / z }
    }
    let p = softmax(teacher), q = softmax(student)
    return temperature * temperature * zip(p, q).reduce(0) { $0 + $1.0 * Foundation.log($1.0 / $1.1) }
  }

  @Test func matchesTheDefinitionRowByRowWithWeights() {
    let student = random([3, 5], seed: 1, scale: 2), teacher = random([3, 5], seed: 2, scale: 2)
    let weights: [Float] = [1, 0, 3]
    for temperature in [0.5, 1.0, 2.0, 4.0] {
      let loss = Variable(student).distillationLoss(teacher: teacher, temperature: Float(temperature), weights: weights)
      var expected = 0.0
      for r in [0, 2] {
        let row = { (t: Tensor) in Array(t.scalars[(r * 5)..<(r * 5 + 5)]) }
        expected += Double(weights[r]) * reference(student: row(student), teacher: row(teacher), temperature: temperature)
      }
      expected /= 4
      #expect(abs(Double(loss.value.scalars[0]) - expected) < 1e-4 * max(1, expected), "T = \(temperature)")
    }
  }

  @Test func isZeroWhenTheStudentEqualsTheTeacherAndPositiveOtherwise() {
    let logits = random([4, 7], seed: 3, scale: 3)
    #expect(abs(Variable(logits).distillationLoss(teacher: logits, temperature: 2).value.scalars[0]) < 1e-6)
    let other = random([4, 7], seed: 4, scale: 3)
    #expect(Variable(other).distillationLoss(teacher: logits, temperature: 2).value.scalars[0] > 0.01)
    // Shifting a row by a constant changes no probability.
    var shifted = logits
    for i in 0..<shifted.count { shifted.scalars[i] += 5 }
    #expect(abs(Variable(shifted).distillationLoss(teacher: logits, temperature: 1).value.scalars[0]) < 1e-5)
  }

  /// The gradient is T · (q − p) per weighted row, / Σw: checked against central differences.
  @Test func gradientMatchesFiniteDifferences() {
    let student = random([3, 6], seed: 5, scale: 1.5), teacher = random([3, 6], seed: 6, scale: 1.5)
    let weights: [Float] = [0.5, 0, 2]
    for temperature: Float in [1, 3] {
      let v = Variable(student, requiresGrad: true)
      v.distillationLoss(teacher: teacher, temperature: temperature, weights: weights).backward()
      let analytic = v.grad!
      let h: Float = 1e-2
      var worst: Float = 0
      for i in 0..<student.count {
        var plus = student, minus = student
        plus.scalars[i] += h
        minus.scalars[i] -= h
        let f = { (x: Tensor) in Double(Variable(x).distillationLoss(teacher: teacher, temperature: temperature, weights: weights).value.scalars[0]) }
        let numeric = Float((f(plus) - f(minus)) / Double(2 * h))
        worst = max(worst, abs(numeric - analytic.scalars[i]) / max(1, abs(numeric)))
      }
      #expect(worst < 2e-3, "T = \(temperature): worst relative error \(worst)")
      // A masked row takes no gradient.
      #expect((6..<12).allSatisfy { analytic.scalars[$0] == 0 })
    }
  }
}
