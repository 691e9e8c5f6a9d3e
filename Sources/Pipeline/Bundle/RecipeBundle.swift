import ArtifactStore
import Foundation

/// A recipe with its results, to share: `lineage bundle create` makes one, `lineage bundle import`
/// restores it into another folder and store, where `lineage run` then executes nothing.
///
/// On disk a bundle is a POSIX ustar archive (`TarWriter`), entries in this order:
/// ```
/// manifest.json                  BundleManifest: every other file's SHA-256 and size, the stages
/// actions/<key>.json             the action record of each chosen stage (ActionRecord JSON)
/// artifacts/<sha256>             each output blob of the chosen stages, named by its hash
/// recipe/<path>                  the stage files (*.yaml, *.yml), lineage.lock, and every file or
///                                folder a stage's `path` parameter names (corpus text, JSONL data)
/// ```
/// The same store and recipe always give byte-identical archives: entries sorted by name, headers with
/// mtime 0, uid and gid 0, mode 0644.
///
/// A value is either made from a recipe and its store (`make`) or read from an archive
/// (`init(archive:)`), which verifies every name, hash and size before the value exists; `install`
/// then writes it in one store transaction.
public struct RecipeBundle: Sendable {
  public static let formatVersion = 1

  /// The stages whose results the bundle carries, sorted by name.
  public private(set) var stages: [BundleManifest.Stage]
  /// Path relative to the recipe folder → bytes.
  public private(set) var recipeFiles: [String: [UInt8]]
  /// The output blobs of `stages`.
  public private(set) var artifacts: [ContentHash: [UInt8]]
  /// The action records of `stages`, by cache key.
  public private(set) var actions: [ContentHash: ActionRecord]

  init(stages: [BundleManifest.Stage], recipeFiles: [String: [UInt8]], artifacts: [ContentHash: [UInt8]],
       actions: [ContentHash: ActionRecord]) {
    self.stages = stages.sorted { $0.name < $1.name }
    self.recipeFiles = recipeFiles
    self.artifacts = artifacts
    self.actions = actions
  }

  /// Which stages' results go into a bundle.
  public enum Selection: Equatable, Sendable {
    /// Every stage of `lineage.lock`.
    case allLocked
    /// These stages (or matrix groups) only: a stage whose inputs are not bundled reruns on import.
    case stages([String])
    /// These stages and every stage they depend on.
    case stagesWithAncestors([String])
  }

  // MARK: - Making

  /// Gathers the recipe's files and the lockfile's results of the selected stages from `store`.
  ///
  /// The results are the lockfile's, so what is bundled is what `lineage.lock` vouches for; the stage
  /// files go in as they are on disk.
  ///
  /// - Throws: `BundleError` naming the stage whose result or output is missing (or whose lockfile
  ///   entry claims other outputs than the store's result), the `path` parameter that names a file
  ///   outside the recipe folder, or an unreadable file.
  public static func make(recipe: Recipe, store: Store, selection: Selection) throws(BundleError) -> RecipeBundle {
    let directory = recipe.directory
    var recipeFiles = try stageFiles(in: directory)
    let lockfile: Lockfile
    if let lockBytes = recipeFiles[Lockfile.fileName] {
      do {
        lockfile = try Lockfile.parse(lockBytes, file: directory + "/" + Lockfile.fileName)
      } catch {
        throw .malformedLockfile(error.description)
      }
    } else {
      lockfile = Lockfile()
    }
    for stage in recipe.stages {
      for (relative, bytes) in try dataFiles(of: stage, in: directory) { recipeFiles[relative] = bytes }
    }

    let names = try chosenStages(selection, recipe: recipe, lockfile: lockfile)
    guard !names.isEmpty else { throw .nothingToBundle }
    var stages: [BundleManifest.Stage] = []
    var artifacts: [ContentHash: [UInt8]] = [:]
    var actions: [ContentHash: ActionRecord] = [:]
    do {
      // One snapshot: results and blobs as one moment of the store saw them.
      try store.read { txn in
        for name in names {
          guard let entry = lockfile.stages[name] else { throw BundleError.notInLockfile(stage: name) }
          guard let record = try txn.action(for: entry.key) else {
            throw BundleError.resultNotInStore(stage: name, key: entry.key)
          }
          guard record.outputs == entry.outputs else { throw BundleError.lockfileDisagreesWithStore(stage: name) }
          for (output, ref) in entry.outputs.sorted(by: { $0.key < $1.key }) where artifacts[ref.hash] == nil {
            guard try txn.hasBlob(ref.hash) else {
              throw BundleError.artifactNotInStore(stage: name, output: output, hash: ref.hash)
            }
            artifacts[ref.hash] = try txn.blob(ref.hash)
          }
          actions[record.key] = record
          stages.append(BundleManifest.Stage(name: name, key: entry.key, outputs: entry.outputs))
        }
      }
    } catch let error as BundleError {
      throw error
    } catch {
      throw .store("\(error)")
    }
    return RecipeBundle(stages: stages, recipeFiles: recipeFiles, artifacts: artifacts, actions: actions)
  }

  /// The stage names a selection means, sorted; every one must be in the lockfile.
  static func chosenStages(_ selection: Selection, recipe: Recipe, lockfile: Lockfile) throws(BundleError) -> [String] {
    let requested: [String]
    let withAncestors: Bool
    switch selection {
    case .allLocked: return lockfile.stages.keys.sorted()
    case .stages(let names): (requested, withAncestors) = (names, false)
    case .stagesWithAncestors(let names): (requested, withAncestors) = (names, true)
    }
    var chosen = Set<String>()
    for name in requested {
      if let members = recipe.groups[name] {
        chosen.formUnion(members)
      } else if recipe.graph.index[name] != nil || lockfile.stages[name] != nil {
        chosen.insert(name)
      } else {
        throw .unknownStage(name)
      }
    }
    if withAncestors {
      let graph = recipe.graph
      chosen.formUnion(graph.closure(of: chosen.compactMap { graph.index[$0] }).map { graph.names[$0] })
    }
    for name in chosen where lockfile.stages[name] == nil { throw .notInLockfile(stage: name) }
    return chosen.sorted()
  }

