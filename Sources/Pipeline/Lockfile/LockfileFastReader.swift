/// Reads the block YAML that `Lockfile.rendered()` writes into the tree libyaml and `TreeBuilder` would
/// build from it, several times faster: at 10,000 stages the lockfile is 5 MB, and every `run` and
/// `status` reads it.
///
/// It knows only that subset: `key: value` lines indented by two, `- ` items of maps, keys that are
/// words or double-quoted strings, and flow values (double-quoted strings with the writer's escapes,
/// plain numbers, bools and nulls, `[…]`, `{…}`). At anything else (a comment inside, an explicit `?`
/// key, a tab, a duplicate key, an anchor, a tag, another escape) it returns nil, and `Lockfile.parse`
/// reads the file with the general parser instead, which also gives the diagnostics. So a file it
/// accepts gives the same tree, and every other file is read exactly as before.
struct LockfileFastReader {
  private let bytes: [UInt8]
  private var position = 0
  /// 1-based line of `position`, and where that line starts.
  private var line = 1
  private var lineStart = 0

  /// The document's tree, or nil when the text is not in the writer's subset.
  static func tree(_ bytes: [UInt8]) -> YAMLNode? {
    // Invalid UTF-8 is for the general parser to report.
    guard String(validating: bytes, as: UTF8.self) != nil else { return nil }
    var reader = LockfileFastReader(bytes: bytes)
    return reader.document()
  }

  private init(bytes: [UInt8]) { self.bytes = bytes }

  private static let space = UInt8(ascii: " "), newline = UInt8(ascii: "\n"), quote = UInt8(ascii: "\"")
  private static let colon = UInt8(ascii: ":"), dash = UInt8(ascii: "-"), hash = UInt8(ascii: "#")

  /// A node's place, without the file name: a file's name is a heap string, and retaining it for
  /// each of a large lockfile's 300,000 nodes cost a tenth of the read. Places are never shown from
  /// this tree: a file the decoder finds fault with is read again by the general parser, whose
  /// diagnostics name the file.
  private var location: SourceLocation { SourceLocation(file: "", line: line, column: position - lineStart + 1) }

  private mutating func document() -> YAMLNode? {
    // Leading comment lines only (the writer's header).
    while position < bytes.count && bytes[position] == Self.hash {
      guard skipToNextLine() else { return nil }
    }
    guard position < bytes.count else { return nil }
    guard indent(at: position) == 0, let root = blockMap(indent: 0) else { return nil }
    return position == bytes.count ? root : nil
  }

  /// Moves past the end of the current line; false at a line without a newline.
  private mutating func skipToNextLine() -> Bool {
    while position < bytes.count && bytes[position] != Self.newline { position += 1 }
    guard position < bytes.count else { return false }
    position += 1
    line += 1
    lineStart = position
    return true
  }

  /// Spaces at the start of the line at `start`, or nil at the end of the text.
  private func indent(at start: Int) -> Int? {
    guard start < bytes.count else { return nil }
    var i = start
    while i < bytes.count && bytes[i] == Self.space { i += 1 }
    return i - start
  }

  /// `key: value` lines at exactly `indent` spaces, the first at `position` (which is at the line's
  /// start, or, for the first key of a list item, just after `- `).
  private mutating func blockMap(indent: Int, firstInline: Bool = false) -> YAMLNode? {
    var pairs: [YAMLPair] = []
    var seen = Set<String>()
    let start = location
    var first = firstInline
    while position < bytes.count {
      if !first {
        guard self.indent(at: position) == indent else { break }
        position += indent
      }
      first = false
      guard let key = key(), seen.insert(key.raw ?? "").inserted else { return nil }
      guard position < bytes.count, bytes[position] == Self.colon else { return nil }
      position += 1
      let value: YAMLNode
      if position < bytes.count && bytes[position] == Self.newline {
        let at = location
        guard skipToNextLine() else { return nil }
        guard let deeper = self.indent(at: position), deeper > indent else {
          value = YAMLNode(content: .scalar(.null), location: at, raw: "", style: .plain)  // `key:` alone
          pairs.append(YAMLPair(key: key, value: value))
          continue
        }
        if bytes[position + deeper] == Self.dash {
          guard let list = blockList(indent: deeper) else { return nil }
          value = list
        } else {
          guard let map = blockMap(indent: deeper) else { return nil }
          value = map
        }
      } else {
        guard position < bytes.count, bytes[position] == Self.space else { return nil }
        position += 1
        guard let flow = flowValue(inFlow: false), position < bytes.count, bytes[position] == Self.newline,
              skipToNextLine() else { return nil }
        value = flow
      }
      pairs.append(YAMLPair(key: key, value: value))
    }
    return YAMLNode(content: .mapping(pairs), location: start)
  }

  /// `- ` items at `indent` spaces: a map (`- key: value`, its further keys at `indent + 2`) or a value
  /// on the line (`- 1`, `- [a, b]`).
  private mutating func blockList(indent: Int) -> YAMLNode? {
    var items: [YAMLNode] = []
    let start = SourceLocation(file: "", line: line, column: indent + 1)
    while position < bytes.count, self.indent(at: position) == indent, bytes[position + indent] == Self.dash {
      position += indent + 1
      guard position < bytes.count, bytes[position] == Self.space else { return nil }
      position += 1
      let itemStart = position
      if bytes[position] != UInt8(ascii: "["), bytes[position] != UInt8(ascii: "{"), key() != nil,
         position < bytes.count, bytes[position] == Self.colon {
        position = itemStart
        guard let map = blockMap(indent: indent + 2, firstInline: true) else { return nil }
        items.append(map)
        continue
      }
      position = itemStart
      guard let value = flowValue(inFlow: false), position < bytes.count, bytes[position] == Self.newline,
            skipToNextLine() else { return nil }
      items.append(value)
    }
    return YAMLNode(content: .sequence(items), location: start)
  }

