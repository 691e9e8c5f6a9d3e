import ArtifactStore

/// Decides, for every stage, whether it is up to date, can be restored from the cache, or must run —
/// and why. Reads the store and the lockfile; writes nothing.
///
/// A stage's key needs its inputs' content hashes, which are known only when each upstream stage's
/// result is known (cached). When an upstream stage must run first, the downstream key is unknown until
/// then: the stage is reported stale "upstream X reruns first", and the executor decides after X ran
/// (early cutoff may still restore it).
public struct Planner {
  public let recipe: Recipe
  public let lockfile: Lockfile
  let cache: any ResultCache
  private var fileHashes: [String: ContentHash] = [:]

  public init(recipe: Recipe, lockfile: Lockfile, cache: any ResultCache) {
    self.recipe = recipe
    self.lockfile = lockfile
    self.cache = cache
  }

  /// What `lineage status` shows for one stage.
  public struct StageStatus: Sendable {
    public enum State: String, Sendable {
      /// The lockfile's result is this stage's current result.
      case upToDate = "up to date"
      /// Not the lockfile's result, but the store has it (e.g. after reverting an edit): restored, not run.
      case restorable = "cached"
      /// Must run.
      case stale
    }
    public var stage: String
    public var state: State
    public var reasons: [StaleReason]
    /// Known when every input's hash is known.
    public var key: ContentHash?
    /// How long the lockfile's result of this stage took to compute (from its action record): an
    /// estimate of what rerunning it costs. Read for stale stages only.
    public var lastDurationSeconds: Double?
    /// The cached result for `key`, when the store has it (up to date or restorable): the executor
    /// takes it from here rather than reading and decoding the record again.
    public var record: ActionRecord?
    /// The input hashes `key` was computed from.
    public var inputHashes: [String: [ContentHash]]?
  }

  /// The status of `targets` and their ancestors (every stage when empty), in topological order.
  ///
  /// - Parameter forced: stages to treat as stale whatever the cache holds (`--force`).
  public mutating func status(targets: [String] = [], forced: Set<String> = []) throws -> [StageStatus] {
    let graph = recipe.graph
    let chosen = targets.isEmpty ? Set(graph.names.indices)
      : graph.closure(of: targets.compactMap { graph.index[$0] })
    var known: [String: [String: ArtifactRef]] = [:]
    var result: [StageStatus] = []
    for i in graph.topologicalOrder() where chosen.contains(i) {
      let stage = recipe.stages[i]
      let lock = lockfile.stages[stage.name]
      // The cost estimate of a stale stage: decoded only for those (an up-to-date stage's record is
      // read once, below).
      func lastDuration() throws -> Double? { try lock.flatMap { try cache.cachedResult(for: $0.key) }?.durationSeconds }
      var status = StageStatus(stage: stage.name, state: .stale, reasons: [], key: nil, lastDurationSeconds: nil)
      let waiting = stage.dependencies.filter { known[$0] == nil }
      let files = try fileHashes(for: stage)
      if !waiting.isEmpty {
        status.reasons = waiting.map { .upstreamWillRerun(stage: $0) }
          + Planner.reasons(stage: stage, inputs: nil, files: files, lock: lock).filter { $0 != .neverRun }
        if lock == nil { status.reasons.insert(.neverRun, at: 0) }
        status.lastDurationSeconds = try lastDuration()
        result.append(status)
        continue
      }
      let inputs = Planner.inputHashes(stage, known: known)
      let keyInputs = CacheKeyInputs(op: stage.op.name, opVersion: stage.op.version, parameters: stage.parameters,
                                     inputs: inputs.mapValues { $0.map(\.hash) }, files: files, seed: stage.seed)
      let key = keyInputs.key
      status.key = key
      status.inputHashes = keyInputs.inputs
      if forced.contains(stage.name) {
        status.reasons = [.forced]
        status.lastDurationSeconds = try lastDuration()
      } else if let lock, lock.key == key, try cache.holdsResult(for: key, outputs: lock.outputs) {
        // The lockfile's result, still in the store: its outputs are the lockfile's (written from
        // that record, and checked against it by `pull`), so the record need not be decoded.
        status.state = .upToDate
        known[stage.name] = lock.outputs
      } else if let record = try cache.cachedResult(for: key) {
        status.state = lock?.key == key ? .upToDate : .restorable
        status.record = record
        known[stage.name] = record.outputs
      } else {
        status.reasons = Planner.reasons(stage: stage, inputs: inputs, files: files, lock: lock)
        if lock?.key == key { status.reasons = [.outputsMissing] }
        if status.reasons.isEmpty { status.reasons = [.definitionChanged] }
        status.lastDurationSeconds = try lastDuration()
      }
      result.append(status)
    }
    return result
  }

