#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Which earlier tokens a query attends to (always causally: never a later token).
public enum AttentionPattern: Hashable, Codable, Sendable {
  /// Every earlier token.
  case dense
  /// The last `window` tokens (itself included), plus the first `globalTokens` tokens of the sequence,
  /// which every query sees. Time and memory grow with t · (window + globalTokens), not t².
  case slidingWindow(window: Int, globalTokens: Int)
  /// Blocks of `block` tokens. A query attends to its own block (causally), the first block (global),
  /// and the `topBlocks` earlier blocks whose mean key scores highest against the query itself; chosen
  /// per query, so the choice never looks at later tokens and decoding makes the same choice.
  case blockSparse(block: Int, topBlocks: Int)

  /// The keys a query at `position` attends to: a prefix of global tokens and a window ending at the
  /// query. The two never overlap.
  @inline(__always)
  func keys(for position: Int) -> (global: Range<Int>, window: Range<Int>) {
    switch self {
    case .dense:
      return (0..<0, 0..<(position + 1))
    case .slidingWindow(let window, let globalTokens):
      let globalEnd = min(globalTokens, position + 1)
      return (0..<globalEnd, max(globalEnd, position - window + 1)..<(position + 1))
    case .blockSparse(let block, _):
      // The chosen middle blocks are added by `BlockChooser`.
      let own = position / block * block
      return (0..<(own > 0 ? block : 0), own..<(position + 1))
    }
  }

  /// The most keys any query attends to in a sequence of `length`.
  public func maximumKeys(length: Int) -> Int {
    switch self {
    case .dense: return length
    case .slidingWindow(let window, let globalTokens): return min(length, window + globalTokens)
    case .blockSparse(let block, let topBlocks): return min(length, block * (2 + topBlocks))
    }
  }

  /// Query–key pairs scored for a sequence of `length`: the cost that grows with the pattern.
  public func attendedPairs(length: Int) -> Int {
    (0..<length).reduce(0) { total, i in
      let (g, w) = keys(for: i)
      var middle = 0
      if case .blockSparse(let block, let topBlocks) = self { middle = min(topBlocks, max(0, i / block - 1)) * block }
      return total + g.count + w.count + middle
    }
  }

  /// Block scores computed for a sequence of `length`: the q · mean(k) dot products by which
  /// block-sparse attention chooses its middle blocks; 0 for the other patterns.
  ///
  /// A query in block `o` scores every block strictly between the first and its own (`o − 1` of them)
  /// whenever it has any to choose from, even when `topBlocks` would keep them all: that is what the
  /// kernels compute (in each forward pass; training's backward pass chooses again, from the same
  /// means). Each score is a headDim-long dot product, as an attended pair is, so the two add
  /// up (`scoredPairs(length:)`). It grows with length² / (2 · block), the attended pairs with
  /// length · block · (2 + topBlocks): the scores overtake them near length 2 · block² · (2 + topBlocks)
  /// (49,152 tokens for blocks of 64 and top 4; 3,072 for blocks of 16). Not counted: the block means
  /// (one headDim-long addition per key and kv head, less than one attended pair per query).
  public func blockScores(length: Int) -> Int {
    guard case .blockSparse(let block, let topBlocks) = self, topBlocks > 0 else { return 0 }
    return (0..<length).reduce(0) { total, i in total + max(0, i / block - 1) }
  }

  /// Query–key dot products computed for a sequence of `length`: the attended pairs plus the block
  /// scores, both headDim long. The attention cost to report; equal to `attendedPairs(length:)` for
  /// dense and sliding-window attention.
  public func scoredPairs(length: Int) -> Int {
    attendedPairs(length: length) + blockScores(length: length)
  }
}

/// Sizes of one attention call. q [batch, queries, heads, headDim]; k, v [batch, keyStride, kvHeads,
/// headDim] (as projected in training), or [batch, kvHeads, keyStride, headDim] when `headMajorKeys`
/// (a decoding cache, where each head's keys are then read as one contiguous block).
struct AttentionShape: Sendable {
  var batch: Int
  var queries: Int
  var keyStride: Int
  var heads: Int
  var kvHeads: Int
  var headDim: Int
  var pattern: AttentionPattern
  var scale: Float
  var headMajorKeys = false
  /// probs [batch, heads, queries, maxKeys].
  var maxKeys: Int { pattern.maximumKeys(length: keyStride) }

