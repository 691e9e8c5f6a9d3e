/// Turns tokens arriving one at a time into text that can be printed at once, never half a character.
///
/// A byte-level token may end in the middle of a UTF-8 sequence (an accented letter split over two
/// tokens), so the text of the tokens so far may end in a replacement character that the next token
/// completes. `append(_:)` returns only the new text before such an unfinished end; `finish()` returns
/// whatever is left. Everything returned, concatenated, is exactly `tokenizer.decode` of all tokens.
public struct TextStream<T: Tokenizer> {
  public let tokenizer: T
  private var tokens: [Int32] = []
  /// Unicode scalars already handed out.
  private var emitted = 0

  public init(tokenizer: T) { self.tokenizer = tokenizer }

  /// Adds one token; returns the text that is now final (possibly empty).
  public mutating func append(_ token: Int32) -> String {
    tokens.append(token)
    var scalars = Array(tokenizer.decode(tokens).unicodeScalars)
    // A trailing U+FFFD may be an incomplete sequence that a later token completes: hold it back.
    while scalars.count > emitted, scalars.last == "\u{FFFD}" { scalars.removeLast() }
    return take(scalars)
  }

  /// The text not handed out yet (an unfinished sequence at the end, as replacement characters).
  public mutating func finish() -> String { take(Array(tokenizer.decode(tokens).unicodeScalars)) }

  private mutating func take(_ scalars: [Unicode.Scalar]) -> String {
    guard scalars.count > emitted else { return "" }
    var out = String.UnicodeScalarView()
    out.append(contentsOf: scalars[emitted...])
    emitted = scalars.count
    return String(out)
  }
}
