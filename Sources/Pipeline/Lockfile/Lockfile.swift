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
    let root: YAMLNode?
    do {
      root = try YAMLParser.parse(bytes, file: file)
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
      out += "  \(BlockYAML.key(name)):\n"
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
    switch value {
    case .map(let m) where !m.isEmpty:
      return "\(pad)\(self.key(key)):\n" + m.keys.sorted().map { field($0, m[$0]!, indent: indent + 2) }.joined()
    case .list(let items) where items.contains(where: { $0.map != nil }):
      return "\(pad)\(self.key(key)):\n" + items.map { item in
        guard case .map(let m) = item, !m.isEmpty else { return "\(pad)  - \(flow(item))\n" }
        let inner = m.keys.sorted().map { field($0, m[$0]!, indent: indent + 4) }.joined()
        return "\(pad)  -" + inner.dropFirst(indent + 3)
      }.joined()
    default:
      return "\(pad)\(self.key(key)): \(flow(value))\n"
    }
  }

  /// A value on one line (flow style).
  static func flow(_ value: ParamValue) -> String {
    switch value {
    case .string(let s): return ParamValue.jsonQuoted(s)
    case .float(let v): return v.isFinite ? ParamValue.formatFloat(v, json: false) : (v.isNaN ? ".nan" : (v < 0 ? "-.inf" : ".inf"))
    case .list(let items): return "[" + items.map(flow).joined(separator: ", ") + "]"
    case .map(let m): return "{" + m.keys.sorted().map { "\(key($0)): \(flow(m[$0]!))" }.joined(separator: ", ") + "}"
    default: return value.displayText
    }
  }

  /// A map key, quoted unless it is a plain word.
  static func key(_ k: String) -> String {
    let plain = !k.isEmpty && k.unicodeScalars.allSatisfy {
      ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0)
    } && !["true", "false", "null", "yes", "no", "on", "off", "~"].contains(k.lowercased())
      && Double(k) == nil && Int(k) == nil
    return plain ? k : ParamValue.jsonQuoted(k)
  }
}

/// Reads a lockfile's YAML tree, naming the place of anything malformed.
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
    guard let stages = root["stages"], case .mapping(let pairs) = stages.content else {
      fail("no 'stages:' map", root)
      return lock
    }
    for pair in pairs {
      guard let name = Interpolator.keyText(pair.key) else { continue }
      if let entry = entry(pair.value) { lock.stages[name] = entry }
    }
    return lock
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
    var interpolator = Interpolator(variables: [])
    let parameters = node["params"].map { interpolator.value(of: $0, origin: { .stageFile($0) }).plainValue } ?? .map([:])
    var inputs: [String: [Lockfile.LockedInput]] = [:]
    if let inputNode = node["inputs"], case .mapping(let slots) = inputNode.content {
      for slot in slots {
        guard let slotName = slot.key.string, case .sequence(let items) = slot.value.content else {
          fail("'inputs' must map slots to lists", slot.value)
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
    if let filesNode = node["files"], case .mapping(let pairs) = filesNode.content {
      for pair in pairs {
        if let name = pair.key.string, let h = hash(pair.value, name, in: filesNode) { files[name] = h }
      }
    }
    var outputs: [String: ArtifactRef] = [:]
    if let outputNode = node["outputs"], case .mapping(let pairs) = outputNode.content {
      for pair in pairs {
        guard let name = pair.key.string, let h = hash(pair.value["hash"], "hash", in: pair.value),
              let size = pair.value["size"]?.int, let kind = pair.value["kind"]?.string else {
          fail("an output needs 'hash', 'size' and 'kind'", pair.value)
          continue
        }
        outputs[name] = ArtifactRef(hash: h, size: size, kind: kind)
      }
    } else {
      fail("missing 'outputs'", node)
    }
    var metrics: [String: Double] = [:]
    if let metricNode = node["metrics"], case .mapping(let pairs) = metricNode.content {
      for pair in pairs {
        if let name = pair.key.string, let v = pair.value.double { metrics[name] = v }
      }
    }
    guard diagnostics.count == before, let op, let version, let seed, let key else { return nil }
    return Lockfile.Entry(op: op, opVersion: version, key: key, seed: seed, parameters: parameters,
                          inputs: inputs, files: files, outputs: outputs, metrics: metrics)
  }
}
