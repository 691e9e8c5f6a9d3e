import ArtifactStore
import Foundation
import Pipeline
import Testing

/// A resumable test op: counts to `steps`, saving its count as a checkpoint every step. With
/// `crash_at`, its first execution fails after saving that step (as a killed process would stop);
/// the next execution must resume there.
final class CountingOp: StageOperation, @unchecked Sendable {  // `starts` guarded by `lock`
  let name = "count"
  let version = 1
  let summary = "test op: a resumable counter"
  let schema = OpSchema(
    parameters: [
      ParameterSpec("steps", .int, default: .int(10), range: 1...1000, doc: "steps"),
      ParameterSpec("crash_at", .int, default: .int(0), range: 0...1000, doc: "fail once after this step"),
      ParameterSpec("wait_for_cancel", .bool, default: .bool(false), doc: "block until cancelled"),
    ],
    outputs: [OutputSpec("count", kind: .dataset, doc: "the steps taken")])

  private let lock = NSLock()
  private var crashed = false
  private(set) var startSteps: [Int] = []

  func run(_ context: StageContext) throws -> StageOutput {
    let p = context.parameters
    let steps = p["steps"].int!
    var done = 0
    var trace = ""
    if let checkpoint = try context.loadCheckpoint() {
      done = checkpoint.step
      trace = String(decoding: checkpoint.state, as: UTF8.self)
    }
    lock.lock()
    startSteps.append(done)
    let crashNow = !crashed && p["crash_at"].int! > 0
    lock.unlock()
    while done < steps {
      if context.isCancelled { throw CancellationError() }
      done += 1
      trace += "\(done),"
      try context.saveCheckpoint(step: done, of: steps, state: Array(trace.utf8))
      context.progress(step: done, of: steps, [("loss", 1 / Double(done))])
      if crashNow && done == p["crash_at"].int! {
        lock.lock()
        crashed = true
        lock.unlock()
        throw StageFailure("simulated crash at step \(done)")
      }
      if p["wait_for_cancel"].bool! && done == 1 {
        while !context.isCancelled { usleep(1000) }
      }
    }
    return StageOutput(artifacts: ["count": Array(trace.utf8)])
  }
}

@Suite struct CheckpointTests {
  func setUp(_ text: String) throws -> (RecipeFolder, Store, CountingOp, Recipe) {
    let folder = try RecipeFolder(["a.yaml": text])
    let op = CountingOp()
    let recipe = try RecipeLoader(registry: OperationRegistry([op])).load(directory: folder.path)
    return (folder, try Store(path: folder.storePath), op, recipe)
  }

  @Test func anInterruptedStageResumesFromItsCheckpointAndFinishesWithTheSameBytes() async throws {
    let (folder, store, op, recipe) = try setUp("stages:\n  c: {op: count, steps: 8, crash_at: 5}\n")
    let first = try await Executor(recipe: recipe, store: store, events: NullEventSink()).run()
    #expect(first.failed == ["c"])
    let second = try await Executor(recipe: recipe, store: store, events: NullEventSink()).run()
    #expect(second.executed == ["c"])
    #expect(op.startSteps == [0, 5], "the second run started at step 5, not 0")

    // The same stage run without interruption gives identical output bytes.
    let (cleanFolder, cleanStore, _, cleanRecipe) = try setUp("stages:\n  c: {op: count, steps: 8, crash_at: 0}\n")
    _ = try await Executor(recipe: cleanRecipe, store: cleanStore, events: NullEventSink()).run()
    let resumed = try Lockfile.read(directory: folder.path).stages["c"]!.outputs["count"]!.hash
    let clean = try Lockfile.read(directory: cleanFolder.path).stages["c"]!.outputs["count"]!.hash
    #expect(try store.blob(resumed) == cleanStore.blob(clean))
    // a finished stage's checkpoint is gone
    #expect(try store.read { try $0.checkpoint(for: Lockfile.read(directory: folder.path).stages["c"]!.key) } == nil)
  }

  @Test func cancellingStopsRunningStagesAndKeepsTheirCheckpoint() async throws {
    let (folder, store, op, recipe) = try setUp("stages:\n  c: {op: count, steps: 5, wait_for_cancel: true}\n  d: {op: count, steps: 2}\n")
    let control = RunControl()
    let executor = Executor(recipe: recipe, store: store, events: NullEventSink(), control: control)
    async let summary = executor.run()
    while op.startSteps.isEmpty { try await Task.sleep(nanoseconds: 1_000_000) }
    try await Task.sleep(nanoseconds: 20_000_000)
    control.cancel()
    let result = try await summary
    #expect(result.cancelled.contains("c"))
    #expect(try store.read { try $0.blobHashes() }.count >= 1, "the checkpoint state is stored")
    // the next run resumes c from its checkpoint
    let again = try await Executor(recipe: recipe, store: store, events: NullEventSink()).run()
    #expect(again.executed.contains("c"))
    #expect(op.startSteps.count == 3 && op.startSteps[1] == 1, "c resumed at step 1: \(op.startSteps)")
    #expect(result.cancelled.contains("d"), "d never started")
    withExtendedLifetime(folder) {}
  }
}
