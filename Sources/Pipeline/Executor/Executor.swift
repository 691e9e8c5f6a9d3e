import ArtifactStore
import Foundation

/// Runs a recipe's stages: each one whose key the action cache knows is restored without running;
/// the others run, at most `jobs` at a time, as soon as their inputs exist.
///
/// A failed stage skips its dependents only; independent stages go on and stay cached. Every finished
/// stage commits its outputs and action record in one store transaction, so a crash loses at most the
/// stages still running (which resume from their checkpoints). The lockfile is rewritten at the end.
public struct Executor: Sendable {
  public let recipe: Recipe
  public let store: Store
  public let events: any EventSink
  public var jobs: Int
  /// Stages to run even when cached (`--force`).
  public var forced: Set<String>
  public let control: RunControl
  /// Written into the run record (`lineage run -j 2 v3`).
  public var commandLine: String
  /// Whether the run rewrites the recipe's `lineage.lock` (not when verifying in a scratch store).
  public var writesLockfile = true
  /// How often long stages save a checkpoint, in seconds (they also save one when interrupted).
  public var checkpointSeconds: Double = 30
  /// `lineage run --ranks N`: the ranks of every stage whose op splits over ranks and that sets no
  /// `ranks:` of its own.
  public var defaultRanks = 1
  /// The recipe's lockfile as the caller already read it (nil: the run reads it), so that a run parses
  /// it once: at 10,000 stages it is about 5 MB of YAML.
  public var lockfile: Lockfile?
  /// The `lineage` program that `mpirun` starts for a stage on several ranks (nil: such a stage fails).
  public var workerExecutable: String?

  public init(recipe: Recipe, store: Store, events: any EventSink, jobs: Int = 1, forced: Set<String> = [],
              control: RunControl = RunControl(), commandLine: String = "lineage run") {
    self.recipe = recipe
    self.store = store
    self.events = events
    self.jobs = max(1, jobs)
    self.forced = forced
    self.control = control
    self.commandLine = commandLine
  }

  /// What became of one stage in a run.
  public enum Outcome: Sendable {
    /// Its lockfile entry is its result: the key matches, and the store holds the action record and
    /// every output (checked without decoding the record, so a no-op run of 10,000 stages decodes none).
    case upToDate(StageResult)
    case restored(ActionRecord)
    case executed(ActionRecord)
    case failed(String)
    case skipped(failedDependency: String)
    case cancelled

    /// The stage's key, outputs and metrics, when it has a result.
    public var record: StageResult? {
      switch self {
      case .upToDate(let r): return r
      case .restored(let r), .executed(let r): return StageResult(r)
      default: return nil
      }
    }
  }

  /// What a finished stage left: its key, outputs and headline metrics.
  public struct StageResult: Sendable, Equatable {
    public var key: ContentHash
    public var outputs: [String: ArtifactRef]
    public var metrics: [String: Double]

    public init(key: ContentHash, outputs: [String: ArtifactRef], metrics: [String: Double]) {
      self.key = key
      self.outputs = outputs
      self.metrics = metrics
    }

    public init(_ record: ActionRecord) { self.init(key: record.key, outputs: record.outputs, metrics: record.metrics) }
  }

  /// The outcome of every stage the run touched.
  public struct Summary: Sendable {
    public var outcomes: [String: Outcome]
    public var order: [String]
    public var seconds: Double

    public func names(_ matching: (Outcome) -> Bool) -> [String] { order.filter { matching(outcomes[$0]!) } }
    public var executed: [String] { names { if case .executed = $0 { true } else { false } } }
    public var restored: [String] { names { if case .restored = $0 { true } else { false } } }
    public var upToDate: [String] { names { if case .upToDate = $0 { true } else { false } } }
    public var failed: [String] { names { if case .failed = $0 { true } else { false } } }
    public var skipped: [String] { names { if case .skipped = $0 { true } else { false } } }
    public var cancelled: [String] { names { if case .cancelled = $0 { true } else { false } } }
  }

