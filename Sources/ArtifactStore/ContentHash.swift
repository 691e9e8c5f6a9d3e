import Crypto
import Foundation

/// The SHA-256 of some bytes: the address of every blob in the store. Written as 64 hex digits.
public struct ContentHash: Hashable, Comparable, Sendable, CustomStringConvertible {
  /// The 32 digest bytes.
  public let bytes: [UInt8]

  init(digest: [UInt8]) {
    precondition(digest.count == 32)
    bytes = digest
  }

  /// Parses 64 hex digits (either case); nil for anything else.
  public init?(hex: String) {
    var hex = hex
    guard let parsed = hex.withUTF8({ ContentHash(hexDigits: UnsafeRawBufferPointer($0)) }) else { return nil }
    self = parsed
  }

  /// Parses 64 hex digits (either case) from bytes; nil for anything else.
  public init?(hexDigits chars: UnsafeRawBufferPointer) {
    guard chars.count == 64 else { return nil }
    var out = [UInt8](repeating: 0, count: 32)
    var invalid: UInt8 = 0
    for i in 0..<32 {
      let hi = ContentHash.nibble(chars[2 * i]), lo = ContentHash.nibble(chars[2 * i + 1])
      invalid |= (hi | lo) & 0xF0
      out[i] = hi << 4 | (lo & 0x0F)
    }
    guard invalid == 0 else { return nil }
    bytes = out
  }

  /// A hex digit's value, or 0xFF for any other byte.
  private static func nibble(_ c: UInt8) -> UInt8 {
    if c >= 48 && c <= 57 { return c - 48 }
    let lower = c | 0x20  // only A–F and a–f land on a–f
    return lower >= 97 && lower <= 102 ? lower - 87 : 0xFF
  }

  /// The hash of `bytes`.
  public static func of(_ bytes: some ContiguousBytes) -> ContentHash {
    bytes.withUnsafeBytes { of($0) }
  }

  /// The hash of the bytes in `buffer`.
  public static func of(_ buffer: UnsafeRawBufferPointer) -> ContentHash {
    var hasher = SHA256()
    hasher.update(bufferPointer: buffer)
    return ContentHash(digest: Array(hasher.finalize()))
  }

  /// 64 lowercase hex digits.
  public var hex: String {
    // Written into the string's own storage: keys and lockfiles ask for tens of thousands of these.
    String(unsafeUninitializedCapacity: 64) { out in
      for (i, b) in bytes.enumerated() {
        out[2 * i] = ContentHash.digit(b >> 4)
        out[2 * i + 1] = ContentHash.digit(b & 15)
      }
      return 64
    }
  }

  private static func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 48 + nibble : 87 + nibble }

  /// The first 12 hex digits, for display.
  public var short: String { String(hex.prefix(12)) }

  public var description: String { hex }

  public static func < (a: ContentHash, b: ContentHash) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

extension ContentHash: Codable {
  public init(from decoder: Decoder) throws {
    let text = try decoder.singleValueContainer().decode(String.self)
    guard let hash = ContentHash(hex: text) else {
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a SHA-256 hex digest: \(text)"))
    }
    self = hash
  }

  public func encode(to encoder: Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(hex)
  }
}
