import Foundation
import Testing

/// A recipe may read files only inside its folder, or in folders recipe.yaml lists under `data_roots:`:
/// the corpus op's `source:` refused at its line with exit 2 when it leaves the folder.
extension CLITests {
  /// Writes `outside.txt` beside the recipe folder and a stage file whose corpus `source:` is `source`;
  /// returns `lineage run`'s result.
  func runCorpus(reading source: String, in folder: Folder, recipeSettings: String? = nil) throws -> Result {
    try "A document outside.\n\nAnother one.".write(toFile: folder.path + "/outside.txt", atomically: true, encoding: .utf8)
    try folder.write("s.yaml", "stages:\n  text:\n    op: corpus\n    source: \(source)\n")
    if let recipeSettings { try folder.write("recipe.yaml", recipeSettings) }
    return try lineage(["run"], in: folder)
  }

  func expectRefusedAtItsLine(_ result: Result, _ source: String, folder: Folder,
                              sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    #expect(result.status == 2, "\(result.stderr)", sourceLocation: sourceLocation)
    #expect(result.stderr.contains("Stages/s.yaml:4:13: error: 'source': '\(source)' is outside the recipe folder"),
            "\(result.stderr)", sourceLocation: sourceLocation)
    #expect(result.stderr.contains("\n    source: \(source)\n            ^"), "\(result.stderr)",
            sourceLocation: sourceLocation)
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/Stages/.lineage"), "the store is not opened",
            sourceLocation: sourceLocation)
  }

  @Test func aCorpusSourceOutsideTheRecipeFolderIsRefused() throws {
    let parent = try Folder()
    expectRefusedAtItsLine(try runCorpus(reading: "../outside.txt", in: parent), "../outside.txt", folder: parent)

    let absolute = try Folder()
    expectRefusedAtItsLine(try runCorpus(reading: absolute.path + "/outside.txt", in: absolute),
                           absolute.path + "/outside.txt", folder: absolute)

    let linked = try Folder()
    try FileManager.default.createSymbolicLink(atPath: linked.path + "/Stages/notes.txt",
                                               withDestinationPath: linked.path + "/outside.txt")
    let result = try runCorpus(reading: "notes.txt", in: linked)
    expectRefusedAtItsLine(result, "notes.txt", folder: linked)
    #expect(result.stderr.contains("through a symbolic link"), "\(result.stderr)")
  }

  @Test func aCorpusSourceInADataRootIsAccepted() throws {
    for source in ["../outside.txt", "ABSOLUTE/outside.txt", "notes.txt"] {
      let folder = try Folder()
      try FileManager.default.createSymbolicLink(atPath: folder.path + "/Stages/notes.txt",
                                                 withDestinationPath: folder.path + "/outside.txt")
      let written = source.replacingOccurrences(of: "ABSOLUTE", with: folder.path)
      let result = try runCorpus(reading: written, in: folder, recipeSettings: "data_roots: [\(folder.path)]\n")
      #expect(result.status == 0, "\(source): \(result.stderr)")
      #expect(result.stderr.contains("done text"), "\(result.stderr)")
    }
    let relative = try Folder()
    let refused = try runCorpus(reading: "../outside.txt", in: relative, recipeSettings: "data_roots: [..]\n")
    #expect(refused.status == 2)
    #expect(refused.stderr.contains("recipe.yaml:1:14: error: 'data_roots' lists '..'; each entry must be an absolute folder"),
            "\(refused.stderr)")
  }
}
