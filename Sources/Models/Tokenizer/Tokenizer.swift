/// Turns text into token ids and back.
///
/// Every tokenizer is byte-level: any UTF-8 text encodes, and decoding the ids of a text gives the
/// text back exactly. Special tokens (`SpecialToken`) are single ids; their text in the input
/// (`<think>`) is recognised and encoded as that id.
public protocol Tokenizer: Sendable {
  /// The number of ids: every id is in `0..<vocabularySize`.
  var vocabularySize: Int { get }
  func encode(_ text: String) -> [Int32]
  func decode(_ ids: [Int32]) -> String
  /// The id of a special token.
  func id(of special: SpecialToken) -> Int32
}

/// The special tokens every tokenizer has, right after the 256 byte ids.
public enum SpecialToken: Int, CaseIterable, Sendable {
  case bos, eos, pad, thinkOpen, thinkClose, answerOpen, answerClose

  /// How the token is written in text.
  public var text: String {
    switch self {
    case .bos: return "<s>"
    case .eos: return "</s>"
    case .pad: return "<pad>"
    case .thinkOpen: return "<think>"
    case .thinkClose: return "</think>"
    case .answerOpen: return "<answer>"
    case .answerClose: return "</answer>"
    }
  }

  /// Its id: 256 + its index.
  public var id: Int32 { Int32(256 + rawValue) }

  /// Splits text into runs of ordinary text and special tokens, in order.
  static func split(_ text: String) -> [Piece] {
    var pieces: [Piece] = []
    var pendingStart = text.startIndex
    var i = text.startIndex
    while i < text.endIndex {
      if text[i] == "<", let special = allCases.first(where: { text[i...].hasPrefix($0.text) }) {
        if pendingStart < i { pieces.append(.text(String(text[pendingStart..<i]))) }
        pieces.append(.special(special))
        i = text.index(i, offsetBy: special.text.count)
        pendingStart = i
      } else {
        i = text.index(after: i)
      }
    }
    if pendingStart < text.endIndex { pieces.append(.text(String(text[pendingStart...]))) }
    return pieces
  }

  enum Piece: Equatable {
    case text(String)
    case special(SpecialToken)
  }
}

/// The simplest tokenizer: one id per byte (0–255), then the special tokens.
public struct ByteTokenizer: Tokenizer {
  public init() {}

  public var vocabularySize: Int { 256 + SpecialToken.allCases.count }

  public func encode(_ text: String) -> [Int32] {
    SpecialToken.split(text).flatMap { piece -> [Int32] in
      switch piece {
      case .special(let s): return [s.id]
      case .text(let t): return t.utf8.map { Int32($0) }
      }
    }
  }

  public func decode(_ ids: [Int32]) -> String {
    var bytes: [UInt8] = []
    for id in ids {
      if id < 256 {
        bytes.append(UInt8(id))
      } else if let special = SpecialToken(rawValue: Int(id) - 256) {
        bytes += Array(special.text.utf8)
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  public func id(of special: SpecialToken) -> Int32 { special.id }
}
