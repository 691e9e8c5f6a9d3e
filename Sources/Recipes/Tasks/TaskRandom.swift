/// The random stream task generators draw from: SplitMix64, seeded by the stage seed and a stream
/// name, so that each generator and split has its own reproducible sequence.
///
/// Generators need only `RandomNumberGenerator`; this one is tiny, fast and stable across platforms
/// and Swift versions (the standard library's `SystemRandomNumberGenerator` is neither seedable nor
/// reproducible).
public struct TaskRandom: RandomNumberGenerator, Sendable {
  private var state: UInt64

  /// A stream for `seed` and a purpose (e.g. "arithmetic/train"); different names give unrelated streams.
  public init(seed: UInt64, stream: String) {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a of the stream name, mixed with the seed
    for byte in stream.utf8 {
      h ^= UInt64(byte)
      h = h &* 0x0000_0100_0000_01b3
    }
    state = seed ^ h
  }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
