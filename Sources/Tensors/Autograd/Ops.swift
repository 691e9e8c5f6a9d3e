/// Differentiable operations on `Variable`s. Each one runs a kernel forward, and records a closure
/// that runs the matching backward kernel (accumulating into its inputs' gradients).
///
/// `DifferentiableOp.allCases` lists them; the tests check each against finite differences and check
/// that the list and the tested set are equal.
public enum DifferentiableOp: String, CaseIterable, Sendable {
  case linear, matmul, add, multiply, scale, embedding, rmsNorm, swiglu, rope, attention, crossEntropy, sum
  case gatherRows, scatterRows, softmax, sigmoid, routingWeights, clippedPolicyLoss
}

extension Variable {
  // MARK: - Matrix products

  /// y = x·Wᵀ: a linear layer without bias.
  ///
  /// - Parameters:
  ///   - x: `[rows, in]`.
  ///   - weight: `[out, in]` (the layout PyTorch and safetensors use).
  /// - Returns: `[rows, out]`.
  public func linear(_ weight: Variable) -> Variable {
    let x = self
    let rows = x.value.count / weight.shape[1], inDim = weight.shape[1], outDim = weight.shape[0]
    precondition(x.value.count == rows * inDim, "linear: \(x.shape) does not end in \(inDim)")
    let y = Tensor(overwrittenShape: [rows, outDim]) { py in  // beta = 0: sgemm writes every element
      x.value.withUnsafeBufferPointer { px in
        weight.value.withUnsafeBufferPointer { pw in
          sgemm(px.baseAddress!, transposeA: false, pw.baseAddress!, transposeB: true, py.baseAddress!,
                m: rows, n: outDim, k: inDim)
        }
      }
    }
    return Variable(y, op: "linear", parents: [x, weight]) { out in
      out.grad!.withUnsafeBufferPointer { dy in
        if x.requiresGrad {  // dx += dy·W
          weight.value.withUnsafeBufferPointer { pw in
            x.withGradForWriting { dx, fresh in
              sgemm(dy.baseAddress!, transposeA: false, pw.baseAddress!, transposeB: false, dx, m: rows, n: inDim,
                    k: outDim, beta: fresh ? 0 : 1)
            }
          }
        }
        if weight.requiresGrad {  // dW += dyᵀ·x
          x.value.withUnsafeBufferPointer { px in
            weight.withGradForWriting { dw, fresh in
              sgemm(dy.baseAddress!, transposeA: true, px.baseAddress!, transposeB: false, dw, m: outDim, n: inDim,
                    k: rows, beta: fresh ? 0 : 1)
            }
          }
        }
      }
    }
  }

  /// The matrix product of two rank-2 variables: `[m, k]·[k, n] → [m, n]`.
  public func matmul(_ other: Variable) -> Variable {
    let a = self, b = other
    let m = a.shape[0], k = a.shape[1], n = b.shape[1]
    precondition(b.shape[0] == k, "matmul: \(a.shape) and \(b.shape) do not fit")
    let c = Tensor.matmul(a.value, b.value)
    return Variable(c, op: "matmul", parents: [a, b]) { out in
      out.grad!.withUnsafeBufferPointer { dc in
        if a.requiresGrad {
          b.value.withUnsafeBufferPointer { pb in
            a.withGrad { da in sgemm(dc.baseAddress!, transposeA: false, pb.baseAddress!, transposeB: true, da, m: m, n: k, k: n, beta: 1) }
          }
        }
        if b.requiresGrad {
          a.value.withUnsafeBufferPointer { pa in
            b.withGrad { db in sgemm(pa.baseAddress!, transposeA: true, dc.baseAddress!, transposeB: false, db, m: k, n: n, k: m, beta: 1) }
          }
        }
      }
    }
  }

  // MARK: - Element-wise

  /// a + b, same number of elements (the result takes a's shape).
  public static func + (a: Variable, b: Variable) -> Variable {
    precondition(a.value.count == b.value.count, "add: \(a.shape) and \(b.shape)")
    var y = a.value
    y.add(b.value)
    return Variable(y, op: "add", parents: [a, b]) { out in
      out.grad!.withUnsafeBufferPointer { g in
        for v in [a, b] where v.requiresGrad {
          v.withGradForWriting { d, fresh in
            if fresh {
              d.update(from: g.baseAddress!, count: g.count)
            } else {
              for i in 0..<g.count { d[i] += g[i] }
            }
          }
        }
      }
    }
  }

