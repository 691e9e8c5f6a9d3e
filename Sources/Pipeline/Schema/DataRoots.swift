import Foundation

/// The folders a recipe's `path` parameters may name files in: the recipe folder itself, and the
/// absolute folders recipe.yaml lists under `data_roots:`.
///
/// A recipe may come from someone else. A path that leaves its folder (absolute, through `..`, or
/// through a symbolic link inside the folder) would read any file of the user's into the store, and
/// `push` would upload it; so such a path is refused at validation unless the user named its folder.
/// Paths are compared after resolving every link, the roots' too (`/tmp` may itself be a link).
struct DataRoots: Sendable {
  /// The folders, each resolved and absolute; the recipe folder first.
  let folders: [String]
  /// The recipe folder as written (absolute, `..` removed, links kept): a path inside it that resolves
  /// outside went through a link.
  let recipeFolder: String

  init(recipeDirectory: String, dataRoots: [String]) {
    recipeFolder = recipeDirectory
    folders = ([recipeDirectory] + dataRoots).map { DataRoots.resolved($0) ?? DataRoots.lexical($0) }
  }

  /// Why a path may not be read.
  enum Escape: Equatable {
    /// The path itself resolves outside every allowed folder; `throughLink` when it is written inside
    /// the recipe folder and a link leads out.
    case outside(resolved: String, throughLink: Bool)
    /// A file below the named folder is a link leading out (`entry` relative to the named folder).
    case linkBelow(entry: String, resolved: String)
  }

  /// Nil when the existing file or folder `path` (absolute), and every file below a folder, lie inside
  /// an allowed folder; otherwise the first escape found (a folder's entries in sorted order).
  func escape(of path: String) -> Escape? {
    guard let resolved = DataRoots.resolved(path) else { return nil }  // missing: reported elsewhere
    guard contains(resolved) else {
      return .outside(resolved: resolved, throughLink: DataRoots.isBelow(DataRoots.lexical(path), recipeFolder))
    }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue,
          let enumerator = FileManager.default.enumerator(atPath: path) else { return nil }
    var entries: [String] = []
    while let relative = enumerator.nextObject() as? String {
      // Hidden entries are skipped as the cache key and bundles skip them: no op reads them.
      if PathComponents.hasHiddenComponent(relative) { continue }
      entries.append(relative)
    }
    for entry in entries.sorted() {
      if let target = DataRoots.resolved(path + "/" + entry), !contains(target) {
        return .linkBelow(entry: entry, resolved: target)
      }
    }
    return nil
  }

  private func contains(_ resolved: String) -> Bool {
    folders.contains { DataRoots.isBelow(resolved, $0) }
  }

  /// Whether `path` is `folder` or inside it (a folder, not a prefix of names: /x/data2 is not in /x/data).
  static func isBelow(_ path: String, _ folder: String) -> Bool {
    PathComponents.isBelow(path, folder)
  }

  /// The absolute path with every link resolved; nil when it does not exist.
  static func resolved(_ path: String) -> String? {
    guard let pointer = realpath(path, nil) else { return nil }
    defer { free(pointer) }
    return String(cString: pointer)
  }

  /// `.` and `..` removed from an absolute path, links left as they are.
  static func lexical(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.path
  }
}
