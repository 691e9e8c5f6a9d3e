import ArtifactStore
import Foundation

/// Everything a running op may use: its parameters, inputs, seed, the store (through checkpoints and
/// inputs only), and the event sink for progress and log lines.
///
/// One context per stage execution. It is shared between the op's thread and the executor (which sets
/// `isCancelled`), so its mutable state sits behind a lock.
public final class StageContext: @unchecked Sendable {  // mutable state guarded by `lock`
  public let stage: String
  /// Resolved parameters: defaults filled in, validated against the op's schema.
  public let parameters: ParamValue
  public let seed: UInt64
  /// The recipe folder, to resolve `path` parameters.
  public let recipeDirectory: String
  /// The stage's cache key; checkpoints are filed under it.
  public let key: ContentHash
  /// How often a long op should save a checkpoint, in seconds (`lineage run --checkpoint-every`).
  public let checkpointSeconds: Double
  /// The MPI ranks this execution runs on (`ranks: N`), or nil on one process. Every rank runs the op;
  /// only rank 0 saves checkpoints (the others' calls do nothing) and reports progress.
  public let processes: (any ProcessGroup)?

  private let inputsBySlot: [String: [InputArtifact]]
  /// The store: nil on ranks other than 0, which receive inputs and checkpoints from rank 0 (so that
  /// a cluster's other nodes need no store, and no two hosts ever open one LMDB environment).
  private let store: Store?
  private let events: any EventSink
  private let started = Date()
  private let lock = NSLock()
  private var cancelled = false
  private var lastProgress: Date?
  private var logLines: [String] = []

  init(stage: String, parameters: ParamValue, seed: UInt64, checkpointSeconds: Double = 30,
       recipeDirectory: String, key: ContentHash,
       inputs: [String: [InputArtifact]], store: Store?, events: any EventSink, processes: (any ProcessGroup)? = nil) {
    precondition(store != nil || (processes?.rank ?? 0) != 0, "rank 0 needs the store")
    self.processes = processes
    self.stage = stage
    self.parameters = parameters
    self.seed = seed
    self.checkpointSeconds = checkpointSeconds
    self.recipeDirectory = recipeDirectory
    self.key = key
    self.inputsBySlot = inputs
    self.store = store
    self.events = events
  }

  // MARK: - Inputs

  /// The artifact filling a single-valued slot, or nil when the slot is empty or holds a literal.
  public func input(_ slot: String) -> InputArtifact? { inputsBySlot[slot]?.first }
  /// The artifacts filling a slot, in the order the stage file lists them.
  public func inputs(_ slot: String) -> [InputArtifact] { inputsBySlot[slot] ?? [] }

  /// The literal a slot holds instead of a reference (`tokenizer: bytes`, `corpus: builtin:library`),
  /// or nil when the slot names a stage or is empty.
  public func literal(_ slot: String) -> String? { parameters[slot].string }

  /// The bytes of an input, read from the store and checked against their hash. On several ranks,
  /// rank 0 reads them and sends them to the others (a collective call: every rank makes it).
  public func bytes(of input: InputArtifact) throws -> [UInt8] {
    guard let processes, processes.size > 1 else { return try storeOfRankZero.blob(input.hash) }
    let bytes = try processes.broadcastFromRankZero(processes.rank == 0 ? try storeOfRankZero.blob(input.hash) : [])
    guard ContentHash.of(bytes) == input.hash else {
      throw StageFailure("input \(input.stage).\(input.output) arrived from rank 0 damaged")
    }
    return bytes
  }

  private var storeOfRankZero: Store {
    get throws {
      guard let store else { throw StageFailure("only rank 0 reads the store (a bug in the op: it must ask on every rank)") }
      return store
    }
  }

  /// The absolute path of a `path` parameter's value.
  public func resolvedPath(_ relative: String) -> String {
    relative.hasPrefix("/") ? relative : recipeDirectory + "/" + relative
  }

  // MARK: - Progress and log

  /// Reports progress; rate-limited so a tight loop can call it every step.
  public func progress(step: Int, of total: Int, _ scalars: [(String, Double)] = []) {
    let now = Date()
    lock.lock()
    let due = lastProgress.map { now.timeIntervalSince($0) >= 0.2 } ?? true
    if due || step == total { lastProgress = now }
    lock.unlock()
    guard due || step == total else { return }
    events.emit(.stageProgress(stage: stage, progress: StageProgress(
      step: step, total: total, scalars: scalars.map { .init($0.0, $0.1) },
      elapsedSeconds: now.timeIntervalSince(started))))
  }

