import ArtifactStore
import Foundation
import Pipeline
import Testing

/// The executor's promises, on a diamond graph: top → left, right → bottom.
@Suite struct ExecutorTests {
  static let diamond = """
    stages:
      top: {op: emit, value: 1}
      left: {op: emit, from: top, value: 2}
      right: {op: emit, from: top, value: 3}
      bottom: {op: emit, from: left, extra: [right], value: 4}
      alone: {op: emit, value: 5}
    """

  struct Harness {
    let folder: RecipeFolder
    let log = CallLog()
    let store: Store

    init(_ files: [String: String]) throws {
      folder = try RecipeFolder(files)
      store = try Store(path: folder.storePath)
    }

    func run(_ targets: [String] = [], overrides: [String] = [], jobs: Int = 1, forced: Set<String> = [])
      async throws -> Executor.Summary {
      let recipe = try RecipeLoader(registry: testRegistry(log), overrides: overrides).load(directory: folder.path)
      log.reset()
      return try await Executor(recipe: recipe, store: store, events: NullEventSink(), jobs: jobs, forced: forced)
        .run(targets: targets)
    }

    func status(overrides: [String] = []) throws -> [Planner.StageStatus] {
      let recipe = try RecipeLoader(registry: testRegistry(log), overrides: overrides).load(directory: folder.path)
      var planner = Planner(recipe: recipe, lockfile: try Lockfile.read(directory: folder.path), cache: store)
      return try planner.status()
    }

    func lock() throws -> Lockfile { try Lockfile.read(directory: folder.path) }
  }

  @Test func secondRunExecutesNothing() async throws {
    let h = try Harness(["a.yaml": ExecutorTests.diamond])
    let first = try await h.run()
    #expect(Set(first.executed) == ["top", "left", "right", "bottom", "alone"])
    let second = try await h.run()
    #expect(second.executed.isEmpty)
    #expect(h.log.all.isEmpty)
    #expect(second.upToDate.count == 5)
  }

  @Test func changingAParameterRerunsTheStageAndItsDescendantsOnly() async throws {
    let h = try Harness(["a.yaml": ExecutorTests.diamond])
    _ = try await h.run()
    let edited = ExecutorTests.diamond.replacingOccurrences(of: "left: {op: emit, from: top, value: 2}",
                                                            with: "left: {op: emit, from: top, value: 20}")
    try h.folder.write("a.yaml", edited)
    // status says so beforehand, naming the key with old and new value
    let status = try h.status()
    let left = status.first { $0.stage == "left" }!
    #expect(left.state == .stale)
    #expect(left.reasons == [.parameterChanged(path: "value", old: "2", new: "20")])
    #expect(status.first { $0.stage == "bottom" }!.reasons.contains(.upstreamWillRerun(stage: "left")))
    #expect(status.filter { $0.state == .upToDate }.map(\.stage).sorted() == ["alone", "right", "top"])

    let summary = try await h.run()
    #expect(Set(summary.executed) == ["left", "bottom"])
    #expect(h.log.set == ["left", "bottom"])
  }

  @Test func revertingRestoresFromTheCacheWithoutRunning() async throws {
    let h = try Harness(["a.yaml": ExecutorTests.diamond])
    _ = try await h.run()
    let firstLock = try h.lock()
    try h.folder.write("a.yaml", ExecutorTests.diamond.replacingOccurrences(of: "value: 2}", with: "value: 7}"))
    _ = try await h.run()
    try h.folder.write("a.yaml", ExecutorTests.diamond)
    #expect(try h.status().first { $0.stage == "left" }!.state == .restorable)
    let reverted = try await h.run()
    #expect(reverted.executed.isEmpty)
    #expect(Set(reverted.restored) == ["left", "bottom"])
    #expect(h.log.all.isEmpty)
    #expect(try h.lock() == firstLock)
  }

  @Test func identicalUpstreamBytesStopTheRerun() async throws {
    // `modulo` changes top's key but not its output bytes: dependents are not rerun (early cutoff).
    let text = ExecutorTests.diamond.replacingOccurrences(of: "top: {op: emit, value: 1}",
                                                          with: "top: {op: emit, value: 1, modulo: 1000}")
    let h = try Harness(["a.yaml": text])
    _ = try await h.run()
    try h.folder.write("a.yaml", text.replacingOccurrences(of: "modulo: 1000", with: "modulo: 999"))
    let summary = try await h.run()
    #expect(summary.executed == ["top"])
    #expect(Set(summary.upToDate) == ["left", "right", "bottom", "alone"])
  }

  @Test func aFailureStopsItsDependentsOnly() async throws {
    let text = ExecutorTests.diamond.replacingOccurrences(of: "value: 2}", with: "value: 2, fail: true}")
    let h = try Harness(["a.yaml": text])
    let summary = try await h.run(jobs: 2)
    #expect(summary.failed == ["left"])
    #expect(summary.skipped == ["bottom"])
    #expect(Set(summary.executed) == ["top", "right", "alone"])
    // the finished ones are cached: a rerun after fixing runs only the failed branch
    try h.folder.write("a.yaml", ExecutorTests.diamond)
    let fixed = try await h.run()
    #expect(Set(fixed.executed) == ["left", "bottom"])
  }

