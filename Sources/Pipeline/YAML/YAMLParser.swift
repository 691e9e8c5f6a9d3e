internal import CYAML

/// Our thin layer over libyaml's event parser: one document into a `YAMLNode` tree that keeps every
/// node's line and column.
///
/// On top of libyaml it expands aliases (refusing alias bombs and absurd nesting before they cost
/// anything), resolves `<<` merge keys, rejects duplicate keys (naming both places), resolves scalars
/// by YAML 1.2's core schema, and turns libyaml's errors into located messages.
public enum YAMLParser {
  /// Parses one YAML document; nil when the text holds no document (empty, or only comments).
  ///
  /// - Throws: `YAMLError` at the place of the first problem.
  public static func parse(_ bytes: [UInt8], file: String, limits: YAMLLimits = .default) throws(YAMLError) -> YAMLNode? {
    guard bytes.count <= limits.maxBytes else {
      throw YAMLError("file is larger than \(limits.maxBytes >> 20) MiB", at: SourceLocation(file: file, line: 1, column: 1))
    }
    var builder = TreeBuilder(file: file, bytes: bytes, limits: limits)
    let result: Result<YAMLNode?, YAMLError> = bytes.withUnsafeBufferPointer { buffer in
      var parser = yaml_parser_t()
      guard yaml_parser_initialize(&parser) == 1 else {
        return .failure(YAMLError("cannot start the YAML parser (out of memory)", at: builder.location(line: 0, column: 0)))
      }
      defer { yaml_parser_delete(&parser) }
      yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
      do {
        while true {
          var event = yaml_event_t()
          guard yaml_parser_parse(&parser, &event) == 1 else { throw builder.parserError(parser) }
          defer { yaml_event_delete(&event) }
          if try builder.handle(&event) { break }
        }
        return .success(builder.document)
      } catch let error as YAMLError {
        return .failure(error)
      } catch {
        return .failure(YAMLError("\(error)", at: builder.location(line: 0, column: 0)))
      }
    }
    return try result.get()
  }

  /// Parses UTF-8 text.
  public static func parse(_ text: String, file: String, limits: YAMLLimits = .default) throws(YAMLError) -> YAMLNode? {
    try parse(Array(text.utf8), file: file, limits: limits)
  }
}

/// YAML's resolution of plain scalars, for readers of a known subset (`LockfileFastReader`) that must
/// resolve them exactly as the parser does.
enum TreeBuilderScalars {
  static func plain(_ text: String, at location: SourceLocation) throws -> YAMLScalar {
    try TreeBuilder.plain(text, at: location)
  }
}

/// Builds the tree from libyaml's events.
private struct TreeBuilder {
  let file: String
  let bytes: [UInt8]
  let limits: YAMLLimits
  var document: YAMLNode?
  private var documents = 0
  private var stack: [Frame] = []
  private var anchors: [String: Anchored] = [:]
  private var nodeCount = 0

  init(file: String, bytes: [UInt8], limits: YAMLLimits) {
    self.file = file
    self.bytes = bytes
    self.limits = limits
  }

  struct Anchored {
    var node: YAMLNode
    var size: Int
    var height: Int
  }

  /// A collection being built.
  struct Frame {
    var isMapping: Bool
    var location: SourceLocation
    var anchor: String?
    var tag: String?
    /// A sequence's items.
    var items: [YAMLNode] = []
    /// A mapping's pairs, each made when its value arrives (moved in, not copied afterwards).
    var pairs: [YAMLPair] = []
    var pendingKey: YAMLNode?
    var size = 1
    var height = 1
  }

  func location(line: Int, column: Int) -> SourceLocation {
    SourceLocation(file: file, line: line + 1, column: column + 1)
  }

  func location(_ mark: yaml_mark_t) -> SourceLocation { location(line: Int(mark.line), column: Int(mark.column)) }

  // MARK: - Events

