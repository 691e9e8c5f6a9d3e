// Shapes as in DenseAttention.swift: q, out [batch, seq, heads, headDim]; k, v [batch, seq, kvHeads,
// headDim]; probs [batch, heads, seq, maxKeys] in the pair-by-pair kernel's layout (each query's keys in
// `BlockChooser.fill` order: the first block, its chosen blocks ascending, its own block up to itself).
// Training only: positions are 0..<seq.

/// Block-sparse causal attention through matrix products, one block of queries at a time: the queries
/// that share an own block (at most `block` of them) score, as sgemm products over all their rows, the
/// first block (global) and their own block, and each middle block that any of them chose against the
/// rows that chose it (gathered into one matrix); each row is then masked to exactly its keys (its own
/// block causally), softmaxed and multiplied by the values the same way.
///
/// Blocks are chosen per query by `BlockChooser`, as in the pair-by-pair kernel and in decoding, so the
/// pattern's meaning does not change. A chosen block is scored only by the rows that chose it: the
/// arithmetic is the attended pairs plus the upper half of each own block (about block / 2 pairs per
/// query), whatever the rows choose. Rows that disagree make the gathered products thin (down to one
/// row, a matrix–vector product, when every query of a block chooses differently); rows that agree
/// make them as wide as the block. Same results as the pair-by-pair kernel up to summation order
/// (tested); work is split by (batch, kv head), each task writing only its own rows, so the results
/// are bit-identical whatever the thread count.
func blockSparseAttentionForward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                 out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                                 shape s: AttentionShape) {
  guard case .blockSparse(let block, let topBlocks) = s.pattern else { preconditionFailure("not a block-sparse pattern") }
  let t = s.queries, d = s.headDim, group = s.heads / s.kvHeads, maxKeys = s.maxKeys
  let qStride = s.heads * d, kvStride = s.kvHeads * d
  let positions = (0..<(s.batch * t)).map { Int32($0 % t) }
  let qp = SendableConstPointer(q), kp = SendableConstPointer(k), vp = SendableConstPointer(v)
  let op = SendablePointer(out), pp = SendablePointer(probs)
  parallelFor(s.batch * s.kvHeads, workPerItem: group * t * (maxKeys + block) * d * 4) { task in
    let b = task / s.kvHeads, kvh = task % s.kvHeads
    let kBase = kp.pointer + b * t * kvStride + kvh * d, vBase = vp.pointer + b * t * kvStride + kvh * d
    var chooser = positions.withUnsafeBufferPointer { pos in
      BlockChooser(shape: s, keys: kp.pointer, positions: pos.baseAddress!, batch: b, kvHead: kvh)
    }
    var choices = BlockChoices(block: block, topBlocks: topBlocks, length: t)
    // Gathered rows [block, headDim], then a product [block, block].
    var scratch = [Float](repeating: 0, count: block * (d + block))
    scratch.withUnsafeMutableBufferPointer { buffer in
      let gathered = buffer.baseAddress!, product = gathered + block * d
      for h in (kvh * group)..<((kvh + 1) * group) {
        let qHead = qp.pointer + b * t * qStride + h * d, oHead = op.pointer + b * t * qStride + h * d
        let pHead = pp.pointer + (b * s.heads + h) * t * maxKeys
        for i0 in stride(from: 0, to: t, by: block) {
          choices.choose(from: i0, chooser: &chooser) { qHead + $0 * qStride }
          let rows = choices.rows, g = choices.globals, own = choices.ownColumn
          let qBlock = qHead + i0 * qStride, oBlock = oHead + i0 * qStride, pBlock = pHead + i0 * maxKeys
          // Scores, straight into each row of probs at the columns of its keys.
          if g > 0 {
            sgemmStrided(qBlock, lda: qStride, transposeA: false, kBase, ldb: kvStride, transposeB: true,
                         pBlock, ldc: maxKeys, m: rows, n: g, k: d, alpha: s.scale)
          }
          sgemmStrided(qBlock, lda: qStride, transposeA: false, kBase + i0 * kvStride, ldb: kvStride, transposeB: true,
                       pBlock + own, ldc: maxKeys, m: rows, n: rows, k: d, alpha: s.scale)
          choices.forEachChosen { c, members, columns in
            gather(into: gathered, width: d, members) { qBlock + $0 * qStride }
            sgemmStrided(gathered, lda: d, transposeA: false, kBase + c * block * kvStride, ldb: kvStride,
                         transposeB: true, product, ldc: block, m: members.count, n: block, k: d, alpha: s.scale)
            for (n, (r, column)) in zip(members, columns).enumerated() {
              (pBlock + r * maxKeys + column).update(from: product + n * block, count: block)
            }
          }
          for r in 0..<rows {
            let row = pBlock + r * maxKeys, n = own + r + 1  // own block up to the query itself
            var m = -Float.infinity
            for j in 0..<n { m = max(m, row[j]) }
            let inv = 1 / expShifted(row, row, n, shift: m)
            for j in 0..<n { row[j] *= inv }
            for j in n..<maxKeys { row[j] = 0 }  // the own block's later keys, and slots this query lacks
          }
          // Output: global and own blocks over all rows, then each chosen block's rows added in.
          if g > 0 {
            sgemmStrided(pBlock, lda: maxKeys, transposeA: false, vBase, ldb: kvStride, transposeB: false,
                         oBlock, ldc: qStride, m: rows, n: d, k: g)
          }
          sgemmStrided(pBlock + own, lda: maxKeys, transposeA: false, vBase + i0 * kvStride, ldb: kvStride,
                       transposeB: false, oBlock, ldc: qStride, m: rows, n: d, k: rows, beta: g > 0 ? 1 : 0)
          choices.forEachChosen { c, members, columns in
            gather(into: product, width: block, zip(members, columns)) { UnsafePointer(pBlock + $0.0 * maxKeys + $0.1) }
            sgemmStrided(product, lda: block, transposeA: false, vBase + c * block * kvStride, ldb: kvStride,
                         transposeB: false, gathered, ldc: d, m: members.count, n: d, k: block)
            for (n, r) in members.enumerated() { axpy(oBlock + r * qStride, 1, gathered + n * d, d) }
          }
        }
      }
    }
  }
}

