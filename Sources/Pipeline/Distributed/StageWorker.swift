import ArtifactStore
import Foundation

/// What the executor hands the ranks of one stage (`lineage worker --job FILE`): the stage, its key and
/// inputs as the executor resolved them, so every rank runs exactly the stage the plan chose.
public struct WorkerJob: Codable, Sendable, Equatable {
  public struct Input: Codable, Sendable, Equatable {
    public var stage: String
    public var output: String
    public var kind: String
    public var hash: ContentHash
    public var size: Int
  }

  public var stage: String
  public var key: ContentHash
  /// The stage's resolved parameters as the executor planned them (canonical JSON): a rank whose
  /// recipe now says otherwise (a stage file edited mid-run) refuses to run.
  public var parameters: String
  public var inputs: [String: [Input]]
  public var checkpointSeconds: Double
  /// `--set` overrides the recipe is loaded with.
  public var overrides: [String]

  init(stage: Stage, key: ContentHash, inputs: [String: [InputArtifact]], checkpointSeconds: Double, overrides: [String]) {
    self.stage = stage.name
    self.parameters = stage.parameters.canonicalJSON
    self.overrides = overrides
    self.key = key
    self.inputs = inputs.mapValues { $0.map { Input(stage: $0.stage, output: $0.output, kind: $0.kind.rawValue,
                                                    hash: $0.hash, size: $0.size) } }
    self.checkpointSeconds = checkpointSeconds
  }

  var artifacts: [String: [InputArtifact]] {
    inputs.mapValues { $0.map { InputArtifact(stage: $0.stage, output: $0.output, kind: ArtifactKind(rawValue: $0.kind) ?? .dataset,
                                              hash: $0.hash, size: $0.size) } }
  }
}

/// What rank 0 reports when the op returns: its outputs (already in the store, by hash) and metrics; or
/// why it failed; or that it stopped at a checkpoint when asked to. (Its log lines reach the executor
/// as they are written, on standard output.)
public struct WorkerResult: Codable, Sendable, Equatable {
  public enum Ending: String, Codable, Sendable { case finished, failed, cancelled }
  public var ending: Ending
  public var outputs: [String: ContentHash] = [:]
  public var metrics: [String: Double] = [:]
  public var failure: String?
}

/// One line rank 0 writes on its standard output for each event, which the executor shows as the
/// stage's own (progress, log lines, a resume).
struct WorkerEvent: Codable {
  var progress: Progress?
  var log: String?
  var resumed: [Int]?

  struct Progress: Codable {
    var step: Int, total: Int, names: [String], values: [Double], elapsed: Double
  }

  init(_ event: RunEvent) {
    switch event {
    case .stageProgress(_, let p):
      progress = Progress(step: p.step, total: p.total, names: p.scalars.map(\.name), values: p.scalars.map(\.value),
                          elapsed: p.elapsedSeconds)
    case .stageLog(_, let line): log = line
    case .stageResumed(_, let step, let total): resumed = [step, total]
    default: break
    }
  }

  /// The event as the parent's sink takes it.
  func event(stage: String) -> RunEvent? {
    if let p = progress, p.names.count == p.values.count {
      return .stageProgress(stage: stage, progress: StageProgress(
        step: p.step, total: p.total, scalars: zip(p.names, p.values).map { .init($0, $1) }, elapsedSeconds: p.elapsed))
    }
    if let log { return .stageLog(stage: stage, line: log) }
    if let r = resumed, r.count == 2 { return .stageResumed(stage: stage, step: r[0], total: r[1]) }
    return nil
  }
}

/// Rank 0's events, one JSON line each on standard output (the other ranks stay silent).
final class WorkerEventWriter: EventSink, @unchecked Sendable {  // writes serialised by `lock`
  private let lock = NSLock()
  private let encoder = JSONEncoder()

