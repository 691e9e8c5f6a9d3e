import ArgumentParser
import ArtifactStore
import Foundation
import Pipeline
import Recipes

/// `lineage bench pipeline`: start-up time, executor overhead on generated recipes, and the store's
/// write path.
///
/// Everything runs in a temporary folder. Reported as medians (with min and max) over repeated runs,
/// beside the targets of PERFORMANCE.md.
struct PipelineBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pipeline", abstract: "Measure start-up, no-op runs, planning time and artifact storage.")

  @Option(help: "Repetitions per measurement.")
  var repeats: Int = 9

  @Flag(name: .long, help: "Print JSON.")
  var json = false

  @Option(name: .long, parsing: .upToNextOption, help: "Sizes of the scaling cases: stages, in dataset → tokenizer pairs.")
  var sizes: [Int] = [100, 1_000, 4_000, 10_000]

  func run() async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-bench-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: root) }
    var results: [Measurement] = []

    // 100 stages: 50 datasets, each read by one tokenizer… the generated recipe is written as a user would.
    let small = root + "/r100"
    try PipelineBench.writeRecipe(at: small, stages: 100)
    let loader = RecipeLoader(registry: BuiltinOperations.registry)
    let recipe = try loader.load(directory: small)
    let store = try Store(path: small + "/.lineage")
    let cold = try await PipelineBench.time { _ = try await Executor(recipe: recipe, store: store, events: NullEventSink()).run() }
    results.append(Measurement(name: "first run, 100 stages (executes all)", samples: [cold], target: nil))

    var inProcess: [Double] = []
    for _ in 0..<repeats {
      inProcess.append(try await PipelineBench.time {
        let r = try loader.load(directory: small)
        let summary = try await Executor(recipe: r, store: store, events: NullEventSink()).run()
        precondition(summary.executed.isEmpty, "a no-op run executed stages")
      })
    }
    results.append(Measurement(name: "no-op run, 100 stages: load + plan + cache checks", samples: inProcess, target: 0.020))

    let binary = PipelineBench.executable
    // Start-up alone: a whole process that reads no recipe (`--help`) and one that builds the op
    // registry and prints it (`ops`); every command pays at least this. Divided at `main`
    // (`StartupReport`): before it, exec, the dynamic loader and the runtimes' set-up; after it,
    // Lineage's own work up to the exit, which the target bounds.
    for (arguments, name) in [(["--help"], "`lineage --help`"), (["ops"], "`lineage ops`")] {
      var whole: [Double] = [], beforeMain: [Double] = [], afterMain: [Double] = []
      for _ in 0..<repeats {
        let start = StartupReport.now()
        let output = try PipelineBench.spawnCapturing(binary, arguments, environment: [StartupReport.variable: "1"])
        let end = StartupReport.now()
        guard output.status == 0, let range = output.stderr.range(of: StartupReport.prefix),
              let main = UInt64(output.stderr[range.upperBound...].prefix { $0.isNumber }) else {
          throw StageFailure("`lineage \(arguments.joined(separator: " "))` printed no start-up report")
        }
        whole.append(Double(end - start) / 1e9)
        beforeMain.append(Double(main - start) / 1e9)
        afterMain.append(Double(end - main) / 1e9)
      }
      results.append(Measurement(name: "start-up: \(name), whole process", samples: whole, target: nil))
      results.append(Measurement(name: "  of which exec + dynamic loader, up to main", samples: beforeMain, target: nil))
      results.append(Measurement(name: "  of which main to exit (Lineage's own)", samples: afterMain, target: 0.010))
    }

    var process: [Double] = []
    for _ in 0..<repeats {
      process.append(try await PipelineBench.time { try PipelineBench.spawn(binary, ["run", "--recipe", small]) })
    }
    results.append(Measurement(name: "no-op `lineage run`, 100 stages, whole process", samples: process, target: 0.100))

    let large = root + "/r1000"
    try PipelineBench.writeRecipe(at: large, stages: 1000)
    let largeStore = try Store(path: large + "/.lineage")
    var planning: [Double] = []
    for _ in 0..<max(3, repeats / 2) {
      planning.append(try await PipelineBench.timePlanning(folder: large, loader: loader, store: largeStore))
    }
    results.append(Measurement(name: "planning 1,000 stages: load + validate + plan", samples: planning, target: 0.200))

    // A 64 MiB artifact: hash and one durable LMDB commit, distinct bytes each time.
    var storing: [Double] = []
    var bytes = [UInt8](repeating: 0, count: 64 << 20)
    for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
    for r in 0..<max(3, repeats / 2) {
      bytes[0] = UInt8(r)
      let copy = bytes
      storing.append(try await PipelineBench.time { _ = try store.putBlob(copy) })
    }
    results.append(Measurement(name: "store a 64 MiB artifact (hash + commit)", samples: storing, target: 0.150))
    var hashing: [Double] = []
    for _ in 0..<max(3, repeats / 2) { hashing.append(try await PipelineBench.time { _ = ContentHash.of(bytes) }) }
    results.append(Measurement(name: "  of which SHA-256 of 64 MiB", samples: hashing, target: nil))

    results += try await scaling(root: root)

    if json {
      printJSON(results.map(\.json))
    } else {
      Console.out(table(results.map(\.row), header: ["measurement", "median", "min", "max", "target", "per stage", ""]))
    }
  }

  /// The executor at scale: recipes of N stages (N/2 `dataset` stages, each read by a `tokenizer`),
  /// run once, then load + validate + plan in process, a no-op `lineage run` and `lineage status` as
  /// whole processes, each with its cost per stage; and the no-op run's peak memory at the largest size.
  func scaling(root: String) async throws -> [Measurement] {
    var results: [Measurement] = []
    let loader = RecipeLoader(registry: BuiltinOperations.registry)
    let binary = PipelineBench.executable
    let largest = sizes.max() ?? 0
    for n in sizes.sorted() where n >= 2 {
      let folder = root + "/pairs\(n)"
      try PipelineBench.writePairs(at: folder, stages: n)
      try PipelineBench.spawn(binary, ["run", "--recipe", folder])
      let rounds = n >= 4_000 ? max(3, repeats / 3) : repeats
      let store = try Store(path: folder + "/.lineage")
      var planning: [Double] = [], noOp: [Double] = [], status: [Double] = []
      for _ in 0..<rounds {
        planning.append(try await PipelineBench.timePlanning(folder: folder, loader: loader, store: store))
        noOp.append(try await PipelineBench.time { try PipelineBench.spawn(binary, ["run", "--recipe", folder]) })
        status.append(try await PipelineBench.time { try PipelineBench.spawn(binary, ["status", "--recipe", folder]) })
      }
      let big = n >= 10_000
      results.append(Measurement(name: "\(n) stages: load + validate + plan (in process)", samples: planning,
                                 target: big ? 0.300 : nil, perStage: n))
      results.append(Measurement(name: "\(n) stages: no-op `lineage run`, whole process", samples: noOp,
                                 target: big ? 1.0 : nil, perStage: n))
      results.append(Measurement(name: "\(n) stages: `lineage status`, whole process", samples: status,
                                 target: big ? 1.0 : nil, perStage: n))
      if n == largest {
        let output = try PipelineBench.spawnCapturing(binary, ["run", "--recipe", folder]).stderr
        if let range = output.range(of: "peak memory "), let mib = Double(output[range.upperBound...].prefix { $0.isNumber || $0 == "." }) {
          results.append(Measurement(name: "\(n) stages: no-op `lineage run`, peak memory (MiB, not seconds)",
                                     samples: [mib], target: big ? 200 : nil, unit: .mebibytes))
        }
      }
    }
    return results
  }

  /// N stages: N/2 `dataset` stages, each read by a `tokenizer`, in one stage file.
  static func writePairs(at directory: String, stages: Int) throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try "seed: 7\n".write(toFile: directory + "/recipe.yaml", atomically: true, encoding: .utf8)
    var text = "stages:\n"
    for i in 0..<(stages / 2) {
      text += "  data-\(i): {op: dataset, generator: arithmetic, count: \(1 + i % 5), seed: \(i)}\n"
      text += "  tok-\(i): {op: tokenizer, from: data-\(i), vocab_size: 270}\n"
    }
    try text.write(toFile: directory + "/stages.yaml", atomically: true, encoding: .utf8)
  }

  /// Runs `binary arguments` (with `environment` added to this process's) and returns its exit status
  /// and standard error.
  static func spawnCapturing(_ binary: String, _ arguments: [String], environment: [String: String] = [:]) throws
    -> (status: Int32, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let err = Pipe()
    process.standardOutput = FileHandle.nullDevice
    process.standardError = err
    try process.run()
    let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, text)
  }

  struct Measurement {
    enum Unit { case seconds, mebibytes }
    var name: String
    var samples: [Double]
    var target: Double?
    /// Stages the measurement covers, for the cost per stage.
    var perStage: Int?
    var unit = Unit.seconds

    init(name: String, samples: [Double], target: Double?, perStage: Int? = nil, unit: Unit = .seconds) {
      self.name = name
      self.samples = samples
      self.target = target
      self.perStage = perStage
      self.unit = unit
    }

    var sorted: [Double] { samples.sorted() }
    var median: Double { sorted[sorted.count / 2] }
    var row: [String] {
      [name, show(median), show(sorted.first!), show(sorted.last!), target.map { "≤ " + show($0) } ?? "",
       perStage.map { String(format: "%.3f ms/stage", median * 1000 / Double($0)) } ?? "",
       target.map { median <= $0 ? "ok" : "MISSED" } ?? ""]
    }
    func show(_ x: Double) -> String { unit == .mebibytes ? String(format: "%.0f MiB", x) : ms(x) }
    var json: [String: Any] {
      let suffix = unit == .mebibytes ? "mib" : "seconds"
      var out: [String: Any] = ["name": name, "median_\(suffix)": median, "min_\(suffix)": sorted.first!,
                                "max_\(suffix)": sorted.last!, "runs": samples.count]
      if let target { out["target_\(suffix)"] = target }
      if let perStage { out["median_seconds_per_stage"] = median / Double(perStage) }
      return out
    }
    func ms(_ s: Double) -> String { String(format: "%.1f ms", s * 1000) }
  }

  /// Load + validate + plan of the recipe in `folder`, timed up to the finished plan. Freeing the
  /// recipe, lockfile and plan afterwards is not timed: a command ends with its plan and exits, and
  /// in this long-lived process the frees of the hundreds of thousands of small values a large recipe
  /// is made of cost tens of milliseconds more than the exit that replaces them.
  static func timePlanning(folder: String, loader: RecipeLoader, store: Store) async throws -> Double {
    var kept: (Recipe, Planner, [Planner.StageStatus])?
    let seconds = try await time {
      let recipe = try loader.load(directory: folder)
      var planner = Planner(recipe: recipe, lockfile: try Lockfile.read(directory: folder), cache: store)
      let plan = try planner.status()
      kept = (recipe, planner, plan)
    }
    precondition(kept?.2.count == kept?.0.stages.count, "the plan covers every stage")
    kept = nil
    return seconds
  }

  static func time(_ body: () async throws -> Void) async throws -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try await body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
  }

  /// This process's own binary, to spawn: argv[0] may be a bare name found through PATH.
  static var executable: String {
    #if os(Linux)
    return URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    #else
    return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    #endif
  }

  static func spawn(_ binary: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw StageFailure("`lineage \(arguments.joined(separator: " "))` failed") }
  }

  /// A recipe of `stages` small dataset stages spread over ten files, with shared defaults.
  static func writeRecipe(at directory: String, stages: Int) throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try "seed: 7\ndefaults:\n  dataset: {generator: arithmetic}\n"
      .write(toFile: directory + "/recipe.yaml", atomically: true, encoding: .utf8)
    let perFile = (stages + 9) / 10
    for f in 0..<10 {
      var text = "stages:\n"
      for i in (f * perFile)..<min(stages, (f + 1) * perFile) {
        text += "  data-\(i):\n    op: dataset\n    count: \(1 + i % 5)\n    difficulty: {digits: \(1 + i % 3), operations: \(1 + (i / 3) % 4)}\n"
        text += "    seed: \(i)\n"
      }
      try text.write(toFile: directory + "/stages-\(f).yaml", atomically: true, encoding: .utf8)
    }
  }
}
