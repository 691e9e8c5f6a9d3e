import ArtifactStore
import Foundation

/// `lineage.lock`: what each stage of the last runs was computed from and produced.
///
/// Committed beside the stage files, it lets a second user check a reproduction (same keys, same
/// output hashes) and lets `lineage status` explain a rerun ("params.train.lr 3e-3 → 1e-3") without
/// asking the store. YAML, keys sorted, one stage per block: the same state always writes the same bytes
/// (so timings live in the store's action records, not here).
public struct Lockfile: Sendable, Equatable {
  public static let fileName = "lineage.lock"
  public static let formatVersion = 1

  public struct Entry: Sendable, Equatable {
    public var op: String
    public var opVersion: Int
    public var key: ContentHash
    public var seed: UInt64
    public var parameters: ParamValue
    /// Slot → the artifacts that filled it (`v1.model` and its hash).
    public var inputs: [String: [LockedInput]]
    /// `path` parameter → content hash of the file or folder.
    public var files: [String: ContentHash]
    public var outputs: [String: ArtifactRef]
    public var metrics: [String: Double]

    public init(op: String, opVersion: Int, key: ContentHash, seed: UInt64, parameters: ParamValue,
                inputs: [String: [LockedInput]], files: [String: ContentHash], outputs: [String: ArtifactRef],
                metrics: [String: Double]) {
      self.op = op
      self.opVersion = opVersion
      self.key = key
      self.seed = seed
      self.parameters = parameters
      self.inputs = inputs
      self.files = files
      self.outputs = outputs
      self.metrics = metrics
    }
  }

  public struct LockedInput: Sendable, Equatable {
    public var reference: StageReference
    public var hash: ContentHash
    public init(reference: StageReference, hash: ContentHash) {
      self.reference = reference
      self.hash = hash
    }
  }

  public var stages: [String: Entry]

  public init(stages: [String: Entry] = [:]) { self.stages = stages }

  // MARK: - Reading and writing

  /// Reads the lockfile of a recipe folder; an absent file is an empty lockfile.
  ///
  /// - Throws: `RecipeError` locating what is malformed (a truncated or hand-edited file).
  public static func read(directory: String) throws(RecipeError) -> Lockfile {
    let path = directory + "/" + fileName
    guard FileManager.default.fileExists(atPath: path) else { return Lockfile() }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw RecipeError([Diagnostic("cannot read \(path)", at: nil)])
    }
    return try parse(Array(data), file: path)
  }

  /// Reads a lockfile's bytes; `file` names it in diagnostics. Empty text is an empty lockfile.
  ///
  /// - Throws: `RecipeError` locating what is malformed.
  public static func parse(_ bytes: [UInt8], file: String) throws(RecipeError) -> Lockfile {
    // The file as Lineage writes it, read fast; anything else (or anything wrong) through libyaml.
    if bytes.count <= YAMLLimits.lockfile.maxBytes, let lock = LockfileFastReader.lockfile(bytes) { return lock }
    return try parseGeneral(bytes, file: file)
  }

  /// `parse` through the general YAML parser (libyaml) alone: every file, with located diagnostics. The
  /// reference `parse`'s fast path is checked against (tests, the lockfile fuzzer).
  public static func parseGeneral(_ bytes: [UInt8], file: String) throws(RecipeError) -> Lockfile {
    let root: YAMLNode?
    do {
      root = try YAMLParser.parse(bytes, file: file, limits: .lockfile)
    } catch {
      throw RecipeError([Diagnostic("malformed lockfile: \(error.message)", at: error.location)])
    }
    guard let root else { return Lockfile() }
    var decoder = LockfileDecoder(file: file)
    let lock = decoder.decode(root)
    guard decoder.diagnostics.isEmpty else { throw RecipeError(decoder.diagnostics) }
    return lock
  }

  /// Writes the lockfile atomically (a temporary file renamed over the old one).
  public func write(directory: String) throws {
    let path = directory + "/" + Lockfile.fileName
    let temporary = path + ".tmp-\(getpid())"
    guard FileManager.default.createFile(atPath: temporary, contents: Data(rendered().utf8)) else {
      throw StageFailure("cannot write \(temporary)")
    }
    if rename(temporary, path) != 0 {
      unlink(temporary)
      throw StageFailure("cannot replace \(path): \(String(cString: strerror(errno)))")
    }
  }

  /// The file's text.
  public func rendered() -> String {
    var out = "# lineage.lock: written by `lineage run`. Commit it with the recipe; do not edit.\n"
    out += "version: \(Lockfile.formatVersion)\n"
    guard !stages.isEmpty else { return out + "stages: {}\n" }
    out += "stages:\n"
    for name in stages.keys.sorted() {
      let e = stages[name]!
      out += BlockYAML.head(name, indent: 2) + "\n"
      var fields: [(String, ParamValue)] = [
        ("op", .string(e.op)), ("op_version", .int(e.opVersion)), ("key", .string(e.key.hex)),
        ("seed", .string(String(e.seed))), ("params", e.parameters),
      ]
      if !e.inputs.isEmpty {
        fields.append(("inputs", .map(e.inputs.mapValues { list in
          .list(list.map { .map(["from": .string($0.reference.description), "hash": .string($0.hash.hex)]) })
        })))
      }
      if !e.files.isEmpty { fields.append(("files", .map(e.files.mapValues { .string($0.hex) }))) }
      fields.append(("outputs", .map(e.outputs.mapValues {
        .map(["hash": .string($0.hash.hex), "size": .int($0.size), "kind": .string($0.kind)])
      })))
      if !e.metrics.isEmpty { fields.append(("metrics", .map(e.metrics.mapValues { .float($0) }))) }
      for (key, value) in fields { out += BlockYAML.field(key, value, indent: 4) }
    }
    return out
  }
}

