import Foundation

/// Lineage's fuzz targets: the readers that take bytes someone else wrote.
///
/// Each one takes any bytes and returns a one-line outcome (`read: …`, `refused: …`, `N diagnostics`);
/// a broken promise (a crash, a value that does not survive being written and read back) traps.
///
/// Built normally, `lineage-fuzz TARGET FILE|FOLDER…` replays inputs, one line per file: the test suite
/// replays `Tests/FuzzCorpus/TARGET/` so. Built for libFuzzer (`Scripts/fuzz TARGET SECONDS`), the first
/// argument names the target and the rest goes to libFuzzer's driver.
enum FuzzTarget: String, CaseIterable, Sendable {
  /// The stage-file loader (`RecipeLoader`) with the real ops.
  case loader
  /// The bundle reader: the tar archive and the manifest, everything `lineage bundle import` checks
  /// before it touches the disk.
  case bundle
  /// The lockfile reader, and writing what it read: the same value must come back.
  case lockfile

  /// Runs one input through the target.
  func check(_ bytes: [UInt8]) -> String {
    switch self {
    case .loader: return RecipeLoaderFuzzer.check(bytes)
    case .bundle: return BundleFuzzer.check(bytes)
    case .lockfile: return LockfileFuzzer.check(bytes)
    }
  }

  static let usage = "usage: lineage-fuzz \(allCases.map(\.rawValue).joined(separator: "|")) FILE|FOLDER…"
}

/// Traps with `message` unless `condition` holds; unlike `precondition`, the message is printed in
/// release builds too (it says which promise an input broke).
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
  if !condition { fatalError(message()) }
}

#if LIBFUZZER
/// libFuzzer's entry point for a driver that owns `main` (SwiftPM gives every executable its own).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@main
struct Fuzz {
  /// The target named by the first argument (read once: libFuzzer's callback captures nothing).
  static let target: FuzzTarget = {
    guard CommandLine.arguments.count > 1, let target = FuzzTarget(rawValue: CommandLine.arguments[1]) else {
      FileHandle.standardError.write(Data((FuzzTarget.usage + " [libFuzzer flags]\n").utf8))
      exit(2)
    }
    return target
  }()

  static func main() {
    _ = target
    // libFuzzer sees the program name and every argument after the target's name.
    var arguments: [UnsafeMutablePointer<CChar>?] = ([CommandLine.arguments[0]] + CommandLine.arguments.dropFirst(2))
      .map { strdup($0) }
    arguments.append(nil)
    var argc = CInt(arguments.count - 1)
    arguments.withUnsafeMutableBufferPointer { buffer in
      var argv = buffer.baseAddress!
      exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        _ = Fuzz.target.check(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
        return 0
      })
    }
  }
}
#else
@main
struct Replay {
  static func main() {
    let arguments = CommandLine.arguments.dropFirst()
    guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
      FileHandle.standardError.write(Data((FuzzTarget.usage + "\n").utf8))
      exit(2)
    }
    var files: [String] = []
    for argument in arguments.dropFirst() {
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
        FileHandle.standardError.write(Data("no such file or folder: \(argument)\n".utf8))
        exit(2)
      }
      if isDirectory.boolValue {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: argument)) ?? []
        files += names.filter { !$0.hasPrefix(".") }.sorted().map { argument + "/" + $0 }
      } else {
        files.append(argument)
      }
    }
    for file in files {
      guard let data = FileManager.default.contents(atPath: file) else {
        FileHandle.standardError.write(Data("cannot read \(file)\n".utf8))
        exit(2)
      }
      print("\(file): \(target.check([UInt8](data)))")
    }
    if target == .loader { RecipeLoaderFuzzer.cleanUp() }
  }
}
#endif