  /// The recipe folder's stage files and lockfile (top level, not hidden), by name.
  static func stageFiles(in directory: String) throws(BundleError) -> [String: [UInt8]] {
    let names: [String]
    do {
      names = try FileManager.default.contentsOfDirectory(atPath: directory)
    } catch {
      throw .cannotRead(path: directory, reason: error.localizedDescription)
    }
    var files: [String: [UInt8]] = [:]
    for name in names where !name.hasPrefix(".")
      && (name.hasSuffix(".yaml") || name.hasSuffix(".yml") || name == Lockfile.fileName) {
      files[name] = try contents(of: directory + "/" + name)
    }
    return files
  }

  /// The files a stage's `path` parameters name (a folder's files, hidden ones skipped as the cache key
  /// skips them), by path relative to the recipe folder.
  static func dataFiles(of stage: Stage, in directory: String) throws(BundleError) -> [String: [UInt8]] {
    var files: [String: [UInt8]] = [:]
    for parameter in stage.pathParameters {
      guard let written = stage.parameters[path: parameter].string else { continue }
      let full = URL(fileURLWithPath: directory + "/" + written).standardizedFileURL.path
      guard !written.hasPrefix("/"), full.hasPrefix(directory + "/") else {
        throw .pathNotBundlable(stage: stage.name, parameter: parameter, path: written)
      }
      let relative = String(full.dropFirst(directory.count + 1))
      // A link inside the folder may lead out (`data_roots:` lets validation accept that): the file
      // would not travel with the recipe, so a bundle refuses it as it refuses an outside path.
      guard RecipeBundle.unsafety(of: relative) == nil,
            DataRoots(recipeDirectory: directory, dataRoots: []).escape(of: full) == nil else {
        throw .pathNotBundlable(stage: stage.name, parameter: parameter, path: written)
      }
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory) else {
        throw .cannotRead(path: full, reason: "no such file or folder")
      }
      guard isDirectory.boolValue else {
        files[relative] = try contents(of: full)
        continue
      }
      guard let enumerator = FileManager.default.enumerator(atPath: full) else {
        throw .cannotRead(path: full, reason: "cannot list the folder")
      }
      while let inner = enumerator.nextObject() as? String {
        if PathComponents.hasHiddenComponent(inner) { continue }
        var innerIsDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: full + "/" + inner, isDirectory: &innerIsDirectory),
           !innerIsDirectory.boolValue {
          files[relative + "/" + inner] = try contents(of: full + "/" + inner)
        }
      }
    }
    return files
  }

  static func contents(of path: String) throws(BundleError) -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw .cannotRead(path: path, reason: "cannot read the file")
    }
    return Array(data)
  }

  // MARK: - Archiving

  /// The ustar archive: `manifest.json` first, then every other entry sorted by name.
  ///
  /// - Throws: `BundleError.archive` when a recipe file's path is too long for ustar (over 255 bytes).
  public func archived() throws(BundleError) -> [UInt8] {
    var files: [(path: String, bytes: [UInt8])] = []
    for (path, bytes) in recipeFiles { files.append(("recipe/" + path, bytes)) }
    for (hash, bytes) in artifacts { files.append(("artifacts/" + hash.hex, bytes)) }
    for (key, record) in actions { files.append(("actions/\(key.hex).json", RecipeBundle.encoded(record))) }
    files.sort { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }

    let manifest = BundleManifest(
      files: files.map { BundleManifest.File(path: $0.path, sha256: ContentHash.of($0.bytes), size: $0.bytes.count) },
      stages: stages)
    var writer = TarWriter()
    do {
      try writer.appendFile("manifest.json", contents: manifest.encoded())
      for file in files { try writer.appendFile(file.path, contents: file.bytes) }
    } catch {
      throw .archive(error)
    }
    return writer.finished()
  }

  /// Writes the archive to `path` atomically (a temporary file renamed over it).
  public func write(toFile path: String) throws(BundleError) {
    let bytes = try archived()
    do {
      try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
      throw .cannotWrite(path: path, reason: error.localizedDescription)
    }
  }

  /// An action record as the store keeps it: JSON with sorted keys.
  static func encoded(_ record: ActionRecord) -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    // The record came out of the store, which encoded it the same way: it encodes.
    guard let data = try? encoder.encode(record) else { preconditionFailure("a stored action record always encodes") }
    return Array(data)
  }

  // MARK: - Names

  /// Why `path` is not a safe relative entry name, or nil when it is.
  ///
  /// Judged on the path's components as the file system splits them, at every `/` byte: Swift's
  /// `split(separator: "/")` goes by characters, and a `/` bound to a combining or prepended mark
  /// (`x؀/../́y`) is a character that is not `/`, hiding a `..`, a hidden or an empty component.
  static func unsafety(of path: String) -> BundleError.UnsafeName? {
    if path.utf8.first == UInt8(ascii: "/") { return .absolute }
    let components = RecipeBundle.components(of: path)
    if components.contains("..") { return .parentReference }
    if components.contains(where: { $0.utf8.first == UInt8(ascii: ".") }) { return .hidden }
    if components.contains(where: \.isEmpty) { return .emptyComponent }
    return nil
  }

  /// The components of `path` between `/` bytes, empty ones included, as the file system sees them.
  static func components(of path: String) -> [String] { PathComponents.of(path) }
}
