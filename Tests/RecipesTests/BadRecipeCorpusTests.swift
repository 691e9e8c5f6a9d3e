import Foundation
import Pipeline
import Recipes
import Testing

/// The corpus of malformed recipes in `Tests/BadRecipes`: each case folder must fail to load with
/// exactly the diagnostics its `expected.txt` lists (`FILE:LINE:COLUMN: error: MESSAGE`, then its
/// notes), files named relative to the case folder.
///
/// After a deliberate change of a message, `LINEAGE_BLESS=1 swift test --filter BadRecipeCorpus`
/// rewrites the expected files (and fails for each one it changed); read the diff before committing.
@Suite struct BadRecipeCorpusTests {
  static let corpus = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("BadRecipes").path

  static let caseNames: [String] = {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: corpus)) ?? []
    return names.filter { !$0.hasPrefix(".") }.sorted()
  }()

  static var isBlessing: Bool { ProcessInfo.processInfo.environment["LINEAGE_BLESS"] == "1" }

  @Test func corpusHasAtLeast100CasesEachWithExpectedDiagnostics() {
    #expect(Self.caseNames.count >= 100, "\(Self.caseNames.count) cases in \(Self.corpus)")
    for name in Self.caseNames {
      let expected = Self.corpus + "/" + name + "/expected.txt"
      #expect(FileManager.default.fileExists(atPath: expected), "\(name) has no expected.txt")
    }
  }

  @Test(arguments: caseNames)
  func caseFailsWithItsExpectedDiagnostics(_ name: String) throws {
    let folder = Self.corpus + "/" + name
    let actual: String
    do {
      _ = try RecipeLoader(registry: BuiltinOperations.registry).load(directory: folder)
      Issue.record("\(name) loaded without an error")
      return
    } catch {
      actual = Self.lines(of: error, caseFolder: folder).joined(separator: "\n") + "\n"
    }
    let expectedPath = folder + "/expected.txt"
    let expected = (try? String(contentsOfFile: expectedPath, encoding: .utf8)) ?? ""
    if Self.isBlessing {
      if actual != expected {
        try actual.write(toFile: expectedPath, atomically: true, encoding: .utf8)
        Issue.record("\(name): wrote expected.txt; review it, then run again without LINEAGE_BLESS")
      }
      return
    }
    #expect(actual == expected, "\(name)\n--- expected.txt\n\(expected)--- actual\n\(actual)")
  }

  /// Each diagnostic's headline and notes, without the source lines and carets, with file names
  /// relative to the case folder.
  static func lines(of error: RecipeError, caseFolder: String) -> [String] {
    func place(_ location: Pipeline.SourceLocation?) -> String? {
      guard var location else { return nil }
      location.file = relative(location.file, to: caseFolder)
      return location.description
    }
    var out: [String] = []
    for diagnostic in error.diagnostics {
      let message = relative(diagnostic.message, to: caseFolder)
      out.append(place(diagnostic.location).map { "\($0): error: \(message)" } ?? "error: \(message)")
      for note in diagnostic.notes {
        let text = relative(note.message, to: caseFolder)
        out.append(place(note.location).map { "\($0): note: \(text)" } ?? "note: \(text)")
      }
    }
    return out
  }

  /// `text` with the case folder's path (absolute, or relative to the working directory as the
  /// loader prints it) removed wherever it starts a file name.
  static func relative(_ text: String, to folder: String) -> String {
    let cwd = FileManager.default.currentDirectoryPath
    var prefixes = [folder + "/"]
    if folder.hasPrefix(cwd + "/") { prefixes.append(String(folder.dropFirst(cwd.count + 1)) + "/") }
    var out = text
    for prefix in prefixes { out = out.replacingOccurrences(of: prefix, with: "") }
    return out
  }
}