/// Accumulates the gradients of `blockSparseAttentionForward` over the same products, as
/// `denseAttentionBackward` does for the whole square: dV += Pᵀ·dO; dP = dO·Vᵀ;
/// dS = P ⊙ (dP − rowsum(P ⊙ dP)); dQ += dS·K·scale; dK += dSᵀ·Q·scale. Chosen blocks again take the
/// rows that chose them, gathered; their dQ rows are added back one by one.
func blockSparseAttentionBackward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                  v: UnsafePointer<Float>, probs: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>,
                                  dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>, shape s: AttentionShape) {
  guard case .blockSparse(let block, let topBlocks) = s.pattern else { preconditionFailure("not a block-sparse pattern") }
  let t = s.queries, d = s.headDim, group = s.heads / s.kvHeads, maxKeys = s.maxKeys
  let qStride = s.heads * d, kvStride = s.kvHeads * d
  let positions = (0..<(s.batch * t)).map { Int32($0 % t) }
  let qp = SendableConstPointer(q), kp = SendableConstPointer(k), vp = SendableConstPointer(v)
  let gp = SendableConstPointer(dOut), pp = SendableConstPointer(probs)
  let dqp = SendablePointer(dq), dkp = SendablePointer(dk), dvp = SendablePointer(dv)
  parallelFor(s.batch * s.kvHeads, workPerItem: group * t * (maxKeys + block) * d * 8) { task in
    let b = task / s.kvHeads, kvh = task % s.kvHeads
    let kvOffset = b * t * kvStride + kvh * d
    let kBase = kp.pointer + kvOffset, vBase = vp.pointer + kvOffset
    let dkBase = dkp.pointer + kvOffset, dvBase = dvp.pointer + kvOffset
    var chooser = positions.withUnsafeBufferPointer { pos in
      BlockChooser(shape: s, keys: kp.pointer, positions: pos.baseAddress!, batch: b, kvHead: kvh)
    }
    var choices = BlockChoices(block: block, topBlocks: topBlocks, length: t)
    // dP, then dS, of a block of queries [block, maxKeys] in probs' layout; gathered rows [block, headDim];
    // a gathered product [block, block].
    var scratch = [Float](repeating: 0, count: block * (maxKeys + d + block))
    scratch.withUnsafeMutableBufferPointer { buffer in
      let ds = buffer.baseAddress!, gathered = ds + block * maxKeys, product = gathered + block * d
      for h in (kvh * group)..<((kvh + 1) * group) {
        let headOffset = b * t * qStride + h * d
        let qHead = qp.pointer + headOffset, pHead = pp.pointer + (b * s.heads + h) * t * maxKeys
        for i0 in stride(from: 0, to: t, by: block) {
          choices.choose(from: i0, chooser: &chooser) { qHead + $0 * qStride }
          let rows = choices.rows, g = choices.globals, own = choices.ownColumn
          let qBlock = qHead + i0 * qStride, pBlock = pHead + i0 * maxKeys
          let dO = gp.pointer + headOffset + i0 * qStride, dqBlock = dqp.pointer + headOffset + i0 * qStride
          // dV and dP.
          if g > 0 {
            sgemmStrided(pBlock, lda: maxKeys, transposeA: true, dO, ldb: qStride, transposeB: false,
                         dvBase, ldc: kvStride, m: g, n: d, k: rows, beta: 1)
            sgemmStrided(dO, lda: qStride, transposeA: false, vBase, ldb: kvStride, transposeB: true,
                         ds, ldc: maxKeys, m: rows, n: g, k: d)
          }
          sgemmStrided(pBlock + own, lda: maxKeys, transposeA: true, dO, ldb: qStride, transposeB: false,
                       dvBase + i0 * kvStride, ldc: kvStride, m: rows, n: d, k: rows, beta: 1)
          sgemmStrided(dO, lda: qStride, transposeA: false, vBase + i0 * kvStride, ldb: kvStride, transposeB: true,
                       ds + own, ldc: maxKeys, m: rows, n: rows, k: d)
          choices.forEachChosen { c, members, columns in
            gather(into: gathered, width: d, members) { dO + $0 * qStride }
            gather(into: product, width: block, zip(members, columns)) { pBlock + $0.0 * maxKeys + $0.1 }
            sgemmStrided(product, lda: block, transposeA: true, gathered, ldb: d, transposeB: false,
                         dvBase + c * block * kvStride, ldc: kvStride, m: block, n: d, k: members.count, beta: 1)
            sgemmStrided(gathered, lda: d, transposeA: false, vBase + c * block * kvStride, ldb: kvStride,
                         transposeB: true, product, ldc: block, m: members.count, n: block, k: d)
            for (n, (r, column)) in zip(members, columns).enumerated() {
              (ds + r * maxKeys + column).update(from: product + n * block, count: block)
            }
          }
          // dS, row by row over the row's keys; the own block's later keys get 0.
          for r in 0..<rows {
            let pRow = pBlock + r * maxKeys, dRow = ds + r * maxKeys, n = own + r + 1
            let weighted = dot(pRow, dRow, n)
            for j in 0..<n { dRow[j] = pRow[j] * (dRow[j] - weighted) }
            for j in n..<(own + rows) { dRow[j] = 0 }
          }
          // dQ and dK.
          if g > 0 {
            sgemmStrided(ds, lda: maxKeys, transposeA: false, kBase, ldb: kvStride, transposeB: false,
                         dqBlock, ldc: qStride, m: rows, n: d, k: g, alpha: s.scale, beta: 1)
            sgemmStrided(ds, lda: maxKeys, transposeA: true, qBlock, ldb: qStride, transposeB: false,
                         dkBase, ldc: kvStride, m: g, n: d, k: rows, alpha: s.scale, beta: 1)
          }
          sgemmStrided(ds + own, lda: maxKeys, transposeA: false, kBase + i0 * kvStride, ldb: kvStride,
                       transposeB: false, dqBlock, ldc: qStride, m: rows, n: d, k: rows, alpha: s.scale, beta: 1)
          sgemmStrided(ds + own, lda: maxKeys, transposeA: true, qBlock, ldb: qStride, transposeB: false,
                       dkBase + i0 * kvStride, ldc: kvStride, m: rows, n: d, k: rows, alpha: s.scale, beta: 1)
          choices.forEachChosen { c, members, columns in
            gather(into: product, width: block, zip(members, columns)) { UnsafePointer(ds + $0.0 * maxKeys + $0.1) }
            gather(into: gathered, width: d, members) { qBlock + $0 * qStride }
            sgemmStrided(product, lda: block, transposeA: true, gathered, ldb: d, transposeB: false,
                         dkBase + c * block * kvStride, ldc: kvStride, m: block, n: d, k: members.count,
                         alpha: s.scale, beta: 1)
            sgemmStrided(product, lda: block, transposeA: false, kBase + c * block * kvStride, ldb: kvStride,
                         transposeB: false, gathered, ldc: d, m: members.count, n: d, k: block, alpha: s.scale)
            for (n, r) in members.enumerated() { axpy(dqBlock + r * qStride, 1, gathered + n * d, d) }
          }
        }
      }
    }
  }
}