  /// Runs `targets` and their ancestors (every stage when empty).
  ///
  /// - Throws: `RecipeError` for a malformed lockfile; store errors that make recording results
  ///   impossible. Stage failures are not thrown: they are outcomes.
  public func run(targets: [String] = []) async throws -> Summary {
    let (first, written) = try await runOnce(targets: targets, lockfile: lockfile ?? Lockfile.read(directory: recipe.directory))
    let repaired = first.outcomes.values.contains {
      if case .failed(let message) = $0 { return message.hasPrefix(Executor.corruptInputPrefix) }
      return false
    }
    guard repaired, !control.isCancelled else { return first }
    // A corrupt input was removed: plan again, which reruns its producer and the stages that failed.
    var (second, _) = try await runOnce(targets: targets, lockfile: written)
    for (name, outcome) in first.outcomes {
      switch (outcome, second.outcomes[name]) {
      case (.executed, .upToDate?), (.restored, .upToDate?): second.outcomes[name] = outcome
      default: break
      }
    }
    second.seconds += first.seconds
    return second
  }

  /// Marks a failure whose cause (a corrupt input blob, now removed) a second pass repairs.
  static let corruptInputPrefix = "\u{1}corrupt-input: "

  /// One pass: plans against `lockfile`, runs, and returns the summary and the lockfile it wrote.
  private func runOnce(targets: [String], lockfile: Lockfile) async throws -> (Summary, Lockfile) {
    let started = Date()
    var planner = Planner(recipe: recipe, lockfile: lockfile, cache: store)
    let plan = try planner.status(targets: targets, forced: forced)
    events.emit(.planned(execute: plan.filter { $0.state == .stale }.map(\.stage),
                         restore: plan.filter { $0.state == .restorable }.map(\.stage),
                         upToDate: plan.filter { $0.state == .upToDate }.map(\.stage)))
    let reasons = Dictionary(uniqueKeysWithValues: plan.map { ($0.stage, $0.reasons) })
    // What the plan already found, so that no stage's store lookups are made twice:
    // - results it read, by key: a stage whose key is still the planned one takes its record from here;
    // - keys it computed, with the input hashes they were computed from;
    // - stages it found up to date, with the key it checked in the store.
    var planned: [ContentHash: ActionRecord] = [:]
    var plannedKeys: [String: (inputs: [String: [ContentHash]], key: ContentHash)] = [:]
    var plannedUpToDate: [String: ContentHash] = [:]
    for status in plan {
      guard let key = status.key else { continue }
      if let record = status.record { planned[key] = record }
      if let inputs = status.inputHashes { plannedKeys[status.stage] = (inputs, key) }
      if status.state == .upToDate { plannedUpToDate[status.stage] = key }
    }

    let graph = recipe.graph
    let chosen = Set(plan.compactMap { graph.index[$0.stage] })
    var waitingOn = [Int](repeating: 0, count: graph.names.count)
    for i in chosen { waitingOn[i] = graph.dependencies[i].count }
    // A queue: taken from `readyHead`, appended at the end (removing the first of an array of
    // thousands would move all the others, each time).
    var ready = graph.topologicalOrder().filter { chosen.contains($0) && waitingOn[$0] == 0 }
    var readyHead = 0
    var outcomes: [String: Outcome] = [:]
    var known: [String: [String: ArtifactRef]] = [:]

    /// Records a finished stage: its dependents become ready, or are skipped when it failed.
    func release(_ i: Int, outcome: Outcome) {
      if let record = outcome.record { known[graph.names[i]] = record.outputs }
      for d in graph.dependents[i] where chosen.contains(d) {
        if outcome.record == nil {
          skip(d, because: graph.names[i], outcome: outcome)
          continue
        }
        waitingOn[d] -= 1
        if waitingOn[d] == 0, outcomes[graph.names[d]] == nil { ready.append(d) }
      }
    }
    func skip(_ i: Int, because dependency: String, outcome: Outcome) {
      let name = graph.names[i]
      guard outcomes[name] == nil else { return }
      if case .cancelled = outcome {
        outcomes[name] = .cancelled
      } else {
        let root: String
        if case .skipped(let failed) = outcome { root = failed } else { root = dependency }
        outcomes[name] = .skipped(failedDependency: root)
        events.emit(.stageSkipped(stage: name, failedDependency: root))
      }
      for d in graph.dependents[i] where chosen.contains(d) { skip(d, because: dependency, outcome: outcomes[name]!) }
    }

    // Structured concurrency: at most `jobs` stages in flight; a finished stage releases its dependents.
    await withTaskGroup(of: (Int, Outcome).self) { group in
      var running = 0
      repeat {
        while running < jobs, readyHead < ready.count {
          let i = ready[readyHead]
          readyHead += 1
          let stage = recipe.stages[i]
          if control.isCancelled {
            outcomes[stage.name] = .cancelled
            release(i, outcome: .cancelled)
            continue
          }
          let prepared: Prepared
          do {
            prepared = try prepare(stage, known: known, planner: &planner, lock: lockfile, planned: plannedKeys[stage.name])
          } catch {
            let message = "\(error)"
            events.emit(.stageFailed(stage: stage.name, message: message))
            outcomes[stage.name] = .failed(message)
            release(i, outcome: .failed(message))
            continue
          }
          // An up-to-date stage is settled here, without a task: a no-op run of 10,000 stages would
          // otherwise schedule 10,000 of them.
          if let result = try? upToDate(stage, prepared, checked: plannedUpToDate[stage.name] == prepared.key) {
            outcomes[stage.name] = .upToDate(result)
            release(i, outcome: .upToDate(result))
            continue
          }
          let stageReasons = reasons[stage.name] ?? []
          let known = planned[prepared.key]
          group.addTask { (i, await execute(stage, prepared, reasons: stageReasons, planned: known)) }
          running += 1
        }
        guard let (i, outcome) = await group.next() else { break }
        running -= 1
        outcomes[recipe.stages[i].name] = outcome
        release(i, outcome: outcome)
      } while running > 0 || readyHead < ready.count
    }

    let order = graph.topologicalOrder().filter { chosen.contains($0) }.map { graph.names[$0] }
    let summary = Summary(outcomes: outcomes, order: order, seconds: Date().timeIntervalSince(started))
    let written = try record(summary, previous: lockfile, planner: &planner, started: started)
    return (summary, written)
  }

