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
  static let reservedKeys: Set<String> = ["op", "doc", "seed", "matrix", "ranks"]
  static let recipeKeys = ["seed", "vars", "defaults", "remote", "data_roots", "mpi"]
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

/// The state of one load: parsed files, diagnostics so far. This file holds the order of the steps
/// and file reading; each step has a file of its own: `LoadSession+Settings.swift` (recipe.yaml),
/// `+Matrix.swift` (stage maps and matrix expansion), `+Overrides.swift` (defaults and `--set`),
/// `+Validation.swift` (a stage against its op's schema), `+Graph.swift` (references, kinds, cycles).
struct LoadSession {
  let loader: RecipeLoader
  let directory: String
  var diagnostics: [Diagnostic] = []
  var sources: [String: [String]] = [:]
  /// The input references of stages that failed validation, checked against the graph all the same.
  var brokenStages: [BrokenStage] = []
  /// Per op: the keys of a stage that are no parameter (reserved keys and input slots), made once.
  var ignoredKeysByOp: [String: Set<String>] = [:]

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

    let dataRoots = DataRoots(recipeDirectory: directory, dataRoots: settings.dataRoots)
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
      if let resolved = validate(stage, recipeSeed: settings.seed, dataRoots: dataRoots) { stages.append(resolved) }
    }
    let names = raw.map(\.name)
    guard let (graph, resolved) = buildGraph(stages, allNames: Set(names), groups: groupsOf(raw)) else { return nil }
    guard diagnostics.isEmpty, resolved.count == raw.count else { return nil }
    return Recipe(directory: directory, seed: settings.seed, remote: settings.remote, dataRoots: settings.dataRoots,
                  mpi: settings.mpi, overrides: loader.overrides, stages: resolved,
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
}
