import ArtifactStore
import Foundation
import Pipeline
import Recipes
import Testing

/// `RecipeBundle` in process: a recipe's results travel to an empty folder and store and are restored
/// there without running; every tampered or unsafe archive is refused before the store sees a byte.
@Suite struct BundleTests {
  static let stages = """
    stages:
      text:
        op: corpus
        source: texts/notes.txt
      sums:
        op: dataset
        generator: arithmetic
        count: 20
      tok:
        op: tokenizer
        from: text
        vocab_size: 300
    """

  static let notes = "The owl sat on the hill.\n\nThe fox ran to the river.\n\nDay 3 was sunny and warm.\n"

  /// A recipe run once: three stages, one reading a text file in a subfolder.
  static func ranRecipe() async throws -> RecipeHarness {
    let h = try RecipeHarness(["data.yaml": stages])
    try FileManager.default.createDirectory(atPath: h.path + "/texts", withIntermediateDirectories: true)
    try h.write("texts/notes.txt", notes)
    try await h.run()
    return h
  }

  /// An empty folder (removed at deinit) with an empty store beside it.
  final class Target {
    let path: String
    let store: Store
    var recipe: String { path + "/Stages" }
    init() throws {
      path = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-import-\(UUID().uuidString)").path
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
      store = try Store(path: path + "/store")
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Files under the recipe folder, relative, sorted (the store lives outside it).
    var recipeFiles: [String] {
      (FileManager.default.enumerator(atPath: recipe)?.allObjects as? [String] ?? []).filter { name in
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: recipe + "/" + name, isDirectory: &isDirectory) && !isDirectory.boolValue
      }.sorted()
    }
  }

  // MARK: - Round trip

  @Test func importedRecipeRestoresEveryStageWithoutRunning() async throws {
    let source = try await BundleTests.ranRecipe()
    let recipe = try source.recipe()
    let archive = try RecipeBundle.make(recipe: recipe, store: source.store, selection: .allLocked).archived()

    let target = try Target()
    let bundle = try RecipeBundle(archive: archive)
    #expect(bundle.stages.map(\.name) == ["sums", "text", "tok"])
    let report = try bundle.install(into: target.store, recipeDirectory: target.recipe)
    #expect(report.blobsAdded == 3 && report.actionsAdded == 3 && report.blobsAlreadyPresent == 0)
    #expect(report.filesWritten == ["data.yaml", "lineage.lock", "texts/notes.txt"])
    #expect(target.recipeFiles == ["data.yaml", "lineage.lock", "texts/notes.txt"])

    let imported = try RecipeLoader(registry: BuiltinOperations.registry).load(directory: target.recipe)
    let summary = try await Executor(recipe: imported, store: target.store, events: NullEventSink()).run()
    #expect(summary.executed.isEmpty)
    #expect(Set(summary.upToDate + summary.restored) == ["sums", "text", "tok"])
    let sourceLock = try source.lock(), targetLock = try Lockfile.read(directory: target.recipe)
    for name in ["sums", "text", "tok"] {
      let expected = try #require(sourceLock.stages[name]?.outputs)
      #expect(targetLock.stages[name]?.outputs == expected, "\(name)")
      #expect(summary.outcomes[name]?.record?.outputs == expected, "\(name)")
    }

    // A second import of the same bundle changes nothing.
    let again = try RecipeBundle(archive: archive).install(into: target.store, recipeDirectory: target.recipe)
    #expect(again.blobsAdded == 0 && again.actionsAdded == 0 && again.blobsAlreadyPresent == 3)
    #expect(again.filesWritten.isEmpty && again.filesUnchanged.count == 3)
  }