/// A small deterministic block-style YAML writer for the lockfile: keys sorted, strings always
/// double-quoted (so nothing reads back as another type), numbers in canonical form.
enum BlockYAML {
  static func field(_ key: String, _ value: ParamValue, indent: Int) -> String {
    let pad = String(repeating: " ", count: indent)
    let head = self.head(key, indent: indent)
    switch value {
    case .map(let m) where !m.isEmpty:
      return head + "\n" + m.keys.sorted().map { field($0, m[$0]!, indent: indent + 2) }.joined()
    case .list(let items) where items.contains(where: { $0.map != nil }):
      return head + "\n" + items.map { item in
        guard case .map(let m) = item, !m.isEmpty else { return "\(pad)  - \(flow(item))\n" }
        let inner = m.keys.sorted().map { field($0, m[$0]!, indent: indent + 4) }.joined()
        return "\(pad)  -" + inner.dropFirst(indent + 3)
      }.joined()
    default:
      return head + " \(flow(value))\n"
    }
  }

  /// `key:` indented, without the value. YAML reads a key written before `:` ("simple") only up to
  /// 1024 characters; a longer one (a matrix stage over long strings) is written as an explicit
  /// `? key` line with the `:` below it.
  static func head(_ key: String, indent: Int) -> String {
    let pad = String(repeating: " ", count: indent)
    let written = self.key(key)
    return written.utf8.count < simpleKeyLimit ? "\(pad)\(written):" : "\(pad)? \(written)\n\(pad):"
  }

  /// Keys this long or longer are written as explicit keys (`? key`), below YAML's 1024 characters.
  static let simpleKeyLimit = 1000

  /// A value on one line (flow style).
  static func flow(_ value: ParamValue) -> String {
    switch value {
    case .string(let s): return quoted(s)
    case .float(let v): return v.isFinite ? ParamValue.formatFloat(v, json: false) : (v.isNaN ? ".nan" : (v < 0 ? "-.inf" : ".inf"))
    case .list(let items): return "[" + items.map(flow).joined(separator: ", ") + "]"
    case .map(let m):
      return "{" + m.keys.sorted().map {
        let written = key($0)
        return (written.utf8.count < simpleKeyLimit ? written : "? " + written) + ": \(flow(m[$0]!))"
      }.joined(separator: ", ") + "}"
    default: return value.displayText
    }
  }

  /// A map key: plain when it is a word that YAML reads back as that same string (`v1`, `train_loss`,
  /// `arithmetic-heldout`), else quoted. Not plain: what YAML reads as null, a bool or a number
  /// (`null`, `on`, `12`, `1e5`, `0o17`, `.inf`), and anything starting with `.` or `-`.
  static func key(_ k: String) -> String {
    let isWordCharacter: (Unicode.Scalar) -> Bool = {
      ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_"
    }
    let plain = k.unicodeScalars.first.map(isWordCharacter) == true
      && k.unicodeScalars.allSatisfy { isWordCharacter($0) || $0 == "." || $0 == "-" }
      && !["true", "false", "null", "yes", "no", "on", "off"].contains(k.lowercased())
      && Double(k) == nil && Int(k) == nil && !k.hasPrefix("0o") && !k.hasPrefix("0x")
    return plain ? k : quoted(k)
  }