  /// Handles one event; true at the end of the stream.
  mutating func handle(_ event: inout yaml_event_t) throws -> Bool {
    let start = location(event.start_mark)
    switch event.type {
    case YAML_STREAM_START_EVENT, YAML_NO_EVENT:
      return false
    case YAML_STREAM_END_EVENT:
      return true
    case YAML_DOCUMENT_START_EVENT:
      documents += 1
      if documents > 1 {
        throw YAMLError("a file holds one YAML document; found a second one here", at: start)
      }
      return false
    case YAML_DOCUMENT_END_EVENT:
      return false
    case YAML_SCALAR_EVENT:
      let s = event.data.scalar
      let text = TreeBuilder.string(s.value, length: s.length)
      let style = TreeBuilder.style(s.style)
      let tag = s.tag.map { String(cString: $0) }
      let node = try tag.map { try TreeBuilder.resolve(text, style: style, tag: $0, at: start) }
        ?? TreeBuilder.resolveUntagged(text, style: style, at: start)
      try add(node, anchor: s.anchor.map { String(cString: $0) }, size: 1, height: 0)
    case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
      let isMapping = event.type == YAML_MAPPING_START_EVENT
      let anchor = isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor
      let tag = isMapping ? event.data.mapping_start.tag : event.data.sequence_start.tag
      guard stack.count < limits.maxDepth else {
        throw YAMLError("nesting deeper than \(limits.maxDepth) levels", at: start)
      }
      if let tag, let text = Optional(String(cString: tag)), !["tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"].contains(text) {
        throw YAMLError("unsupported tag '\(TreeBuilder.shortTag(text))'", at: start)
      }
      stack.append(Frame(isMapping: isMapping, location: start, anchor: anchor.map { String(cString: $0) }))
      try countNodes(1, at: start)
    case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
      let frame = stack.removeLast()
      let content: YAMLNode.Content
      if frame.isMapping {
        content = .mapping(try mapping(from: frame.pairs))
      } else {
        content = .sequence(frame.items)
      }
      let node = YAMLNode(content: content, location: frame.location, tag: frame.tag)
      try add(node, anchor: frame.anchor, size: frame.size, height: frame.height, counted: true)
    case YAML_ALIAS_EVENT:
      let name = String(cString: event.data.alias.anchor)
      guard let anchored = anchors[name] else {
        if let later = laterAnchor(name) {
          throw YAMLError("alias '*\(name)' is used before its anchor '&\(name)' (line \(later)); "
                            + "define the anchor first, e.g. under an 'x-' key at the top", at: start)
        }
        throw YAMLError("unknown alias '*\(name)'; define '&\(name)' before using it", at: start)
      }
      guard stack.count + anchored.height <= limits.maxDepth else {
        throw YAMLError("nesting deeper than \(limits.maxDepth) levels (after expanding '*\(name)')", at: start)
      }
      try countNodes(anchored.size, at: start)
      var node = anchored.node
      node.location = start  // point at the alias, where it is used
      try add(node, anchor: nil, size: anchored.size, height: anchored.height, counted: true)
    default:
      return false
    }
    return false
  }

  /// The line of an anchor `&name` that appears later in the text, if any.
  private func laterAnchor(_ name: String) -> Int? {
    let target = Array(("&" + name).utf8)
    var line = 1
    var i = 0
    while i + target.count <= bytes.count {
      if bytes[i] == 0x0A { line += 1 }
      if bytes[i] == target[0], Array(bytes[i..<i + target.count]) == target {
        let after = i + target.count < bytes.count ? bytes[i + target.count] : 0x20
        if [0x20, 0x0A, 0x0D, 0x09, 0x2C, 0x5D, 0x7D].contains(after) { return line }
      }
      i += 1
    }
    return nil
  }

  private mutating func countNodes(_ n: Int, at location: SourceLocation) throws {
    nodeCount += n
    guard nodeCount <= max(limits.maxNodes, bytes.count) else {
      throw YAMLError("document too large after expanding aliases (more than \(max(limits.maxNodes, bytes.count)) nodes)", at: location)
    }
  }

