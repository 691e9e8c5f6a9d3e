/// Relative paths as the file system sees them: the components between `/` bytes.
///
/// Swift's `split(separator: "/")` and `hasPrefix` go by characters, and a `/` bound to a combining or
/// prepended mark (`x؀/.hidden`) is a character that is not `/`: a hidden component, a `..` or a folder
/// boundary can hide in it. Every place that decides which files a recipe, a cache key or a bundle
/// covers goes by bytes, through here, so that they all agree.
enum PathComponents {
  /// The components of `path`, empty ones included. A `/` byte never occurs inside a multi-byte UTF-8
  /// sequence, so every piece is valid UTF-8.
  static func of(_ path: String) -> [String] {
    Array(path.utf8).split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
      .map { String(decoding: $0, as: UTF8.self) }
  }

  /// Whether a component starts with `.` (hidden files and folders are never part of a recipe's data).
  static func hasHiddenComponent(_ path: String) -> Bool {
    of(path).contains { $0.utf8.first == UInt8(ascii: ".") }
  }

  /// Whether `path` is `folder` or inside it, by bytes (/x/data2 is not in /x/data).
  static func isBelow(_ path: String, _ folder: String) -> Bool {
    folder == "/" || path.utf8.elementsEqual(folder.utf8) || path.utf8.starts(with: (folder + "/").utf8)
  }
}
