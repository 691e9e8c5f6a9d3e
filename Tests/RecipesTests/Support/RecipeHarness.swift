import ArtifactStore
import Foundation
import Pipeline
import Recipes
import Testing

/// A recipe folder in a fresh temporary directory (removed at deinit), run with the built-in ops.
final class RecipeHarness: @unchecked Sendable {  // used from one test at a time
  let path: String
  private(set) lazy var store: Store = try! Store(path: path + "/.lineage")

  init(_ files: [String: String]) throws {
    path = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-recipes-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    for (name, text) in files { try write(name, text) }
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  func write(_ name: String, _ text: String) throws {
    try text.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
  }

  func recipe() throws -> Recipe {
    try RecipeLoader(registry: BuiltinOperations.registry).load(directory: path)
  }

  /// Runs the recipe to the end, returning its summary; fails the test if a stage failed.
  @discardableResult
  func run(events: any EventSink = NullEventSink(), control: RunControl = RunControl(),
           sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws -> Executor.Summary {
    let summary = try await Executor(recipe: try recipe(), store: store, events: events, control: control).run()
    for name in summary.order {
      if case .failed(let message) = summary.outcomes[name]! {
        Issue.record("stage \(name) failed: \(message)", sourceLocation: sourceLocation)
      }
    }
    return summary
  }

  func lock() throws -> Lockfile { try Lockfile.read(directory: path) }

  /// The hash of a stage's output.
  func hash(_ stage: String, _ output: String) throws -> ContentHash {
    try #require(try lock().stages[stage]?.outputs[output]?.hash)
  }

  /// A stage's metrics artifact, parsed.
  func metrics(_ stage: String, output: String = "metrics") throws -> [String: Any] {
    let bytes = try store.blob(try hash(stage, output))
    return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
  }

  /// The stages the planner would run now.
  func stale() throws -> [String] {
    var planner = Planner(recipe: try recipe(), lockfile: try lock(), cache: store)
    return try planner.status().filter { $0.state == .stale }.map(\.stage).sorted()
  }
}

/// Collects events (thread-safe).
final class EventLog: EventSink, @unchecked Sendable {  // guarded by `lock`
  private let lock = NSLock()
  private var events: [RunEvent] = []
  private let onEvent: @Sendable (RunEvent) -> Void

  init(onEvent: @escaping @Sendable (RunEvent) -> Void = { _ in }) { self.onEvent = onEvent }

  func emit(_ event: RunEvent) {
    lock.lock()
    events.append(event)
    lock.unlock()
    onEvent(event)
  }

  var all: [RunEvent] {
    lock.lock()
    defer { lock.unlock() }
    return events
  }

  /// The step each stage resumed from, if any.
  var resumed: [String: Int] {
    var out: [String: Int] = [:]
    for case .stageResumed(let stage, let step, _) in all { out[stage] = step }
    return out
  }
}

/// A small English corpus with enough regularity that a tiny model's loss falls fast.
let tinyCorpus = (0..<120).map { i in
  let animals = ["cat", "dog", "fox", "owl"], places = ["park", "house", "river", "hill"]
  return "The \(animals[i % 4]) went to the \(places[(i / 4) % 4]). The \(animals[i % 4]) was happy there. "
    + "Day \(i % 7) was sunny and the \(animals[(i + 1) % 4]) came too."
}.joined(separator: "\n\n")

/// A tiny model for op tests: trains in well under a second per few dozen steps in release.
let tinyModel = "{d_model: 32, layers: 2, heads: 2, context: 64}"