  /// Adds a finished node to the collection being built, or makes it the document.
  private mutating func add(_ node: consuming YAMLNode, anchor: String?, size: Int, height: Int, counted: Bool = false) throws {
    if !counted { try countNodes(size, at: node.location) }
    if let anchor { anchors[anchor] = Anchored(node: copy node, size: size, height: height) }
    guard !stack.isEmpty else {
      document = node
      return
    }
    let top = stack.count - 1
    if !stack[top].isMapping {
      stack[top].items.append(node)
    } else if let key = stack[top].pendingKey.take() {
      stack[top].pairs.append(YAMLPair(key: key, value: node))
    } else {
      stack[top].pendingKey = node
    }
    stack[stack.count - 1].size += size
    stack[stack.count - 1].height = max(stack[stack.count - 1].height, height + 1)
  }

  // MARK: - Mappings

  /// Resolves `<<` merge keys and rejects duplicates.
  ///
  /// Keys seen so far are found through a `KeyIndex` (hashed once the map is large), so a map of n
  /// keys costs O(n), not O(n²): `stages:` of a generated sweep holds every stage. A map without a
  /// merge key (nearly every one) is checked in place and kept as it is.
  private func mapping(from pairs: [YAMLPair]) throws -> [YAMLPair] {
    func isMerge(_ key: YAMLNode) -> Bool {
      if key.style == .plain, key.tag == nil, case .scalar(.string("<<")) = key.content { return true }
      return false
    }
    var seen = KeyIndex()
    guard pairs.contains(where: { isMerge($0.key) }) else {
      for i in pairs.indices {
        if let first = seen.find(pairs[i].key, in: pairs, before: i) {
          throw YAMLError("duplicate key '\(TreeBuilder.keyText(pairs[i].key))'", at: pairs[i].key.location,
                          note: "first defined here", noteLocation: pairs[first].key.location)
        }
        seen.added(pairs[i].key, at: i)
      }
      return pairs
    }
    var own: [YAMLPair] = []
    own.reserveCapacity(pairs.count)
    var merged: [YAMLPair] = []
    for pair in pairs {
      if isMerge(pair.key) {
        merged += try mergeSources(pair.value)
        continue
      }
      if let first = seen.find(pair.key, in: own, before: own.count) {
        throw YAMLError("duplicate key '\(TreeBuilder.keyText(pair.key))'", at: pair.key.location,
                        note: "first defined here", noteLocation: own[first].key.location)
      }
      own.append(pair)
      seen.added(pair.key, at: own.count - 1)
    }
    // Keys written in the mapping win over merged ones; earlier merged maps win over later ones.
    var result = own
    for pair in merged where seen.find(pair.key, in: result, before: result.count) == nil {
      result.append(pair)
      seen.added(pair.key, at: result.count - 1)
    }
    return result
  }

  /// Finds a mapping's keys equal to a new one (`sameKey`). While the map is small (most are: a
  /// stage's parameters) its pairs are looked through, with no allocation; once it has `smallLimit`
  /// pairs, scalar keys are hashed by their resolved value. Collection keys, which are rare, are
  /// always compared one by one.
  private struct KeyIndex {
    private static let smallLimit = 16
    private var hashed: [YAMLScalar: Int] = [:]
    private var isHashed = false

    /// The index among the first `count` of `pairs` of a key equal to `key`, or nil.
    mutating func find(_ key: YAMLNode, in pairs: [YAMLPair], before count: Int) -> Int? {
      guard case .scalar(let value) = key.content else {
        return pairs[..<count].firstIndex { TreeBuilder.sameKey($0.key, key) }
      }
      if !isHashed {
        if count < Self.smallLimit {
          return pairs[..<count].firstIndex { if case .scalar(let other) = $0.key.content { return other == value } else { return false } }
        }
        for i in 0..<count {
          if case .scalar(let other) = pairs[i].key.content, hashed[other] == nil { hashed[other] = i }
        }
        isHashed = true
      }
      return hashed[value]
    }

    /// Notes that `key` was appended to the pairs at `index`.
    mutating func added(_ key: YAMLNode, at index: Int) {
      if isHashed, case .scalar(let value) = key.content, hashed[value] == nil { hashed[value] = index }
    }
  }