  /// `s` as a YAML double-quoted scalar: JSON's escapes, and `\u` escapes for what YAML would not
  /// read back as written: DEL, the C1 controls (U+0085 is a line break to YAML, folded into a
  /// space inside quotes), the line and paragraph separators, the byte-order mark and the
  /// non-characters U+FFFE and U+FFFF (refused raw).
  static func quoted(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
      switch scalar.value {
      case 0x22: out += "\\\""
      case 0x5C: out += "\\\\"
      case 0x0A: out += "\\n"
      case 0x0D: out += "\\r"
      case 0x09: out += "\\t"
      case 0..<0x20, 0x7F...0x9F, 0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF:
        let hex = String(scalar.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out + "\""
  }
}

/// Reads a lockfile's YAML tree, naming the place of anything malformed.
///
/// Values are read as written: the lockfile records parameters after interpolation, so a `${` in one
/// is literal text (a stage file's `$${`), never a variable. Names (stages, outputs, slots, files,
/// metrics, parameter keys) are read as the text written, even where YAML would see a number.
private struct LockfileDecoder {
  let file: String
  var diagnostics: [Diagnostic] = []

  init(file: String) { self.file = file }

  mutating func fail(_ message: String, _ node: YAMLNode) {
    diagnostics.append(Diagnostic("malformed lockfile: \(message)", at: node.location))
  }

  mutating func decode(_ root: YAMLNode) -> Lockfile {
    var lock = Lockfile()
    guard let version = root["version"] else {
      fail("no 'version:'", root)
      return lock
    }
    guard version.int == Lockfile.formatVersion else {
      fail("unsupported version \(version.description) (this lineage writes \(Lockfile.formatVersion))", version)
      return lock
    }
    guard let stages = root["stages"], case .mapping = stages.content else {
      fail("no 'stages:' map", root)
      return lock
    }
    for (name, value) in named(stages, "stage") {
      if let entry = entry(value) { lock.stages[name] = entry }
    }
    return lock
  }

  /// The pairs of a mapping by name; a key that is no name (null, a list) or a name given twice
  /// (`1:` and `"1":`) is reported, not dropped.
  mutating func named(_ node: YAMLNode, _ what: String) -> [(String, YAMLNode)] {
    guard case .mapping(let pairs) = node.content else {
      fail("expected a map of \(what) names", node)
      return []
    }
    var out: [(String, YAMLNode)] = []
    var seen = Set<String>()
    for pair in pairs {
      guard let name = Interpolator.keyText(pair.key) else {
        fail("a \(what) name must be text, not \(pair.key.description)", pair.key)
        continue
      }
      guard seen.insert(name).inserted else {
        fail("\(what) '\(name)' appears twice", pair.key)
        continue
      }
      out.append((name, pair.value))
    }
    return out
  }

  /// A parameter value exactly as written.
  mutating func value(_ node: YAMLNode) -> ParamValue {
    switch node.content {
    case .scalar(let scalar): return Interpolator.paramValue(scalar)
    case .sequence(let items): return .list(items.map { value($0) })
    case .mapping:
      var map: [String: ParamValue] = [:]
      for (key, item) in named(node, "parameter") { map[key] = value(item) }
      return .map(map)
    }
  }

  mutating func hash(_ node: YAMLNode?, _ what: String, in parent: YAMLNode) -> ContentHash? {
    guard let node else {
      fail("missing '\(what)'", parent)
      return nil
    }
    guard let text = node.string, let h = ContentHash(hex: text) else {
      fail("'\(what)' is not a SHA-256 hash", node)
      return nil
    }
    return h
  }

  mutating func entry(_ node: YAMLNode) -> Lockfile.Entry? {
    let before = diagnostics.count
    guard case .mapping = node.content else {
      fail("a stage entry must be a map", node)
      return nil
    }
    let op = node["op"]?.string
    let version = node["op_version"]?.int
    let seed = node["seed"]?.string.flatMap { UInt64($0) }
    if op == nil { fail("missing 'op'", node) }
    if version == nil { fail("missing 'op_version'", node) }
    if seed == nil { fail("missing or invalid 'seed'", node) }
    let key = hash(node["key"], "key", in: node)
    let parameters = node["params"].map { value($0) } ?? .map([:])
    var inputs: [String: [Lockfile.LockedInput]] = [:]
    if let inputNode = node["inputs"] {
      for (slotName, slot) in named(inputNode, "input slot") {
        guard case .sequence(let items) = slot.content else {
          fail("'inputs' must map slots to lists", slot)
          continue
        }
        for item in items {
          guard let from = item["from"]?.string, let dot = from.lastIndex(of: "."),
                let h = hash(item["hash"], "hash", in: item) else {
            fail("an input needs 'from: stage.output' and 'hash'", item)
            continue
          }
          inputs[slotName, default: []].append(.init(
            reference: StageReference(stage: String(from[..<dot]), output: String(from[from.index(after: dot)...])),
            hash: h))
        }
      }
    }
    var files: [String: ContentHash] = [:]
    if let filesNode = node["files"] {
      for (name, value) in named(filesNode, "file") {
        if let h = hash(value, name, in: filesNode) { files[name] = h }
      }
    }
    var outputs: [String: ArtifactRef] = [:]
    if let outputNode = node["outputs"] {
      for (name, value) in named(outputNode, "output") {
        guard let h = hash(value["hash"], "hash", in: value),
              let size = value["size"]?.int, let kind = value["kind"]?.string else {
          fail("an output needs 'hash', 'size' and 'kind'", value)
          continue
        }
        outputs[name] = ArtifactRef(hash: h, size: size, kind: kind)
      }
    } else {
      fail("missing 'outputs'", node)
    }
    var metrics: [String: Double] = [:]
    if let metricNode = node["metrics"] {
      for (name, value) in named(metricNode, "metric") {
        guard let v = value.double else {
          fail("metric '\(name)' is not a number", value)
          continue
        }
        metrics[name] = v
      }
    }
    guard diagnostics.count == before, let op, let version, let seed, let key else { return nil }
    return Lockfile.Entry(op: op, opVersion: version, key: key, seed: seed, parameters: parameters,
                          inputs: inputs, files: files, outputs: outputs, metrics: metrics)
  }
}