  /// Where the key (and value) of `position` for (batch, kv head) starts.
  @inline(__always)
  func keyOffset(batch b: Int, kvHead kvh: Int, position j: Int) -> Int {
    headMajorKeys ? ((b * kvHeads + kvh) * keyStride + j) * headDim : ((b * keyStride + j) * kvHeads + kvh) * headDim
  }
}

/// o = softmax(q·kᵀ·scale over the attended keys)·v, for every (batch, head, query).
///
/// `positions[b * queries + i]` is query i's position, which is also the index of its own key: in
/// training positions are 0..<t; when decoding they continue the cache. GQA: query head h reads kv
/// head h / (heads / kvHeads). Work is split by (batch, kv head), each task writing only its own rows:
/// bit-identical results whatever the thread count. `probs`, if given, receives the softmax weights for
/// the backward pass.
func attentionForward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                      out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>?,
                      positions: UnsafePointer<Int32>, shape s: AttentionShape) {
  let group = s.heads / s.kvHeads, d = s.headDim, maxKeys = s.maxKeys
  let qp = SendableConstPointer(q), kp = SendableConstPointer(k), vp = SendableConstPointer(v)
  let op = SendablePointer(out), pp = probs.map { SendablePointer($0) }, pos = SendableConstPointer(positions)
  parallelFor(s.batch * s.kvHeads, workPerItem: group * s.queries * maxKeys * d * 2) { task in
    let b = task / s.kvHeads, kvh = task % s.kvHeads
    var scores = [Float](repeating: 0, count: maxKeys)
    var keyIndex = [Int](repeating: 0, count: maxKeys)
    var chooser = BlockChooser(shape: s, keys: kp.pointer, positions: pos.pointer, batch: b, kvHead: kvh)
    for h in (kvh * group)..<((kvh + 1) * group) {
      for i in 0..<s.queries {
        let position = Int(pos.pointer[b * s.queries + i])
        let qRow = qp.pointer + ((b * s.queries + i) * s.heads + h) * d
        let n = chooser.fill(&keyIndex, position: position, query: qRow)
        var m = -Float.infinity
        for slot in 0..<n {
          let kRow = kp.pointer + s.keyOffset(batch: b, kvHead: kvh, position: keyIndex[slot])
          scores[slot] = dot(qRow, kRow, d) * s.scale
          m = max(m, scores[slot])
        }
        let inv = scores.withUnsafeMutableBufferPointer { p in 1 / expShifted(p.baseAddress!, p.baseAddress!, n, shift: m) }
        let oRow = op.pointer + ((b * s.queries + i) * s.heads + h) * d
        for e in 0..<d { oRow[e] = 0 }
        for slot in 0..<n {
          let p = scores[slot] * inv
          scores[slot] = p
          let vRow = vp.pointer + s.keyOffset(batch: b, kvHead: kvh, position: keyIndex[slot])
          axpy(oRow, p, vRow, d)
        }
        if let pp {
          let pRow = pp.pointer + ((b * s.heads + h) * s.queries + i) * maxKeys
          for slot in 0..<n { pRow[slot] = scores[slot] }
        }
      }
    }
  }
}

