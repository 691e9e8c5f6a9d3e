import ArtifactStore

/// Reads the block YAML that `Lockfile.rendered()` writes straight into a `Lockfile`, without a YAML
/// tree: at 10,000 stages the lockfile is 5 MB, every `run` and `status` reads it, and building,
/// decoding and freeing a located node per scalar was most of a no-op run.
///
/// It knows only that subset: `key: value` lines indented by two, `- ` items of maps, keys that are
/// words or double-quoted strings, and flow values (double-quoted strings with the writer's escapes,
/// plain numbers, bools and nulls, `[…]`, `{…}`). At anything else (a comment inside, an explicit `?`
/// key, a tab, a duplicate key, an anchor, a tag, another escape), or at a value the lockfile's
/// decoder would refuse, it returns nil, and `Lockfile.parse` reads the file with the general parser
/// instead, which also gives the located diagnostics. So a file it accepts reads as the general path
/// reads it, and every other file is read exactly as before.
struct LockfileFastReader {
  private let bytes: [UInt8]
  private var position = 0

  /// The lockfile, or nil when the text is not in the writer's subset or not a valid lockfile.
  static func lockfile(_ bytes: [UInt8]) -> Lockfile? {
    // Invalid UTF-8 is for the general parser to report.
    guard String(validating: bytes, as: UTF8.self) != nil else { return nil }
    var reader = LockfileFastReader(bytes: bytes)
    return reader.document()
  }

  private init(bytes: [UInt8]) { self.bytes = bytes }

  private static let space = UInt8(ascii: " "), newline = UInt8(ascii: "\n"), quote = UInt8(ascii: "\"")
  private static let colon = UInt8(ascii: ":"), dash = UInt8(ascii: "-"), hash = UInt8(ascii: "#")

  // MARK: - The document

  /// The root map: `version:` and `stages:`, each stage decoded as soon as it is read (other root keys
  /// are ignored, as the general decoder ignores them).
  private mutating func document() -> Lockfile? {
    // Leading comment lines only (the writer's header), in printable ASCII: libyaml refuses control
    // characters even in a comment (the lockfile fuzzer found a NUL there read as fine), and anything
    // else is for the general parser to judge.
    while position < bytes.count && bytes[position] == Self.hash {
      while position < bytes.count && bytes[position] != Self.newline {
        guard bytes[position] >= 0x20 && bytes[position] < 0x7F else { return nil }
        position += 1
      }
      guard skipToNextLine() else { return nil }
    }
    guard position < bytes.count, indent(at: position) == 0 else { return nil }
    var seen = Set<String>()
    var version: ParamValue?
    var lock: Lockfile?
    while position < bytes.count {
      guard indent(at: position) == 0, let key = key(), seen.insert(key).inserted,
            position < bytes.count, bytes[position] == Self.colon else { return nil }
      position += 1
      if key == "stages" {
        guard let stages = stages() else { return nil }
        lock = stages
      } else {
        guard let value = value(indent: 0) else { return nil }
        if key == "version" { version = value }
      }
    }
    guard version == .int(Lockfile.formatVersion), let lock else { return nil }
    return lock
  }

  /// `stages:`'s value, after the colon: `{}`, or one block map per stage at indent 2.
  private mutating func stages() -> Lockfile? {
    var lock = Lockfile()
    if position < bytes.count, bytes[position] == Self.space {
      // Only the empty lockfile writes its stages on the line.
      position += 1
      guard let value = flowValue(inFlow: false), value == .map([:]), atLineEnd(), skipToNextLine() else { return nil }
      return lock
    }
    // `stages:` with nothing under it is null, which the general decoder refuses.
    guard atLineEnd(), skipToNextLine(), indent(at: position) == 2 else { return nil }
    lock.stages.reserveCapacity(bytes.count / 512)
    while position < bytes.count, indent(at: position) == 2 {
      position += 2
      guard let name = key(), position < bytes.count, bytes[position] == Self.colon else { return nil }
      position += 1
      guard atLineEnd(), skipToNextLine(), indent(at: position) == 4, let entry = entry(),
            lock.stages.updateValue(entry, forKey: name) == nil else { return nil }
    }
    return lock
  }