  /// a ⊙ b, same number of elements.
  public static func * (a: Variable, b: Variable) -> Variable {
    precondition(a.value.count == b.value.count, "multiply: \(a.shape) and \(b.shape)")
    var y = a.value
    y.withUnsafeMutableBufferPointer { py in
      b.value.withUnsafeBufferPointer { pb in for i in 0..<py.count { py[i] *= pb[i] } }
    }
    return Variable(y, op: "multiply", parents: [a, b]) { out in
      out.grad!.withUnsafeBufferPointer { g in
        if a.requiresGrad { b.value.withUnsafeBufferPointer { pb in a.withGrad { d in for i in 0..<g.count { d[i] += g[i] * pb[i] } } } }
        if b.requiresGrad { a.value.withUnsafeBufferPointer { pa in b.withGrad { d in for i in 0..<g.count { d[i] += g[i] * pa[i] } } } }
      }
    }
  }

  /// s · x.
  public func scaled(by s: Float) -> Variable {
    let x = self
    var y = x.value
    y.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] *= s } }
    return Variable(y, op: "scale", parents: [x]) { out in
      out.grad!.withUnsafeBufferPointer { g in x.withGrad { d in for i in 0..<g.count { d[i] += s * g[i] } } }
    }
  }

  /// The same elements under another shape.
  public func reshaped(_ shape: [Int]) -> Variable {
    let x = self
    return Variable(x.value.reshaped(shape), op: "reshape", parents: [x]) { out in
      out.grad!.withUnsafeBufferPointer { g in x.withGrad { d in for i in 0..<g.count { d[i] += g[i] } } }
    }
  }

  /// Σ of every element, as a scalar.
  public func sum() -> Variable {
    let x = self
    var s: Float = 0
    x.value.withUnsafeBufferPointer { p in for v in p { s += v } }
    return Variable(Tensor(s), op: "sum", parents: [x]) { out in
      let g = out.grad!.scalars[0]
      x.withGrad { d in for i in 0..<x.value.count { d[i] += g } }
    }
  }

  // MARK: - Rows

  /// Rows of a table picked by index (an embedding lookup, or MoE's dispatch of tokens to an expert).
  ///
  /// - Parameters:
  ///   - table: `[rows, dim]`.
  ///   - indices: row numbers, each in `0..<rows`.
  /// - Returns: `[indices.count, dim]`; the backward pass scatter-adds into the table's gradient.
  public static func gatherRows(_ table: Variable, _ indices: [Int32], op: String = "gatherRows") -> Variable {
    let dim = table.shape[1]
    for index in indices { precondition(index >= 0 && Int(index) < table.shape[0], "row \(index) outside \(table.shape)") }
    let y = Tensor(overwrittenShape: [indices.count, dim]) { py in  // every row is copied
      table.value.withUnsafeBufferPointer { t in
        for (r, index) in indices.enumerated() {
          (py.baseAddress! + r * dim).update(from: t.baseAddress! + Int(index) * dim, count: dim)
        }
      }
    }
    return Variable(y, op: op, parents: [table]) { out in
      out.grad!.withUnsafeBufferPointer { g in
        table.withGrad { d in
          for (r, index) in indices.enumerated() { axpy(d + Int(index) * dim, 1, g.baseAddress! + r * dim, dim) }
        }
      }
    }
  }

  /// An embedding lookup: `gatherRows` of the table.
  public static func embedding(_ table: Variable, _ ids: [Int32]) -> Variable { gatherRows(table, ids, op: "embedding") }

  /// `[rows, dim]` rows placed, each times a weight, at `indices` of a zero `[count, dim]` result;
  /// rows sharing an index add up. MoE's combine step: weighted expert outputs back to their tokens.
  public static func scatterRows(_ rows: Variable, weights: Variable, indices: [Int32], count: Int) -> Variable {
    scatterRows([RowPlacement(rows: rows, weights: weights, indices: indices)], count: count)
  }

  /// One part of a `scatterRows`: `rows [n, dim]`, `weights [n]`, and each row's place.
  public struct RowPlacement {
    public var rows: Variable
    public var weights: Variable
    public var indices: [Int32]

    public init(rows: Variable, weights: Variable, indices: [Int32]) {
      self.rows = rows
      self.weights = weights
      self.indices = indices
    }
  }

  /// Several parts placed into one zero `[count, dim]` result, in order (every expert of an MoE layer
  /// at once: one result and one pass instead of a full-size tensor and a sum per expert).
  public static func scatterRows(_ parts: [RowPlacement], count: Int) -> Variable {
    precondition(!parts.isEmpty)
    let dim = parts[0].rows.shape[1]
    for part in parts {
      precondition(part.rows.shape[1] == dim && part.weights.value.count == part.indices.count
                   && part.rows.shape[0] == part.indices.count)
      for index in part.indices { precondition(index >= 0 && Int(index) < count, "row \(index) outside \(count)") }
    }
    var y = Tensor(zeros: [count, dim])
    y.withUnsafeMutableBufferPointer { py in
      for part in parts {
        part.rows.value.withUnsafeBufferPointer { x in
          part.weights.value.withUnsafeBufferPointer { w in
            for (r, index) in part.indices.enumerated() {
              axpy(py.baseAddress! + Int(index) * dim, w[r], x.baseAddress! + r * dim, dim)
            }
          }
        }
      }
    }
    return Variable(y, op: "scatterRows", parents: parts.flatMap { [$0.rows, $0.weights] }) { out in
      out.grad!.withUnsafeBufferPointer { g in
        let gp = g.baseAddress!
        for part in parts {
          part.rows.value.withUnsafeBufferPointer { x in
            part.weights.value.withUnsafeBufferPointer { w in
              if part.rows.requiresGrad {
                part.rows.withGrad { d in
                  for (r, index) in part.indices.enumerated() { axpy(d + r * dim, w[r], gp + Int(index) * dim, dim) }
                }
              }
              if part.weights.requiresGrad {
                part.weights.withGrad { d in
                  for (r, index) in part.indices.enumerated() { d[r] += dot(x.baseAddress! + r * dim, gp + Int(index) * dim, dim) }
                }
              }
            }
          }
        }
      }
    }
  }

  // MARK: - Transformer kernels

  /// RMSNorm over the last axis: `[rows, dim]` with weight `[dim]`.
  public func rmsNorm(_ weight: Variable, eps: Float = 1e-5) -> Variable {
    let x = self, dim = weight.value.count, rows = x.value.count / dim
    var inv = [Float](repeating: 0, count: rows)
    let y = Tensor(overwrittenShape: x.shape) { py in  // the kernel writes every element
      x.value.withUnsafeBufferPointer { px in
        weight.value.withUnsafeBufferPointer { pw in
          inv.withUnsafeMutableBufferPointer { pi in
            rmsNormForward(x: px.baseAddress!, weight: pw.baseAddress!, y: py.baseAddress!, invRMS: pi.baseAddress!,
                           rows: rows, dim: dim, eps: eps)
          }
        }
      }
    }
    return Variable(y, op: "rmsNorm", parents: [x, weight]) { out in
      out.grad!.withUnsafeBufferPointer { dy in
        x.value.withUnsafeBufferPointer { px in
          weight.value.withUnsafeBufferPointer { pw in
            inv.withUnsafeBufferPointer { pi in
              x.withGradIfNeeded { dx in
                weight.withGradIfNeeded { dw in
                  rmsNormBackward(dy: dy.baseAddress!, x: px.baseAddress!, weight: pw.baseAddress!,
                                  invRMS: pi.baseAddress!, dx: dx, dWeight: dw, rows: rows, dim: dim)
                }
              }
            }
          }
        }
      }
    }
  }

  /// silu(gate) ⊙ up, the SwiGLU activation; same shapes.
  public static func swiglu(gate: Variable, up: Variable) -> Variable {
    precondition(gate.value.count == up.value.count)
    let y = Tensor(overwrittenShape: gate.shape) { py in  // the kernel writes every element
      gate.value.withUnsafeBufferPointer { g in
        up.value.withUnsafeBufferPointer { u in
          swigluForward(gate: g.baseAddress!, up: u.baseAddress!, y: py.baseAddress!, count: py.count)
        }
      }
    }
    return Variable(y, op: "swiglu", parents: [gate, up]) { out in
      out.grad!.withUnsafeBufferPointer { dy in
        gate.value.withUnsafeBufferPointer { g in
          up.value.withUnsafeBufferPointer { u in
            gate.withGradIfNeeded { dg in
              up.withGradIfNeeded { du in
                swigluBackward(dy: dy.baseAddress!, gate: g.baseAddress!, up: u.baseAddress!, dGate: dg, dUp: du,
                               count: dy.count)
              }
            }
          }
        }
      }
    }
  }

  /// Rotary position embedding of `[rows, heads · headDim]` at the rows' positions.
  public func rope(positions: [Int32], heads: Int, table: RoPETable) -> Variable {
    let x = self, rows = positions.count
    precondition(x.value.count == rows * heads * table.headDim, "rope: \(x.shape) is not \(rows)×\(heads)×\(table.headDim)")
    var y = Tensor(zeros: x.shape)
    x.value.withUnsafeBufferPointer { px in
      y.withUnsafeMutableBufferPointer { py in
        positions.withUnsafeBufferPointer { pp in
          ropeApply(x: px.baseAddress!, y: py.baseAddress!, positions: pp.baseAddress!, rows: rows, heads: heads,
                    table: table, inverse: false, accumulate: false)
        }
      }
    }
    return Variable(y, op: "rope", parents: [x]) { out in
      out.grad!.withUnsafeBufferPointer { dy in
        positions.withUnsafeBufferPointer { pp in
          // y = m·R(θ)x, so dx = m·R(−θ)dy: the same kernel, rotating back.
          x.withGrad { dx in
            ropeApply(x: dy.baseAddress!, y: dx, positions: pp.baseAddress!, rows: rows, heads: heads,
                      table: table, inverse: true, accumulate: true)
          }
        }
      }
    }
  }

  /// Causal self-attention of `q [batch·seq, heads·headDim]` over `k, v [batch·seq, kvHeads·headDim]`.
  ///
  /// - Returns: `[batch·seq, heads·headDim]`. Memory for the saved weights grows with the most keys a
  ///   query attends to: seq · `pattern.maximumKeys(length: seq)` per head.
  public static func attention(q: Variable, k: Variable, v: Variable, batch: Int, heads: Int, kvHeads: Int,
                               pattern: AttentionPattern) -> Variable {
    attention(q: q, k: k, v: v, batch: batch, heads: heads, kvHeads: kvHeads, pattern: pattern, pairwise: false)
  }

  /// `pairwise: true` runs every pattern through the pair-by-pair kernel instead of matrix products
  /// (tests compare the two).
  static func attention(q: Variable, k: Variable, v: Variable, batch: Int, heads: Int, kvHeads: Int,
                        pattern: AttentionPattern, pairwise: Bool) -> Variable {
    let rows = q.shape[0], seq = rows / batch, headDim = q.value.count / (rows * heads)
    precondition(heads % kvHeads == 0 && rows == batch * seq)
    let shape = AttentionShape(batch: batch, queries: seq, keyStride: seq, heads: heads, kvHeads: kvHeads,
                               headDim: headDim, pattern: pattern, scale: 1 / Float(headDim).squareRoot())
    let positions = (0..<rows).map { Int32($0 % seq) }
    // Dense attention runs as matrix products (faster up to long sequences, where windows take over).
    let useDense = pattern == .dense && !pairwise
    // Sliding windows run as matrix products over blocks of queries.
    let useWindow: Bool
    if case .slidingWindow = pattern { useWindow = !pairwise } else { useWindow = false }
    // Block-sparse attention too, over blocks of queries that share an own block.
    let useBlocks: Bool
    if case .blockSparse = pattern { useBlocks = !pairwise } else { useBlocks = false }
    var out = Tensor(zeros: q.shape)
    var probs = [Float](repeating: 0, count: batch * heads * seq * shape.maxKeys)
    q.value.withUnsafeBufferPointer { pq in
      k.value.withUnsafeBufferPointer { pk in
        v.value.withUnsafeBufferPointer { pv in
          out.withUnsafeMutableBufferPointer { po in
            probs.withUnsafeMutableBufferPointer { pp in
              positions.withUnsafeBufferPointer { ppos in
                if useDense {
                  denseAttentionForward(q: pq.baseAddress!, k: pk.baseAddress!, v: pv.baseAddress!, out: po.baseAddress!,
                                        probs: pp.baseAddress!, shape: shape)
                } else if useWindow {
                  windowAttentionForward(q: pq.baseAddress!, k: pk.baseAddress!, v: pv.baseAddress!, out: po.baseAddress!,
                                         probs: pp.baseAddress!, shape: shape)
                } else if useBlocks {
                  blockSparseAttentionForward(q: pq.baseAddress!, k: pk.baseAddress!, v: pv.baseAddress!,
                                              out: po.baseAddress!, probs: pp.baseAddress!, shape: shape)
                } else {
                  attentionForward(q: pq.baseAddress!, k: pk.baseAddress!, v: pv.baseAddress!, out: po.baseAddress!,
                                   probs: pp.baseAddress!, positions: ppos.baseAddress!, shape: shape)
                }
              }
            }
          }
        }
      }
    }
    return Variable(out, op: "attention", parents: [q, k, v]) { result in
      result.grad!.withUnsafeBufferPointer { g in
        q.value.withUnsafeBufferPointer { pq in
          k.value.withUnsafeBufferPointer { pk in
            v.value.withUnsafeBufferPointer { pv in
              probs.withUnsafeBufferPointer { pp in
                positions.withUnsafeBufferPointer { ppos in
                  // Gradients of inputs that need none go to scratch buffers.
                  var scratch = [Float](repeating: 0, count: max(q.value.count, k.value.count))
                  scratch.withUnsafeMutableBufferPointer { s in
                    q.withGradIfNeeded { dq in
                      k.withGradIfNeeded { dk in
                        v.withGradIfNeeded { dv in
                          if useDense {
                            denseAttentionBackward(dOut: g.baseAddress!, q: pq.baseAddress!, k: pk.baseAddress!,
                                                   v: pv.baseAddress!, probs: pp.baseAddress!, dq: dq ?? s.baseAddress!,
                                                   dk: dk ?? s.baseAddress!, dv: dv ?? s.baseAddress!, shape: shape)
                          } else if useWindow {
                            windowAttentionBackward(dOut: g.baseAddress!, q: pq.baseAddress!, k: pk.baseAddress!,
                                                    v: pv.baseAddress!, probs: pp.baseAddress!, dq: dq ?? s.baseAddress!,
                                                    dk: dk ?? s.baseAddress!, dv: dv ?? s.baseAddress!, shape: shape)
                          } else if useBlocks {
                            blockSparseAttentionBackward(dOut: g.baseAddress!, q: pq.baseAddress!, k: pk.baseAddress!,
                                                         v: pv.baseAddress!, probs: pp.baseAddress!,
                                                         dq: dq ?? s.baseAddress!, dk: dk ?? s.baseAddress!,
                                                         dv: dv ?? s.baseAddress!, shape: shape)
                          } else {
                            attentionBackward(dOut: g.baseAddress!, q: pq.baseAddress!, k: pk.baseAddress!,
                                              v: pv.baseAddress!, probs: pp.baseAddress!, positions: ppos.baseAddress!,
                                              dq: dq ?? s.baseAddress!, dk: dk ?? s.baseAddress!, dv: dv ?? s.baseAddress!,
                                              shape: shape)
                          }
                        }
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }

  /// Mean cross-entropy of `logits [rows, vocab]` against `targets`, each row weighted by `weights`
  /// (0 masks a row out, e.g. prompt or padding tokens).
  public func crossEntropy(targets: [Int32], weights: [Float]? = nil) -> Variable {
    let logits = self, rows = targets.count, vocab = logits.value.count / rows
    let w = weights ?? [Float](repeating: 1, count: rows)
    precondition(w.count == rows && logits.value.count == rows * vocab)
    var probs = [Float](repeating: 0, count: rows * vocab)
    let loss = logits.value.withUnsafeBufferPointer { pl in
      targets.withUnsafeBufferPointer { pt in
        w.withUnsafeBufferPointer { pw in
          probs.withUnsafeMutableBufferPointer { pp in
            crossEntropyForward(logits: pl.baseAddress!, targets: pt.baseAddress!, weights: pw.baseAddress!,
                                probabilities: pp.baseAddress!, rows: rows, vocab: vocab)
          }
        }
      }
    }
    return Variable(Tensor(loss), op: "crossEntropy", parents: [logits]) { out in
      let g = out.grad!.scalars[0]
      probs.withUnsafeBufferPointer { pp in
        targets.withUnsafeBufferPointer { pt in
          w.withUnsafeBufferPointer { pw in
            logits.withGrad { d in
              crossEntropyBackward(dLoss: g, probabilities: pp.baseAddress!, targets: pt.baseAddress!, weights: pw.baseAddress!,
                                   dLogits: d, rows: rows, vocab: vocab)
            }
          }
        }
      }
    }
  }
}