/// Accumulates the gradients of `attentionForward` into dq, dk, dv (training: keys are the queries' own
/// sequence, so positions are 0..<queries and keyStride == queries).
func attentionBackward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                       v: UnsafePointer<Float>, probs: UnsafePointer<Float>, positions: UnsafePointer<Int32>,
                       dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                       shape s: AttentionShape) {
  let group = s.heads / s.kvHeads, d = s.headDim, maxKeys = s.maxKeys
  let qp = SendableConstPointer(q), kp = SendableConstPointer(k), vp = SendableConstPointer(v)
  let gp = SendableConstPointer(dOut), pp = SendableConstPointer(probs), pos = SendableConstPointer(positions)
  let dqp = SendablePointer(dq), dkp = SendablePointer(dk), dvp = SendablePointer(dv)
  parallelFor(s.batch * s.kvHeads, workPerItem: group * s.queries * maxKeys * d * 4) { task in
    let b = task / s.kvHeads, kvh = task % s.kvHeads
    var dScores = [Float](repeating: 0, count: maxKeys)
    var keyIndex = [Int](repeating: 0, count: maxKeys)
    var chooser = BlockChooser(shape: s, keys: kp.pointer, positions: pos.pointer, batch: b, kvHead: kvh)
    for h in (kvh * group)..<((kvh + 1) * group) {
      for i in 0..<s.queries {
        let position = Int(pos.pointer[b * s.queries + i])
        let row = (b * s.queries + i) * s.heads + h
        let dO = gp.pointer + row * d, qRow = qp.pointer + row * d, dqRow = dqp.pointer + row * d
        let n = chooser.fill(&keyIndex, position: position, query: qRow)
        let pRow = pp.pointer + ((b * s.heads + h) * s.queries + i) * maxKeys
        var weighted: Float = 0  // Σ p · dP
        for slot in 0..<n {
          let vRow = vp.pointer + s.keyOffset(batch: b, kvHead: kvh, position: keyIndex[slot])
          let dp = dot(dO, vRow, d)
          dScores[slot] = dp
          weighted += pRow[slot] * dp
        }
        for slot in 0..<n {
          let p = pRow[slot]
          let ds = p * (dScores[slot] - weighted) * s.scale
          let keyRow = s.keyOffset(batch: b, kvHead: kvh, position: keyIndex[slot])
          let kRow = kp.pointer + keyRow
          let dkRow = dkp.pointer + keyRow, dvRow = dvp.pointer + keyRow
          axpy(dqRow, ds, kRow, d)
          axpy(dkRow, ds, qRow, d)
          axpy(dvRow, p, dO, d)
        }
      }
    }
  }
}

extension Tensor {
  /// Attention of new queries over keys and values already in a cache (inference: no gradient).
  ///
  /// - Parameters:
  ///   - q: `[batch·queries, heads·headDim]`, rows already rotated by RoPE.
  ///   - keys, values: the caches, `[batch, kvHeads, keyStride, headDim]` (each head's keys together),
  ///     holding every position up to each query's own (written before this call).
  ///   - positions: `[batch·queries]`, each query's position (= the index of its own key).
  /// - Returns: `[batch·queries, heads·headDim]`.
  public static func cachedAttention(q: Tensor, keys: Tensor, values: Tensor, positions: [Int32], batch: Int,
                                     queries: Int, keyStride: Int, heads: Int, kvHeads: Int,
                                     pattern: AttentionPattern) -> Tensor {
    let headDim = q.count / (batch * queries * heads)
    let shape = AttentionShape(batch: batch, queries: queries, keyStride: keyStride, heads: heads, kvHeads: kvHeads,
                               headDim: headDim, pattern: pattern, scale: 1 / Float(headDim).squareRoot(),
                               headMajorKeys: true)
    // A prompt read at once (many consecutive queries) under dense attention runs as matrix products.
    let blocked = pattern == .dense && queries >= 16 && (0..<batch).allSatisfy { b in
      (0..<queries).allSatisfy { positions[b * queries + $0] == positions[b * queries] + Int32($0) }
    }
    var out = Tensor(zeros: q.shape)
    q.withUnsafeBufferPointer { pq in
      keys.withUnsafeBufferPointer { pk in
        values.withUnsafeBufferPointer { pv in
          out.withUnsafeMutableBufferPointer { po in
            positions.withUnsafeBufferPointer { pp in
              if blocked {
                denseCachedAttentionForward(q: pq.baseAddress!, k: pk.baseAddress!, v: pv.baseAddress!,
                                            out: po.baseAddress!, positions: pp.baseAddress!, shape: shape)
              } else {
                attentionForward(q: pq.baseAddress!, k: pk.baseAddress!, v: pv.baseAddress!, out: po.baseAddress!,
                                 probs: nil, positions: pp.baseAddress!, shape: shape)
              }
            }
          }
        }
      }
    }
    return out
  }
}

