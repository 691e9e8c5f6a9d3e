import Foundation
import Pipeline
import Testing

/// `path` parameters stay inside the recipe folder (a recipe from someone else must not read the user's
/// other files into the store, where `push` would upload them), unless recipe.yaml lists the outside
/// folder under `data_roots:`.
@Suite struct DataRootsTests {
  /// A temporary folder holding the recipe folder `recipe/`, a file `outside.txt` beside it and a
  /// folder `data/` with `rows.txt`.
  final class Layout {
    let base: String
    var recipe: String { base + "/recipe" }

    init() throws {
      base = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-roots-\(UUID().uuidString)").path
      try FileManager.default.createDirectory(atPath: base + "/recipe", withIntermediateDirectories: true)
      try FileManager.default.createDirectory(atPath: base + "/data", withIntermediateDirectories: true)
      try "secret".write(toFile: base + "/outside.txt", atomically: true, encoding: .utf8)
      try "rows".write(toFile: base + "/data/rows.txt", atomically: true, encoding: .utf8)
      try "inside".write(toFile: base + "/recipe/in.txt", atomically: true, encoding: .utf8)
    }
    deinit { try? FileManager.default.removeItem(atPath: base) }

    func write(_ name: String, _ text: String) throws {
      try text.write(toFile: recipe + "/" + name, atomically: true, encoding: .utf8)
    }
    func link(_ name: String, to target: String) throws {
      try FileManager.default.createSymbolicLink(atPath: recipe + "/" + name, withDestinationPath: target)
    }

    /// The diagnostics of loading the recipe (none when it loads).
    func diagnostics() -> [Diagnostic] {
      do {
        _ = try RecipeLoader(registry: testRegistry()).load(directory: recipe)
        return []
      } catch {
        return error.diagnostics
      }
    }
  }

  /// Expects one diagnostic, at the `⟨⟩` mark of `stageFile`, saying the path is outside.
  func expectRefused(_ layout: Layout, _ stageFile: String, _ detail: String,
                     sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
    let mark = marked(stageFile)
    try layout.write("a.yaml", mark.text)
    let found = layout.diagnostics()
    #expect(found.count == 1, "\(found.map(\.description))", sourceLocation: sourceLocation)
    guard let d = found.first else { return }
    #expect(d.message.contains("outside the recipe folder") && d.message.contains("data_roots"),
            "\(d.message)", sourceLocation: sourceLocation)
    #expect(d.message.contains(detail), "\(d.message)", sourceLocation: sourceLocation)
    #expect(d.location?.line == mark.line && d.location?.column == mark.column,
            "at \(String(describing: d.location)), expected \(mark.line):\(mark.column)", sourceLocation: sourceLocation)
    #expect(d.sourceLine == mark.text.split(separator: "\n")[mark.line - 1].description, sourceLocation: sourceLocation)
  }

  @Test func anAbsolutePathIsRefusedAtItsPlace() throws {
    let layout = try Layout()
    try expectRefused(layout, "stages:\n  s:\n    op: emit\n    file: ⟨⟩\(layout.base)/outside.txt\n", "outside.txt")
  }

  @Test func aParentReferenceIsRefusedAtItsPlace() throws {
    let layout = try Layout()
    try expectRefused(layout, "stages:\n  s: {op: emit, file: ⟨⟩../outside.txt}\n", "'../outside.txt'")
  }

  @Test func aLinkPointingOutOfTheFolderIsRefused() throws {
    let layout = try Layout()
    try layout.link("notes.txt", to: layout.base + "/outside.txt")
    try expectRefused(layout, "stages:\n  s:\n    op: emit\n    file: ⟨⟩notes.txt\n", "a symbolic link")
  }

  @Test func aLinkInsideANamedFolderPointingOutIsRefused() throws {
    let layout = try Layout()
    try FileManager.default.createDirectory(atPath: layout.recipe + "/texts", withIntermediateDirectories: true)
    try "fine".write(toFile: layout.recipe + "/texts/ok.txt", atomically: true, encoding: .utf8)
    try FileManager.default.createSymbolicLink(atPath: layout.recipe + "/texts/leak.txt",
                                               withDestinationPath: layout.base + "/outside.txt")
    try expectRefused(layout, "stages:\n  s:\n    op: emit\n    file: ⟨⟩texts\n", "texts/leak.txt")
  }

  @Test func pathsThatStayInsideAreAccepted() throws {
    let layout = try Layout()
    try FileManager.default.createDirectory(atPath: layout.recipe + "/sub", withIntermediateDirectories: true)
    try layout.link("alias.txt", to: "in.txt")
    try layout.write("a.yaml", """
      stages:
        a: {op: emit, file: in.txt}
        b: {op: emit, file: sub/../in.txt}
        c: {op: emit, file: alias.txt}
        d: {op: emit, file: \(layout.recipe)/in.txt}
      """)
    #expect(layout.diagnostics().map(\.description) == [])
  }

  @Test func dataRootsAllowTheFoldersTheyList() throws {
    let layout = try Layout()
    try layout.link("notes.txt", to: layout.base + "/outside.txt")
    try layout.write("recipe.yaml", "data_roots: [\(layout.base)]\n")
    try layout.write("a.yaml", """
      stages:
        a: {op: emit, file: \(layout.base)/outside.txt}
        b: {op: emit, file: ../outside.txt}
        c: {op: emit, file: notes.txt}
        d: {op: emit, file: ../data}
      """)
    #expect(layout.diagnostics().map(\.description) == [])
    // A root is a folder, not a prefix of names: /x/data does not allow /x/data2.
    try layout.write("recipe.yaml", "data_roots:\n  - \(layout.base)/data\n")
    try FileManager.default.createDirectory(atPath: layout.base + "/data2", withIntermediateDirectories: true)
    try "other".write(toFile: layout.base + "/data2/x.txt", atomically: true, encoding: .utf8)
    try expectRefused(layout, "stages:\n  ok: {op: emit, file: ../data/rows.txt}\n  s: {op: emit, file: ⟨⟩../data2/x.txt}\n",
                      "data2")
  }

  @Test func dataRootsMustBeAbsoluteFolders() throws {
    let layout = try Layout()
    try layout.write("a.yaml", "stages:\n  s: {op: emit}\n")
    let relative = marked("data_roots: [/srv/corpora, ⟨⟩../data]\n")
    try layout.write("recipe.yaml", relative.text)
    let found = layout.diagnostics()
    #expect(found.count == 1, "\(found.map(\.description))")
    #expect(found.first?.message.contains("'data_roots' lists '../data'; each entry must be an absolute folder") == true,
            "\(found.map(\.message))")
    #expect(found.first?.location?.line == relative.line && found.first?.location?.column == relative.column)

    let scalar = marked("data_roots: ⟨⟩/srv/corpora\n")
    try layout.write("recipe.yaml", scalar.text)
    let second = layout.diagnostics()
    #expect(second.first?.message.contains("'data_roots' must be a list of absolute folders") == true,
            "\(second.map(\.message))")
    #expect(second.first?.location?.column == scalar.column)
  }
}
