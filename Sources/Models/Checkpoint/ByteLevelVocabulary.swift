/// Our BPE vocabulary spelled the way byte-level BPE files name tokens (GPT-2's convention, used by
/// Hugging Face `tokenizers` and by GGUF's `gpt2` tokenizer model): each byte is one printable
/// character (`bytesToUnicode`: printable Latin-1 bytes stand for themselves, the others for U+0100
/// onwards, so a space is `Ġ`), a token is the characters of its bytes, and a merge is its two tokens
/// joined by a space. Special tokens keep their text (`<s>`, `</s>`, …).
///
/// Two ids of ours can stand for the same bytes (merges (ab, c) and (a, bc) both make `abc`); a
/// file keyed by token text keeps only the first, so `duplicates` lists the others.
struct ByteLevelVocabulary {
  /// Token text by id, in id order.
  let tokens: [String]
  /// Merges in rank order, as `"first second"`.
  let merges: [String]
  /// Ids whose text an earlier id already has, with that earlier id.
  let duplicates: [(id: Int, sameAs: Int)]

  init(_ tokenizer: BPETokenizer) {
    var pieces: [[UInt8]] = (0..<256).map { [UInt8($0)] }
    var tokens = (0..<256).map { String(ByteLevelVocabulary.bytesToUnicode[$0]) }
    for special in SpecialToken.allCases {
      pieces.append(Array(special.text.utf8))
      tokens.append(special.text)
    }
    var merges: [String] = []
    merges.reserveCapacity(tokenizer.merges.count)
    for pair in tokenizer.merges {
      let bytes = pieces[Int(pair.first)] + pieces[Int(pair.second)]
      pieces.append(bytes)
      tokens.append(String(bytes.map { ByteLevelVocabulary.bytesToUnicode[Int($0)] }))
      merges.append(tokens[Int(pair.first)] + " " + tokens[Int(pair.second)])
    }
    var first: [String: Int] = [:]
    var duplicates: [(id: Int, sameAs: Int)] = []
    for (id, token) in tokens.enumerated() {
      if let earlier = first[token] { duplicates.append((id, earlier)) } else { first[token] = id }
    }
    self.tokens = tokens
    self.merges = merges
    self.duplicates = duplicates
  }

  /// GPT-2's printable stand-in for each byte.
  static let bytesToUnicode: [Character] = {
    let printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
    var map = [Character](repeating: " ", count: 256)
    for b in printable { map[b] = Character(Unicode.Scalar(UInt32(b))!) }
    var next: UInt32 = 256
    for b in 0..<256 where !printable.contains(b) {
      map[b] = Character(Unicode.Scalar(next)!)
      next += 1
    }
    return map
  }()
}