  /// A stage's entry: its fields at indent 4, each at most once. The scalars, the key and the outputs
  /// are read as the writer writes them, straight into their types; `params`, `inputs`, `files` and
  /// `metrics` as values, then checked. Nil at an unknown field or anything `LockfileDecoder` would
  /// report.
  private mutating func entry() -> Lockfile.Entry? {
    var op: String?, opVersion: Int?, key: ContentHash?, seed: UInt64?, parameters: ParamValue?
    var inputs: [String: [Lockfile.LockedInput]]?, files: [String: ContentHash]?
    var outputs: [String: ArtifactRef]?, metrics: [String: Double]?
    while position < bytes.count, indent(at: position) == 4 {
      position += 4
      guard let field = self.key(), position < bytes.count, bytes[position] == Self.colon else { return nil }
      position += 1
      switch field {
      case "op":
        guard op == nil, case .string(let text)? = value(indent: 4) else { return nil }
        op = text
      case "op_version":
        guard opVersion == nil, case .int(let number)? = value(indent: 4) else { return nil }
        opVersion = number
      case "key":
        guard key == nil, let hash = hashLine() else { return nil }
        key = hash
      case "seed":
        guard seed == nil, case .string(let text)? = value(indent: 4), let number = UInt64(text) else { return nil }
        seed = number
      case "params":
        guard parameters == nil, let value = value(indent: 4) else { return nil }
        parameters = value
      case "inputs":
        guard inputs == nil, let value = value(indent: 4), let locked = Self.inputs(value) else { return nil }
        inputs = locked
      case "files":
        guard files == nil, case .map(let named)? = value(indent: 4) else { return nil }
        var hashes: [String: ContentHash] = [:]
        for (name, text) in named {
          guard let h = Self.hash(text) else { return nil }
          hashes[name] = h
        }
        files = hashes
      case "outputs":
        guard outputs == nil, let refs = self.outputs() else { return nil }
        outputs = refs
      case "metrics":
        guard metrics == nil, case .map(let named)? = value(indent: 4) else { return nil }
        var numbers: [String: Double] = [:]
        for (name, number) in named {
          switch number {
          case .int(let v): numbers[name] = Double(v)
          case .float(let v): numbers[name] = v
          default: return nil
          }
        }
        metrics = numbers
      default:
        return nil
      }
    }
    guard let op, let opVersion, let key, let seed, let outputs else { return nil }
    return Lockfile.Entry(op: op, opVersion: opVersion, key: key, seed: seed, parameters: parameters ?? .map([:]),
                          inputs: inputs ?? [:], files: files ?? [:], outputs: outputs, metrics: metrics ?? [:])
  }

  /// ` "64 hex digits"` and the line's end, read without making a string.
  private mutating func hashLine() -> ContentHash? {
    guard position + 67 < bytes.count, bytes[position] == Self.space, bytes[position + 1] == Self.quote,
          bytes[position + 66] == Self.quote, bytes[position + 67] == Self.newline else { return nil }
    let hash = bytes.withUnsafeBytes { ContentHash(hexDigits: UnsafeRawBufferPointer(rebasing: $0[(position + 2)..<(position + 66)])) }
    position += 68
    return hash
  }

  /// `outputs:`'s value: `{}`, or per output a name at indent 6 with `hash`, `kind` and `size` at 8.
  private mutating func outputs() -> [String: ArtifactRef]? {
    var refs: [String: ArtifactRef] = [:]
    if position < bytes.count, bytes[position] == Self.space {
      guard value(indent: 4) == .map([:]) else { return nil }
      return refs
    }
    guard atLineEnd(), skipToNextLine(), indent(at: position) == 6 else { return nil }
    while position < bytes.count, indent(at: position) == 6 {
      position += 6
      guard let name = key(), position < bytes.count, bytes[position] == Self.colon else { return nil }
      position += 1
      guard atLineEnd(), skipToNextLine() else { return nil }
      var hash: ContentHash?, kind: String?, size: Int?
      while position < bytes.count, indent(at: position) == 8 {
        position += 8
        guard let field = key(), position < bytes.count, bytes[position] == Self.colon else { return nil }
        position += 1
        switch field {
        case "hash":
          guard hash == nil, let h = hashLine() else { return nil }
          hash = h
        case "kind":
          guard kind == nil, case .string(let text)? = value(indent: 8) else { return nil }
          kind = text
        case "size":
          guard size == nil, case .int(let number)? = value(indent: 8) else { return nil }
          size = number
        default:
          return nil
        }
      }
      guard let hash, let kind, let size, refs.updateValue(ArtifactRef(hash: hash, size: size, kind: kind), forKey: name) == nil
      else { return nil }
    }
    return refs
  }

