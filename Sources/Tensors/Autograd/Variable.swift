/// A node of the reverse-mode autograd graph: a tensor value, its gradient, and how to pass a
/// gradient on to the values it was computed from.
///
/// Parameters are `Variable(tensor, requiresGrad: true)`; every op on variables returns a new
/// variable remembering its inputs (only when one of them requires a gradient). `loss.backward()`
/// visits the graph in reverse topological order; gradients accumulate (+=) until `zeroGrad()`.
/// A graph lives for one training step and is used from one thread.
public final class Variable {
  public var value: Tensor
  public var grad: Tensor?
  public let requiresGrad: Bool
  /// The op that made this variable (for error messages and the op registry check).
  public let op: String
  let parents: [Variable]
  /// Given this variable's gradient, accumulates into its parents' gradients.
  let backwardFunction: ((Variable) -> Void)?

  /// A leaf: an input, or a parameter when `requiresGrad`.
  public init(_ value: Tensor, requiresGrad: Bool = false) {
    self.value = value
    self.requiresGrad = requiresGrad
    self.op = "leaf"
    self.parents = []
    self.backwardFunction = nil
  }

  /// The result of an op; it needs a gradient when any parent does.
  init(_ value: Tensor, op: String, parents: [Variable], backward: @escaping (Variable) -> Void) {
    self.value = value
    self.op = op
    let needs = parents.contains { $0.requiresGrad }
    self.requiresGrad = needs
    self.parents = needs ? parents : []
    self.backwardFunction = needs ? backward : nil
  }

  public var shape: [Int] { value.shape }

  /// Calls `body` with this variable's gradient buffer, created as zeros on first use.
  func withGrad<R>(_ body: (UnsafeMutablePointer<Float>) -> R) -> R {
    if grad == nil { grad = Tensor(zeros: value.shape) }
    return grad!.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
  }

  /// Calls `body` with the gradient buffer and whether it is new: a new buffer is uninitialised, so
  /// `body` must then write every element (an sgemm with β = 0) instead of adding to it. Saves
  /// zeroing memory for the first gradient a variable receives.
  func withGradForWriting<R>(_ body: (UnsafeMutablePointer<Float>, _ fresh: Bool) -> R) -> R {
    if grad == nil {
      var result: R?
      grad = Tensor(overwrittenShape: value.shape) { result = body($0.baseAddress!, true) }
      return result!
    }
    return grad!.withUnsafeMutableBufferPointer { body($0.baseAddress!, false) }
  }

  /// Like `withGrad`, or nil when this variable needs no gradient.
  func withGradIfNeeded<R>(_ body: (UnsafeMutablePointer<Float>?) -> R) -> R {
    requiresGrad ? withGrad { body($0) } : body(nil)
  }

  /// Back-propagates from this scalar: d(self)/d(self) = 1.
  public func backward() {
    precondition(value.count == 1, "backward() starts from a scalar, not \(value.shape)")
    guard requiresGrad else { return }
    var order: [Variable] = []
    var seen = Set<ObjectIdentifier>()
    // Iterative depth-first post-order (graphs can be deeper than the stack allows recursion).
    var stack: [(Variable, Bool)] = [(self, false)]
    while let (node, expanded) = stack.popLast() {
      if expanded {
        order.append(node)
        continue
      }
      guard seen.insert(ObjectIdentifier(node)).inserted else { continue }
      stack.append((node, true))
      for p in node.parents where p.requiresGrad && !seen.contains(ObjectIdentifier(p)) { stack.append((p, false)) }
    }
    withGrad { $0[0] += 1 }
    for node in order.reversed() where node.grad != nil {
      node.backwardFunction?(node)
    }
  }

  /// Forgets the gradient.
  public func zeroGrad() { grad = nil }
}