  // MARK: - One stage

  /// A stage's key and inputs, ready to restore or run.
  struct Prepared: Sendable {
    var inputs: [String: [InputArtifact]]
    /// The stage's cache key, computed once (or taken from the plan, for the same inputs).
    var key: ContentHash
    var lockedKey: ContentHash? { locked?.key }
    /// The stage's lockfile entry.
    var locked: Lockfile.Entry?
  }

  /// - Parameter planned: the key the plan computed for this stage and the input hashes it used.
  private func prepare(_ stage: Stage, known: [String: [String: ArtifactRef]], planner: inout Planner,
                       lock: Lockfile, planned: (inputs: [String: [ContentHash]], key: ContentHash)?) throws -> Prepared {
    var inputs: [String: [InputArtifact]] = [:]
    for (slot, refs) in stage.inputs {
      inputs[slot] = refs.map { ref in
        let artifact = known[ref.stage]![ref.output]!
        return InputArtifact(stage: ref.stage, output: ref.output,
                             kind: ArtifactKind(rawValue: artifact.kind) ?? .dataset,
                             hash: artifact.hash, size: artifact.size)
      }
    }
    let hashes = inputs.mapValues { $0.map(\.hash) }
    // The same op, parameters, files and seed as when planned: the same inputs give the same key.
    let key = try planned.flatMap { $0.inputs == hashes ? $0.key : nil }
      ?? CacheKeyInputs(op: stage.op.name, opVersion: stage.op.version, parameters: stage.parameters,
                        inputs: hashes, files: try planner.fileHashes(for: stage), seed: stage.seed).key
    return Prepared(inputs: inputs, key: key, locked: lock.stages[stage.name])
  }

  /// The stage's lockfile result when it is still its result: not forced, the same key, and the store
  /// holds the record and every output (checked without decoding the record).
  ///
  /// - Parameter checked: the plan found this stage up to date with this key, store included, so the
  ///   store is not asked again.
  private func upToDate(_ stage: Stage, _ prepared: Prepared, checked: Bool) throws -> StageResult? {
    guard !forced.contains(stage.name), let locked = prepared.locked, locked.key == prepared.key else { return nil }
    guard try checked || store.holdsResult(for: prepared.key, outputs: locked.outputs) else { return nil }
    return StageResult(key: prepared.key, outputs: locked.outputs, metrics: locked.metrics)
  }