  func emit(_ event: RunEvent) {
    let line = WorkerEvent(event)
    guard line.progress != nil || line.log != nil || line.resumed != nil,
          var bytes = try? encoder.encode(line) else { return }
    bytes.append(0x0A)
    lock.lock()
    defer { lock.unlock() }
    FileHandle.standardOutput.write(bytes)
  }
}

/// The body of `lineage worker`: one rank of a stage that runs on several.
public enum StageWorker {
  /// Exit statuses of a worker: finished, failed, stopped at a checkpoint.
  public static let finished: Int32 = 0, failed: Int32 = 1, cancelled: Int32 = 3

  /// Runs the job's stage on this rank. Rank 0 stores the outputs and writes `resultPath`; it alone
  /// has the store (`store` is nil on the others), and sends them the inputs and any checkpoint.
  ///
  /// - Parameter stop: set when the executor asks the stage to stop (SIGUSR1, which `mpirun` passes on);
  ///   the op sees it as `isCancelled`, and the ranks agree on the step to stop at.
  /// - Returns: the exit status.
  public static func run(recipe: Recipe, store: Store?, job: WorkerJob, group: any ProcessGroup, resultPath: String,
                         stop: StopSignal) -> Int32 {
    let leader = group.rank == 0
    func finish(_ result: WorkerResult) -> Int32 {
      let status: Int32 = switch result.ending {
      case .finished: finished
      case .failed: failed
      case .cancelled: cancelled
      }
      guard leader else { return status }
      do {
        try JSONEncoder().encode(result).write(to: URL(fileURLWithPath: resultPath), options: .atomic)
      } catch {
        FileHandle.standardError.write(Data("lineage worker: cannot write \(resultPath): \(error)\n".utf8))
        return failed
      }
      return status
    }
    guard let stage = recipe.stage(job.stage) else {
      return finish(WorkerResult(ending: .failed, failure: "the recipe has no stage '\(job.stage)'"))
    }
    guard stage.parameters.canonicalJSON == job.parameters else {
      return finish(WorkerResult(ending: .failed, failure: "the stage's definition changed on disk after the run planned it; run again"))
    }
    let context = StageContext(stage: stage.name, parameters: stage.parameters, seed: stage.seed,
                               checkpointSeconds: job.checkpointSeconds, recipeDirectory: recipe.directory,
                               key: job.key, inputs: job.artifacts, store: store,
                               events: leader ? WorkerEventWriter() as any EventSink : NullEventSink(), processes: group)
    stop.onStop { context.cancel() }
    let result = Result { try stage.op.run(context) }
    switch result {
    case .failure(let error):
      if error is CancellationError {
        return finish(WorkerResult(ending: .cancelled))
      }
      if !leader { FileHandle.standardError.write(Data("lineage worker (rank \(group.rank)): \(error)\n".utf8)) }
      return finish(WorkerResult(ending: .failed, failure: "\(error)"))
    case .success(let output):
      guard leader, let store else { return leader ? failed : finished }
      do {
        var outputs: [String: ContentHash] = [:]
        try store.write { txn in
          for (name, bytes) in output.artifacts { outputs[name] = try txn.putBlob(bytes) }
        }
        return finish(WorkerResult(ending: .finished, outputs: outputs, metrics: output.metrics))
      } catch {
        return finish(WorkerResult(ending: .failed, failure: "cannot store the outputs: \(error)"))
      }
    }
  }
}

/// A request to stop, set from a signal handler's queue and read by the op through its context.
public final class StopSignal: @unchecked Sendable {  // state guarded by `lock`
  private let lock = NSLock()
  private var stopped = false
  private var handlers: [() -> Void] = []

  public init() {}

  public func stop() {
    lock.lock()
    stopped = true
    let run = handlers
    lock.unlock()
    for handler in run { handler() }
  }

  func onStop(_ handler: @escaping () -> Void) {
    lock.lock()
    handlers.append(handler)
    let now = stopped
    lock.unlock()
    if now { handler() }
  }
}
