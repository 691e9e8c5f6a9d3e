/// A byte-level BPE tokenizer: ids 0–255 are bytes, then the special tokens, then one id per learned
/// merge of two existing ids.
///
/// Pre-tokenisation: text is cut into words before merging, and merges never cross a word boundary.
/// A word is a run of letters (with the one space before it, if any), a single digit (so numbers stay
/// digit by digit, which arithmetic needs), a run of other non-space characters, or a run of white
/// space. Training and encoding use the same rule, so encoding is deterministic and decoding exact.
public struct BPETokenizer: Tokenizer, Equatable {
  /// Learned merges in rank order: merge i makes id `firstMergeID + i` from the pair.
  public let merges: [Pair]
  private let ranks: [Pair: Int32]
  private let pieces: [[UInt8]]

  public struct Pair: Hashable, Sendable {
    public var first: Int32
    public var second: Int32
    public init(_ first: Int32, _ second: Int32) {
      self.first = first
      self.second = second
    }
  }

  static let firstMergeID = Int32(256 + SpecialToken.allCases.count)

  public init(merges: [Pair]) {
    self.merges = merges
    var ranks: [Pair: Int32] = [:]
    var pieces = (0..<256).map { [UInt8($0)] } + SpecialToken.allCases.map { Array($0.text.utf8) }
    for (i, pair) in merges.enumerated() {
      ranks[pair] = BPETokenizer.firstMergeID + Int32(i)
      pieces.append(pieces[Int(pair.first)] + pieces[Int(pair.second)])
    }
    self.ranks = ranks
    self.pieces = pieces
  }

  public static func == (a: BPETokenizer, b: BPETokenizer) -> Bool { a.merges == b.merges }

  public var vocabularySize: Int { pieces.count }

  public func id(of special: SpecialToken) -> Int32 { special.id }

  // MARK: - Training

  /// Learns merges from `texts` until the vocabulary has `vocabularySize` ids or no pair occurs
  /// `minFrequency` times. Deterministic: ties go to the pair with the smaller ids.
  ///
  /// - Complexity: O(merges × distinct words × word length).
  public static func train(texts: some Sequence<String>, vocabularySize: Int, minFrequency: Int = 2) -> BPETokenizer {
    var counts: [[UInt8]: Int] = [:]
    for text in texts {
      for piece in SpecialToken.split(text) {
        guard case .text(let t) = piece else { continue }
        for word in words(t) { counts[word, default: 0] += 1 }
      }
    }
    // Distinct words as id sequences, in a fixed order so that training is deterministic.
    var entries = counts.map { (ids: $0.key.map { Int32($0) }, count: $0.value) }
      .sorted { $0.ids.lexicographicallyPrecedes($1.ids) }
    var merges: [Pair] = []
    let target = max(0, vocabularySize - Int(firstMergeID))
    while merges.count < target {
      var pairCounts: [Pair: Int] = [:]
      for entry in entries where entry.ids.count > 1 {
        for i in 0..<(entry.ids.count - 1) {
          pairCounts[Pair(entry.ids[i], entry.ids[i + 1]), default: 0] += entry.count
        }
      }
      guard let best = pairCounts.max(by: { a, b in
        a.value != b.value ? a.value < b.value : (a.key.first, a.key.second) > (b.key.first, b.key.second)
      }), best.value >= minFrequency else { break }
      let newID = firstMergeID + Int32(merges.count)
      merges.append(best.key)
      for e in entries.indices where entries[e].ids.count > 1 {
        entries[e].ids = apply(best.key, as: newID, to: entries[e].ids)
      }
    }
    return BPETokenizer(merges: merges)
  }

  private static func apply(_ pair: Pair, as id: Int32, to ids: [Int32]) -> [Int32] {
    var out: [Int32] = []
    out.reserveCapacity(ids.count)
    var i = 0
    while i < ids.count {
      if i + 1 < ids.count, ids[i] == pair.first, ids[i + 1] == pair.second {
        out.append(id)
        i += 2
      } else {
        out.append(ids[i])
        i += 1
      }
    }
    return out
  }

  // MARK: - Encoding

  public func encode(_ text: String) -> [Int32] {
    var out: [Int32] = []
    for piece in SpecialToken.split(text) {
      switch piece {
      case .special(let s): out.append(s.id)
      case .text(let t): for word in BPETokenizer.words(t) { out += encode(word: word) }
      }
    }
    return out
  }