  /// Adds a line to the stage's log (kept in the action record) and shows it.
  public func log(_ line: String) {
    lock.lock()
    logLines.append(line)
    lock.unlock()
    events.emit(.stageLog(stage: stage, line: line))
  }

  /// Passes on an event a stage's ranks reported.
  func emit(_ event: RunEvent) { events.emit(event) }

  var logText: String {
    lock.lock()
    defer { lock.unlock() }
    return logLines.joined(separator: "\n")
  }

  // MARK: - Cancellation

  /// True once the run is being stopped (Ctrl-C): save a checkpoint and throw `CancellationError`.
  ///
  /// On several ranks it stays false: the request reaches each rank at its own moment, so a rank that
  /// stopped on it alone would leave the others waiting in a collective call. The training loop stops
  /// them all at one step instead, agreed from `stopRequested`.
  public var isCancelled: Bool {
    guard (processes?.size ?? 1) == 1 else { return false }
    return stopRequested
  }

  /// Whether this process was asked to stop, on its own: only for an agreement between ranks.
  public var stopRequested: Bool {
    lock.lock()
    defer { lock.unlock() }
    return cancelled
  }

  func cancel() {
    lock.lock()
    cancelled = true
    lock.unlock()
  }

  // MARK: - Checkpoints

  /// Saves the op's state after `step` of `total`, replacing the previous checkpoint of this stage's key.
  /// A rerun of the same key resumes from it; a finished stage's checkpoint is deleted with its commit.
  public func saveCheckpoint(step: Int, of total: Int, state: [UInt8]) throws {
    guard (processes?.rank ?? 0) == 0 else { return }
    try storeOfRankZero.write { txn in
      let hash = try txn.putBlob(state)
      try txn.putCheckpoint(Checkpoint(step: step, total: total, state: hash,
                                       savedAt: Date().timeIntervalSince1970), for: key)
    }
  }

  /// Deletes this stage's checkpoint (e.g. one that cannot be read): the next execution starts over.
  public func discardCheckpoint() throws {
    guard (processes?.rank ?? 0) == 0 else { return }
    try storeOfRankZero.write { try $0.deleteCheckpoint(for: key) }
  }

  /// The last checkpoint saved under this stage's key, if any; its bytes are verified.
  ///
  /// - Throws: `StoreError.corruptBlob` when the saved state does not match its hash.
  ///
  /// On several ranks, rank 0 reads it and sends it to the others (a collective call).
  public func loadCheckpoint() throws -> (step: Int, total: Int, state: [UInt8])? {
    guard let processes, processes.size > 1 else { return try readCheckpoint() }
    var mine: [UInt8] = []
    if processes.rank == 0, let (step, total, state) = try readCheckpoint() {
      for n in [step, total] { withUnsafeBytes(of: Int64(n).littleEndian) { mine += $0 } }
      mine += state
    }
    let sent = try processes.broadcastFromRankZero(mine)
    guard sent.count >= 16 else { return nil }
    func integer(_ at: Int) -> Int {
      Int(Int64(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(sent[at + $1]) << (8 * UInt64($1)) }))
    }
    return (integer(0), integer(8), Array(sent[16...]))
  }

  private func readCheckpoint() throws -> (step: Int, total: Int, state: [UInt8])? {
    let store = try storeOfRankZero
    guard let checkpoint = try store.read({ try $0.checkpoint(for: key) }) else { return nil }
    let state = try store.blob(checkpoint.state)
    events.emit(.stageResumed(stage: stage, step: checkpoint.step, total: checkpoint.total))
    return (checkpoint.step, checkpoint.total, state)
  }
}

/// One input artifact of a stage: which stage and output it came from, its kind and content hash.
public struct InputArtifact: Sendable, Equatable {
  public var stage: String
  public var output: String
  public var kind: ArtifactKind
  public var hash: ContentHash
  public var size: Int

  public init(stage: String, output: String, kind: ArtifactKind, hash: ContentHash, size: Int) {
    self.stage = stage
    self.output = output
    self.kind = kind
    self.hash = hash
    self.size = size
  }
}