/// Lists the keys a query attends to; for block-sparse attention it also picks the middle blocks.
///
/// Block means are computed once per (batch, kv head) over the complete blocks before the last query;
/// a query scores the blocks between the first and its own by q · mean(k) and keeps the `topBlocks`
/// best (ties: the earlier block), so forward, backward and decoding all choose the same keys.
struct BlockChooser {
  let pattern: AttentionPattern
  let headDim: Int
  private var means: [Float] = []
  /// The best blocks so far of the current query, best first, and their scores (reused across queries,
  /// so choosing allocates nothing).
  private var bestBlocks: [Int] = []
  private var bestScores: [Float] = []

  init(shape s: AttentionShape, keys: UnsafePointer<Float>, positions: UnsafePointer<Int32>, batch b: Int, kvHead kvh: Int) {
    pattern = s.pattern
    headDim = s.headDim
    guard case .blockSparse(let block, _) = s.pattern else { return }
    var lastPosition = 0
    for i in 0..<s.queries { lastPosition = max(lastPosition, Int(positions[b * s.queries + i])) }
    let complete = lastPosition / block  // blocks wholly before the last query's own block
    means = [Float](repeating: 0, count: complete * s.headDim)
    means.withUnsafeMutableBufferPointer { m in
      for j in 0..<complete {
        for r in 0..<block {
          axpy(m.baseAddress! + j * s.headDim, 1 / Float(block),
               keys + s.keyOffset(batch: b, kvHead: kvh, position: j * block + r), s.headDim)
        }
      }
    }
  }

  /// Writes the query's key positions into `keys` (global, chosen middle blocks, own block, each
  /// ascending) and returns how many.
  mutating func fill(_ keys: inout [Int], position: Int, query: UnsafePointer<Float>) -> Int {
    let (global, window) = pattern.keys(for: position)
    var n = 0
    for j in global { keys[n] = j; n += 1 }
    if case .blockSparse(let block, _) = pattern {
      for chosen in chosenBlocks(position: position, query: query) {
        for j in (chosen * block)..<((chosen + 1) * block) { keys[n] = j; n += 1 }
      }
    }
    for j in window { keys[n] = j; n += 1 }
    return n
  }

  /// The middle blocks the query at `position` attends to, ascending: the `topBlocks` of the blocks
  /// strictly between the first and its own with the highest q · mean(k) (ties: the earlier block).
  /// Every block kernel chooses through here, so all of them, and decoding, choose alike.
  mutating func chosenBlocks(position: Int, query: UnsafePointer<Float>) -> [Int] {
    bestBlocks.removeAll(keepingCapacity: true)
    bestScores.removeAll(keepingCapacity: true)
    guard case .blockSparse(let block, let topBlocks) = pattern, topBlocks > 0 else { return bestBlocks }
    let own = position / block
    guard own > 1 else { return bestBlocks }
    // Keeps the `topBlocks` best as they come (a partial selection, not a sort of every block). Blocks
    // come in ascending order and a later one must score strictly higher to pass one ahead of it, so
    // ties go to the earlier block, as a full sort by (score descending, block ascending) would.
    means.withUnsafeBufferPointer { m in
      for j in 1..<own {
        let score = dot(query, m.baseAddress! + j * headDim, headDim)
        if bestScores.count == topBlocks, !(score > bestScores[topBlocks - 1]) { continue }
        var at = bestScores.count
        while at > 0 && score > bestScores[at - 1] { at -= 1 }
        bestScores.insert(score, at: at)
        bestBlocks.insert(j, at: at)
        if bestScores.count > topBlocks {
          bestScores.removeLast()
          bestBlocks.removeLast()
        }
      }
    }
    bestBlocks.sort()
    return bestBlocks
  }

}
