#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Differentiable pieces of Mixture-of-Experts routing: gate activations and the weights of the
/// chosen experts.
extension Variable {
  /// Softmax over the last axis of `[rows, columns]`.
  public func softmax() -> Variable {
    let x = self, columns = x.shape.last!, rows = x.value.count / columns
    var y = Tensor(zeros: x.shape)
    x.value.withUnsafeBufferPointer { px in
      y.withUnsafeMutableBufferPointer { py in
        for r in 0..<rows { softmaxRow(px.baseAddress! + r * columns, py.baseAddress! + r * columns, columns) }
      }
    }
    let saved = y
    return Variable(y, op: "softmax", parents: [x]) { out in
      out.grad!.withUnsafeBufferPointer { g in
        saved.withUnsafeBufferPointer { p in
          x.withGrad { d in
            for r in 0..<rows {  // dx = p ⊙ (g − Σ p·g)
              let row = r * columns
              let dotted = dot(p.baseAddress! + row, g.baseAddress! + row, columns)
              for j in 0..<columns { d[row + j] += p[row + j] * (g[row + j] - dotted) }
            }
          }
        }
      }
    }
  }

  /// σ(x) element by element.
  public func sigmoid() -> Variable {
    let x = self
    var y = x.value
    y.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] = 1 / (1 + expf(-p[i])) } }
    let saved = y
    return Variable(y, op: "sigmoid", parents: [x]) { out in
      out.grad!.withUnsafeBufferPointer { g in
        saved.withUnsafeBufferPointer { s in
          x.withGrad { d in for i in 0..<g.count { d[i] += g[i] * s[i] * (1 - s[i]) } }
        }
      }
    }
  }

  /// The scores of each row's chosen columns, optionally divided by their sum (renormalised gates).
  ///
  /// - Parameters:
  ///   - self: scores `[rows, experts]`.
  ///   - chosen: `[rows][k]` column indices.
  /// - Returns: `[rows · k]`, row-major.
  public func routingWeights(chosen: [[Int32]], normalize: Bool) -> Variable {
    let scores = self, experts = scores.shape.last!
    let k = chosen.first?.count ?? 0
    var y = Tensor(zeros: [chosen.count * k])
    var sums = [Float](repeating: 1, count: chosen.count)
    scores.value.withUnsafeBufferPointer { s in
      y.withUnsafeMutableBufferPointer { py in
        for (r, columns) in chosen.enumerated() {
          var total: Float = 0
          for c in columns { total += s[r * experts + Int(c)] }
          sums[r] = normalize ? max(total, 1e-20) : 1
          for (slot, c) in columns.enumerated() { py[r * k + slot] = s[r * experts + Int(c)] / sums[r] }
        }
      }
    }
    let saved = y
    return Variable(y, op: "routingWeights", parents: [scores]) { out in
      out.grad!.withUnsafeBufferPointer { g in
        saved.withUnsafeBufferPointer { w in
          scores.withGrad { d in
            for (r, columns) in chosen.enumerated() {
              // w_s = s_s / S: ∂w_s/∂s_t = (δ_st − w_s) / S when normalised, δ_st otherwise.
              var weighted: Float = 0
              if normalize { for slot in 0..<k { weighted += g[r * k + slot] * w[r * k + slot] } }
              for (slot, c) in columns.enumerated() {
                d[r * experts + Int(c)] += (g[r * k + slot] - weighted) / sums[r]
              }
            }
          }
        }
      }
    }
  }
}
