import Tensors

/// One weight matrix W `[out, in]` applied to rows: y = x·Wᵀ. Every matrix product of a layer (the
/// attention and MLP projections, the router, the experts, the heads) goes through this type, so that
/// how a weight is stored (float32, or int8 with scales) changes here and nowhere in the transformer.
public struct Projection {
  public enum Storage {
    /// A float32 variable: trainable (a model's parameter) or a gradient-free view (generation).
    case float32(Variable)
    /// Int8 values with per-channel or Q8_0 block scales: inference only, with int8 × int8 products.
    case int8(QuantizedMatrix)
  }

  public let storage: Storage

  public init(_ storage: Storage) {
    self.storage = storage
  }

  /// `[out, in]`.
  public var shape: [Int] {
    switch storage {
    case .float32(let w): return w.shape
    case .int8(let q): return q.shape
    }
  }

  /// - Parameter x: `[n, in]`.
  /// - Returns: `[n, out]`.
  ///
  /// An int8 projection records no weight gradient, and its result passes no gradient to `x`: when `x`
  /// needs one (a training step), the result's backward is a precondition failure, because training
  /// through rounded weights is not something this engine does (stages refuse to train a quantized
  /// model before they start; see `TransformerLM.quantization`).
  public func apply(_ x: Variable) -> Variable {
    switch storage {
    case .float32(let w): return x.linear(w)
    case .int8(let q): return q.apply(x)
    }
  }

  /// The same weights read as a constant: products through it record no weight gradient.
  public var withoutGradient: Projection {
    switch storage {
    case .float32(let w): return w.requiresGrad ? Projection(.float32(Variable(w.value))) : self
    case .int8: return self
    }
  }
}
