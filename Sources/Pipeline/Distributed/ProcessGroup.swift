import Foundation

/// The processes one stage runs on: the MPI ranks of `lineage worker` (`ranks: N` in a stage file), as
/// an op sees them. A stage on one process has no group (`StageContext.processes` is nil).
///
/// Two primitives carry everything: a pairwise exchange of floats, from which `treeSum` builds a
/// reduction whose order of additions is fixed, and an all-gather of bytes for small values (metrics,
/// counts, a stop flag, rollouts for a checkpoint). Every call is collective: all ranks make the same
/// calls in the same order, or the stage hangs until its watchdog stops it.
public protocol ProcessGroup: AnyObject, Sendable {
  /// This process's rank, 0..<size; rank 0 writes checkpoints and the stage's outputs.
  var rank: Int { get }
  /// The number of ranks: a power of two (`Ranks.problem`).
  var size: Int { get }
  /// Sends `send` to `partner` and fills `receive` with what `partner` sent (it calls this too, with
  /// the roles swapped).
  func exchange(_ send: UnsafeBufferPointer<Float>, _ receive: UnsafeMutableBufferPointer<Float>, with partner: Int) throws
  /// Every rank's `bytes`, in rank order, on every rank.
  func allGather(_ bytes: [UInt8]) throws -> [[UInt8]]
}

/// A collective call that failed (a peer gone, a transport error).
public struct ProcessGroupError: Error, CustomStringConvertible, Sendable {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

extension ProcessGroup {
  /// Element-wise sums `buffer` over the ranks, leaving the same result on every rank, added in a fixed
  /// binary tree: ((r0 + r1) + (r2 + r3)) + … — the tree `FixedTree` continues inside each rank.
  ///
  /// Recursive halving, then recursive doubling: at round k each rank pairs with `rank ^ 2ᵏ`, keeps
  /// one half of its current segment and adds the partner's copy of it; then the halves travel back.
  /// Each rank sends and receives 2·(size−1)/size of the buffer, as a ring all-reduce does, but the
  /// order of additions is that tree's whatever the transport, so the result is bit-identical to summing
  /// the same values on one process in the same tree.
  public func treeSum(_ buffer: inout [Float]) throws {
    guard size > 1 else { return }
    precondition(size & (size - 1) == 0, "ranks must be a power of two")
    var rounds = 0
    while 1 << rounds < size { rounds += 1 }
    var segments: [(lo: Int, hi: Int)] = []
    var lo = 0, hi = buffer.count
    var scratch = [Float](repeating: 0, count: (buffer.count + 1) / 2)
    try buffer.withUnsafeMutableBufferPointer { all in
      try scratch.withUnsafeMutableBufferPointer { incoming in
        for k in 0..<rounds {
          let partner = rank ^ (1 << k), mid = lo + (hi - lo) / 2
          let keepsLower = (rank >> k) & 1 == 0
          let keep = keepsLower ? (lo, mid) : (mid, hi), give = keepsLower ? (mid, hi) : (lo, mid)
          try exchange(UnsafeBufferPointer(rebasing: all[give.0..<give.1]),
                       UnsafeMutableBufferPointer(rebasing: incoming[0..<(keep.1 - keep.0)]), with: partner)
          for i in 0..<(keep.1 - keep.0) { all[keep.0 + i] += incoming[i] }
          segments.append((lo, hi))
          (lo, hi) = keep
        }
        for k in stride(from: rounds - 1, through: 0, by: -1) {
          let partner = rank ^ (1 << k), parent = segments[k], mid = parent.lo + (parent.hi - parent.lo) / 2
          let keepsLower = (rank >> k) & 1 == 0
          let other = keepsLower ? (mid, parent.hi) : (parent.lo, mid)
          try exchange(UnsafeBufferPointer(rebasing: all[lo..<hi]),
                       UnsafeMutableBufferPointer(rebasing: all[other.0..<other.1]), with: partner)
          (lo, hi) = parent
        }
      }
    }
  }

  /// Integer sums over the ranks (exact, so no order matters).
  public func sum(_ values: [Int]) throws -> [Int] {
    var total = values
    for (r, bytes) in try allGather(Ranks.encode(values)).enumerated() where r != rank {
      let theirs = try Ranks.decode(bytes, count: values.count)
      for i in total.indices { total[i] += theirs[i] }
    }
    return total
  }