  /// The content hashes of a stage's `path` parameters (hashed once per planner).
  public mutating func fileHashes(for stage: Stage) throws -> [String: ContentHash] {
    var out: [String: ContentHash] = [:]
    for path in stage.pathParameters {
      guard let relative = stage.parameters[path: path].string else { continue }
      let full = relative.hasPrefix("/") ? relative : recipe.directory + "/" + relative
      if let h = fileHashes[full] {
        out[path] = h
      } else {
        let h = try FileDigest.hash(path: full)
        fileHashes[full] = h
        out[path] = h
      }
    }
    return out
  }

  /// The input artifacts of a stage, slot by slot, from its dependencies' known outputs.
  static func inputHashes(_ stage: Stage, known: [String: [String: ArtifactRef]]) -> [String: [(ref: StageReference, hash: ContentHash)]] {
    var out: [String: [(ref: StageReference, hash: ContentHash)]] = [:]
    for (slot, refs) in stage.inputs {
      out[slot] = refs.compactMap { ref in known[ref.stage]?[ref.output].map { (ref, $0.hash) } }
    }
    return out
  }

  /// Everything that differs between the stage as defined now and its lockfile entry.
  static func reasons(stage: Stage, inputs: [String: [(ref: StageReference, hash: ContentHash)]]?,
                      files: [String: ContentHash], lock: Lockfile.Entry?) -> [StaleReason] {
    guard let lock else { return [.neverRun] }
    var reasons: [StaleReason] = []
    if lock.op != stage.op.name {
      return [.opChanged(old: lock.op, new: stage.op.name)]
    }
    if lock.opVersion != stage.op.version {
      reasons.append(.opVersionChanged(op: stage.op.name, old: lock.opVersion, new: stage.op.version))
    }
    let old = Dictionary(lock.parameters.flattened().map { ($0.path, $0.value) }, uniquingKeysWith: { a, _ in a })
    let new = Dictionary(stage.parameters.flattened().map { ($0.path, $0.value) }, uniquingKeysWith: { a, _ in a })
    for path in Set(old.keys).union(new.keys).sorted() where old[path] != new[path] {
      // An int and the same number as a float are the same parameter value.
      if let a = old[path]?.double, let b = new[path]?.double, a == b { continue }
      reasons.append(.parameterChanged(path: path, old: old[path]?.displayText ?? "(unset)",
                                       new: new[path]?.displayText ?? "(unset)"))
    }
    if lock.seed != stage.seed { reasons.append(.seedChanged(old: lock.seed, new: stage.seed)) }
    for (parameter, hash) in files.sorted(by: { $0.key < $1.key }) where lock.files[parameter] != hash {
      reasons.append(.fileChanged(parameter: parameter, path: stage.parameters[path: parameter].string ?? parameter))
    }
    if let inputs {
      for slot in inputs.keys.sorted() {
        let before = lock.inputs[slot] ?? []
        for (i, now) in inputs[slot]!.enumerated() where i >= before.count || before[i].hash != now.hash {
          reasons.append(.inputChanged(stage: now.ref.stage, output: now.ref.output))
        }
      }
    }
    return reasons
  }
}

/// Where the planner looks up finished results: the action cache, answering only for results whose
/// output artifacts are all still in the store.
public protocol ResultCache {
  func cachedResult(for key: ContentHash) throws -> ActionRecord?
  /// Whether an action record is stored under `key` and every one of `outputs` is in the store,
  /// without decoding the record.
  func holdsResult(for key: ContentHash, outputs: [String: ArtifactRef]) throws -> Bool
}

extension Store: ResultCache {
  public func cachedResult(for key: ContentHash) throws -> ActionRecord? {
    try read { txn in
      guard let record = try txn.action(for: key) else { return nil }
      for output in record.outputs.values where try !txn.hasBlob(output.hash) { return nil }
      return record
    }
  }

  public func holdsResult(for key: ContentHash, outputs: [String: ArtifactRef]) throws -> Bool {
    try read { txn in
      guard try txn.hasAction(for: key) else { return false }
      for output in outputs.values where try !txn.hasBlob(output.hash) { return false }
      return true
    }
  }
}
