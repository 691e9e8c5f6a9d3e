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
    var out: [UInt8] = []
    writeCanonical(into: &out)
    return String(decoding: out, as: UTF8.self)
  }

  /// Appends the canonical JSON's UTF-8 bytes: bytes, not a `String`, because every stage's cache key
  /// is written this way on every run, and appending to an array skips a string's bookkeeping.
  func writeCanonical(into out: inout [UInt8]) {
    switch self {
    case .null: out += "null".utf8
    case .bool(let v): out += (v ? "true" : "false").utf8
    case .int(let v): out += String(v).utf8
    case .float(let v): out += ParamValue.formatFloat(v, json: true).utf8
    case .string(let v): ParamValue.appendJSONQuoted(v, to: &out)
    case .list(let items):
      out.append(UInt8(ascii: "["))
      for (i, item) in items.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        item.writeCanonical(into: &out)
      }
      out.append(UInt8(ascii: "]"))
    case .map(let entries):
      out.append(UInt8(ascii: "{"))
      for (i, entry) in entries.sorted(by: { $0.key < $1.key }).enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        ParamValue.appendJSONQuoted(entry.key, to: &out)
        out.append(UInt8(ascii: ":"))
        entry.value.writeCanonical(into: &out)
      }
      out.append(UInt8(ascii: "}"))
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
    var out: [UInt8] = []
    appendJSONQuoted(s, to: &out)
    return String(decoding: out, as: UTF8.self)
  }

  /// Appends `s` as a JSON string literal (UTF-8). Every stage's key hashes a canonical text with a
  /// few dozen of them, so the common string (nothing to escape) is appended whole.
  static func appendJSONQuoted(_ s: String, to out: inout [UInt8]) {
    let quote = UInt8(ascii: "\"")
    out.append(quote)
    var text = s
    // The string's own contiguous bytes: checked and copied as a buffer, not through its UTF-8 view.
    let plain = text.withUTF8 { bytes in
      guard bytes.allSatisfy({ $0 >= 0x20 && $0 != 0x22 && $0 != 0x5C }) else { return false }
      out.append(contentsOf: bytes)
      return true
    }
    if plain {
      out.append(quote)
      return
    }
    for scalar in s.unicodeScalars {
      switch scalar {
      case "\"": out += #"\""#.utf8
      case "\\": out += #"\\"#.utf8
      case "\n": out += #"\n"#.utf8
      case "\r": out += #"\r"#.utf8
      case "\t": out += #"\t"#.utf8
      case _ where scalar.value < 0x20:
        let hex = String(scalar.value, radix: 16)
        out += ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8
      default: out += String(scalar).utf8
      }
    }
    out.append(quote)
  }

  /// Every leaf under this value, as `(dotted path, value)`, sorted by path; lists are leaves.
  public func flattened(prefix: String = "") -> [(path: String, value: ParamValue)] {
    guard case .map(let entries) = self, !entries.isEmpty else { return [(prefix, self)] }
    return entries.keys.sorted().flatMap { key in
      entries[key]!.flattened(prefix: prefix.isEmpty ? key : "\(prefix).\(key)")
    }
  }
}
