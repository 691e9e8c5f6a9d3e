/// A place in a source file: line and column 1-based, as editors count (columns in characters).
public struct SourceLocation: Hashable, Comparable, Sendable, CustomStringConvertible {
  public var file: String
  public var line: Int
  public var column: Int

  public init(file: String, line: Int, column: Int) {
    self.file = file
    self.line = line
    self.column = column
  }

  /// `file:line:column`.
  public var description: String { "\(file):\(line):\(column)" }

  public static func < (a: SourceLocation, b: SourceLocation) -> Bool {
    (a.file, a.line, a.column) < (b.file, b.line, b.column)
  }
}

/// A scalar after resolution by YAML 1.2's core schema (plus `1e-3` without a dot as a float).
/// Quoted and block scalars are always strings.
public enum YAMLScalar: Hashable, Sendable {
  case null
  case bool(Bool)
  case int(Int)
  case float(Double)
  case string(String)
}

/// How a scalar was written.
public enum ScalarStyle: Sendable, Equatable {
  case plain, singleQuoted, doubleQuoted, literal, folded
}

/// A key and its value in a mapping.
public struct YAMLPair: Sendable, Equatable {
  public var key: YAMLNode
  public var value: YAMLNode

  public init(key: YAMLNode, value: YAMLNode) {
    self.key = key
    self.value = value
  }
}

/// One node of a parsed YAML document, with the place it starts at.
///
/// Aliases are expanded (an alias takes the anchored node's content and its own place); merge keys
/// (`<<`) are resolved; a mapping never holds two equal keys.
public struct YAMLNode: Sendable, Equatable, CustomStringConvertible {
  public enum Content: Sendable, Equatable {
    case scalar(YAMLScalar)
    case sequence([YAMLNode])
    case mapping([YAMLPair])
  }

  public var content: Content
  public var location: SourceLocation
  /// An explicit tag (`!!str`), if the node had one.
  public var tag: String?
  /// For scalars: the text as written (`3e-4`), without quotes.
  public var raw: String?
  public var style: ScalarStyle

  public init(content: Content, location: SourceLocation, tag: String? = nil, raw: String? = nil,
              style: ScalarStyle = .plain) {
    self.content = content
    self.location = location
    self.tag = tag
    self.raw = raw
    self.style = style
  }

  // MARK: - Conveniences

  /// The value under a string key of a mapping.
  public subscript(key: String) -> YAMLNode? {
    guard case .mapping(let pairs) = content else { return nil }
    return pairs.first { $0.key.string == key }?.value
  }

  public var string: String? {
    if case .scalar(.string(let s)) = content { return s }
    return nil
  }

  public var int: Int? {
    if case .scalar(.int(let i)) = content { return i }
    return nil
  }

  /// A number, ints widened.
  public var double: Double? {
    switch content {
    case .scalar(.int(let i)): return Double(i)
    case .scalar(.float(let d)): return d
    default: return nil
    }
  }

  public var bool: Bool? {
    if case .scalar(.bool(let b)) = content { return b }
    return nil
  }

  public var isNull: Bool { content == .scalar(.null) }

  /// A short form for messages: `a map`, `a list`, `the string 'x'`.
  public var description: String {
    switch content {
    case .scalar(.null): return "null"
    case .scalar(.bool(let b)): return "the bool \(b)"
    case .scalar(.int): return "the int \(raw ?? "")"
    case .scalar(.float): return "the float \(raw ?? "")"
    case .scalar(.string(let s)): return "the string '\(s)'"
    case .sequence: return "a list"
    case .mapping: return "a map"
    }
  }
}

/// Limits that keep a hostile or mistaken file from hanging or exhausting the tool.
public struct YAMLLimits: Sendable {
  /// Bytes per file.
  public var maxBytes = 4 << 20
  /// Nesting of collections, after alias expansion.
  public var maxDepth = 64
  /// Nodes after alias expansion (stops "billion laughs" alias bombs), or one per byte of the file
  /// when that is more: a large file written out in full is not a bomb, and memory stays linear in it.
  public var maxNodes = 200_000

  public init(maxBytes: Int = 4 << 20, maxDepth: Int = 64, maxNodes: Int = 200_000) {
    self.maxBytes = maxBytes
    self.maxDepth = maxDepth
    self.maxNodes = maxNodes
  }

  public static let `default` = YAMLLimits()

  /// For `lineage.lock`, which Lineage writes itself and which grows with the recipe (about 530 bytes a
  /// stage): up to 1 GiB.
  public static let lockfile = YAMLLimits(maxBytes: 1 << 30)
}

/// A YAML document that cannot be read, and where.
public struct YAMLError: Error, Equatable, Sendable, CustomStringConvertible {
  public var message: String
  public var location: SourceLocation
  public var note: String?
  public var noteLocation: SourceLocation?

  public init(_ message: String, at location: SourceLocation, note: String? = nil,
              noteLocation: SourceLocation? = nil) {
    self.message = message
    self.location = location
    self.note = note
    self.noteLocation = noteLocation
  }

  public var description: String { "\(location): error: \(message)" }
}