  /// - Parameter planned: the cached result the plan read for this stage's key, if any.
  private func execute(_ stage: Stage, _ prepared: Prepared, reasons: [StaleReason], planned: ActionRecord?) async -> Outcome {
    let key = prepared.key
    do {
      if !forced.contains(stage.name), let record = try planned ?? store.cachedResult(for: key) {
        if prepared.lockedKey == key { return .upToDate(StageResult(record)) }
        events.emit(.stageRestored(stage: stage.name))
        return .restored(record)
      }
    } catch {
      let message = "cannot read the cache: \(error)"
      events.emit(.stageFailed(stage: stage.name, message: message))
      return .failed(message)
    }
    events.emit(.stageStarted(stage: stage.name, reasons: reasons.isEmpty ? [.definitionChanged] : reasons))
    let context = StageContext(stage: stage.name, parameters: stage.parameters, seed: stage.seed,
                               checkpointSeconds: checkpointSeconds,
                               recipeDirectory: recipe.directory, key: key, inputs: prepared.inputs,
                               store: store, events: events)
    control.register(context)
    defer { control.unregister(context) }
    let started = Date()
    let ranks = ranks(of: stage, context: context)
    let result: Result<StageOutput, any Error>
    if ranks > 1 {
      let launch = workerExecutable.map {
        RankedLaunch(stage: stage, ranks: ranks, job: WorkerJob(stage: stage, key: key, inputs: prepared.inputs,
                                                                checkpointSeconds: checkpointSeconds, overrides: recipe.overrides),
                     settings: recipe.mpi, recipeDirectory: recipe.directory, storePath: store.path, executable: $0)
      }
      result = await Executor.onOwnThread { [store] in
        Result {
          guard let launch else { throw StageFailure("this program cannot start ranks (no worker executable)") }
          context.log("running on \(ranks) ranks (mpirun)")
          return try launch.run(context, store: store)
        }
      }
    } else {
      result = await Executor.onOwnThread { Result { try stage.op.run(context) } }
    }
    let seconds = Date().timeIntervalSince(started)
    switch result {
    case .failure(let error):
      if error is CancellationError || context.isCancelled {
        events.emit(.stageCancelled(stage: stage.name))
        return .cancelled
      }
      if case StoreError.corruptBlob(let hash, _) = error {
        // The bytes on disk no longer match their hash: drop them, so that a repair pass recomputes
        // the stage that made them (its result now lacks an output) and then this one.
        try? store.write { try $0.deleteBlob(hash) }
        let message = "input blob \(hash.short) was corrupt on disk; removed it, its producer is recomputed"
        events.emit(.stageFailed(stage: stage.name, message: message))
        return .failed(Executor.corruptInputPrefix + message)
      }
      let message = "\(error)"
      events.emit(.stageFailed(stage: stage.name, message: message))
      return .failed(message)
    case .success(let output):
      do {
        let record = try commit(stage, key: key, prepared: prepared, output: output, log: context.logText,
                                seconds: seconds)
        let reports = stage.op.schema.outputs.filter { $0.kind == .report }.map(\.name)
        events.emit(.stageFinished(stage: stage.name, seconds: seconds, metrics: output.metrics, reports: reports))
        return .executed(record)
      } catch {
        let message = "\(error)"
        events.emit(.stageFailed(stage: stage.name, message: message))
        return .failed(message)
      }
    }
  }

  /// The ranks a stage runs on: its own `ranks:`, else `defaultRanks` when its op splits and its settings
  /// allow that many (else one, with a line in its log saying why).
  private func ranks(of stage: Stage, context: StageContext) -> Int {
    if let ranks = stage.ranks { return ranks }
    guard defaultRanks > 1, stage.op.splitsOverRanks else { return 1 }
    if let problem = stage.op.rankProblem(ranks: defaultRanks, parameters: stage.parameters) {
      context.log("runs on one process, not --ranks \(defaultRanks): \(problem)")
      return 1
    }
    return defaultRanks
  }