// MARK: - Choices of one block of queries

/// The middle blocks chosen by one block of queries i0..<i1 (those sharing an own block), grouped by
/// block: for each chosen block, the rows (query − i0) that chose it and the column where it sits in
/// their score rows.
///
/// A row's score columns follow `BlockChooser.fill`: the first block at 0..<globals, its j-th chosen
/// block (ascending) at globals + j · block, its own block from `ownColumn`. Every query of a block
/// chooses the same number of blocks, min(topBlocks, own − 1), so the own block starts at the same
/// column in every row and the global and own products cover all rows at once.
private struct BlockChoices {
  let block: Int, topBlocks: Int, length: Int
  private(set) var i0 = 0, i1 = 0
  /// Keys of the first block in every row: `block`, or 0 in the first block itself.
  private(set) var globals = 0
  private(set) var chosenPerQuery = 0
  private var ownBlock = 0
  /// Block c's members are `memberRows[start[c]..<start[c + 1]]` (ascending), likewise `memberColumns`.
  private var start: [Int]
  private var memberRows: [Int]
  private var memberColumns: [Int]
  private var chosen: [Int]

  var rows: Int { i1 - i0 }
  var ownColumn: Int { globals + chosenPerQuery * block }

  init(block: Int, topBlocks: Int, length: Int) {
    self.block = block
    self.topBlocks = topBlocks
    self.length = length
    let blocks = (length + block - 1) / block
    let capacity = block * min(topBlocks, blocks)
    start = [Int](repeating: 0, count: blocks + 1)
    memberRows = [Int](repeating: 0, count: capacity)
    memberColumns = [Int](repeating: 0, count: capacity)
    chosen = [Int](repeating: 0, count: capacity)
  }

