import Foundation

/// The response format of the R-series (DeepSeek-R1's template): the reasoning inside one
/// `<think>…</think>`, then the answer inside one `<answer>…</answer>`, and nothing after it.
///
/// ```
/// <think>7 * 3 = 21
/// 12 + 21 = 33</think><answer>33</answer>
/// ```
enum ReasoningFormat {
  static let thinkOpen = "<think>", thinkClose = "</think>"
  static let answerOpen = "<answer>", answerClose = "</answer>"

  /// The text a model should write for an example: its worked steps (possibly none) and its answer.
  static func response(reasoning: String, answer: String) -> String {
    thinkOpen + reasoning + thinkClose + answerOpen + answer + answerClose
  }

  /// A response taken apart.
  struct Parts: Equatable {
    /// The reasoning inside `<think>` (nil when there is no complete think block).
    var reasoning: String?
    /// The content of the last `<answer>…</answer>` (nil when there is none).
    var answer: String?
    /// Exactly one think block, then (after optional white space) exactly one answer block, and only
    /// white space after it.
    var isWellFormed: Bool
  }

  /// Parses a response (the end-of-sequence token already removed).
  static func parse(_ text: String) -> Parts {
    let answer = lastBlock(in: text, open: answerOpen, close: answerClose)
    let reasoning = firstBlock(in: text, open: thinkOpen, close: thinkClose)
    return Parts(reasoning: reasoning, answer: answer, isWellFormed: isWellFormed(text))
  }

  private static func isWellFormed(_ text: String) -> Bool {
    for tag in [thinkOpen, thinkClose, answerOpen, answerClose] where occurrences(of: tag, in: text) != 1 { return false }
    var rest = Substring(text)
    guard rest.hasPrefix(thinkOpen) else { return false }
    rest = rest.dropFirst(thinkOpen.count)
    guard let close = rest.range(of: thinkClose) else { return false }
    rest = rest[close.upperBound...].drop { $0.isWhitespace }
    guard rest.hasPrefix(answerOpen) else { return false }
    rest = rest.dropFirst(answerOpen.count)
    guard let end = rest.range(of: answerClose) else { return false }
    return rest[end.upperBound...].allSatisfy(\.isWhitespace)
  }

  private static func occurrences(of tag: String, in text: String) -> Int {
    var count = 0, rest = Substring(text)
    while let r = rest.range(of: tag) {
      count += 1
      rest = rest[r.upperBound...]
    }
    return count
  }

  private static func firstBlock(in text: String, open: String, close: String) -> String? {
    guard let o = text.range(of: open), let c = text.range(of: close, range: o.upperBound..<text.endIndex) else { return nil }
    return String(text[o.upperBound..<c.lowerBound])
  }

  private static func lastBlock(in text: String, open: String, close: String) -> String? {
    guard let o = text.range(of: open, options: .backwards),
          let c = text.range(of: close, range: o.upperBound..<text.endIndex) else { return nil }
    return String(text[o.upperBound..<c.lowerBound])
  }
}
