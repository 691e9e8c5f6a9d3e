import Foundation
import Models
import Pipeline

/// A corpus as one stream of tokens (each document `<s>…</s>`), cut into training windows.
struct TokenStream {
  let tokens: [Int32]

  init(documents: [String], tokenizer: TextTokenizer) {
    var tokens: [Int32] = []
    let bos = tokenizer.id(of: .bos), eos = tokenizer.id(of: .eos)
    for document in documents {
      tokens.append(bos)
      tokens += tokenizer.encode(document)
      tokens.append(eos)
    }
    self.tokens = tokens
  }

  /// `count` windows of `length` tokens at offsets drawn from `rng` (the whole stream repeated when it
  /// is shorter than a window).
  func windows(_ count: Int, length: Int, using rng: inout TaskRandom) -> [[Int32]] {
    precondition(!tokens.isEmpty)
    return (0..<count).map { _ in
      if tokens.count <= length {
        return (0..<length).map { tokens[$0 % tokens.count] }
      }
      let start = Int.random(in: 0...(tokens.count - length), using: &rng)
      return Array(tokens[start..<(start + length)])
    }
  }
}

/// The documents of a corpus artifact: documents separated by a blank line.
enum CorpusText {
  static let separator = "\n\n"

  static func documents(in bytes: [UInt8]) -> [String] {
    String(decoding: bytes, as: UTF8.self).components(separatedBy: separator).filter { !$0.isEmpty }
  }

  static func bytes(of documents: [String]) -> [UInt8] {
    Array(documents.joined(separator: separator).utf8)
  }

  /// The documents of a stage's `corpus:` slot: a corpus stage's artifact, or `builtin:library`
  /// (the library's training documents at their default size).
  static func documents(slot: String, of context: StageContext) throws -> [String] {
    if let input = context.input(slot) { return documents(in: try context.bytes(of: input)) }
    guard context.literal(slot) == BuiltinCorpus.libraryName else {
      throw StageFailure("needs '\(slot):' naming a corpus stage or \(BuiltinCorpus.libraryName)")
    }
    return BuiltinCorpus.library(documents: BuiltinCorpus.defaultDocuments, world: BuiltinCorpus.defaultWorld,
                                 split: .train, seed: context.seed)
  }
}
