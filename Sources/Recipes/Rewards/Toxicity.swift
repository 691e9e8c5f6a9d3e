import Foundation
import Pipeline

/// Terms whose presence makes a text toxic: insults and hostile phrases, matched as whole words or
/// phrases, ignoring case and accents ("ESTUPIDO" matches "estúpido").
///
/// The built-in lists are short and English and Spanish only: they stand in for a real classifier in
/// a world whose texts are generated. A recipe replaces them with its own file (one term per line).
struct BlockList: Equatable, Sendable {
  /// Folded terms, each a list of words.
  private let terms: [[String]]

  init(terms: [String]) {
    self.terms = terms.map { BlockList.fold($0) }.filter { !$0.isEmpty }
  }

  /// One term per line; blank lines and lines starting with `#` are skipped.
  init(fileContents: String) {
    self.init(terms: fileContents.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
      .filter { !$0.isEmpty && !$0.hasPrefix("#") })
  }

  static let builtin = BlockList(terms: [
    // English
    "idiot", "idiots", "stupid", "moron", "morons", "dumb", "loser", "losers", "worthless", "pathetic", "shut up",
    "hate you", "you suck", "useless", "disgusting", "trash",
    // Spanish
    "idiota", "idiotas", "estúpido", "estúpida", "imbécil", "imbéciles", "tonto", "tonta", "cállate", "inútil",
    "te odio", "perdedor", "perdedora", "asqueroso", "asquerosa", "basura",
  ])

  /// The terms found in `text` (folded), in list order.
  func matches(in text: String) -> [String] {
    let words = BlockList.fold(text)
    guard !words.isEmpty else { return [] }
    return terms.filter { term in
      guard term.count <= words.count else { return false }
      return (0...(words.count - term.count)).contains { start in words[start..<(start + term.count)].elementsEqual(term) }
    }.map { $0.joined(separator: " ") }
  }

  func isToxic(_ text: String) -> Bool { !matches(in: text).isEmpty }

  /// The list a stage's `block_list:` names (a file in the recipe folder), or the built-in one.
  static func named(_ path: String?, in context: StageContext) throws -> BlockList {
    guard let path else { return .builtin }
    guard let data = FileManager.default.contents(atPath: context.resolvedPath(path)) else {
      throw StageFailure("cannot read the block list \(path)")
    }
    return BlockList(fileContents: String(decoding: data, as: UTF8.self))
  }

  /// Lower-cased, accent-free words.
  private static func fold(_ text: String) -> [String] {
    text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
      .split { !$0.isLetter }.map(String.init)
  }
}
