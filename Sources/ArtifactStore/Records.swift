/// One output of a finished stage, referenced by hash.
public struct ArtifactRef: Codable, Hashable, Sendable {
  public var hash: ContentHash
  public var size: Int
  /// The artifact kind (`model`, `dataset`, …) as the op's schema declares it.
  public var kind: String

  public init(hash: ContentHash, size: Int, kind: String) {
    self.hash = hash
    self.size = size
    self.kind = kind
  }
}

/// What the action cache keeps for one stage execution, under the stage's cache key.
public struct ActionRecord: Codable, Equatable, Sendable {
  public var key: ContentHash
  public var stage: String
  public var op: String
  public var opVersion: Int
  /// Output name → artifact.
  public var outputs: [String: ArtifactRef]
  /// Headline scalars.
  public var metrics: [String: Double]
  /// The stage's log lines.
  public var log: String
  public var durationSeconds: Double
  /// Seconds since 1970.
  public var finishedAt: Double
  /// Canonical JSON of the resolved parameters.
  public var params: String
  /// Input slot → artifact hash.
  public var inputs: [String: ContentHash]
  public var seed: UInt64

  public init(key: ContentHash, stage: String, op: String, opVersion: Int, outputs: [String: ArtifactRef],
              metrics: [String: Double], log: String, durationSeconds: Double, finishedAt: Double, params: String,
              inputs: [String: ContentHash], seed: UInt64) {
    self.key = key
    self.stage = stage
    self.op = op
    self.opVersion = opVersion
    self.outputs = outputs
    self.metrics = metrics
    self.log = log
    self.durationSeconds = durationSeconds
    self.finishedAt = finishedAt
    self.params = params
    self.inputs = inputs
    self.seed = seed
  }
}

/// A resumable stage's saved state: the step it reached and its state bytes (a blob, verified on read).
public struct Checkpoint: Codable, Equatable, Sendable {
  public var step: Int
  public var total: Int
  public var state: ContentHash
  public var savedAt: Double

  public init(step: Int, total: Int, state: ContentHash, savedAt: Double) {
    self.step = step
    self.total = total
    self.state = state
    self.savedAt = savedAt
  }
}

/// One `lineage run`: what it executed, restored and failed.
public struct RunRecord: Codable, Equatable, Sendable {
  /// Assigned by the store: the previous run's id + 1.
  public var id: Int
  public var startedAt: Double
  public var finishedAt: Double
  public var executed: [String]
  public var restored: [String]
  public var failed: [String]
  public var command: String

  public init(id: Int = 0, startedAt: Double, finishedAt: Double, executed: [String], restored: [String],
              failed: [String], command: String) {
    self.id = id
    self.startedAt = startedAt
    self.finishedAt = finishedAt
    self.executed = executed
    self.restored = restored
    self.failed = failed
    self.command = command
  }
}

/// What `fsck` found.
public struct FsckReport: Sendable, Equatable {
  public struct MissingOutputs: Sendable, Equatable {
    public var action: ContentHash
    public var stage: String
    public var missing: [ContentHash]
  }

  public var blobsChecked = 0
  public var bytesChecked = 0
  /// Blobs whose bytes no longer hash to their key.
  public var corrupt: [ContentHash] = []
  /// Cached results some of whose outputs are gone.
  public var actionsWithMissingOutputs: [MissingOutputs] = []
  /// Corrupt blob → the results using it, as `stage.output`, sorted.
  public var corruptUsers: [ContentHash: [String]] = [:]
  /// Action records that cannot be decoded, or that carry another key than the one they are stored
  /// under: useless for restoring, and in the way of every command that lists results.
  public var damagedRecords: [DamagedRecord] = []

  /// An action record `fsck` could not use.
  public struct DamagedRecord: Sendable, Equatable {
    /// The key it is stored under.
    public var key: ContentHash
    /// The stage the record names, when that much of it is still readable.
    public var stage: String?
    /// Why it is unusable.
    public var reason: String
  }
}

/// What `collectGarbage` deleted (or would delete, in a dry run).
public struct GCReport: Sendable, Equatable {
  public var actionsDeleted = 0
  public var blobsDeleted = 0
  public var checkpointsDeleted = 0
  public var bytesFreed = 0
  public var actionsKept = 0
  public var blobsKept = 0
}