  /// `inputs:`'s value checked: slot → list of `{from: stage.output, hash}`.
  private static func inputs(_ value: ParamValue) -> [String: [Lockfile.LockedInput]]? {
    guard case .map(let slots) = value else { return nil }
    var inputs: [String: [Lockfile.LockedInput]] = [:]
    for (slot, list) in slots {
      guard case .list(let items) = list else { return nil }
      var locked: [Lockfile.LockedInput] = []
      locked.reserveCapacity(items.count)
      for item in items {
        guard case .string(let from) = item["from"], let dot = from.lastIndex(of: "."),
              let h = hash(item["hash"]) else { return nil }
        locked.append(.init(reference: StageReference(stage: String(from[..<dot]),
                                                      output: String(from[from.index(after: dot)...])), hash: h))
      }
      // An empty list is an empty slot to the general decoder: no entry at all.
      if !locked.isEmpty { inputs[slot] = locked }
    }
    return inputs
  }

  private static func hash(_ value: ParamValue?) -> ContentHash? {
    guard case .string(let text)? = value else { return nil }
    return ContentHash(hex: text)
  }

  // MARK: - Block YAML

  /// Moves past the end of the current line; false at a line without a newline.
  private mutating func skipToNextLine() -> Bool {
    while position < bytes.count && bytes[position] != Self.newline { position += 1 }
    guard position < bytes.count else { return false }
    position += 1
    return true
  }

  private func atLineEnd() -> Bool { position < bytes.count && bytes[position] == Self.newline }

  /// Spaces at the start of the line at `start`, or nil when only spaces (or nothing) follow.
  private func indent(at start: Int) -> Int? {
    var i = start
    while i < bytes.count && bytes[i] == Self.space { i += 1 }
    return i < bytes.count ? i - start : nil
  }

  /// A key's value, just after its colon: on the line (` value`), or below it, deeper than `indent`
  /// (a block map or list), or nothing at all (`key:` alone, null). Ends at the next line's start.
  private mutating func value(indent: Int) -> ParamValue? {
    if position < bytes.count && bytes[position] == Self.newline {
      guard skipToNextLine() else { return nil }
      guard let deeper = self.indent(at: position), deeper > indent else { return .null }
      return bytes[position + deeper] == Self.dash ? blockList(indent: deeper) : blockMap(indent: deeper)
    }
    guard position < bytes.count, bytes[position] == Self.space else { return nil }
    position += 1
    guard let flow = flowValue(inFlow: false), atLineEnd(), skipToNextLine() else { return nil }
    return flow
  }

  /// `key: value` lines at exactly `indent` spaces, the first at `position` (which is at the line's
  /// start, or, for the first key of a list item, just after `- `).
  private mutating func blockMap(indent: Int, firstInline: Bool = false) -> ParamValue? {
    // Most maps here are small: room for a few pairs at once rather than growing from one.
    var map = [String: ParamValue](minimumCapacity: 4)
    var first = firstInline
    while position < bytes.count {
      if !first {
        guard self.indent(at: position) == indent else { break }
        position += indent
      }
      first = false
      guard let key = key(), position < bytes.count, bytes[position] == Self.colon else { return nil }
      position += 1
      guard let value = value(indent: indent), map.updateValue(value, forKey: key) == nil else { return nil }
    }
    return .map(map)
  }

  /// `- ` items at `indent` spaces: a map (`- key: value`, its further keys at `indent + 2`) or a value
  /// on the line (`- 1`, `- [a, b]`).
  private mutating func blockList(indent: Int) -> ParamValue? {
    var items: [ParamValue] = []
    while position < bytes.count, self.indent(at: position) == indent, bytes[position + indent] == Self.dash {
      position += indent + 1
      guard position < bytes.count, bytes[position] == Self.space else { return nil }
      position += 1
      let itemStart = position
      // `- ` may end the text (the lockfile fuzzer found this index past the end).
      guard position < bytes.count else { return nil }
      if bytes[position] != UInt8(ascii: "["), bytes[position] != UInt8(ascii: "{"), key() != nil,
         position < bytes.count, bytes[position] == Self.colon {
        position = itemStart
        guard let map = blockMap(indent: indent + 2, firstInline: true) else { return nil }
        items.append(map)
        continue
      }
      position = itemStart
      guard let value = flowValue(inFlow: false), atLineEnd(), skipToNextLine() else { return nil }
      items.append(value)
    }
    return .list(items)
  }

  // MARK: - Scalars and flow values

