import ArtifactStore
import Foundation

/// Reading a bundle (everything verified before a value exists) and installing it.
extension RecipeBundle {
  /// What `install` did.
  public struct InstallReport: Equatable, Sendable {
    /// The stages whose results are now in the store.
    public var stages: [String]
    public var blobsAdded = 0
    public var blobsAlreadyPresent = 0
    public var actionsAdded = 0
    /// Recipe files written (relative to the recipe folder), and those already there with the same bytes.
    public var filesWritten: [String] = []
    public var filesUnchanged: [String] = []
  }

  /// Reads and verifies a bundle file.
  ///
  /// - Throws: `BundleError.cannotRead`, or any error of `init(archive:)`.
  public init(contentsOfFile path: String) throws(BundleError) {
    try self.init(archive: try RecipeBundle.contents(of: path))
  }

  /// Reads an archive and verifies all of it; nothing is written anywhere.
  ///
  /// Checked, in this order, each failure naming its entry: the tar structure (truncation, header
  /// checksums); every entry's kind (regular files and directories only) and name (not absolute, no
  /// `..`, nothing hidden, nothing outside the bundle layout, each name once); the manifest (present,
  /// well-formed, this format version); the manifest against the files (none unlisted, none missing,
  /// every size and SHA-256 equal); each `artifacts/<hash>` hashing to its name; each action record
  /// decoding, named by its own key; each stage's action record and outputs present.
  ///
  /// - Throws: `BundleError`.
  public init(archive: [UInt8]) throws(BundleError) {
    let entries: [TarEntry]
    do {
      entries = try TarReader.entries(of: archive)
    } catch {
      throw .archive(error)
    }
    var files: [String: [UInt8]] = [:]
    for entry in entries {
      switch entry.kind {
      case .regularFile, .directory: break
      default: throw .unsupportedEntryKind(entry.path, entry.kind)
      }
      if let reason = RecipeBundle.unsafety(of: entry.path) { throw .unsafeEntryName(entry.path, reason) }
      if entry.kind == .directory { continue }  // implied by the files' names; nothing to keep
      guard EntryName(entry.path) != nil else { throw .unexpectedEntry(entry.path) }
      guard files[entry.path] == nil else { throw .duplicateEntry(entry.path) }
      files[entry.path] = entry.contents
    }

    guard let manifestBytes = files.removeValue(forKey: "manifest.json") else { throw .missingManifest }
    let manifest = try BundleManifest.decode(manifestBytes)
    var listed: [String: BundleManifest.File] = [:]
    for file in manifest.files {
      if let reason = RecipeBundle.unsafety(of: file.path) { throw .unsafeEntryName(file.path, reason) }
      guard let name = EntryName(file.path), name != .manifest else { throw .unexpectedEntry(file.path) }
      guard listed[file.path] == nil else { throw .malformedManifest("'\(file.path)' is listed twice") }
      listed[file.path] = file
    }
    for path in files.keys.sorted() where listed[path] == nil { throw .unlistedFile(path) }

    var recipeFiles: [String: [UInt8]] = [:]
    var artifacts: [ContentHash: [UInt8]] = [:]
    var actions: [ContentHash: ActionRecord] = [:]
    for file in manifest.files {
      guard let bytes = files[file.path] else { throw .missingFile(file.path) }
      guard bytes.count == file.size else { throw .sizeMismatch(path: file.path, listed: file.size, actual: bytes.count) }
      let hash = ContentHash.of(bytes)
      guard hash == file.sha256 else { throw .hashMismatch(path: file.path, listed: file.sha256, actual: hash) }
      switch EntryName(file.path) {
      case .recipe(let relative): recipeFiles[relative] = bytes
      case .artifact(let name):
        guard hash == name else { throw .artifactMismatch(path: file.path, actual: hash) }
        artifacts[name] = bytes
      case .action(let key):
        let record: ActionRecord
        do {
          record = try JSONDecoder().decode(ActionRecord.self, from: Data(bytes))
        } catch {
          throw .malformedAction(path: file.path, reason: BundleManifest.reason(error))
        }
        guard record.key == key else {
          throw .malformedAction(path: file.path, reason: "its key is \(record.key.short), not its name")
        }
        actions[key] = record
      case .manifest?, nil: throw .unexpectedEntry(file.path)  // excluded above
      }
    }

    for record in actions.values.sorted(by: { $0.key < $1.key }) {
      for (output, ref) in record.outputs.sorted(by: { $0.key < $1.key }) where artifacts[ref.hash] == nil {
        throw .missingArtifact(stage: record.stage, output: output, hash: ref.hash)
      }
    }
    for stage in manifest.stages {
      guard let record = actions[stage.key], record.outputs == stage.outputs else {
        throw .missingAction(stage: stage.name, key: stage.key)
      }
    }
    self.init(stages: manifest.stages, recipeFiles: recipeFiles, artifacts: artifacts, actions: actions)
  }