  private func mergeSources(_ value: YAMLNode) throws -> [YAMLPair] {
    switch value.content {
    case .mapping(let pairs):
      return pairs
    case .sequence(let items):
      var out: [YAMLPair] = []
      for item in items {
        guard case .mapping(let pairs) = item.content else {
          throw YAMLError("'<<' merges maps, not \(item.description)", at: item.location)
        }
        out += pairs
      }
      return out
    default:
      throw YAMLError("'<<' merges maps, not \(value.description)", at: value.location)
    }
  }

  static func sameKey(_ a: YAMLNode, _ b: YAMLNode) -> Bool {
    if case .scalar(let x) = a.content, case .scalar(let y) = b.content { return x == y }
    return a.content == b.content
  }

  static func keyText(_ node: YAMLNode) -> String {
    if case .scalar(.string(let s)) = node.content { return s }
    return node.raw ?? node.description
  }

  // MARK: - Scalars

  static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?, length: Int) -> String {
    guard let pointer else { return "" }
    return String(decoding: UnsafeBufferPointer(start: pointer, count: length), as: UTF8.self)
  }

  static func style(_ style: yaml_scalar_style_t) -> ScalarStyle {
    switch style {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE: return .singleQuoted
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE: return .doubleQuoted
    case YAML_LITERAL_SCALAR_STYLE: return .literal
    case YAML_FOLDED_SCALAR_STYLE: return .folded
    default: return .plain
    }
  }

  static func shortTag(_ tag: String) -> String {
    tag.hasPrefix("tag:yaml.org,2002:") ? "!!" + tag.dropFirst("tag:yaml.org,2002:".count) : tag
  }

  /// Resolves a scalar: plain ones by the core schema, quoted and block ones as strings, explicit
  /// `!!str`, `!!int`, `!!float`, `!!bool`, `!!null` as asked.
  static func resolve(_ text: String, style: ScalarStyle, tag: String?, at location: SourceLocation) throws -> YAMLNode {
    var node = YAMLNode(content: .scalar(.string(text)), location: location, tag: tag, raw: text, style: style)
    if let tag {
      let short = shortTag(tag)
      switch short {
      case "!!str", "!": return node
      case "!!int", "!!float", "!!bool", "!!null":
        let resolved = try plain(text, at: location)
        let ok: Bool
        switch (short, resolved) {
        case ("!!int", .int), ("!!float", .float), ("!!bool", .bool), ("!!null", .null): ok = true
        case ("!!float", .int(let i)):
          node.content = .scalar(.float(Double(i)))
          return node
        default: ok = false
        }
        guard ok else { throw YAMLError("'\(text)' is not a valid \(short)", at: location) }
        node.content = .scalar(resolved)
        return node
      default:
        throw YAMLError("unsupported tag '\(short)'", at: location)
      }
    }
    guard style == .plain else { return node }
    node.content = .scalar(try plain(text, at: location))
    return node
  }

  /// `resolve` for the common scalar, untagged: its node made once, not made and then changed.
  static func resolveUntagged(_ text: String, style: ScalarStyle, at location: SourceLocation) throws -> YAMLNode {
    let scalar: YAMLScalar = style == .plain ? try plain(text, at: location) : .string(text)
    return YAMLNode(content: .scalar(scalar), location: location, tag: nil, raw: text, style: style)
  }

  /// YAML 1.2 core schema, plus floats written without a dot (`1e-3`); an integer too large for
  /// 64 bits is an error rather than a silent float.
  static func plain(_ text: String, at location: SourceLocation) throws -> YAMLScalar {
    // Most plain scalars are words or numbers. One starting with a letter other than n, t and f
    // (null, true, false) is a string, and one starting with a digit is none of the words below:
    // neither needs their comparisons.
    let first = text.utf8.first ?? 0
    let letter = first | 0x20
    if letter >= 97 && letter <= 122 && letter != 110 && letter != 116 && letter != 102 { return .string(text) }
    if !(first >= 48 && first <= 57) {
      if let word = keyword(text) { return word }
    }
    return try number(text, at: location)
  }

  /// The core schema's words: null, bools, infinities and NaN.
  private static func keyword(_ text: String) -> YAMLScalar? {
    // The longest is five characters: most words starting with n, t or f are not one of them.
    guard text.utf8.count <= 5 else { return nil }
    switch text {
    case "", "~", "null", "Null", "NULL": return .null
    case "true", "True", "TRUE": return .bool(true)
    case "false", "False", "FALSE": return .bool(false)
    case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .float(.infinity)
    case "-.inf", "-.Inf", "-.INF": return .float(-.infinity)
    case ".nan", ".NaN", ".NAN": return .float(.nan)
    default: return nil
    }
  }

  /// An int or a float, or else a string.
  private static func number(_ text: String, at location: SourceLocation) throws -> YAMLScalar {
    enum Form { case decimal, hexadecimal, octal, float, word }
    let isDecimal: (UInt8) -> Bool = { $0 >= 48 && $0 <= 57 }
    // Classified on the string's own bytes: no copy of them per scalar.
    var bytes = text
    let form: Form = bytes.withUTF8 { utf8 in
      var body = utf8[...]
      if let first = body.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") { body = body.dropFirst() }
      if !body.isEmpty && body.allSatisfy(isDecimal) { return .decimal }
      if utf8.count > 2, utf8[0] == UInt8(ascii: "0") {
        let digits = utf8.dropFirst(2)
        if utf8[1] == UInt8(ascii: "x"), digits.allSatisfy({ isDecimal($0) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 102) }) {
          return .hexadecimal
        }
        if utf8[1] == UInt8(ascii: "o"), digits.allSatisfy({ $0 >= 48 && $0 <= 55 }) { return .octal }
      }
      return isFloat(body) ? .float : .word
    }
    let value: Int?
    switch form {
    case .decimal: value = Int(text.hasPrefix("+") ? String(text.dropFirst()) : text)
    case .hexadecimal: value = Int(text.dropFirst(2), radix: 16)
    case .octal: value = Int(text.dropFirst(2), radix: 8)
    case .float: return Double(text).map { .float($0) } ?? .string(text)
    case .word: return .string(text)
    }
    guard let value else { throw YAMLError("integer \(text) does not fit in 64 bits", at: location) }
    return .int(value)
  }

  /// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, sign already removed.
  static func isFloat<Bytes: Collection<UInt8>>(_ s: Bytes) -> Bool where Bytes.Index == Int {
    var i = s.startIndex
    let isDigit: (UInt8) -> Bool = { $0 >= 48 && $0 <= 57 }
    var mantissaDigits = 0
    while i < s.endIndex, isDigit(s[i]) { i += 1; mantissaDigits += 1 }
    if i < s.endIndex, s[i] == UInt8(ascii: ".") {
      i += 1
      while i < s.endIndex, isDigit(s[i]) { i += 1; mantissaDigits += 1 }
    }
    guard mantissaDigits > 0 else { return false }
    if i < s.endIndex, s[i] == UInt8(ascii: "e") || s[i] == UInt8(ascii: "E") {
      i += 1
      if i < s.endIndex, s[i] == UInt8(ascii: "-") || s[i] == UInt8(ascii: "+") { i += 1 }
      var exponentDigits = 0
      while i < s.endIndex, isDigit(s[i]) { i += 1; exponentDigits += 1 }
      guard exponentDigits > 0 else { return false }
    }
    return i == s.endIndex
  }

  // MARK: - libyaml's errors

  /// A located message for libyaml's error, in a recipe author's terms (see `SyntaxError`).
  func parserError(_ parser: yaml_parser_t) -> YAMLError {
    let problem = parser.problem.map { String(cString: $0) } ?? "malformed YAML"
    let explainer = SyntaxError(file: file, bytes: bytes)
    if parser.error == YAML_READER_ERROR {
      return explainer.readerError(problem: problem, offset: Int(parser.problem_offset))
    }
    return explainer.syntaxError(
      problem: problem, at: SyntaxError.Mark(line: Int(parser.problem_mark.line), column: Int(parser.problem_mark.column)),
      context: parser.context.map { String(cString: $0) },
      contextMark: SyntaxError.Mark(line: Int(parser.context_mark.line), column: Int(parser.context_mark.column)))
  }
}
