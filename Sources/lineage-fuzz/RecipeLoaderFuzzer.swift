import Foundation
import Pipeline
import Recipes

/// Feeds bytes to the stage-file loader as one stage file of a recipe, with the real ops: whatever the
/// bytes, loading must return a recipe or located diagnostics — never crash or hang.
enum RecipeLoaderFuzzer {
  static let folder: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let path = base + "/lineage-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }()
  static let loader = RecipeLoader(registry: BuiltinOperations.registry)

  /// Loads `bytes` as `stages.yaml`: `N diagnostics` (0 when the recipe loads).
  static func check(_ bytes: [UInt8]) -> String {
    _ = FileManager.default.createFile(atPath: folder + "/stages.yaml", contents: Data(bytes))
    do {
      _ = try loader.load(directory: folder)
      return "0 diagnostics"
    } catch {
      for diagnostic in error.diagnostics {
        // Every diagnostic about the file must point inside it.
        if let location = diagnostic.location, location.file.hasSuffix("stages.yaml") {
          require(location.line >= 1 && location.column >= 1, "diagnostic outside the file: \(diagnostic)")
        }
      }
      return "\(error.diagnostics.count) diagnostics"
    }
  }

  /// Removes the scratch folder (replay only: libFuzzer's process ends without returning).
  static func cleanUp() {
    try? FileManager.default.removeItem(atPath: folder)
  }
}