  /// Applies merges to one word, lowest rank first, as they were learned.
  private func encode(word: [UInt8]) -> [Int32] {
    var ids = word.map { Int32($0) }
    while ids.count > 1 {
      var bestRank = Int32.max
      var bestIndex = -1
      for i in 0..<(ids.count - 1) {
        if let rank = ranks[Pair(ids[i], ids[i + 1])], rank < bestRank {
          bestRank = rank
          bestIndex = i
        }
      }
      guard bestIndex >= 0 else { break }
      ids = BPETokenizer.apply(merges[Int(bestRank - BPETokenizer.firstMergeID)], as: bestRank, to: ids)
    }
    return ids
  }

  public func decode(_ ids: [Int32]) -> String {
    var bytes: [UInt8] = []
    for id in ids where id >= 0 && Int(id) < pieces.count { bytes += pieces[Int(id)] }
    return String(decoding: bytes, as: UTF8.self)
  }

  // MARK: - Pre-tokenisation

  enum CharacterClass { case letter, digit, space, other }

  static func characterClass(_ scalar: Unicode.Scalar) -> CharacterClass {
    if scalar.properties.isAlphabetic { return .letter }
    if ("0"..."9").contains(scalar) { return .digit }
    if scalar.properties.isWhitespace { return .space }
    return .other
  }

  /// Cuts text into words (as UTF-8 bytes) by the rule in the type's documentation.
  static func words(_ text: String) -> [[UInt8]] {
    var words: [[UInt8]] = []
    var current: [UInt8] = []
    var currentClass: CharacterClass?
    let scalars = Array(text.unicodeScalars)
    var i = 0
    func flush() {
      if !current.isEmpty { words.append(current) }
      current = []
      currentClass = nil
    }
    while i < scalars.count {
      let s = scalars[i]
      let cls = characterClass(s)
      let bytes = Array(String(s).utf8)
      switch cls {
      case .digit:
        flush()
        words.append(bytes)
      case .space:
        // A single space directly before a letter belongs to that letter's word.
        if s == " ", i + 1 < scalars.count, characterClass(scalars[i + 1]) == .letter {
          flush()
          current = bytes
          currentClass = .letter
        } else {
          if currentClass != .space { flush() }
          current += bytes
          currentClass = .space
        }
      case .letter, .other:
        if currentClass != cls { flush() }
        current += bytes
        currentClass = cls
      }
      i += 1
    }
    flush()
    return words
  }

  // MARK: - Serialisation

  /// JSON with a fixed layout: the same tokenizer always gives the same bytes.
  public func serialized() -> [UInt8] {
    let list = merges.map { "[\($0.first),\($0.second)]" }.joined(separator: ",")
    let specials = SpecialToken.allCases.map { "\"\($0.text)\":\($0.id)" }.joined(separator: ",")
    return Array("{\"format\":\"lineage-bpe\",\"version\":1,\"specials\":{\(specials)},\"merges\":[\(list)]}\n".utf8)
  }

  /// Reads what `serialized()` wrote.
  ///
  /// - Throws: `TokenizerError` for anything else, or merges that name ids not yet defined.
  public init(serialized bytes: [UInt8]) throws {
    let text = String(decoding: bytes, as: UTF8.self)
    guard text.hasPrefix("{\"format\":\"lineage-bpe\",\"version\":1,"),
          let start = text.firstRange(of: "\"merges\":[")?.upperBound,
          let end = text.lastIndex(of: "]") else {
      throw TokenizerError.malformed("not a lineage-bpe tokenizer (version 1)")
    }
    let body = text[start..<end]
    var merges: [Pair] = []
    let numbers = body.split(whereSeparator: { "[], ".contains($0) }).map { Int32($0) }
    guard numbers.count % 2 == 0, !numbers.contains(nil) else { throw TokenizerError.malformed("bad merge list") }
    for i in stride(from: 0, to: numbers.count, by: 2) {
      let pair = Pair(numbers[i]!, numbers[i + 1]!)
      let limit = BPETokenizer.firstMergeID + Int32(merges.count)
      guard pair.first >= 0, pair.second >= 0, pair.first < limit, pair.second < limit else {
        throw TokenizerError.malformed("merge \(merges.count) uses an id not defined before it")
      }
      merges.append(pair)
    }
    self.init(merges: merges)
  }
}

/// A tokenizer artifact that cannot be read.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
  case malformed(String)
  public var description: String {
    switch self {
    case .malformed(let why): return "malformed tokenizer: \(why)"
    }
  }
}