  // MARK: - Installing

  /// Writes the bundle's blobs and action records into `store` in one write transaction, then its
  /// recipe files into `recipeDirectory` (created when absent).
  ///
  /// Before anything is written, every recipe file already in the folder is compared with the bundle's:
  /// identical ones are left alone, different ones refuse the import unless `replacingFiles` is set.
  /// Blobs and records already in the store are kept as they are.
  ///
  /// - Throws: `BundleError.recipeFilesDiffer` (nothing written), `.symbolicLinkInTarget`,
  ///   `.cannotWrite`, `.store`.
  public func install(into store: Store, recipeDirectory: String, replacingFiles: Bool = false)
    throws(BundleError) -> InstallReport {
    var report = InstallReport(stages: stages.map(\.name))
    var toWrite: [String] = []
    var differing: [String] = []
    for relative in recipeFiles.keys.sorted() {
      let path = recipeDirectory + "/" + relative
      try RecipeBundle.refuseLinks(below: recipeDirectory, relative: relative)
      var isDirectory: ObjCBool = false
      if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
        if isDirectory.boolValue { throw .cannotWrite(path: path, reason: "a folder is in the way") }
        if try RecipeBundle.contents(of: path) == recipeFiles[relative] {
          report.filesUnchanged.append(relative)
          continue
        }
        differing.append(relative)
      }
      toWrite.append(relative)
    }
    if !differing.isEmpty && !replacingFiles { throw .recipeFilesDiffer(differing) }

    let hashes = artifacts.keys.sorted()
    let records = actions.keys.sorted().map { actions[$0]! }
    do {
      let counts = try store.write { txn -> (added: Int, present: Int, actions: Int) in
        var added = 0, present = 0, newActions = 0
        for hash in hashes {
          if try txn.hasBlob(hash) {
            present += 1
          } else {
            try txn.putBlob(artifacts[hash]!, hash: hash)
            added += 1
          }
        }
        for record in records where try txn.action(for: record.key) == nil {
          try txn.putAction(record)
          newActions += 1
        }
        return (added, present, newActions)
      }
      (report.blobsAdded, report.blobsAlreadyPresent, report.actionsAdded) = counts
    } catch {
      throw .store("\(error)")
    }

    for relative in toWrite {
      let url = URL(fileURLWithPath: recipeDirectory + "/" + relative)
      do {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(recipeFiles[relative]!).write(to: url, options: .atomic)
      } catch {
        throw .cannotWrite(path: url.path, reason: error.localizedDescription)
      }
      report.filesWritten.append(relative)
    }
    return report
  }

  /// Refuses a target path any of whose components below `directory` is a symbolic link.
  static func refuseLinks(below directory: String, relative: String) throws(BundleError) {
    var path = directory
    for component in RecipeBundle.components(of: relative) where !component.isEmpty {
      path += "/" + component
      var info = stat()
      guard lstat(path, &info) == 0 else { return }  // absent: created by us, not a link
      if info.st_mode & S_IFMT == S_IFLNK { throw .symbolicLinkInTarget(path) }
    }
  }
}

/// The names a bundle may hold, parsed.
enum EntryName: Equatable {
  case manifest
  /// `recipe/<relative path>`.
  case recipe(String)
  /// `artifacts/<sha256 in lowercase hex>`.
  case artifact(ContentHash)
  /// `actions/<key in lowercase hex>.json`.
  case action(ContentHash)

  init?(_ path: String) {
    if path == "manifest.json" {
      self = .manifest
    } else if path.utf8.starts(with: "recipe/".utf8), path.utf8.count > "recipe/".utf8.count {
      // By bytes, like every name check: `recipe/́x` is the file `́x` of the recipe.
      self = .recipe(String(decoding: path.utf8.dropFirst("recipe/".utf8.count), as: UTF8.self))
    } else if path.hasPrefix("artifacts/"), let hash = ContentHash(hex: String(path.dropFirst("artifacts/".count))),
              path == "artifacts/" + hash.hex {
      self = .artifact(hash)
    } else if path.hasPrefix("actions/"), path.hasSuffix(".json"),
              let key = ContentHash(hex: String(path.dropFirst("actions/".count).dropLast(".json".count))),
              path == "actions/\(key.hex).json" {
      self = .action(key)
    } else {
      return nil
    }
  }
}
