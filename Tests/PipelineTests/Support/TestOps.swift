import Foundation
import Pipeline
import Testing

/// Counts how often each stage's op body ran, across threads.
final class CallLog: @unchecked Sendable {  // guarded by `lock`
  private let lock = NSLock()
  private var calls: [String] = []

  func record(_ stage: String) {
    lock.lock()
    calls.append(stage)
    lock.unlock()
  }

  var all: [String] {
    lock.lock()
    defer { lock.unlock() }
    return calls
  }

  var set: Set<String> { Set(all) }

  func reset() {
    lock.lock()
    calls = []
    lock.unlock()
  }
}

/// A test op: its output is its `value` parameter and its inputs' bytes, so it is a pure function of
/// its key; `keep_only` lets two different parameter values produce identical bytes (early cutoff);
/// `fail: true` makes it throw; `sleep_ms` lets concurrency be observed.
struct EmitOp: StageOperation {
  let log: CallLog
  let name = "emit"
  var version = 1
  let summary = "test op: emits its value and its inputs"
  let schema = OpSchema(
    parameters: [
      ParameterSpec("value", .int, default: .int(0), range: 0...1_000_000, doc: "what to emit"),
      ParameterSpec("modulo", .int, default: .int(1_000_001), range: 1...1_000_001, doc: "emit value % modulo"),
      ParameterSpec("fail", .bool, default: .bool(false), doc: "throw instead"),
      ParameterSpec("sleep_ms", .int, default: .int(0), range: 0...10_000, doc: "sleep first"),
      ParameterSpec("train", .record([
        ParameterSpec("lr", .float, default: .float(1e-3), range: 0...1, doc: "learning rate"),
        ParameterSpec("steps", .int, default: .int(10), range: 1...100_000, doc: "steps"),
      ]), doc: "training settings"),
      ParameterSpec("tasks", .map(keys: ["qa", "translation"], values: .float), default: .map([:]), doc: "weights"),
      ParameterSpec("file", .path, doc: "a file whose contents matter"),
      ParameterSpec("mode", .choice(["fast", "slow"]), default: .string("fast"), doc: "a choice"),
    ],
    inputs: [
      InputSlot("from", kinds: [.dataset], required: false, doc: "upstream data"),
      InputSlot("extra", kinds: [.dataset], required: false, multiple: true, doc: "more upstream data"),
    ],
    outputs: [OutputSpec("data", kind: .dataset, doc: "the bytes"), OutputSpec("stats", kind: .metrics, doc: "stats")])

  func validate(_ parameters: ParamValue) -> [ParameterProblem] {
    if parameters["mode"].string == "slow", parameters["sleep_ms"].int == 0 {
      return [ParameterProblem(path: "mode", "mode 'slow' needs sleep_ms > 0")]
    }
    return []
  }

  func run(_ context: StageContext) throws -> StageOutput {
    log.record(context.stage)
    let p = context.parameters
    if let ms = p["sleep_ms"].int, ms > 0 { usleep(UInt32(ms * 1000)) }
    if p["fail"].bool == true { throw StageFailure("asked to fail") }
    var text = "value=\(p["value"].int! % p["modulo"].int!)"
    for slot in ["from", "extra"] {
      for input in context.inputs(slot) { text += ";" + String(decoding: try context.bytes(of: input), as: UTF8.self) }
    }
    return StageOutput(artifacts: ["data": Array(text.utf8), "stats": Array("{}".utf8)],
                       metrics: ["value": Double(p["value"].int!)])
  }
}

/// A model-producing test op, to check artifact kinds.
struct ModelOp: StageOperation {
  let name = "train"
  let version = 1
  let summary = "test op: makes a model"
  let schema = OpSchema(
    parameters: [ParameterSpec("steps", .int, range: 1...1000, required: true, doc: "steps")],
    inputs: [InputSlot("from", kinds: [.dataset], doc: "data"),
             InputSlot("tokenizer", kinds: [.tokenizer], required: false, literals: ["bytes"], doc: "tokenizer")],
    outputs: [OutputSpec("model", kind: .model, doc: "weights")])
  func run(_ context: StageContext) throws -> StageOutput {
    StageOutput(artifacts: ["model": Array("model".utf8)])
  }
}

/// Where `meet` stages wait for each other: each arrival is counted, and a stage waits until the
/// count reaches what it expects or its time runs out.
final class Rendezvous: @unchecked Sendable {  // guarded by `condition`
  private let condition = NSCondition()
  private var arrived = 0

  /// Counts one arrival and waits until `count` stages have arrived; false when `timeout` passed first.
  func arrive(waitingFor count: Int, timeout: TimeInterval) -> Bool {
    condition.lock()
    defer { condition.unlock() }
    arrived += 1
    condition.broadcast()
    let deadline = Date(timeIntervalSinceNow: timeout)
    while arrived < count {
      if !condition.wait(until: deadline) { return arrived >= count }
    }
    return true
  }
}

