#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Tensors

/// AdamW over a model's parameters, with global-norm gradient clipping and a learning-rate schedule.
///
/// Weight decay is decoupled (applied to the weights, not the gradient) and chosen by role
/// (`ParameterID.decays`: not for norm weights, which are scales around 1 rather than free weights).
/// Only the parameters it trains are updated, clipped and given moments. The state (step and moments) serialises
/// exactly, so a run resumed from a checkpoint continues bit for bit.
///
/// Gradient accumulation: call `backward()` on each of n micro-batch losses scaled by 1/n (gradients
/// add up until `zeroGradients()`), then `update()` once.
public final class AdamW {
  public struct Settings: Codable, Hashable, Sendable {
    public var schedule: LearningRateSchedule
    public var beta1: Float = 0.9
    public var beta2: Float = 0.95
    public var epsilon: Float = 1e-8
    public var weightDecay: Float = 0.1
    /// Clip gradients to this global L2 norm (0: no clipping).
    public var gradientClip: Float = 1

    public init(schedule: LearningRateSchedule, beta1: Float = 0.9, beta2: Float = 0.95, epsilon: Float = 1e-8,
                weightDecay: Float = 0.1, gradientClip: Float = 1) {
      self.schedule = schedule
      self.beta1 = beta1
      self.beta2 = beta2
      self.epsilon = epsilon
      self.weightDecay = weightDecay
      self.gradientClip = gradientClip
    }
  }

  public let settings: Settings
  /// Steps taken so far.
  public private(set) var step = 0
  private var m: [[Float]]
  private var v: [[Float]]
  private let parameters: [(id: ParameterID, variable: Variable)]
  /// The parameters this optimizer updates (the others keep their values and have no moments).
  public let trains: ParameterSelection

  public init(parameters: [(id: ParameterID, variable: Variable)], settings: Settings, trains: ParameterSelection = .all) {
    self.parameters = parameters.filter { trains.contains($0.id) }
    self.settings = settings
    self.trains = trains
    m = self.parameters.map { [Float](repeating: 0, count: $0.variable.value.count) }
    v = m
  }

  /// Clips the gradients, updates every parameter that has one, and advances the schedule.
  ///
  /// - Returns: the gradient norm before clipping and the learning rate used.
  @discardableResult
  public func update() -> (gradientNorm: Float, learningRate: Float) {
    step += 1
    var squares: Double = 0
    for (_, p) in parameters { squares += p.grad?.sumOfSquares ?? 0 }
    let norm = Float(squares.squareRoot())
    let clip = settings.gradientClip > 0 && norm > settings.gradientClip ? settings.gradientClip / norm : 1
    let lr = settings.schedule.learningRate(at: step)
    for (i, (id, p)) in parameters.enumerated() {
      guard var g = p.grad else { continue }
      if clip != 1 { g.scale(by: clip) }
      let decay = id.decays ? settings.weightDecay : 0
      p.value.adamWUpdate(gradient: g, m: &m[i], v: &v[i], learningRate: lr, beta1: settings.beta1,
                          beta2: settings.beta2, epsilon: settings.epsilon, weightDecay: decay, step: step)
    }
    return (norm, lr)
  }

  // MARK: - State

  /// The optimizer's state as bytes: step, then each trained parameter's moments (little-endian float32).
  public func serialized() -> [UInt8] {
    var out = withUnsafeBytes(of: UInt64(step).littleEndian) { Array($0) }
    for buffers in [m, v] {
      for b in buffers { b.withUnsafeBytes { out += $0 } }
    }
    return out
  }

  /// Restores what `serialized()` wrote for the same parameters.
  ///
  /// - Throws: `ModelError.invalidConfig` when the sizes do not match.
  public func restore(_ bytes: [UInt8]) throws {
    let expected = 8 + 2 * m.reduce(0) { $0 + $1.count } * 4
    guard bytes.count == expected else {
      throw ModelError.invalidConfig("optimizer state has \(bytes.count) bytes, expected \(expected)")
    }
    step = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
    var offset = 8
    func read(_ count: Int) -> [Float] {
      let out = bytes[offset..<(offset + count * 4)].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
      offset += count * 4
      return out
    }
    m = m.map { read($0.count) }
    v = v.map { read($0.count) }
  }
}

/// Linear warm-up to the peak rate, then cosine decay to `minimumRatio` of it at `totalSteps`
/// (or a constant rate after warm-up).
public struct LearningRateSchedule: Codable, Hashable, Sendable {
  public enum Shape: String, Codable, Sendable { case cosine, constant }
  public var peak: Float
  public var warmupSteps: Int
  public var totalSteps: Int
  public var shape: Shape
  public var minimumRatio: Float

  public init(peak: Float, warmupSteps: Int, totalSteps: Int, shape: Shape = .cosine, minimumRatio: Float = 0.1) {
    self.peak = peak
    self.warmupSteps = warmupSteps
    self.totalSteps = totalSteps
    self.shape = shape
    self.minimumRatio = minimumRatio
  }

  /// The rate for step `step` (counting from 1).
  public func learningRate(at step: Int) -> Float {
    if warmupSteps > 0 && step <= warmupSteps { return peak * Float(step) / Float(warmupSteps) }
    guard shape == .cosine, totalSteps > warmupSteps else { return peak }
    let progress = min(1, Float(step - warmupSteps) / Float(totalSteps - warmupSteps))
    let cosine = 0.5 * (1 + cosf(Float.pi * progress))
    return peak * (minimumRatio + (1 - minimumRatio) * cosine)
  }
}
