/// A parameter value after the recipe has been read: the typed form of a YAML scalar, list or map.
///
/// Values are compared and hashed structurally; maps are kept sorted by key so that the order a user
/// wrote keys in never matters. `canonicalJSON` is the encoding cache keys are computed from.
public enum ParamValue: Hashable, Sendable {
  case null
  case bool(Bool)
  case int(Int)
  case float(Double)
  case string(String)
  case list([ParamValue])
  case map([String: ParamValue])

  // MARK: - Accessors (valid after validation: the schema guarantees the type)

  /// The value under `key` of a map, or `.null`.
  public subscript(key: String) -> ParamValue {
    if case .map(let entries) = self, let value = entries[key] { return value }
    return .null
  }

  /// The value at a dotted path (`train.lr`), or `.null`.
  public subscript(path path: String) -> ParamValue {
    path.split(separator: ".").reduce(self) { $0[String($1)] }
  }

  public var int: Int? {
    switch self {
    case .int(let v): return v
    case .float(let v) where v.rounded() == v && abs(v) < 9e15: return Int(v)
    default: return nil
    }
  }
  public var double: Double? {
    switch self {
    case .int(let v): return Double(v)
    case .float(let v): return v
    default: return nil
    }
  }
  public var bool: Bool? { if case .bool(let v) = self { return v } else { return nil } }
  public var string: String? { if case .string(let v) = self { return v } else { return nil } }
  public var list: [ParamValue]? { if case .list(let v) = self { return v } else { return nil } }
  public var map: [String: ParamValue]? { if case .map(let v) = self { return v } else { return nil } }
  public var isNull: Bool { self == .null }

  // MARK: - Text

  /// Canonical JSON: keys sorted, no white space, floats in their shortest round-trip form with a
  /// decimal point or exponent (so `1` the int and `1.0` the float never collide).
  public var canonicalJSON: String {
    var out = ""
    writeCanonical(into: &out)
    return out
  }

  private func writeCanonical(into out: inout String) {
    switch self {
    case .null: out += "null"
    case .bool(let v): out += v ? "true" : "false"
    case .int(let v): out += String(v)
    case .float(let v): out += ParamValue.formatFloat(v, json: true)
    case .string(let v): out += ParamValue.jsonQuoted(v)
    case .list(let items):
      out += "["
      for (i, item) in items.enumerated() {
        if i > 0 { out += "," }
        item.writeCanonical(into: &out)
      }
      out += "]"
    case .map(let entries):
      out += "{"
      for (i, key) in entries.keys.sorted().enumerated() {
        if i > 0 { out += "," }
        out += ParamValue.jsonQuoted(key) + ":"
        entries[key]!.writeCanonical(into: &out)
      }
      out += "}"
    }
  }

  /// A short human form for messages and tables: `3e-3` stays `0.003`, strings unquoted, lists and
  /// maps in flow style.
  public var displayText: String {
    switch self {
    case .null: return "null"
    case .bool(let v): return v ? "true" : "false"
    case .int(let v): return String(v)
    case .float(let v): return ParamValue.formatFloat(v, json: false)
    case .string(let v): return v
    case .list(let items): return "[" + items.map(\.displayText).joined(separator: ", ") + "]"
    case .map(let entries):
      return "{" + entries.keys.sorted().map { "\($0): \(entries[$0]!.displayText)" }
        .joined(separator: ", ") + "}"
    }
  }

  /// Shortest round-trip decimal form; JSON has no infinities, so those become strings there.
  static func formatFloat(_ v: Double, json: Bool) -> String {
    if v.isNaN { return json ? "\"nan\"" : "nan" }
    if v.isInfinite { return json ? (v < 0 ? "\"-inf\"" : "\"inf\"") : (v < 0 ? "-inf" : "inf") }
    var text = "\(v)"   // Swift prints the shortest representation that round-trips
    if !text.contains(".") && !text.contains("e") { text += ".0" }
    return text
  }

  /// `s` as a JSON string literal (quotes, escapes), for the JSON texts Lineage writes by hand.
  public static func jsonQuoted(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case _ where scalar.value < 0x20:
        let hex = String(scalar.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out + "\""
  }

  /// Every leaf under this value, as `(dotted path, value)`, sorted by path; lists are leaves.
  public func flattened(prefix: String = "") -> [(path: String, value: ParamValue)] {
    guard case .map(let entries) = self, !entries.isEmpty else { return [(prefix, self)] }
    return entries.keys.sorted().flatMap { key in
      entries[key]!.flattened(prefix: prefix.isEmpty ? key : "\(prefix).\(key)")
    }
  }
}

// MARK: - JSON decoding (action records keep params as canonical JSON)

extension ParamValue {
  /// Parses the canonical JSON this type writes (and ordinary JSON), for reading stored records.
  public init(json text: String) throws {
    var parser = JSONValueParser(Array(text.utf8))
    self = try parser.parseDocument()
  }
}

/// A small JSON reader that keeps ints and floats apart (Foundation's reader does not).
struct JSONValueParser {
  struct Failure: Error, CustomStringConvertible {
    var offset: Int
    var description: String { "malformed JSON at byte \(offset)" }
  }
  private let bytes: [UInt8]
  private var i = 0
  private var depth = 0