/// A test op that proves stages overlap: it returns only once `partners` stages of the run (itself
/// included) have started, and fails after `timeout_ms` otherwise, so a serial executor fails the
/// stage instead of hanging.
struct MeetOp: StageOperation {
  let rendezvous: Rendezvous
  let name = "meet"
  let version = 1
  let summary = "test op: waits until its partners have started"
  let schema = OpSchema(
    parameters: [
      ParameterSpec("partners", .int, default: .int(2), range: 1...64, doc: "stages that must be running at once"),
      ParameterSpec("timeout_ms", .int, default: .int(10_000), range: 1...60_000, doc: "how long to wait for them"),
      ParameterSpec("value", .int, default: .int(0), range: 0...1_000_000, doc: "what to emit"),
    ],
    outputs: [OutputSpec("data", kind: .dataset, doc: "the value")])

  func run(_ context: StageContext) throws -> StageOutput {
    let p = context.parameters
    let partners = p["partners"].int ?? 2, timeout = Double(p["timeout_ms"].int ?? 0) / 1000
    guard rendezvous.arrive(waitingFor: partners, timeout: timeout) else {
      throw StageFailure("no other stage started within \(timeout) s: the stages ran one after another")
    }
    return StageOutput(artifacts: ["data": Array("value=\(p["value"].int ?? 0)".utf8)])
  }
}

/// A test op that writes a human-readable report (an output of kind `report`), as `eval` writes its
/// table; `lines` is a list parameter, for provenance of lists.
struct ReportOp: StageOperation {
  let name = "report"
  let version = 1
  let summary = "test op: writes a report"
  let schema = OpSchema(
    parameters: [
      ParameterSpec("title", .string, default: .string("report"), doc: "the first line"),
      ParameterSpec("lines", .list(.string), default: .list([.string("a"), .string("b")]), doc: "the other lines"),
    ],
    inputs: [InputSlot("from", kinds: [.dataset], required: false, doc: "upstream data")],
    outputs: [OutputSpec("table", kind: .report, doc: "the report"), OutputSpec("data", kind: .dataset, doc: "bytes")])

  func run(_ context: StageContext) throws -> StageOutput {
    let p = context.parameters
    let lines = [p["title"].string ?? ""] + (p["lines"].list ?? []).map { $0.string ?? "" }
    return StageOutput(artifacts: ["table": Array((lines.joined(separator: "\n") + "\n").utf8),
                                   "data": Array("data".utf8)])
  }
}

func testRegistry(_ log: CallLog = CallLog()) -> OperationRegistry {
  OperationRegistry([EmitOp(log: log), ModelOp(), MeetOp(rendezvous: Rendezvous()), ReportOp()])
}

/// A recipe folder in a fresh temporary directory, removed at deinit.
final class RecipeFolder {
  let path: String

  init(_ files: [String: String]) throws {
    path = FileManager.default.temporaryDirectory
      .appendingPathComponent("lineage-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    for (name, text) in files { try write(name, text) }
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  func write(_ name: String, _ text: String) throws {
    try text.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
  }

  var storePath: String { path + "/.lineage" }
}

/// Loads a recipe, expecting success.
func load(_ folder: RecipeFolder, registry: OperationRegistry = testRegistry(), overrides: [String] = [],
          sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> Recipe {
  do {
    return try RecipeLoader(registry: registry, overrides: overrides).load(directory: folder.path)
  } catch {
    Issue.record("unexpected diagnostics:\n\(error)", sourceLocation: sourceLocation)
    throw error
  }
}

/// Loads a recipe, expecting failure; returns its diagnostics.
func diagnostics(_ folder: RecipeFolder, registry: OperationRegistry = testRegistry(), overrides: [String] = [],
                 sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [Diagnostic] {
  do {
    _ = try RecipeLoader(registry: registry, overrides: overrides).load(directory: folder.path)
    Issue.record("expected the recipe to be rejected", sourceLocation: sourceLocation)
    return []
  } catch {
    return error.diagnostics
  }
}

/// A stage file whose expected diagnostic place is marked with `⟨⟩`; returns the text without the mark
/// and the mark's 1-based line and column.
func marked(_ text: String) -> (text: String, line: Int, column: Int) {
  var line = 1
  for (n, row) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
    if let r = row.range(of: "⟨⟩") {
      line = n + 1
      let column = row.distance(from: row.startIndex, to: r.lowerBound) + 1
      return (text.replacingOccurrences(of: "⟨⟩", with: ""), line, column)
    }
  }
  fatalError("no ⟨⟩ mark in fixture")
}