  @Test func twoCreatesGiveIdenticalBytes() async throws {
    let source = try await BundleTests.ranRecipe()
    let first = try RecipeBundle.make(recipe: try source.recipe(), store: source.store, selection: .allLocked).archived()
    try await source.run()  // a no-op run rewrites the lockfile with the same bytes
    let reopened = try Store(path: source.path + "/.lineage")
    let second = try RecipeBundle.make(recipe: try source.recipe(), store: reopened, selection: .allLocked).archived()
    #expect(first == second)

    let names = try TarReader.entries(of: first).map(\.path)
    #expect(names.first == "manifest.json")
    #expect(Array(names.dropFirst()) == names.dropFirst().sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
    #expect(names.filter { $0.hasPrefix("artifacts/") }.count == 3)
    #expect(names.filter { $0.hasPrefix("actions/") }.count == 3)
  }

  @Test func namedStagesWithAndWithoutAncestors() async throws {
    let source = try await BundleTests.ranRecipe()
    let recipe = try source.recipe()
    let alone = try RecipeBundle.make(recipe: recipe, store: source.store, selection: .stages(["tok"]))
    #expect(alone.stages.map(\.name) == ["tok"])
    #expect(Set(alone.artifacts.keys) == [try source.hash("tok", "tokenizer")])
    #expect(alone.recipeFiles.keys.sorted() == ["data.yaml", "lineage.lock", "texts/notes.txt"], "the whole recipe travels")
    let withAncestors = try RecipeBundle.make(recipe: recipe, store: source.store, selection: .stagesWithAncestors(["tok"]))
    #expect(withAncestors.stages.map(\.name) == ["text", "tok"])
    #expect(throws: BundleError.unknownStage("tokk")) {
      try RecipeBundle.make(recipe: recipe, store: source.store, selection: .stages(["tokk"]))
    }