  /// A key: a double-quoted string, or a word (letters, digits, `_`, `.`, `-`) resolved as YAML would.
  private mutating func key() -> YAMLNode? {
    guard position < bytes.count else { return nil }
    if bytes[position] == Self.quote { return quoted() }
    let at = location
    let begin = position
    while position < bytes.count, Self.isWord(bytes[position]) { position += 1 }
    guard position > begin else { return nil }
    return plain(begin, at: at)
  }

  private static func isWord(_ b: UInt8) -> Bool {
    (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || b == 95 || b == 46 || b == 45 || b == 43
  }

  private mutating func plain(_ begin: Int, at: SourceLocation) -> YAMLNode? {
    let text = String(decoding: bytes[begin..<position], as: UTF8.self)
    guard let scalar = try? TreeBuilderScalars.plain(text, at: at) else { return nil }
    return YAMLNode(content: .scalar(scalar), location: at, raw: text, style: .plain)
  }

  /// A value on one line: a quoted string, a plain scalar, `[…]` or `{…}`.
  private mutating func flowValue(inFlow: Bool) -> YAMLNode? {
    guard position < bytes.count else { return nil }
    let at = location
    switch bytes[position] {
    case Self.quote:
      return quoted()
    case UInt8(ascii: "["):
      position += 1
      var items: [YAMLNode] = []
      if position < bytes.count && bytes[position] == UInt8(ascii: "]") {
        position += 1
        return YAMLNode(content: .sequence(items), location: at)
      }
      while true {
        guard let item = flowValue(inFlow: true) else { return nil }
        items.append(item)
        guard position < bytes.count else { return nil }
        if bytes[position] == UInt8(ascii: "]") { position += 1; break }
        guard bytes[position] == UInt8(ascii: ","), position + 1 < bytes.count, bytes[position + 1] == Self.space else { return nil }
        position += 2
      }
      return YAMLNode(content: .sequence(items), location: at)
    case UInt8(ascii: "{"):
      position += 1
      var pairs: [YAMLPair] = []
      var seen = Set<String>()
      if position < bytes.count && bytes[position] == UInt8(ascii: "}") {
        position += 1
        return YAMLNode(content: .mapping(pairs), location: at)
      }
      while true {
        guard let key = key(), seen.insert(key.raw ?? "").inserted,
              position + 1 < bytes.count, bytes[position] == Self.colon, bytes[position + 1] == Self.space else { return nil }
        position += 2
        guard let value = flowValue(inFlow: true) else { return nil }
        pairs.append(YAMLPair(key: key, value: value))
        guard position < bytes.count else { return nil }
        if bytes[position] == UInt8(ascii: "}") { position += 1; break }
        guard bytes[position] == UInt8(ascii: ","), position + 1 < bytes.count, bytes[position + 1] == Self.space else { return nil }
        position += 2
      }
      return YAMLNode(content: .mapping(pairs), location: at)
    default:
      let begin = position
      while position < bytes.count, Self.isWord(bytes[position]) { position += 1 }
      guard position > begin else { return nil }
      if !inFlow, position < bytes.count, bytes[position] != Self.newline { return nil }
      return plain(begin, at: at)
    }
  }

  /// A double-quoted string with the writer's escapes (`\"`, `\\`, `\n`, `\r`, `\t`, `\uXXXX`).
  private mutating func quoted() -> YAMLNode? {
    let at = location
    position += 1
    var out: [UInt8] = []
    while position < bytes.count {
      let b = bytes[position]
      if b == Self.quote {
        position += 1
        let text = String(decoding: out, as: UTF8.self)
        return YAMLNode(content: .scalar(.string(text)), location: at, raw: text, style: .doubleQuoted)
      }
      if b == Self.newline { return nil }
      if b == UInt8(ascii: "\\") {
        guard position + 1 < bytes.count else { return nil }
        position += 2
        switch bytes[position - 1] {
        case Self.quote: out.append(Self.quote)
        case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "n"): out.append(Self.newline)
        case UInt8(ascii: "r"): out.append(13)
        case UInt8(ascii: "t"): out.append(9)
        case UInt8(ascii: "u"):
          guard position + 4 <= bytes.count,
                let value = UInt32(String(decoding: bytes[position..<(position + 4)], as: UTF8.self), radix: 16),
                let scalar = Unicode.Scalar(value) else { return nil }
          position += 4
          out += Array(String(Character(scalar)).utf8)
        default:
          return nil
        }
        continue
      }
      // The writer escapes controls, DEL, C1 controls, U+2028/9, the BOM and U+FFFE/F; written raw they
      // come from another writer, and YAML reads some of them otherwise (U+0085 is a line break).
      if b < 0x20 || b == 0x7F { return nil }
      if b == 0xC2, position + 1 < bytes.count, (0x80...0x9F).contains(bytes[position + 1]) { return nil }
      if b == 0xE2, position + 2 < bytes.count, bytes[position + 1] == 0x80, bytes[position + 2] == 0xA8 || bytes[position + 2] == 0xA9 { return nil }
      if b == 0xEF, position + 2 < bytes.count,
         (bytes[position + 1] == 0xBB && bytes[position + 2] == 0xBF) || (bytes[position + 1] == 0xBF && bytes[position + 2] >= 0xBE) { return nil }
      out.append(b)
      position += 1
    }
    return nil
  }
}