  /// Rank 0's `bytes` on every rank (the others pass anything, e.g. `[]`), in pieces of at most
  /// 256 MiB: one message's size is an `Int32`, and a model with its optimizer state can pass 2 GiB.
  public func broadcastFromRankZero(_ bytes: [UInt8]) throws -> [UInt8] {
    guard size > 1 else { return bytes }
    let piece = 256 << 20
    let total = try allGather(rank == 0 ? Ranks.encode([bytes.count]) : [])[0]
    let count = try Ranks.decode(total, count: 1)[0]
    guard rank != 0 else {
      for start in stride(from: 0, to: count, by: piece) {
        _ = try allGather(Array(bytes[start..<min(count, start + piece)]))
      }
      return bytes
    }
    var out: [UInt8] = []
    out.reserveCapacity(count)
    for _ in stride(from: 0, to: count, by: piece) { out += try allGather([])[0] }
    guard out.count == count else { throw ProcessGroupError("rank 0 sent \(out.count) of \(count) bytes") }
    return out
  }

  /// True on every rank when it is true on any: a stop agreed at the same step everywhere.
  public func any(_ flag: Bool) throws -> Bool {
    try allGather([flag ? 1 : 0]).contains { $0.first == 1 }
  }
}

/// The fixed binary tree in which a step's micro-batch gradients are summed: the sum over micro-batches
/// `lo..<hi` is the sum over the lower half plus the sum over the upper half (the lower half taking
/// the smaller share of an odd count), down to single micro-batches.
///
/// With n micro-batches split over r ranks (r a power of two dividing n), each rank's share is one
/// node of this tree, and `ProcessGroup.treeSum` adds the ranks' nodes as the tree's upper levels do:
/// the step's gradient is the same bits on 1, 2, 4, … ranks.
public enum FixedTree {
  /// The tree's sum of `leaf(i)` for i in `range`: a vector per leaf (all of one length).
  public static func sum(_ range: Range<Int>, leaf: (Int) throws -> [Float]) rethrows -> [Float] {
    precondition(!range.isEmpty)
    if range.count == 1 { return try leaf(range.lowerBound) }
    let mid = range.lowerBound + range.count / 2
    var lower = try sum(range.lowerBound..<mid, leaf: leaf)
    let upper = try sum(mid..<range.upperBound, leaf: leaf)
    precondition(lower.count == upper.count, "micro-batch vectors differ in length")
    for i in lower.indices { lower[i] += upper[i] }
    return lower
  }

  /// The micro-batches rank `rank` of `ranks` computes: a node of the tree.
  public static func share(of count: Int, rank: Int, ranks: Int) -> Range<Int> {
    precondition(count % ranks == 0)
    let each = count / ranks
    return (rank * each)..<((rank + 1) * each)
  }
}

/// What `ranks` may be.
public enum Ranks {
  /// The most ranks a stage may ask for.
  public static let maximum = 1024

  /// Why `ranks` cannot split a step of `microBatches` micro-batches, or nil when it can.
  public static func problem(ranks: Int, microBatches: Int, unit: String = "micro-batch") -> String? {
    if ranks == 1 { return nil }
    if ranks & (ranks - 1) != 0 { return "ranks must be a power of two (1, 2, 4, …) so that every rank count sums the gradient in the same tree; got \(ranks)" }
    if microBatches % ranks != 0 {
      return "ranks \(ranks) cannot split a step of \(microBatches) \(unit)\(microBatches == 1 ? "" : "es") evenly"
    }
    return nil
  }

  static func encode(_ values: [Int]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(values.count * 8)
    for v in values { withUnsafeBytes(of: Int64(v).littleEndian) { out += $0 } }
    return out
  }

  static func decode(_ bytes: [UInt8], count: Int) throws -> [Int] {
    guard bytes.count == count * 8 else { throw ProcessGroupError("ranks sent \(bytes.count / 8) values where \(count) were due") }
    return (0..<count).map { i in
      var v: UInt64 = 0
      for b in 0..<8 { v |= UInt64(bytes[i * 8 + b]) << (8 * UInt64(b)) }
      return Int(Int64(bitPattern: v))
    }
  }
}
