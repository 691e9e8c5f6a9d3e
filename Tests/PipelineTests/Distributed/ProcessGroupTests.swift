import Foundation
import Pipeline
import Testing

/// The fixed-order reduction behind `ranks`: `treeSum` over r ranks, each holding its share of the
/// micro-batches summed in `FixedTree`'s order, gives the same bits as one process summing them all.
/// Ranks here are threads exchanging through memory; `MPITests` runs the same code under `mpirun`.
@Suite struct ProcessGroupTests {
  /// Ranks as threads of one process: messages go through mailboxes keyed by sender and receiver.
  final class ThreadGroup: ProcessGroup, @unchecked Sendable {  // shared state is the `Exchange`'s, under its lock
    final class Exchange: @unchecked Sendable {  // state guarded by `condition`
      let condition = NSCondition()
      var mail: [String: [[UInt8]]] = [:]

      func post(_ bytes: [UInt8], from: Int, to: Int, kind: String) {
        condition.lock()
        mail["\(kind) \(from)→\(to)", default: []].append(bytes)
        condition.broadcast()
        condition.unlock()
      }

      func take(from: Int, to: Int, kind: String) -> [UInt8] {
        condition.lock()
        defer { condition.unlock() }
        let key = "\(kind) \(from)→\(to)"
        while mail[key]?.isEmpty ?? true { condition.wait() }
        return mail[key]!.removeFirst()
      }
    }

    let rank: Int
    let size: Int
    let exchange: Exchange

    init(rank: Int, size: Int, exchange: Exchange) {
      self.rank = rank
      self.size = size
      self.exchange = exchange
    }

    func exchange(_ send: UnsafeBufferPointer<Float>, _ receive: UnsafeMutableBufferPointer<Float>, with partner: Int) throws {
      exchange.post(Array(UnsafeRawBufferPointer(send)), from: rank, to: partner, kind: "floats")
      let bytes = exchange.take(from: partner, to: rank, kind: "floats")
      guard bytes.count == receive.count * 4 else { throw ProcessGroupError("expected \(receive.count) floats, got \(bytes.count / 4)") }
      _ = bytes.withUnsafeBytes { memcpy(receive.baseAddress!, $0.baseAddress!, bytes.count) }
    }

    func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
      for r in 0..<size where r != rank { exchange.post(bytes, from: rank, to: r, kind: "gather") }
      return (0..<size).map { r in r == rank ? bytes : exchange.take(from: r, to: rank, kind: "gather") }
    }
  }

  /// Runs `body` on `size` ranks at once and returns each rank's result.
  static func onRanks<T: Sendable>(_ size: Int, _ body: @escaping @Sendable (ThreadGroup) throws -> T) throws -> [T] {
    let exchange = ThreadGroup.Exchange()
    let results = Results<T>(size)
    let done = DispatchGroup()
    for rank in 0..<size {
      done.enter()
      Thread.detachNewThread {
        results.values[rank] = Result { try body(ThreadGroup(rank: rank, size: size, exchange: exchange)) }
        done.leave()
      }
    }
    done.wait()
    return try results.values.map { try $0!.get() }
  }

  /// One slot per rank, each written by its thread before `DispatchGroup.wait()` returns.
  final class Results<T>: @unchecked Sendable {
    var values: [Result<T, any Error>?]
    init(_ n: Int) { values = Array(repeating: nil, count: n) }
  }

  /// Values whose sums depend on the order of additions (magnitudes from 1e-8 to 1e8).
  static func leaf(_ i: Int, length: Int) -> [Float] {
    (0..<length).map { j in
      let x = Float((i * 7_919 + j * 104_729) % 1_000 + 1)
      return (j % 3 == 0 ? 1e8 : j % 3 == 1 ? 1e-8 : 1) * x * (i % 2 == 0 ? 1 : -0.999)
    }
  }

  @Test(arguments: [1, 2, 4, 8])
  func ranksSumTheTreeAsOneProcessDoes(_ ranks: Int) throws {
    let count = 8, length = 37  // odd, so the halving splits unevenly
    let reference = FixedTree.sum(0..<count) { Self.leaf($0, length: length) }
    let sums = try Self.onRanks(ranks) { group in
      let share = FixedTree.share(of: count, rank: group.rank, ranks: group.size)
      var local = FixedTree.sum(share) { Self.leaf($0, length: length) }
      try group.treeSum(&local)
      return local
    }
    for (rank, sum) in sums.enumerated() {
      #expect(sum.map(\.bitPattern) == reference.map(\.bitPattern), "rank \(rank) of \(ranks)")
    }
  }

  @Test func anotherOrderOfAdditionGivesOtherBits() {
    // The check above can fail: a left-to-right sum of the same leaves differs from the tree's.
    let count = 8, length = 37
    let tree = FixedTree.sum(0..<count) { Self.leaf($0, length: length) }
    var sequential = Self.leaf(0, length: length)
    for i in 1..<count { for (j, x) in Self.leaf(i, length: length).enumerated() { sequential[j] += x } }
    #expect(tree.map(\.bitPattern) != sequential.map(\.bitPattern))
  }

  @Test func treeSumHandlesBuffersShorterThanTheRanks() throws {
    for length in [0, 1, 2, 3] {
      let sums = try Self.onRanks(4) { group -> [Float] in
        var values = (0..<length).map { Float(group.rank * 10 + $0) }
        try group.treeSum(&values)
        return values
      }
      let expected = (0..<length).map { j in Float((0..<4).reduce(0) { $0 + $1 * 10 + j }) }
      for sum in sums { #expect(sum == expected, "length \(length)") }
    }
  }

  @Test func integerSumsAndAgreementReachEveryRank() throws {
    let results = try Self.onRanks(4) { group in
      (try group.sum([group.rank, 1, -group.rank * 1_000_000_000_000]), try group.any(group.rank == 2), try group.any(false))
    }
    for (sum, anyTrue, anyFalse) in results {
      #expect(sum == [6, 4, -6_000_000_000_000])
      #expect(anyTrue)
      #expect(!anyFalse)
    }
  }

  @Test func sharesAreNodesOfTheTree() {
    #expect(FixedTree.share(of: 12, rank: 0, ranks: 4) == 0..<3)
    #expect(FixedTree.share(of: 12, rank: 3, ranks: 4) == 9..<12)
    #expect(FixedTree.share(of: 4, rank: 0, ranks: 1) == 0..<4)
    #expect(Ranks.problem(ranks: 1, microBatches: 1) == nil)
    #expect(Ranks.problem(ranks: 2, microBatches: 4) == nil)
    #expect(Ranks.problem(ranks: 3, microBatches: 6)?.contains("power of two") == true)
    #expect(Ranks.problem(ranks: 4, microBatches: 2)?.contains("cannot split") == true)
  }
}