  /// Chooses for the queries from `i0` to the end of their block; `query(i)` is query i's row.
  mutating func choose(from i0: Int, chooser: inout BlockChooser, query: (Int) -> UnsafePointer<Float>) {
    self.i0 = i0
    i1 = min(i0 + block, length)
    ownBlock = i0 / block
    globals = ownBlock > 0 ? block : 0
    chosenPerQuery = ownBlock > 1 ? min(topBlocks, ownBlock - 1) : 0
    guard chosenPerQuery > 0 else { return }
    for c in 0...ownBlock { start[c] = 0 }
    for r in 0..<rows {  // a counting sort by block: each block's members stay in row order
      let blocks = chooser.chosenBlocks(position: i0 + r, query: query(i0 + r))
      precondition(blocks.count == chosenPerQuery, "BlockChooser chose \(blocks.count) blocks, not \(chosenPerQuery)")
      for (j, c) in blocks.enumerated() {
        chosen[r * chosenPerQuery + j] = c
        start[c + 1] += 1
      }
    }
    for c in 1...ownBlock { start[c] += start[c - 1] }
    var next = start
    for r in 0..<rows {
      for j in 0..<chosenPerQuery {
        let c = chosen[r * chosenPerQuery + j]
        memberRows[next[c]] = r
        memberColumns[next[c]] = globals + j * block
        next[c] += 1
      }
    }
  }

  /// Calls `body` for each middle block some row chose, in ascending order, with its members.
  func forEachChosen(_ body: (_ block: Int, _ rows: ArraySlice<Int>, _ columns: ArraySlice<Int>) -> Void) {
    guard chosenPerQuery > 0 else { return }
    for c in 1..<ownBlock where start[c + 1] > start[c] {
      let members = start[c]..<start[c + 1]
      body(c, memberRows[members], memberColumns[members])
    }
  }
}

/// Copies `width` floats from `source(member)` for each member into consecutive rows of `buffer`.
@inline(__always)
private func gather<Members: Sequence>(into buffer: UnsafeMutablePointer<Float>, width: Int, _ members: Members,
                                       source: (Members.Element) -> UnsafePointer<Float>) {
  for (n, member) in members.enumerated() { (buffer + n * width).update(from: source(member), count: width) }
}
