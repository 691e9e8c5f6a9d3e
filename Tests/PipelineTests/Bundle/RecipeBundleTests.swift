import ArtifactStore
import Foundation
import Pipeline
import Testing

/// Bundles carry only files inside the recipe folder: `data_roots:` lets a stage read outside it,
/// but such a file cannot travel with the recipe, so creating a bundle of that stage is refused.
@Suite struct RecipeBundleTests {
  @Test func aFileReadThroughADataRootIsNotBundled() async throws {
    let layout = try DataRootsTests.Layout()
    try layout.link("notes.txt", to: layout.base + "/outside.txt")
    try layout.write("recipe.yaml", "data_roots: [\(layout.base)]\n")
    let store = try Store(path: layout.base + "/store")
    /// The recipe with one stage reading `file`, run, then bundled.
    func bundle(reading file: String) async throws -> RecipeBundle {
      try layout.write("a.yaml", "stages:\n  s: {op: emit, file: \(file)}\n")
      let recipe = try RecipeLoader(registry: testRegistry()).load(directory: layout.recipe)
      let summary = try await Executor(recipe: recipe, store: store, events: NullEventSink()).run()
      #expect(summary.failed.isEmpty)
      return try RecipeBundle.make(recipe: recipe, store: store, selection: .allLocked)
    }

    #expect(try await bundle(reading: "in.txt").recipeFiles["in.txt"] == Array("inside".utf8))
    await #expect(throws: BundleError.pathNotBundlable(stage: "s", parameter: "file", path: "notes.txt")) {
      try await bundle(reading: "notes.txt")
    }
    await #expect(throws: BundleError.pathNotBundlable(stage: "s", parameter: "file", path: "../outside.txt")) {
      try await bundle(reading: "../outside.txt")
    }
  }
}
