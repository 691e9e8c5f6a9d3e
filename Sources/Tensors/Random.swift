#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// A seeded, counter-based random stream (Philox4x32-10): the n-th number of a stream is a pure
/// function of (seed, purpose, n), so results never depend on thread scheduling or on how many other
/// streams are in use.
///
/// Each purpose (initialisation, dropout, sampling, data order) has its own stream, so drawing more
/// samples never changes the initial weights, and so on.
public struct RandomStream: RandomNumberGenerator, Sendable {
  /// What a stream is for; each gives independent numbers for the same seed.
  public enum Purpose: UInt32, Sendable {
    case initialization = 1, dropout = 2, sampling = 3, dataOrder = 4, evaluation = 5
  }

  private let key: (UInt32, UInt32)
  private var counter: UInt64
  private let stream: UInt32
  private var buffer: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
  private var available = 0

  /// A stream for `seed` and `purpose`; `substream` separates further (e.g. one per layer or prompt).
  public init(seed: UInt64, purpose: Purpose, substream: UInt32 = 0) {
    key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    counter = 0
    stream = purpose.rawValue &* 0x9E37_79B9 ^ substream
  }

  /// The stream positioned after `offset` blocks of four numbers (to resume a stream exactly).
  public func advanced(by blocks: UInt64) -> RandomStream {
    var copy = self
    copy.counter &+= blocks
    copy.available = 0
    return copy
  }

  /// Blocks of four numbers drawn so far.
  public var position: UInt64 { counter }

  public mutating func nextUInt32() -> UInt32 {
    if available == 0 {
      buffer = RandomStream.philox(counter: (UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32), stream, 0x5EED),
                                   key: key)
      counter &+= 1
      available = 4
    }
    available -= 1
    switch available {
    case 3: return buffer.0
    case 2: return buffer.1
    case 1: return buffer.2
    default: return buffer.3
    }
  }

  public mutating func next() -> UInt64 {
    UInt64(nextUInt32()) << 32 | UInt64(nextUInt32())
  }

  /// Uniform in [0, 1).
  public mutating func uniform() -> Float {
    Float(nextUInt32() >> 8) * (1.0 / 16_777_216.0)
  }

  /// Standard normal (Box–Muller).
  public mutating func normal() -> Float {
    let u1 = max(Double(nextUInt32()) / 4_294_967_296.0, 1e-300)
    let u2 = Double(nextUInt32()) / 4_294_967_296.0
    return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
  }

  /// Philox4x32 with 10 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011).
  static func philox(counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)) -> (UInt32, UInt32, UInt32, UInt32) {
    var c = counter
    var k = key
    for _ in 0..<10 {
      let p0 = UInt64(0xD251_1F53) * UInt64(c.0)
      let p1 = UInt64(0xCD9E_8D57) * UInt64(c.2)
      c = (UInt32(truncatingIfNeeded: p1 >> 32) ^ c.1 ^ k.0, UInt32(truncatingIfNeeded: p1),
           UInt32(truncatingIfNeeded: p0 >> 32) ^ c.3 ^ k.1, UInt32(truncatingIfNeeded: p0))
      k = (k.0 &+ 0x9E37_79B9, k.1 &+ 0xBB67_AE85)
    }
    return c
  }
}
