import Foundation

/// Reads a recipe folder and validates it completely before anything runs.
///
/// A recipe is a folder of `*.yaml` files, each with a `stages:` map (and `x-…` keys to hold YAML
/// anchors), plus an optional `recipe.yaml` with `seed`, `vars`, `defaults` and `remote`. Loading
/// interpolates `${…}`, expands `matrix:`, merges `defaults:` under every stage of their op, applies
/// `--set` overrides, checks every stage against its op's schema and the graph for unknown references,
/// wrong artifact kinds, duplicate names and cycles. All problems are reported at once.
public struct RecipeLoader: Sendable {
  public var registry: OperationRegistry
  /// `--set stage.key.sub=value` texts, applied in order.
  public var overrides: [String]
  public var limits: YAMLLimits

  public init(registry: OperationRegistry, overrides: [String] = [], limits: YAMLLimits = .default) {
    self.registry = registry
    self.overrides = overrides
    self.limits = limits
  }

  /// Keys of a stage that are not op parameters.
  static let reservedKeys: Set<String> = ["op", "doc", "seed", "matrix"]
  static let recipeKeys = ["seed", "vars", "defaults", "remote"]
  /// Stage names: letters, digits, `_` and `-` (`.` separates an output, `@` a matrix expansion).
  static func isValidStageName(_ name: String) -> Bool {
    !name.isEmpty && name.unicodeScalars.allSatisfy {
      ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
    }
  }

  /// Loads and validates the recipe in `directory`.
  ///
  /// - Throws: `RecipeError` with every diagnostic found, each with its file, line, column and source line.
  public func load(directory: String) throws(RecipeError) -> Recipe {
    var session = LoadSession(loader: self, directory: RecipeLoader.absolute(directory))
    let recipe = session.run()
    guard session.diagnostics.isEmpty, let recipe else {
      throw RecipeError(session.withSourceLines(RecipeLoader.withoutRepeats(session.diagnostics)))
    }
    return recipe
  }

  /// The diagnostics without exact repeats: a mistake inside a matrix stage is found once per
  /// expanded stage, at the same place, and is one mistake.
  static func withoutRepeats(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
    var out: [Diagnostic] = []
    for d in diagnostics where !out.contains(d) { out.append(d) }
    return out
  }

  static func absolute(_ path: String) -> String {
    let url = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
    return url.standardizedFileURL.path
  }
}

/// The state of one load: parsed files, diagnostics so far. The graph checks are in
/// `LoadSession+Graph.swift`.
struct LoadSession {
  let loader: RecipeLoader
  let directory: String
  var diagnostics: [Diagnostic] = []
  var sources: [String: [String]] = [:]
  /// The input references of stages that failed validation, checked against the graph all the same.
  var brokenStages: [BrokenStage] = []

  struct BrokenStage {
    var slots: [InputSlot]
    var inputs: [String: [StageReference]]
  }

  init(loader: RecipeLoader, directory: String) {
    self.loader = loader
    self.directory = directory
  }

  /// A stage as written, after matrix expansion and before validation.
  struct RawStage {
    var name: String
    var location: SourceLocation
    var value: SourceValue
    var group: String?
  }

