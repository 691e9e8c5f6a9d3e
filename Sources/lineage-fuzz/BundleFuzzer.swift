import ArtifactStore
import Foundation
import Pipeline

/// Feeds bytes to the bundle reader (`RecipeBundle(archive:)`: the tar structure, the manifest, every
/// hash and action record), everything `lineage bundle import` checks before it touches the disk. Any
/// input must be read or refused with a `BundleError`; a bundle that is read must name only safe files
/// (judged byte by byte, as the file system will), encode its action records (as the store will), and
/// survive being archived and read again.
///
/// Inputs are archives as they are, except those starting with `LBF1\n` (`structured`): checksums and
/// hashes are walls a mutating fuzzer rarely climbs, so such an input names entries and their
/// contents, and the target writes the archive (and, where asked, the manifest's file list).
enum BundleFuzzer {
  static func check(_ bytes: [UInt8]) -> String {
    let archive: [UInt8]
    if bytes.starts(with: structuredMagic) {
      guard let built = structured(bytes) else { return "refused by the tar writer" }
      archive = built
    } else {
      archive = bytes
    }
    let bundle: RecipeBundle
    do {
      bundle = try RecipeBundle(archive: archive)
    } catch {
      return "refused: \(caseName(error))"
    }
    for path in bundle.recipeFiles.keys {
      require(isSafe(path), "the bundle would write '\(path.debugDescription)' (unsafe name) on import")
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    for record in bundle.actions.values {
      do {
        _ = try encoder.encode(record)
      } catch {
        fatalError("action record \(record.key.short) was read but cannot be stored: \(error)")
      }
    }
    let again: RecipeBundle
    do {
      again = try RecipeBundle(archive: try bundle.archived())
    } catch {
      fatalError("the bundle does not survive being archived and read again: \(error)")
    }
    require(again.stages == bundle.stages && again.recipeFiles == bundle.recipeFiles
                   && again.artifacts == bundle.artifacts && again.actions == bundle.actions,
                 "the bundle archived and read again differs")
    return "read: \(bundle.stages.count) stages, \(bundle.recipeFiles.count) recipe files, "
      + "\(bundle.artifacts.count) artifacts, \(bundle.actions.count) action records"
  }

  /// The name of an error's enum case (`unsafeEntryName`), without payloads that may hold any bytes.
  static func caseName(_ error: BundleError) -> String {
    let name = Mirror(reflecting: error).children.first?.label ?? "\(error)"
    guard case .archive(let tar) = error else { return name }
    return name + "." + (Mirror(reflecting: tar).children.first?.label ?? "\(tar)")
  }

  /// True when every component of `path`, split at `/` bytes as the file system splits it, is a plain
  /// name: not empty, not `.` or `..`, not hidden; and the path is not absolute.
  static func isSafe(_ path: String) -> Bool {
    let components = Array(path.utf8).split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
    return components.allSatisfy { !$0.isEmpty && $0.first != UInt8(ascii: ".") } && !path.utf8.contains(0)
  }

  // MARK: - Structured inputs

  static let structuredMagic = Array("LBF1\n".utf8)
  static let separator = Array("\n%% ".utf8)
  static let filesPlaceholder = Array("@FILES@".utf8)

  /// Builds an archive from a structured input:
  /// ```
  /// LBF1
  /// {"format": "lineage-bundle", "version": 1, "files": @FILES@, "stages": […]}
  /// %% recipe/a.yaml
  /// the file's bytes
  /// %% recipe/data/
  /// ```
  /// The text before the first `%%` line becomes `manifest.json` (none when empty), with `@FILES@`
  /// replaced by the list of the other entries, each with its true size and SHA-256. Every `%% NAME`
  /// line starts an entry: a directory when NAME ends in `/`, else a file holding the bytes up to the
  /// next `%%` line. Nil when the tar writer refuses a name.
  static func structured(_ bytes: [UInt8]) -> [UInt8]? {
    var sections = split(bytes[structuredMagic.count...], at: separator)
    var manifest = Array(sections.removeFirst())
    var entries: [TarEntry] = []
    for section in sections {
      let nameEnd = section.firstIndex(of: UInt8(ascii: "\n")) ?? section.endIndex
      let name = String(decoding: section[section.startIndex..<nameEnd], as: UTF8.self)
      let contents = nameEnd < section.endIndex ? Array(section[(nameEnd + 1)...]) : []
      entries.append(name.hasSuffix("/") ? TarEntry(path: name, kind: .directory)
                                         : TarEntry(path: name, kind: .regularFile, contents: contents))
    }
    if let at = firstRange(of: filesPlaceholder, in: manifest[...]) {
      let files = entries.filter { $0.kind == .regularFile }.map {
        BundleManifest.File(path: $0.path, sha256: ContentHash.of($0.contents), size: $0.contents.count)
      }
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
      guard let list = try? encoder.encode(files) else { return nil }
      manifest.replaceSubrange(at, with: Array(list))
    }
    var writer = TarWriter()
    do {
      if !manifest.isEmpty { try writer.appendFile("manifest.json", contents: manifest) }
      for entry in entries { try writer.append(entry) }
    } catch {
      return nil
    }
    return writer.finished()
  }

  /// The pieces of `bytes` between occurrences of `separator` (the first piece may be empty).
  static func split(_ bytes: ArraySlice<UInt8>, at separator: [UInt8]) -> [ArraySlice<UInt8>] {
    var pieces: [ArraySlice<UInt8>] = []
    var rest = bytes
    while let range = firstRange(of: separator, in: rest) {
      pieces.append(rest[rest.startIndex..<range.lowerBound])
      rest = rest[range.upperBound...]
    }
    pieces.append(rest)
    return pieces
  }

  static func firstRange(of needle: [UInt8], in bytes: ArraySlice<UInt8>) -> Range<Int>? {
    guard bytes.count >= needle.count, let first = needle.first else { return nil }
    var i = bytes.startIndex
    while i <= bytes.endIndex - needle.count {
      if bytes[i] == first, bytes[i..<(i + needle.count)].elementsEqual(needle) { return i..<(i + needle.count) }
      i += 1
    }
    return nil
  }
}
