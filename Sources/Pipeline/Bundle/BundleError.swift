import ArtifactStore

/// Why a bundle could not be made, read or imported; every case names the stage, path or entry.
public enum BundleError: Error, Equatable, Sendable, CustomStringConvertible {
  /// Why an entry name could escape the target folder or reach something hidden.
  public enum UnsafeName: Equatable, Sendable {
    /// Starts with `/`.
    case absolute
    /// Has a `..` component.
    case parentReference
    /// Has a component starting with `.` (`./x`, `.lineage/data.mdb`).
    case hidden
    /// Has an empty component (`a//b`, a trailing `/`).
    case emptyComponent
  }

  // MARK: Making a bundle
  /// No stage chosen: the lockfile records none (run the recipe first).
  case nothingToBundle
  case unknownStage(String)
  /// The stage has no entry in `lineage.lock`: it never ran, or the lockfile predates it.
  case notInLockfile(stage: String)
  /// The lockfile's result of the stage is not in the store (collected as garbage, or another store).
  case resultNotInStore(stage: String, key: ContentHash)
  case artifactNotInStore(stage: String, output: String, hash: ContentHash)
  /// The lockfile's outputs of the stage are not those of the store's result under the same key (a
  /// hand-edited lockfile).
  case lockfileDisagreesWithStore(stage: String)
  /// A `path` parameter names a file a bundle cannot carry: absolute, outside the recipe folder, or hidden.
  case pathNotBundlable(stage: String, parameter: String, path: String)
  case malformedLockfile(String)
  case cannotRead(path: String, reason: String)
  /// The store failed while being read or written.
  case store(String)

  // MARK: Reading a bundle
  case archive(TarError)
  case unsafeEntryName(String, UnsafeName)
  /// A link, device, FIFO or extension header: a bundle holds regular files and directories only.
  case unsupportedEntryKind(String, TarEntry.Kind)
  case duplicateEntry(String)
  /// A name outside the layout (`manifest.json`, `recipe/…`, `artifacts/<sha256>`, `actions/<key>.json`).
  case unexpectedEntry(String)
  case missingManifest
  case malformedManifest(String)
  case unsupportedVersion(Int)
  /// A file in the archive that the manifest does not list.
  case unlistedFile(String)
  /// A file the manifest lists that the archive does not hold.
  case missingFile(String)
  case sizeMismatch(path: String, listed: Int, actual: Int)
  case hashMismatch(path: String, listed: ContentHash, actual: ContentHash)
  /// An `artifacts/<hash>` file whose bytes hash to something else than its name.
  case artifactMismatch(path: String, actual: ContentHash)
  case malformedAction(path: String, reason: String)
  /// A stage or action record refers to an output the bundle does not carry.
  case missingArtifact(stage: String, output: String, hash: ContentHash)
  /// A stage of the manifest whose action record the bundle does not carry, or one that disagrees.
  case missingAction(stage: String, key: ContentHash)

  // MARK: Importing
  /// Recipe files that exist in the target folder with other contents (`--force` replaces them).
  case recipeFilesDiffer([String])
  /// A path in the target folder goes through a symbolic link (or is one): writing there could land
  /// anywhere.
  case symbolicLinkInTarget(String)
  case cannotWrite(path: String, reason: String)

  public var description: String {
    switch self {
    case .nothingToBundle: return "lineage.lock records no stage; run the recipe first"
    case .unknownStage(let name): return "no stage named '\(name)'"
    case .notInLockfile(let stage): return "stage '\(stage)' has no result in lineage.lock; run it first"
    case .resultNotInStore(let stage, let key):
      return "the result of stage '\(stage)' (key \(key.short)) is not in the store; run it again"
    case .artifactNotInStore(let stage, let output, let hash):
      return "output \(stage).\(output) (\(hash.short)) is not in the store; run `lineage fsck`"
    case .lockfileDisagreesWithStore(let stage):
      return "lineage.lock gives stage '\(stage)' other outputs than its result in the store; "
        + "run `lineage verify \(stage)`"
    case .pathNotBundlable(let stage, let parameter, let path):
      return "stage '\(stage)': '\(parameter)' names '\(path)', which a bundle cannot carry "
        + "(only files inside the recipe folder, by relative path, none hidden)"
    case .malformedLockfile(let text): return text
    case .cannotRead(let path, let reason): return "cannot read \(path): \(reason)"
    case .store(let text): return "store: \(text)"
    case .archive(let error): return "not a valid bundle: \(error)"
    case .unsafeEntryName(let name, let reason):
      let why: String
      switch reason {
      case .absolute: why = "it is absolute"
      case .parentReference: why = "it contains '..'"
      case .hidden: why = "it has a hidden component (starting with '.')"
      case .emptyComponent: why = "it has an empty component"
      }
      return "entry '\(name)' is refused: \(why)"
    case .unsupportedEntryKind(let name, let kind):
      return "entry '\(name)' is refused: it is a \(kind); a bundle holds only regular files and directories"
    case .duplicateEntry(let name): return "entry '\(name)' appears twice"
    case .unexpectedEntry(let name):
      return "entry '\(name)' is not part of a bundle (manifest.json, recipe/…, artifacts/<sha256>, actions/<key>.json)"
    case .missingManifest: return "the bundle has no manifest.json"
    case .malformedManifest(let reason): return "malformed manifest.json: \(reason)"
    case .unsupportedVersion(let version):
      return "bundle format version \(version) is not supported (this lineage reads \(RecipeBundle.formatVersion))"
    case .unlistedFile(let name): return "entry '\(name)' is not listed in manifest.json"
    case .missingFile(let name): return "manifest.json lists '\(name)', which the bundle does not hold"
    case .sizeMismatch(let path, let listed, let actual):
      return "entry '\(path)' has \(actual) bytes; manifest.json says \(listed)"
    case .hashMismatch(let path, let listed, let actual):
      return "entry '\(path)' hashes to \(actual.short); manifest.json says \(listed.short)"
    case .artifactMismatch(let path, let actual):
      return "entry '\(path)' is corrupt: its bytes hash to \(actual.short), not to its name"
    case .malformedAction(let path, let reason): return "entry '\(path)' is not a valid action record: \(reason)"
    case .missingArtifact(let stage, let output, let hash):
      return "output \(stage).\(output) (\(hash.short)) is not in the bundle"
    case .missingAction(let stage, let key):
      return "the action record of stage '\(stage)' (actions/\(key.hex).json) is missing or disagrees with the manifest"
    case .recipeFilesDiffer(let paths):
      return "\(paths.joined(separator: ", ")) already exist\(paths.count == 1 ? "s" : "") with other contents; "
        + "use --force to replace \(paths.count == 1 ? "it" : "them")"
    case .symbolicLinkInTarget(let path): return "\(path) is a symbolic link; the bundle's files are not written through links"
    case .cannotWrite(let path, let reason): return "cannot write \(path): \(reason)"
    }
  }
}
