import Tensors

/// One weight matrix W `[out, in]` applied to rows: y = x·Wᵀ. Every matrix product of a layer (the
/// attention and MLP projections, the router, the experts, the heads) goes through this type, so that
/// how a weight is stored (float32 today, int8 with scales next) changes here and nowhere in the
/// transformer.
public struct Projection {
  public enum Storage {
    /// A float32 variable: trainable (a model's parameter) or a gradient-free view (generation).
    case float32(Variable)
  }

  public let storage: Storage

  public init(_ storage: Storage) {
    self.storage = storage
  }

  /// `[out, in]`.
  public var shape: [Int] {
    switch storage {
    case .float32(let w): return w.shape
    }
  }

  /// - Parameter x: `[n, in]`.
  /// - Returns: `[n, out]`.
  public func apply(_ x: Variable) -> Variable {
    switch storage {
    case .float32(let w): return x.linear(w)
    }
  }

  /// The same weights read as a constant: products through it record no weight gradient.
  public var withoutGradient: Projection {
    switch storage {
    case .float32(let w): return w.requiresGrad ? Projection(.float32(Variable(w.value))) : self
    }
  }
}
