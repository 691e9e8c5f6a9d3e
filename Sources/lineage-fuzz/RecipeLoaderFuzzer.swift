import Foundation
import Pipeline
import Recipes

/// Feeds bytes to the stage-file loader as one stage file of a recipe, with the real ops: whatever the
/// bytes, loading must return a recipe or located diagnostics — never crash or hang.
///
/// Built normally it replays files (`lineage-fuzz FILE…`: the crash corpus in `Tests/FuzzCorpus`).
/// Built for libFuzzer (`Scripts/fuzz`) it exports `LLVMFuzzerTestOneInput`.
enum RecipeLoaderFuzzer {
  static let folder: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let path = base + "/lineage-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }()
  static let loader = RecipeLoader(registry: BuiltinOperations.registry)

  /// Loads `bytes` as `stages.yaml`; returns the number of diagnostics (0 when the recipe loads).
  @discardableResult
  static func check(_ bytes: [UInt8]) -> Int {
    _ = FileManager.default.createFile(atPath: folder + "/stages.yaml", contents: Data(bytes))
    do {
      _ = try loader.load(directory: folder)
      return 0
    } catch {
      for diagnostic in error.diagnostics {
        // Every diagnostic about the file must point inside it.
        if let location = diagnostic.location, location.file.hasSuffix("stages.yaml") {
          precondition(location.line >= 1 && location.column >= 1, "diagnostic outside the file: \(diagnostic)")
        }
      }
      return error.diagnostics.count
    }
  }
}

#if LIBFUZZER
/// libFuzzer's entry point for a driver that owns `main` (SwiftPM gives every executable its own).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@main
struct Fuzz {
  static func main() {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
      RecipeLoaderFuzzer.check(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
      return 0
    })
  }
}
#else
@main
struct Replay {
  static func main() {
    var files: [String] = []
    for argument in CommandLine.arguments.dropFirst() {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else { continue }
      if isDirectory.boolValue {
        files += ((try? FileManager.default.contentsOfDirectory(atPath: argument)) ?? []).sorted().map { argument + "/" + $0 }
      } else {
        files.append(argument)
      }
    }
    for file in files {
      let bytes = [UInt8](FileManager.default.contents(atPath: file) ?? Data())
      print("\(file): \(RecipeLoaderFuzzer.check(bytes)) diagnostics")
    }
    try? FileManager.default.removeItem(atPath: RecipeLoaderFuzzer.folder)
  }
}
#endif