  init(_ bytes: [UInt8]) { self.bytes = bytes }

  mutating func parseDocument() throws -> ParamValue {
    let value = try parseValue()
    skipSpace()
    guard i == bytes.count else { throw Failure(offset: i) }
    return value
  }

  private mutating func skipSpace() {
    while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 }
  }

  private mutating func parseValue() throws -> ParamValue {
    skipSpace()
    guard i < bytes.count else { throw Failure(offset: i) }
    switch bytes[i] {
    case UInt8(ascii: "{"):
      depth += 1
      guard depth < 256 else { throw Failure(offset: i) }
      defer { depth -= 1 }
      i += 1
      var entries: [String: ParamValue] = [:]
      skipSpace()
      if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .map(entries) }
      while true {
        skipSpace()
        guard case .string(let key) = try parseValue() else { throw Failure(offset: i) }
        skipSpace()
        guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw Failure(offset: i) }
        i += 1
        entries[key] = try parseValue()
        skipSpace()
        guard i < bytes.count else { throw Failure(offset: i) }
        if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
        if bytes[i] == UInt8(ascii: "}") { i += 1; return .map(entries) }
        throw Failure(offset: i)
      }
    case UInt8(ascii: "["):
      depth += 1
      guard depth < 256 else { throw Failure(offset: i) }
      defer { depth -= 1 }
      i += 1
      var items: [ParamValue] = []
      skipSpace()
      if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .list(items) }
      while true {
        items.append(try parseValue())
        skipSpace()
        guard i < bytes.count else { throw Failure(offset: i) }
        if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
        if bytes[i] == UInt8(ascii: "]") { i += 1; return .list(items) }
        throw Failure(offset: i)
      }
    case UInt8(ascii: "\""):
      return .string(try parseString())
    case UInt8(ascii: "t"): return try literal("true", .bool(true))
    case UInt8(ascii: "f"): return try literal("false", .bool(false))
    case UInt8(ascii: "n"): return try literal("null", .null)
    default:
      return try parseNumber()
    }
  }

  private mutating func literal(_ word: String, _ value: ParamValue) throws -> ParamValue {
    let w = Array(word.utf8)
    guard i + w.count <= bytes.count, Array(bytes[i..<i + w.count]) == w else { throw Failure(offset: i) }
    i += w.count
    return value
  }

  private mutating func parseNumber() throws -> ParamValue {
    let start = i
    var isFloat = false
    while i < bytes.count {
      let c = bytes[i]
      if (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") {
        i += 1
      } else if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
        isFloat = true
        i += 1
      } else { break }
    }
    let text = String(decoding: bytes[start..<i], as: UTF8.self)
    if !isFloat, let v = Int(text) { return .int(v) }
    if let v = Double(text) { return .float(v) }
    throw Failure(offset: start)
  }

  private mutating func parseString() throws -> String {
    i += 1
    var out = [UInt8]()
    while i < bytes.count {
      let c = bytes[i]
      if c == UInt8(ascii: "\"") { i += 1; return String(decoding: out, as: UTF8.self) }
      if c == UInt8(ascii: "\\") {
        i += 1
        guard i < bytes.count else { break }
        switch bytes[i] {
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "u"):
          guard i + 4 < bytes.count,
                let code = UInt32(String(decoding: bytes[i + 1...i + 4], as: UTF8.self), radix: 16)
          else { throw Failure(offset: i) }
          i += 4
          var scalarValue = code
          // A surrogate pair encodes one scalar beyond the basic plane.
          if (0xD800..<0xDC00).contains(code), i + 6 < bytes.count, bytes[i + 1] == UInt8(ascii: "\\"),
             bytes[i + 2] == UInt8(ascii: "u"),
             let low = UInt32(String(decoding: bytes[i + 3...i + 6], as: UTF8.self), radix: 16),
             (0xDC00..<0xE000).contains(low) {
            scalarValue = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            i += 6
          }
          let scalar = Unicode.Scalar(scalarValue) ?? "\u{FFFD}"
          out.append(contentsOf: Array(String(scalar).utf8))
        default: out.append(bytes[i])
        }
        i += 1
      } else {
        out.append(c)
        i += 1
      }
    }
    throw Failure(offset: i)
  }
}
