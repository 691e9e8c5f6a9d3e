/// A float32 tensor: a shape and its elements, contiguous and row-major.
///
/// A value type: copies share storage until one of them is written (the elements live in a Swift
/// array, which is copy-on-write). Elements are reached through `scalars` or, in kernels, through
/// `withUnsafeBufferPointer` / `withUnsafeMutableBufferPointer`; no pointer escapes those closures.
///
/// Shapes are written `[rows, dim]`, `[batch, seq, heads, headDim]`; the last axis varies fastest.
public struct Tensor: Sendable, Equatable {
  public private(set) var shape: [Int]
  public internal(set) var scalars: [Float]

  /// A tensor with the given elements; `scalars.count` must equal the product of `shape`.
  public init(shape: [Int], scalars: [Float]) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
    precondition(shape.reduce(1, *) == scalars.count, "shape \(shape) does not hold \(scalars.count) elements")
    self.shape = shape
    self.scalars = scalars
  }

  /// All zeros.
  public init(zeros shape: [Int]) {
    self.init(shape: shape, scalars: [Float](repeating: 0, count: shape.reduce(1, *)))
  }

  /// A tensor whose elements a kernel is about to overwrite entirely (skips zeroing the memory).
  init(overwrittenShape shape: [Int], _ fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
    let count = shape.reduce(1, *)
    self.shape = shape
    self.scalars = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
      fill(buffer)
      initialized = count
    }
  }

  /// Every element `value`.
  public init(repeating value: Float, shape: [Int]) {
    self.init(shape: shape, scalars: [Float](repeating: value, count: shape.reduce(1, *)))
  }

  /// A scalar (shape `[]`).
  public init(_ value: Float) { self.init(shape: [], scalars: [value]) }

  public var count: Int { scalars.count }
  public var rank: Int { shape.count }

  /// The same elements under another shape with the same count (free: no copy).
  public func reshaped(_ newShape: [Int]) -> Tensor {
    Tensor(shape: newShape, scalars: scalars)
  }

  public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
    try scalars.withUnsafeBufferPointer(body)
  }

  public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
    try scalars.withUnsafeMutableBufferPointer { try body($0) }
  }

  /// The element at a multi-index (for tests and small reads).
  public subscript(_ index: Int...) -> Float {
    var flat = 0
    for (axis, i) in index.enumerated() { flat = flat * shape[axis] + i }
    return scalars[flat]
  }

  /// Adds `other` element by element (same count).
  public mutating func add(_ other: Tensor) {
    precondition(other.count == count)
    scalars.withUnsafeMutableBufferPointer { a in
      other.scalars.withUnsafeBufferPointer { b in
        for i in 0..<a.count { a[i] += b[i] }
      }
    }
  }

  /// Sum of squares in double precision (for norms).
  public var sumOfSquares: Double {
    scalars.withUnsafeBufferPointer { p in
      var s: Double = 0
      for x in p { s += Double(x) * Double(x) }
      return s
    }
  }
}