    // Without its input's result, `text` reruns on import (it is cheap); `tok` is then restored.
    let target = try Target()
    _ = try RecipeBundle(archive: try alone.archived()).install(into: target.store, recipeDirectory: target.recipe)
    let imported = try RecipeLoader(registry: BuiltinOperations.registry).load(directory: target.recipe)
    let summary = try await Executor(recipe: imported, store: target.store, events: NullEventSink()).run()
    #expect(summary.executed.sorted() == ["sums", "text"])
    #expect(summary.outcomes["tok"]?.record?.outputs["tokenizer"]?.hash == (try source.hash("tok", "tokenizer")))
    #expect(summary.upToDate.contains("tok") || summary.restored.contains("tok"))
  }

  @Test func creatingNamesWhatCannotBeBundled() async throws {
    let source = try await BundleTests.ranRecipe()
    let lock = try source.lock()
    let sumsHash = try source.hash("sums", "dataset")
    let lockText = try String(contentsOfFile: source.path + "/lineage.lock", encoding: .utf8)
    try source.write("lineage.lock", lockText.replacingOccurrences(of: sumsHash.hex, with: String(repeating: "0", count: 64)))
    #expect(throws: BundleError.lockfileDisagreesWithStore(stage: "sums")) {
      try RecipeBundle.make(recipe: try source.recipe(), store: source.store, selection: .allLocked)
    }
    try source.write("lineage.lock", lockText)

    let key = try #require(lock.stages["sums"]?.key)
    try source.store.write { try $0.deleteAction(key) }
    #expect(throws: BundleError.resultNotInStore(stage: "sums", key: key)) {
      try RecipeBundle.make(recipe: try source.recipe(), store: source.store, selection: .allLocked)
    }

    // A stage reading a file by absolute path: the file could not travel with the recipe.
    let outside = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-outside-\(UUID().uuidString).txt").path
    try BundleTests.notes.write(toFile: outside, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: outside) }
    // The recipe may read it (recipe.yaml lists its folder as a data root), but a bundle still refuses it.
    try source.write("recipe.yaml", "data_roots: [\(FileManager.default.temporaryDirectory.path)]\n")
    try source.write("more.yaml", "stages:\n  far:\n    op: corpus\n    source: \(outside)\n")
    #expect(throws: BundleError.pathNotBundlable(stage: "far", parameter: "source", path: outside)) {
      try RecipeBundle.make(recipe: try source.recipe(), store: source.store, selection: .stages(["text"]))
    }
  }

  // MARK: - Refusals

  /// The valid archive of a ran recipe, shared by the refusal tests.
  static func validArchive() async throws -> [UInt8] {
    let source = try await ranRecipe()
    return try RecipeBundle.make(recipe: try source.recipe(), store: source.store, selection: .allLocked).archived()
  }

  /// The archive with its entries edited.
  func edited(_ archive: [UInt8], _ edit: (inout [TarEntry]) throws -> Void) throws -> [UInt8] {
    var entries = try TarReader.entries(of: archive)
    try edit(&entries)
    var writer = TarWriter()
    for entry in entries { try writer.append(entry) }
    return writer.finished()
  }

  /// Rewrites `manifest.json` among `entries`.
  func editManifest(_ entries: inout [TarEntry], _ edit: (inout BundleManifest) throws -> Void) throws {
    let i = try #require(entries.firstIndex { $0.path == "manifest.json" })
    var manifest = try JSONDecoder().decode(BundleManifest.self, from: Data(entries[i].contents))
    try edit(&manifest)
    entries[i].contents = manifest.encoded()
  }

  /// Changes one byte of the entry at `path`.
  func flipByte(_ entries: inout [TarEntry], _ path: String) throws {
    let i = try #require(entries.firstIndex { $0.path == path })
    entries[i].contents[entries[i].contents.count / 2] ^= 0x20
  }

  /// Imports `archive` into an empty folder and store, expecting exactly `expected`; afterwards the store
  /// holds nothing and no recipe file was written.
  func expectRefused(_ archive: [UInt8], _ expected: BundleError, mentioning fragment: String? = nil,
                     sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
    let target = try Target()
    do {
      _ = try RecipeBundle(archive: archive).install(into: target.store, recipeDirectory: target.recipe)
      Issue.record("the bundle was accepted; expected \(expected)", sourceLocation: sourceLocation)
    } catch {
      #expect(error == expected, sourceLocation: sourceLocation)
      if let fragment {
        #expect(error.description.contains(fragment), "\(error)", sourceLocation: sourceLocation)
      }
    }
    let stats = try target.store.statistics()
    #expect(stats.blobs == 0 && stats.actions == 0, "the store holds nothing", sourceLocation: sourceLocation)
    #expect(target.recipeFiles.isEmpty, "no recipe file written", sourceLocation: sourceLocation)
  }

  @Test func unsafeNamesAndKindsAreRefused() async throws {
    let good = try await BundleTests.validArchive()
    let evil = TarEntry(path: "/tmp/evil.yaml", kind: .regularFile, contents: Array("x".utf8))
    try expectRefused(try edited(good) { $0.append(evil) }, .unsafeEntryName("/tmp/evil.yaml", .absolute),
                      mentioning: "/tmp/evil.yaml")
    for name in ["../x", "recipe/../../x"] {
      let entry = TarEntry(path: name, kind: .regularFile, contents: Array("x".utf8))
      try expectRefused(try edited(good) { $0.append(entry) }, .unsafeEntryName(name, .parentReference), mentioning: name)
    }
    let hidden = TarEntry(path: "recipe/.lineage/data.mdb", kind: .regularFile, contents: [0])
    try expectRefused(try edited(good) { $0.append(hidden) }, .unsafeEntryName("recipe/.lineage/data.mdb", .hidden))
    let link = TarEntry(path: "recipe/passwd.yaml", kind: .symbolicLink(target: "/etc/passwd"))
    try expectRefused(try edited(good) { $0.append(link) },
                      .unsupportedEntryKind("recipe/passwd.yaml", .symbolicLink(target: "/etc/passwd")),
                      mentioning: "symbolic link")
    let device = TarEntry(path: "recipe/null", kind: .other(typeflag: UInt8(ascii: "3")))
    try expectRefused(try edited(good) { $0.append(device) },
                      .unsupportedEntryKind("recipe/null", .other(typeflag: UInt8(ascii: "3"))), mentioning: "character device")
    let pax = TarEntry(path: "PaxHeaders/manifest.json", kind: .other(typeflag: UInt8(ascii: "x")))
    try expectRefused(try edited(good) { $0.insert(pax, at: 0) },
                      .unsupportedEntryKind("PaxHeaders/manifest.json", .other(typeflag: UInt8(ascii: "x"))),
                      mentioning: "pax extended header")
    try expectRefused(try edited(good) { $0.append($0.last!) }, .duplicateEntry("recipe/texts/notes.txt"))
    // Directory entries, as other tar writers add them, carry nothing and are fine.
    let withDirectories = try edited(good) { $0.insert(TarEntry(path: "recipe/texts", kind: .directory), at: 1) }
    #expect(try RecipeBundle(archive: withDirectories).recipeFiles.count == 3)
    let stray = TarEntry(path: "notes.txt", kind: .regularFile, contents: [1])
    try expectRefused(try edited(good) { $0.append(stray) }, .unexpectedEntry("notes.txt"))
  }

  @Test func contentThatDisagreesWithTheManifestIsRefused() async throws {
    let good = try await BundleTests.validArchive()
    let entries = try TarReader.entries(of: good)
    let artifact = try #require(entries.first { $0.path.hasPrefix("artifacts/") })
    let manifest = try JSONDecoder().decode(BundleManifest.self, from: Data(entries[0].contents))
    let listed = try #require(manifest.files.first { $0.path == artifact.path })

    // A flipped byte in an artifact: the manifest's hash catches it.
    var flipped = artifact.contents
    flipped[flipped.count / 2] ^= 0x20
    try expectRefused(try edited(good) { try flipByte(&$0, artifact.path) },
                      .hashMismatch(path: artifact.path, listed: listed.sha256, actual: ContentHash.of(flipped)),
                      mentioning: artifact.path)
    // The same flip with the manifest updated to match: the artifact's name still catches it.
    let forged = try edited(good) { entries in
      try flipByte(&entries, artifact.path)
      try editManifest(&entries) { m in
        let i = m.files.firstIndex { $0.path == artifact.path }!
        m.files[i].sha256 = ContentHash.of(flipped)
      }
    }
    try expectRefused(forged, .artifactMismatch(path: artifact.path, actual: ContentHash.of(flipped)),
                      mentioning: artifact.path)

    // A recipe file edited after the manifest was written.
    let stage = try #require(manifest.files.first { $0.path == "recipe/data.yaml" })
    let longer = try edited(good) { entries in
      let i = entries.firstIndex { $0.path == "recipe/data.yaml" }!
      entries[i].contents += Array("  # edited\n".utf8)
    }
    try expectRefused(longer, .sizeMismatch(path: "recipe/data.yaml", listed: stage.size, actual: stage.size + 11))
    let sameSize = try edited(good) { try flipByte(&$0, "recipe/data.yaml") }
    let changed = try #require(try TarReader.entries(of: sameSize).first { $0.path == "recipe/data.yaml" })
    try expectRefused(sameSize, .hashMismatch(path: "recipe/data.yaml", listed: stage.sha256,
                                              actual: ContentHash.of(changed.contents)))

    // An extra file the manifest does not list, and a listed file that is absent.
    let extra = TarEntry(path: "recipe/extra.yaml", kind: .regularFile, contents: Array("stages: {}\n".utf8))
    try expectRefused(try edited(good) { $0.append(extra) }, .unlistedFile("recipe/extra.yaml"), mentioning: "recipe/extra.yaml")
    try expectRefused(try edited(good) { $0.removeAll { $0.path == "recipe/data.yaml" } }, .missingFile("recipe/data.yaml"))
  }

  @Test func aMissingOrMalformedManifestIsRefused() async throws {
    let good = try await BundleTests.validArchive()
    try expectRefused(try edited(good) { $0.removeFirst() }, .missingManifest)
    try expectRefused(try edited(good) { $0[0].contents = Array("{\"format\": \"lineage-bundle\", ".utf8) },
                      .malformedManifest("The given data was not valid JSON."))
    try expectRefused(try edited(good) { entries in try editManifest(&entries) { $0.version = 2 } }, .unsupportedVersion(2))
    try expectRefused(try edited(good) { entries in try editManifest(&entries) { $0.format = "zip" } },
                      .malformedManifest("'format' is 'zip', not 'lineage-bundle'"))
    // A stage whose outputs the bundle does not carry: remove an artifact and its manifest line.
    let entries = try TarReader.entries(of: good)
    let manifest = try JSONDecoder().decode(BundleManifest.self, from: Data(entries[0].contents))
    let sums = try #require(manifest.stages.first { $0.name == "sums" })
    let hash = try #require(sums.outputs["dataset"]?.hash)
    let dropped = try edited(good) { entries in
      entries.removeAll { $0.path == "artifacts/" + hash.hex }
      try editManifest(&entries) { $0.files.removeAll { $0.path == "artifacts/" + hash.hex } }
    }
    try expectRefused(dropped, .missingArtifact(stage: "sums", output: "dataset", hash: hash))
  }

  @Test func aDamagedArchiveIsRefused() async throws {
    let good = try await BundleTests.validArchive()
    try expectRefused(Array(good.prefix(700)), .archive(.truncated(offset: 0, entry: "manifest.json")),
                      mentioning: "truncated")
    try expectRefused(Array(good.dropLast(1024)), .archive(.missingEndMarker(offset: good.count - 1024)),
                      mentioning: "end-of-archive marker")
    var renamed = good
    renamed[3] ^= 1  // a byte of the manifest header's name: 'manifest.json' → 'manhfest.json'
    let stored = try #require(Int(String(decoding: good[148..<154], as: UTF8.self), radix: 8))
    try expectRefused(renamed, .archive(.badChecksum(offset: 0, stored: stored, computed: stored - 1)),
                      mentioning: "checksum")
  }

  // MARK: - Installing

  @Test func existingRecipeFilesAreNotReplacedWithoutAsking() async throws {
    let good = try await BundleTests.validArchive()
    let target = try Target()
    try FileManager.default.createDirectory(atPath: target.recipe, withIntermediateDirectories: true)
    try "stages: {}\n".write(toFile: target.recipe + "/data.yaml", atomically: true, encoding: .utf8)
    let bundle = try RecipeBundle(archive: good)
    #expect(throws: BundleError.recipeFilesDiffer(["data.yaml"])) {
      try bundle.install(into: target.store, recipeDirectory: target.recipe)
    }
    #expect(try target.store.statistics().blobs == 0, "refused before the store was written")
    #expect(target.recipeFiles == ["data.yaml"])
    let forced = try bundle.install(into: target.store, recipeDirectory: target.recipe, replacingFiles: true)
    #expect(forced.filesWritten == ["data.yaml", "lineage.lock", "texts/notes.txt"])
    #expect(try String(contentsOfFile: target.recipe + "/data.yaml", encoding: .utf8) == BundleTests.stages)
  }

  @Test func filesAreNotWrittenThroughSymbolicLinks() async throws {
    let good = try await BundleTests.validArchive()
    let target = try Target()
    try FileManager.default.createDirectory(atPath: target.path + "/elsewhere", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: target.recipe, withIntermediateDirectories: true)
    try FileManager.default.createSymbolicLink(atPath: target.recipe + "/texts", withDestinationPath: target.path + "/elsewhere")
    #expect(throws: BundleError.symbolicLinkInTarget(target.recipe + "/texts")) {
      try RecipeBundle(archive: good).install(into: target.store, recipeDirectory: target.recipe, replacingFiles: true)
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: target.path + "/elsewhere").isEmpty)
  }
}