  /// Stores a stage's outputs and action record in one transaction, and drops its checkpoint.
  private func commit(_ stage: Stage, key: ContentHash, prepared: Prepared, output: StageOutput, log: String,
                      seconds: Double) throws -> ActionRecord {
    let schema = stage.op.schema
    for spec in schema.outputs where output.artifacts[spec.name] == nil {
      throw StageFailure("op \(stage.op.name) produced no '\(spec.name)' output (a bug in the op)")
    }
    for name in output.artifacts.keys where schema.output(name) == nil {
      throw StageFailure("op \(stage.op.name) produced an undeclared output '\(name)' (a bug in the op)")
    }
    // Hash outside the transaction: a retry after the map grew must not hash again.
    var refs: [String: ArtifactRef] = [:]
    for spec in schema.outputs {
      let bytes = output.artifacts[spec.name]!
      refs[spec.name] = ArtifactRef(hash: ContentHash.of(bytes), size: bytes.count, kind: spec.kind.rawValue)
    }
    return try store.write { txn in
      for spec in schema.outputs { try txn.putBlob(output.artifacts[spec.name]!, hash: refs[spec.name]!.hash) }
      let record = ActionRecord(
        key: key, stage: stage.name, op: stage.op.name, opVersion: stage.op.version, outputs: refs,
        metrics: output.metrics, log: log, durationSeconds: seconds,
        finishedAt: Date().timeIntervalSince1970, params: stage.parameters.canonicalJSON,
        inputs: Executor.flatInputs(prepared.inputs), seed: stage.seed)
      try txn.putAction(record)
      try txn.deleteCheckpoint(for: key)
      return record
    }
  }

  /// `slot` for a single input, `slot[i]` for each of several.
  static func flatInputs(_ inputs: [String: [InputArtifact]]) -> [String: ContentHash] {
    var out: [String: ContentHash] = [:]
    for (slot, list) in inputs {
      if list.count == 1 { out[slot] = list[0].hash } else {
        for (i, input) in list.enumerated() { out["\(slot)[\(i)]"] = input.hash }
      }
    }
    return out
  }

  /// Runs blocking work on a thread of its own, so long ops never occupy the concurrency pool.
  static func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
      let thread = Thread { continuation.resume(returning: body()) }
      thread.stackSize = 64 << 20
      thread.start()
    }
  }

  // MARK: - Lockfile and run record

  /// Writes the lockfile (when it changed) and the run record; returns the lockfile as it now is.
  private func record(_ summary: Summary, previous: Lockfile, planner: inout Planner, started: Date) throws -> Lockfile {
    var lock = Lockfile()
    let names = Set(recipe.stages.map(\.name))
    for (name, entry) in previous.stages where names.contains(name) { lock.stages[name] = entry }
    for stage in recipe.stages {
      guard let record = summary.outcomes[stage.name]?.record else { continue }
      var inputs: [String: [Lockfile.LockedInput]] = [:]
      for (slot, refs) in stage.inputs {
        inputs[slot] = refs.compactMap { ref in
          summary.outcomes[ref.stage]?.record?.outputs[ref.output].map {
            Lockfile.LockedInput(reference: ref, hash: $0.hash)
          }
        }
      }
      lock.stages[stage.name] = Lockfile.Entry(
        op: stage.op.name, opVersion: stage.op.version, key: record.key, seed: stage.seed,
        parameters: stage.parameters, inputs: inputs, files: try planner.fileHashes(for: stage),
        outputs: record.outputs, metrics: record.metrics)
    }
    if writesLockfile && lock != previous { try lock.write(directory: recipe.directory) }
    if !summary.executed.isEmpty || !summary.failed.isEmpty || !summary.restored.isEmpty {
      try store.write { txn in
        try txn.appendRun(RunRecord(id: 0, startedAt: started.timeIntervalSince1970,
                                    finishedAt: Date().timeIntervalSince1970, executed: summary.executed,
                                    restored: summary.restored, failed: summary.failed, command: commandLine))
      }
    }
    return writesLockfile ? lock : previous
  }
}

/// Lets the CLI stop a run (Ctrl-C): every running stage sees `isCancelled`, saves a checkpoint and
/// stops; stages not yet started are not started.
public final class RunControl: @unchecked Sendable {  // state guarded by `lock`
  private let lock = NSLock()
  private var cancelled = false
  private var contexts: [ObjectIdentifier: StageContext] = [:]

  public init() {}

  public var isCancelled: Bool {
    lock.lock()
    defer { lock.unlock() }
    return cancelled
  }

  public func cancel() {
    lock.lock()
    cancelled = true
    let running = Array(contexts.values)
    lock.unlock()
    for context in running { context.cancel() }
  }

  func register(_ context: StageContext) {
    lock.lock()
    contexts[ObjectIdentifier(context)] = context
    let stop = cancelled
    lock.unlock()
    if stop { context.cancel() }
  }

  func unregister(_ context: StageContext) {
    lock.lock()
    contexts[ObjectIdentifier(context)] = nil
    lock.unlock()
  }
}
