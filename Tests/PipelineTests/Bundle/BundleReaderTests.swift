import ArtifactStore
import Foundation
import Pipeline
import Testing

/// Reading archives someone else made. The bundle fuzz target (`Scripts/fuzz bundle`) checks every
/// name a bundle it reads would write, split at `/` bytes as the file system splits it; these names
/// broke that check (inputs in Tests/FuzzCorpus/bundle/crash-unsafe-name-*). Swift compares strings
/// by characters, and a `/` followed by a combining mark (or preceded by a prepended one such as
/// U+0600) is one character that `split(separator: "/")` does not split at.
@Suite struct BundleReaderTests {
  /// A ustar archive of `files` (recipe files by relative path) with a manifest that lists each file
  /// with its true size and SHA-256: only the names can make it fail.
  static func archive(recipeFiles files: [(String, String)]) throws -> [UInt8] {
    let entries = files.map { ("recipe/" + $0.0, Array($0.1.utf8)) }
    let manifest = BundleManifest(
      files: entries.map { BundleManifest.File(path: $0.0, sha256: ContentHash.of($0.1), size: $0.1.count) }, stages: [])
    var writer = TarWriter()
    try writer.appendFile("manifest.json", contents: manifest.encoded())
    for (path, bytes) in entries { try writer.appendFile(path, contents: bytes) }
    return writer.finished()
  }

  func expectRefused(_ relative: String, _ reason: BundleError.UnsafeName,
                     sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
    let archive = try BundleReaderTests.archive(recipeFiles: [(relative, "x: 1\n")])
    #expect(throws: BundleError.unsafeEntryName("recipe/" + relative, reason), sourceLocation: sourceLocation) {
      _ = try RecipeBundle(archive: archive)
    }
  }

  /// `x؀/../́y` is one component to `split(separator: "/")` (U+0600 binds the first `/` to what precedes
  /// it, U+0301 the second to what follows) but three to the file system, one of them `..`; likewise a
  /// hidden `.lineage` and an empty component hide behind such a `/`.
  @Test func namesAreCheckedByTheirBytesAsTheFileSystemSplitsThem() throws {
    try expectRefused("x\u{600}/../\u{301}y", .parentReference)
    try expectRefused("x\u{600}/.lineage/data.mdb", .hidden)
    try expectRefused("x\u{600}//\u{301}y", .emptyComponent)
    try expectRefused("/\u{301}etc", .emptyComponent)
  }

  /// Names with combining marks and other scripts are fine when every byte component is.
  @Test func unicodeNamesThatAreSafeAreRead() throws {
    let names = ["\u{301}accent.yaml", "x\u{600}/y.txt", "données/été.txt", "漢字/😀.yaml"]
    let bundle = try RecipeBundle(archive: try BundleReaderTests.archive(recipeFiles: names.map { ($0, "x") }))
    #expect(Set(bundle.recipeFiles.keys) == Set(names))
  }

  /// A symbolic link in the target folder whose name ends in a prepended mark (`a؀`) is still a link:
  /// `recipe/a؀/b` must not be written through it (the check split the path by characters and never
  /// looked at `a؀` alone).
  @Test func filesAreNotWrittenThroughALinkWhateverItsName() throws {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-reader-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: base) }
    let recipe = base + "/recipe", outside = base + "/outside"
    for folder in [recipe, outside] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
    try FileManager.default.createSymbolicLink(atPath: recipe + "/a\u{600}", withDestinationPath: outside)
    let bundle = try RecipeBundle(archive: try BundleReaderTests.archive(recipeFiles: [("a\u{600}/b.yaml", "x: 1\n")]))
    let store = try Store(path: base + "/store")
    #expect(throws: BundleError.symbolicLinkInTarget(recipe + "/a\u{600}")) {
      _ = try bundle.install(into: store, recipeDirectory: recipe)
    }
    #expect(!FileManager.default.fileExists(atPath: outside + "/b.yaml"))
  }
}