  /// A key as the general decoder names it: a double-quoted string as written, or a word (letters,
  /// digits, `_`, `.`, `-`, `+`) by its text, even where YAML would read a number or bool (`1:`). A
  /// null key (`null:`, `~:`) is no name.
  private mutating func key() -> String? {
    guard position < bytes.count else { return nil }
    if bytes[position] == Self.quote { return quoted() }
    let begin = position
    while position < bytes.count, Self.isWord(bytes[position]) { position += 1 }
    guard position > begin else { return nil }
    let text = String(decoding: bytes[begin..<position], as: UTF8.self)
    // A key is its text; only a null (`null:`; `~` is not a word character) is no name. A key that
    // looks like a number is resolved as the general parser would, which refuses an int beyond 64 bits.
    switch text {
    case "null", "Null", "NULL": return nil
    default:
      let first = bytes[begin]
      if (first >= 48 && first <= 57) || first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
        guard Self.resolve(text) != nil else { return nil }
      }
      return text
    }
  }

  private static func isWord(_ b: UInt8) -> Bool {
    (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || b == 95 || b == 46 || b == 45 || b == 43
  }

  /// A plain word resolved as YAML's core schema resolves it (`TreeBuilderScalars`); nil for what the
  /// parser refuses (an integer beyond 64 bits).
  private static func resolve(_ text: String) -> ParamValue? {
    guard let scalar = try? TreeBuilderScalars.plain(text, at: unplaced) else { return nil }
    return Interpolator.paramValue(scalar)
  }

  private static let unplaced = SourceLocation(file: "", line: 0, column: 0)

  /// A value on one line: a quoted string, a plain scalar, `[…]` or `{…}`.
  private mutating func flowValue(inFlow: Bool) -> ParamValue? {
    guard position < bytes.count else { return nil }
    switch bytes[position] {
    case Self.quote:
      return quoted().map { .string($0) }
    case UInt8(ascii: "["):
      position += 1
      var items: [ParamValue] = []
      if position < bytes.count && bytes[position] == UInt8(ascii: "]") {
        position += 1
        return .list(items)
      }
      while true {
        guard let item = flowValue(inFlow: true) else { return nil }
        items.append(item)
        guard position < bytes.count else { return nil }
        if bytes[position] == UInt8(ascii: "]") { position += 1; break }
        guard bytes[position] == UInt8(ascii: ","), position + 1 < bytes.count, bytes[position + 1] == Self.space else { return nil }
        position += 2
      }
      return .list(items)
    case UInt8(ascii: "{"):
      position += 1
      var map: [String: ParamValue] = [:]
      if position < bytes.count && bytes[position] == UInt8(ascii: "}") {
        position += 1
        return .map(map)
      }
      while true {
        guard let key = key(), position + 1 < bytes.count, bytes[position] == Self.colon, bytes[position + 1] == Self.space
        else { return nil }
        position += 2
        guard let value = flowValue(inFlow: true), map.updateValue(value, forKey: key) == nil else { return nil }
        guard position < bytes.count else { return nil }
        if bytes[position] == UInt8(ascii: "}") { position += 1; break }
        guard bytes[position] == UInt8(ascii: ","), position + 1 < bytes.count, bytes[position + 1] == Self.space else { return nil }
        position += 2
      }
      return .map(map)
    default:
      let begin = position
      while position < bytes.count, Self.isWord(bytes[position]) { position += 1 }
      guard position > begin else { return nil }
      if !inFlow, position < bytes.count, bytes[position] != Self.newline { return nil }
      return Self.resolve(String(decoding: bytes[begin..<position], as: UTF8.self))
    }
  }

  /// A double-quoted string with the writer's escapes (`\"`, `\\`, `\n`, `\r`, `\t`, `\uXXXX`).
  private mutating func quoted() -> String? {
    position += 1
    let begin = position
    // Most strings (hashes, names) have no escape: taken in one piece.
    while position < bytes.count, bytes[position] != Self.quote, bytes[position] != UInt8(ascii: "\\"),
          bytes[position] >= 0x20, bytes[position] < 0x7F {
      position += 1
    }
    if position < bytes.count, bytes[position] == Self.quote {
      position += 1
      return String(decoding: bytes[begin..<(position - 1)], as: UTF8.self)
    }
    var out = Array(bytes[begin..<position])
    while position < bytes.count {
      let b = bytes[position]
      if b == Self.quote {
        position += 1
        return String(decoding: out, as: UTF8.self)
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