  /// `a` and `b` each return only once both have started (`meet`), so they pass only if they overlap;
  /// one after the other, the first gives up after its timeout and fails: no timing, no hang.
  @Test func independentStagesRunConcurrently() async throws {
    let h = try Harness(["a.yaml": """
      stages:
        a: {op: meet, value: 1}
        b: {op: meet, value: 2}
        c: {op: emit, extra: [a, b], value: 3}
      """])
    let summary = try await h.run(jobs: 2)
    #expect(summary.failed.isEmpty, "\(summary.outcomes)")
    #expect(Set(summary.executed) == ["a", "b", "c"])
    #expect(h.log.all == ["c"], "c ran, after both")
  }

  /// The check above can fail: with one job the first `meet` stage waits in vain and fails.
  @Test func oneJobRunsStagesOneAfterAnother() async throws {
    let h = try Harness(["a.yaml": """
      stages:
        a: {op: meet, value: 1, timeout_ms: 200}
        b: {op: meet, value: 2, timeout_ms: 200}
      """])
    let summary = try await h.run(jobs: 1)
    #expect(summary.failed.count == 1, "\(summary.outcomes)")
    guard case .failed(let message)? = summary.failed.first.flatMap({ summary.outcomes[$0] }) else { return }
    #expect(message.contains("ran one after another"), "\(message)")
  }

  /// Stages that executed and wrote a `report` output give their text back, dependencies first;
  /// restored and up-to-date stages do not repeat theirs.
  @Test func executedStagesGiveTheirReports() async throws {
    let h = try Harness(["a.yaml": """
      stages:
        top: {op: emit, value: 1}
        first: {op: report, from: top, title: "model  score", lines: ["v1  0.5", "v2  0.7"]}
        second: {op: report, from: first.data, title: other}
      """])
    let summary = try await h.run()
    let reports = try summary.reports(from: h.store)
    #expect(reports.map(\.stage) == ["first", "second"])
    #expect(reports.first?.output == "table")
    #expect(reports.first?.text == "model  score\nv1  0.5\nv2  0.7\n")
    #expect(reports.last?.text == "other\na\nb\n")
    #expect(try await h.run().reports(from: h.store).isEmpty, "nothing executed, nothing to show")
  }

  @Test func targetsRunWithTheirAncestorsOnly() async throws {
    let h = try Harness(["a.yaml": ExecutorTests.diamond])
    let summary = try await h.run(["left"])
    #expect(Set(summary.executed) == ["top", "left"])
  }

  @Test func forceRerunsAndRecomputingGivesTheStoredHash() async throws {
    let h = try Harness(["a.yaml": ExecutorTests.diamond])
    _ = try await h.run()
    let before = try h.lock()
    let forced = try await h.run(forced: ["bottom"])
    #expect(forced.executed == ["bottom"])
    #expect(try h.lock().stages["bottom"]!.outputs == before.stages["bottom"]!.outputs)
  }

  @Test func aTinyRecipeRunTwiceFromScratchGivesIdenticalHashes() async throws {
    let a = try Harness(["a.yaml": ExecutorTests.diamond])
    let b = try Harness(["a.yaml": ExecutorTests.diamond])
    _ = try await a.run()
    _ = try await b.run(jobs: 2)
    #expect(try a.lock() == b.lock())
  }

  @Test func changingAFileReadByAStageRerunsExactlyTheStagesThatReadIt() async throws {
    let h = try Harness([
      "a.yaml": "stages:\n  reader: {op: emit, file: corpus.txt}\n  after: {op: emit, from: reader}\n  other: {op: emit, value: 1}\n",
      "corpus.txt": "hello",
    ])
    _ = try await h.run()
    // touching without a change reruns nothing
    try h.folder.write("corpus.txt", "hello")
    #expect(try await h.run().executed.isEmpty)
    try h.folder.write("corpus.txt", "hello, world")
    #expect(try h.status().first { $0.stage == "reader" }!.reasons == [.fileChanged(parameter: "file", path: "corpus.txt")])
    let summary = try await h.run()
    // `after` sees identical bytes from reader (its output does not include the file) → early cutoff
    #expect(summary.executed == ["reader"])
  }

  @Test func lockfileRecordsEveryStage() async throws {
    let h = try Harness(["a.yaml": ExecutorTests.diamond])
    _ = try await h.run()
    let lock = try h.lock()
    #expect(Set(lock.stages.keys) == ["top", "left", "right", "bottom", "alone"])
    let bottom = lock.stages["bottom"]!
    #expect(bottom.inputs["from"]?.first?.reference == StageReference(stage: "left", output: "data"))
    #expect(bottom.inputs["extra"]?.first?.hash == lock.stages["right"]!.outputs["data"]!.hash)
    #expect(bottom.metrics["value"] == 4)
    #expect(bottom.outputs["data"]!.size == "value=4;value=2;value=1;value=3;value=1".utf8.count)
    // the stored bytes are what the lockfile says
    #expect(try h.store.blob(bottom.outputs["data"]!.hash) == Array("value=4;value=2;value=1;value=3;value=1".utf8))
  }
}