  mutating func run() -> Recipe? {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
      diagnostics.append(Diagnostic("recipe folder '\(directory)' does not exist", at: nil))
      return nil
    }
    let files: [String]
    do {
      files = try FileManager.default.contentsOfDirectory(atPath: directory)
        .filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.hasPrefix(".") }.sorted()
    } catch {
      diagnostics.append(Diagnostic("cannot list recipe folder '\(directory)': \(error.localizedDescription)", at: nil))
      return nil
    }

    // recipe.yaml first: its vars and defaults apply to every stage file.
    var settings = Settings()
    var settingsReadable = true
    let settingsFiles = files.filter { $0 == "recipe.yaml" || $0 == "recipe.yml" }
    if settingsFiles.count > 1 {
      diagnostics.append(Diagnostic("both recipe.yaml and recipe.yml hold recipe settings; keep one",
                                    at: SourceLocation(file: display("recipe.yml"), line: 1, column: 1)))
    }
    if let name = settingsFiles.first {
      let reported = diagnostics.count
      if let root = parse(name) {
        settings = readSettings(root)
      } else {
        settingsReadable = diagnostics.count == reported
      }
    }
    var interpolator = Interpolator(variables: settings.variables)
    // Variables of an unreadable recipe.yaml are unknown, not missing: do not report every use.
    interpolator.reportsUnknownVariables = settingsReadable

    var raw: [RawStage] = []
    var firstDefinition: [String: SourceLocation] = [:]
    for name in files where name != "recipe.yaml" && name != "recipe.yml" {
      let reported = diagnostics.count
      guard let root = parse(name), !root.isNull else {
        if diagnostics.count == reported {  // no document, or an empty one: blank, only comments, `---`
          diagnostics.append(Diagnostic("stage file is empty; it should hold a 'stages:' map",
                                        at: SourceLocation(file: display(name), line: 1, column: 1)))
        }
        continue
      }
      guard case .mapping(let pairs) = root.content else {
        diagnostics.append(Diagnostic("a stage file holds a map with 'stages:', not \(root.description)",
                                      at: root.location))
        continue
      }
      var sawStages = false
      var unknownKeys = false
      for pair in pairs {
        let key = pair.key.string ?? ""
        if key == "stages" {
          sawStages = true
          raw += stages(in: pair.value, interpolator: &interpolator, seen: &firstDefinition)
        } else if !key.hasPrefix("x-") {
          let hint = RecipeLoader.recipeKeys.contains(key) ? "; '\(key)' belongs in recipe.yaml"
            : Suggestion.phrase(for: key, among: ["stages"])
          diagnostics.append(Diagnostic(
            "unknown top-level key '\(key)'\(hint) (a stage file holds 'stages:' and 'x-…' keys for anchors)",
            at: pair.key.location))
          unknownKeys = true
        }
      }
      if !sawStages && !unknownKeys {
        diagnostics.append(Diagnostic("stage file has no 'stages:' map", at: root.location))
      }
    }
    diagnostics += interpolator.diagnostics

    raw = applyDefaults(settings.defaults, to: raw)
    raw = applyOverrides(to: raw)
    var stages: [Stage] = []
    for stage in raw {
      if let resolved = validate(stage, recipeSeed: settings.seed) { stages.append(resolved) }
    }
    let names = raw.map(\.name)
    guard let (graph, resolved) = buildGraph(stages, allNames: Set(names), groups: groupsOf(raw)) else { return nil }
    guard diagnostics.isEmpty, resolved.count == raw.count else { return nil }
    return Recipe(directory: directory, seed: settings.seed, remote: settings.remote, stages: resolved,
                  groups: groupsOf(raw), graph: graph)
  }

  private func groupsOf(_ raw: [RawStage]) -> [String: [String]] {
    var groups: [String: [String]] = [:]
    for stage in raw { if let g = stage.group { groups[g, default: []].append(stage.name) } }
    return groups
  }

  // MARK: - Files

  func display(_ file: String) -> String {
    let cwd = FileManager.default.currentDirectoryPath
    let full = directory + "/" + file
    return full.hasPrefix(cwd + "/") ? String(full.dropFirst(cwd.count + 1)) : full
  }

  /// Reads and parses one file; nil on an error (reported) or when the file holds no document.
  mutating func parse(_ file: String) -> YAMLNode? {
    let name = display(file)
    guard let data = FileManager.default.contents(atPath: directory + "/" + file) else {
      diagnostics.append(Diagnostic("cannot read stage file '\(name)'", at: SourceLocation(file: name, line: 1, column: 1)))
      return nil
    }
    let bytes = [UInt8](data)
    sources[name] = SourceText.lines(of: bytes.prefix(loader.limits.maxBytes))
    do {
      return try YAMLParser.parse(bytes, file: name, limits: loader.limits)
    } catch {
      diagnostics.append(Diagnostic(error.message, at: error.location,
                                    notes: error.note.map { [Diagnostic.Note($0, at: error.noteLocation)] } ?? []))
      return nil
    }
  }

  /// Fills every diagnostic's source line from the files read.
  func withSourceLines(_ list: [Diagnostic]) -> [Diagnostic] {
    func line(_ location: SourceLocation?) -> String? {
      guard let location, let lines = sources[location.file], location.line >= 1, location.line <= lines.count
      else { return nil }
      return lines[location.line - 1]
    }
    return list.map { d in
      var d = d
      d.sourceLine = line(d.location)
      d.notes = d.notes.map { n in
        var n = n
        n.sourceLine = line(n.location)
        return n
      }
      return d
    }
  }

  // MARK: - recipe.yaml

  struct Settings {
    var seed: UInt64 = 0
    var remote: String?
    var variables: [YAMLPair] = []
    /// op → (defaults value, where).
    var defaults: [String: YAMLNode] = [:]
  }

  mutating func readSettings(_ root: YAMLNode) -> Settings {
    var settings = Settings()
    if root.isNull { return settings }  // `---` alone: no settings, like an empty file
    guard case .mapping(let pairs) = root.content else {
      diagnostics.append(Diagnostic("recipe.yaml holds a map (seed, vars, defaults, remote), not \(root.description)",
                                    at: root.location))
      return settings
    }
    for pair in pairs {
      let key = pair.key.string ?? ""
      switch key {
      case "seed":
        if case .scalar(.int(let v)) = pair.value.content, v >= 0 {
          settings.seed = UInt64(v)
        } else {
          diagnostics.append(Diagnostic("'seed' must be a non-negative int, got \(pair.value.description)",
                                        at: pair.value.location))
        }
      case "remote":
        if case .scalar(.string(let v)) = pair.value.content { settings.remote = v } else {
          diagnostics.append(Diagnostic("'remote' must be a URL string, got \(pair.value.description)",
                                        at: pair.value.location))
        }
      case "vars":
        if case .mapping(let vars) = pair.value.content { settings.variables = vars } else if !pair.value.isNull {
          diagnostics.append(Diagnostic("'vars' must be a map of names to values, not \(pair.value.description)",
                                        at: pair.value.location))
        }
      case "defaults":
        guard case .mapping(let ops) = pair.value.content else {
          if !pair.value.isNull {
            diagnostics.append(Diagnostic(
              "'defaults' must be a map from op names to parameters, not \(pair.value.description)", at: pair.value.location))
          }
          continue
        }
        for op in ops {
          let name = op.key.string ?? ""
          guard loader.registry[name] != nil else {
            diagnostics.append(Diagnostic(
              "unknown op '\(name)' in defaults\(Suggestion.phrase(for: name, among: loader.registry.names))",
              at: op.key.location))
            continue
          }
          guard case .mapping = op.value.content else {
            diagnostics.append(Diagnostic("defaults for '\(name)' must be a map of parameters, not \(op.value.description)",
                                          at: op.value.location))
            continue
          }
          settings.defaults[name] = op.value
        }
      case "stages":
        diagnostics.append(Diagnostic(
          "recipe.yaml holds settings (seed, vars, defaults, remote); put 'stages:' in a stage file of its own, "
            + "e.g. stages.yaml", at: pair.key.location))
      default:
        if !key.hasPrefix("x-") {
          diagnostics.append(Diagnostic(
            "unknown key '\(key)' in recipe.yaml\(Suggestion.phrase(for: key, among: RecipeLoader.recipeKeys))",
            at: pair.key.location))
        }
      }
    }
    return settings
  }

  // MARK: - Stages and matrices

  mutating func stages(in node: YAMLNode, interpolator: inout Interpolator,
                       seen: inout [String: SourceLocation]) -> [RawStage] {
    guard case .mapping(let pairs) = node.content else {
      if case .sequence(let items) = node.content, let first = items.first?.content,
         case .mapping(let pairs) = first, let name = pairs.first?.key.string {
        diagnostics.append(Diagnostic(
          "'stages' must be a map from stage names to definitions, not a list; write '\(name):', not '- \(name):'",
          at: node.location))
      } else if !node.isNull {
        diagnostics.append(Diagnostic("'stages' must be a map from stage names to definitions, not \(node.description)",
                                      at: node.location))
      }
      return []
    }
    var out: [RawStage] = []
    for pair in pairs {
      guard case .scalar = pair.key.content else {
        diagnostics.append(Diagnostic("a stage name must be a word, not \(pair.key.description)", at: pair.key.location))
        continue
      }
      let name = Interpolator.keyText(pair.key) ?? ""
      guard RecipeLoader.isValidStageName(name) else {
        let reason = name.contains(".") ? " ('.' separates a stage from its output, as in 'v1.model')"
          : name.contains("@") ? " ('@' names the stages a matrix expands to)" : ""
        diagnostics.append(Diagnostic(
          "invalid stage name '\(name)': use letters, digits, '_' and '-'\(reason)", at: pair.key.location))
        continue
      }
      if let first = seen[name] {
        diagnostics.append(Diagnostic("duplicate stage '\(name)'", at: pair.key.location,
                                      notes: [.init("first defined here", at: first)]))
        continue
      }
      seen[name] = pair.key.location
      guard case .mapping(let fields) = pair.value.content else {
        diagnostics.append(Diagnostic(
          "stage '\(name)' must be a map with at least 'op:', not \(pair.value.description)", at: pair.value.location))
        continue
      }
      let matrixNode = fields.first { $0.key.string == "matrix" }?.value
      let definition = YAMLNode(content: .mapping(fields.filter { $0.key.string != "matrix" }),
                                location: pair.value.location)
      guard let matrixNode else {
        interpolator.matrix = [:]
        let value = interpolator.value(of: definition, origin: { .stageFile($0) })
        out.append(RawStage(name: name, location: pair.key.location, value: value))
        continue
      }
      for combination in expand(matrix: matrixNode, interpolator: &interpolator) {
        interpolator.matrix = combination.values
        let value = interpolator.value(of: definition, origin: { .stageFile($0) })
        let expanded = "\(name)@\(combination.label)"
        if let first = seen[expanded] {
          diagnostics.append(Diagnostic("duplicate stage '\(expanded)'", at: pair.key.location,
                                        notes: [.init("first defined here", at: first)]))
          continue
        }
        seen[expanded] = pair.key.location
        out.append(RawStage(name: expanded, location: pair.key.location, value: value, group: name))
      }
      interpolator.matrix = [:]
    }
    return out
  }

  struct Combination {
    var values: [String: SourceValue]
    var label: String
  }

  /// Every combination of a `matrix:` map of lists, the first key varying slowest, labelled
  /// `k1=v1,k2=v2` with values as written.
  mutating func expand(matrix node: YAMLNode, interpolator: inout Interpolator) -> [Combination] {
    guard case .mapping(let axes) = node.content else {
      diagnostics.append(Diagnostic("'matrix' must be a map from names to lists of values, not \(node.description)",
                                    at: node.location))
      return []
    }
    guard !axes.isEmpty else {
      diagnostics.append(Diagnostic("'matrix' is empty; give it a key with a list of values, e.g. {count: [100, 1000]}",
                                    at: node.location))
      return []
    }
    var sizes: [Int] = []
    for axis in axes {
      let key = axis.key.string ?? ""
      switch axis.value.content {
      case .sequence(let items) where !items.isEmpty:
        sizes.append(items.count)
      case .sequence:
        diagnostics.append(Diagnostic("matrix key '\(key)' lists no values", at: axis.value.location))
        return []
      default:
        let text = axis.value.raw ?? "…"
        diagnostics.append(Diagnostic(
          "matrix key '\(key)' must be a list of values, not \(axis.value.description); write [\(text)]",
          at: axis.value.location))
        return []
      }
    }
    let total = sizes.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
    guard total <= 4096 else {
      diagnostics.append(Diagnostic(
        "matrix expands to \(sizes.map(String.init).joined(separator: " × ")) = \(total) stages, more than 4096",
        at: node.location))
      return []
    }
    var combinations = [Combination(values: [:], label: "")]
    for axis in axes {
      let key = axis.key.string ?? ""
      guard case .sequence(let allItems) = axis.value.content else { return [] }
      // A value listed twice would name two stages alike: report it, keep the first.
      var items: [YAMLNode] = []
      for item in allItems {
        if let first = items.first(where: { $0.content == item.content }) {
          diagnostics.append(Diagnostic("matrix key '\(key)' lists \(item.raw ?? item.description) twice", at: item.location,
                                        notes: [.init("first listed here", at: first.location)]))
        } else {
          items.append(item)
        }
      }
      interpolator.matrix = [:]
      let values = items.map { interpolator.value(of: $0, origin: { _ in .matrix(key) }) }
      var next: [Combination] = []
      for combination in combinations {
        for value in values {
          var c = combination
          c.values[key] = value
          let text = value.raw ?? value.plainValue.displayText
          c.label += (c.label.isEmpty ? "" : ",") + "\(key)=\(text)"
          next.append(c)
        }
      }
      combinations = next
    }
    return combinations
  }

  // MARK: - Defaults and overrides

  func applyDefaults(_ defaults: [String: YAMLNode], to raw: [RawStage]) -> [RawStage] {
    guard !defaults.isEmpty else { return raw }
    var interpolator = Interpolator(variables: [])
    return raw.map { stage in
      guard case .string(let op)? = stage.value["op"]?.scalar, let node = defaults[op] else { return stage }
      let base = interpolator.value(of: node, origin: { .defaults($0) })
      var stage = stage
      stage.value = SourceValue.merged(base: base, overlay: stage.value)
      return stage
    }
  }

  mutating func applyOverrides(to raw: [RawStage]) -> [RawStage] {
    var raw = raw
    for text in loader.overrides {
      guard let equals = text.firstIndex(of: "=") ?? nil else {
        diagnostics.append(Diagnostic("--set '\(text)' must look like stage.key=value", at: nil))
        continue
      }
      // A stage name may itself contain '=' (matrix stages): find the longest stage or group prefix.
      let candidates = Set(raw.map(\.name) + raw.compactMap(\.group))
      var match: (name: String, rest: Substring)?
      for name in candidates where text.hasPrefix(name + ".") {
        if match == nil || name.count > match!.name.count {
          match = (name, text.dropFirst(name.count + 1))
        }
      }
      guard let match, let eq = match.rest.firstIndex(of: "=") else {
        let stagePart = String(text[..<equals]).split(separator: ".").first.map(String.init) ?? text
        diagnostics.append(Diagnostic(
          "--set '\(text)': no stage named '\(stagePart)'\(Suggestion.phrase(for: stagePart, among: candidates))",
          at: nil))
        continue
      }
      let path = match.rest[..<eq].split(separator: ".").map(String.init)
      let valueText = String(match.rest[match.rest.index(after: eq)...])
      guard !path.isEmpty, !RecipeLoader.reservedKeys.contains(path[0]) || path[0] == "seed" else {
        diagnostics.append(Diagnostic("--set '\(text)' cannot change '\(path.first ?? "")'", at: nil))
        continue
      }
      let value = overrideValue(valueText, text: text)
      for i in raw.indices where raw[i].name == match.name || raw[i].group == match.name {
        raw[i].value.set(path: path[...], to: value)
      }
    }
    return raw
  }

  /// An override's value is read as a YAML scalar (`3e-4` is a float, `true` a bool).
  func overrideValue(_ valueText: String, text: String) -> SourceValue {
    var interpolator = Interpolator(variables: [])
    if let node = try? YAMLParser.parse(Array(valueText.utf8), file: "--set", limits: loader.limits),
       case .scalar = node.content {
      return interpolator.value(of: node, origin: { _ in .override(text) }).withOrigin(.override(text), at: nil)
    }
    return SourceValue(content: .scalar(.string(valueText)), location: nil, origin: .override(text), raw: valueText)
  }

  // MARK: - Validation against the op's schema

  mutating func validate(_ raw: RawStage, recipeSeed: UInt64) -> Stage? {
    let before = diagnostics.count
    guard let entries = raw.value.entries else { return nil }
    guard let opEntry = raw.value.entry("op") else {
      diagnostics.append(Diagnostic("stage '\(raw.name)' has no 'op:'; choose one of \(loader.registry.names.joined(separator: ", "))",
                                    at: raw.location))
      return nil
    }
    let opList = loader.registry.names.joined(separator: ", ")
    guard case .string(let opName)? = opEntry.value.scalar else {
      let problem = opEntry.value.isWrittenEmpty ? "'op' has no value" : "'op' must be the name of an op, not \(opEntry.value.kindDescription)"
      diagnostics.append(Diagnostic("\(problem); choose one of \(opList)", at: opEntry.value.location))
      return nil
    }
    guard let op = loader.registry[opName] else {
      let hint = Suggestion.phrase(for: opName, among: loader.registry.names)
      diagnostics.append(Diagnostic(
        "unknown op '\(opName)'\(hint.isEmpty ? "; the ops are \(opList)" : hint)", at: opEntry.value.location))
      return nil
    }
    var doc: String?
    if let d = raw.value.entry("doc") {
      if case .string(let text)? = d.value.scalar { doc = text } else {
        diagnostics.append(Diagnostic("'doc' must be a string, got \(d.value.kindDescription)", at: d.value.location))
      }
    }
    var seed = recipeSeed
    if let s = raw.value.entry("seed") {
      if case .int(let v)? = s.value.scalar, v >= 0 { seed = UInt64(v) } else {
        diagnostics.append(Diagnostic("'seed' must be a non-negative int, got \(s.value.kindDescription)",
                                      at: s.value.location))
      }
    }
    let schema = op.schema
    var validator = SchemaValidator(recipeDirectory: directory)
    let slotNames = Set(schema.inputs.map(\.name))
    var parameters = validator.record(entries, specs: schema.parameters, prefix: "", owner: raw.location,
                                      ignoring: RecipeLoader.reservedKeys.union(slotNames))
    diagnostics += validator.diagnostics

    // Input slots: references (checked against the graph later) or allowed literals.
    var inputs: [String: [StageReference]] = [:]
    for slot in schema.inputs {
      if let entry = raw.value.entry(slot.name), entry.value.isWrittenEmpty {
        let literals = slot.literals.map { " (or '\($0)')" }.joined()
        diagnostics.append(Diagnostic(
          "'\(slot.name)' has no value; name a stage\(literals), or delete the key", at: entry.value.location))
        continue
      }
      guard let entry = raw.value.entry(slot.name), entry.value.scalar != .null else {
        if slot.required {
          diagnostics.append(Diagnostic(
            "stage '\(raw.name)' needs '\(slot.name):' (\(slot.kinds.map(\.rawValue).joined(separator: " or ")): \(slot.doc))",
            at: raw.location))
        }
        continue
      }
      var items: [SourceValue] = []
      if case .list(let list) = entry.value.content, slot.multiple {
        items = list
      } else if case .scalar = entry.value.content {
        items = [entry.value]
      } else {
        diagnostics.append(Diagnostic(
          "'\(slot.name)' must name \(slot.multiple ? "a stage or list stages" : "one stage"), got \(entry.value.kindDescription)",
          at: entry.value.location))
        continue
      }
      for item in items {
        guard case .string(let text)? = item.scalar else {
          diagnostics.append(Diagnostic("'\(slot.name)' must name a stage, got \(item.kindDescription)", at: item.location))
          continue
        }
        if slot.literals.contains(text) {
          if case .map(var m) = parameters { m[slot.name] = .string(text); parameters = .map(m) }
          continue
        }
        inputs[slot.name, default: []].append(StageReference(stage: text, output: "", location: item.location))
      }
    }
    // The op's own checks read a schema-valid value: after a schema error they would only echo it.
    if diagnostics.count == before {
      for problem in op.validate(parameters) {
        let place = problem.path.isEmpty ? raw.location : location(of: problem.path, in: raw.value)
        diagnostics.append(Diagnostic(problem.message, at: place ?? raw.location))
      }
    }
    guard diagnostics.count == before else {
      // Its references are still checked, so that one pass reports every problem.
      brokenStages.append(BrokenStage(slots: schema.inputs, inputs: inputs))
      return nil
    }
    return Stage(name: raw.name, op: op, doc: doc, parameters: parameters, origins: validator.origins,
                 inputs: inputs, pathParameters: validator.pathParameters, seed: seed, location: raw.location,
                 matrixGroup: raw.group)
  }

  /// The place of a dotted parameter path in the stage as written (its value, else its key).
  func location(of path: String, in value: SourceValue) -> SourceLocation? {
    var current = value
    for key in path.split(separator: ".") {
      guard let next = current[String(key)] else { return current.location }
      current = next
    }
    return current.location
  }
}
