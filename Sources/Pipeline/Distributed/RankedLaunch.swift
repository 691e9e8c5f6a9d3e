import ArtifactStore
import Foundation

/// Runs one stage as `mpirun -np N lineage worker …` and waits for it: the executor's side of `ranks`.
///
/// Rank 0's event lines become the stage's progress and log here. The stage fails cleanly, never
/// hangs: when `mpirun` exits (a rank that died takes the job down with it) its status and the tail of
/// its error output are the message; when rank 0 says nothing for `mpi.stall_timeout` seconds the job
/// is stopped. A stop request (Ctrl-C) is passed on as SIGUSR1, which `mpirun` forwards: the ranks
/// agree on a step, rank 0 saves a checkpoint, and the next run resumes from it, on any number of ranks.
struct RankedLaunch {
  var stage: Stage
  var ranks: Int
  var job: WorkerJob
  var settings: MPISettings
  var recipeDirectory: String
  var storePath: String
  /// The `lineage` program the ranks run.
  var executable: String

  /// The `mpirun` command line (after `mpirun`). The job travels in `LINEAGE_JOB` (exported to every
  /// rank, on any host) unless it is too large for one environment string; then in a file, which
  /// ranks on other hosts can read only through a shared temporary folder.
  func arguments(jobPath: String?, resultPath: String) -> [String] {
    var args = ["-np", String(ranks), "-x", "LINEAGE_JOB", "-x", "LINEAGE_LAUNCH_HOST"]
    if geteuid() == 0 { args.append("--allow-run-as-root") }  // containers and CI run as root
    if settings.oversubscribe { args.append("--oversubscribe") }
    if let hostfile = settings.hostfile {
      args += ["--hostfile", hostfile.hasPrefix("/") ? hostfile : recipeDirectory + "/" + hostfile]
    }
    let cores = ProcessInfo.processInfo.activeProcessorCount
    if let threads = settings.threadsPerRank ?? (settings.hostfile == nil ? max(1, cores / ranks) : nil) {
      args += ["-x", "LINEAGE_THREADS=\(threads)"]
    }
    args += settings.arguments
    args += [executable, "worker", "--recipe", recipeDirectory, "--store", storePath, "--result", resultPath]
    if let jobPath { args += ["--job", jobPath] }
    args += job.overrides.flatMap { ["--set", $0] }
    return args
  }

  /// Runs the ranks to the end; the stage's outputs read back from the store.
  ///
  /// - Throws: `StageFailure` when the stage failed, hung or its ranks died; `CancellationError` when it
  ///   stopped at a checkpoint because `context` was cancelled.
  func run(_ context: StageContext, store: Store) throws -> StageOutput {
    let folder = FileManager.default.temporaryDirectory
      .appendingPathComponent("lineage-\(getpid())-\(UUID().uuidString.prefix(8))").path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let resultPath = folder + "/result.json"
    let jobJSON = try JSONEncoder().encode(job)
    let encoded = jobJSON.base64EncodedString()
    var jobPath: String?
    if encoded.utf8.count > 100_000 {
      jobPath = folder + "/job.json"
      try jobJSON.write(to: URL(fileURLWithPath: jobPath!))
    }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["mpirun"] + arguments(jobPath: jobPath, resultPath: resultPath)
    var environment = ProcessInfo.processInfo.environment
    environment["LINEAGE_JOB"] = jobPath == nil ? encoded : ""
    environment["LINEAGE_LAUNCH_HOST"] = ProcessInfo.processInfo.hostName
    process.environment = environment
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    let activity = Activity()
    let errors = TailBuffer(limit: 4096)
    do {
      // mpirun inherits the calling thread's signal mask, and this thread (like the runtime's) blocks
      // signals: mpirun would then never see the SIGUSR1 it must pass on to the ranks, nor a SIGTERM.
      // It starts with none blocked.
      var none = sigset_t(), previous = sigset_t()
      sigemptyset(&none)
      pthread_sigmask(SIG_SETMASK, &none, &previous)
      defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
      try process.run()
    } catch {
      throw StageFailure("cannot start mpirun (install Open MPI: apt-get install openmpi-bin): \(error)")
    }
    RunningJobs.shared.add(process.processIdentifier)
    defer { RunningJobs.shared.remove(process.processIdentifier) }
    // Read only once mpirun runs: a failed start leaves no thread waiting on a pipe.
    let readers = DispatchGroup()
    readers.enter()
    Thread.detachNewThread {
      defer { readers.leave() }
      var pending = Data()
      let decoder = JSONDecoder()
      while true {
        let chunk = out.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        pending.append(chunk)
        while let newline = pending.firstIndex(of: 0x0A) {
          let line = pending[pending.startIndex..<newline]
          pending = Data(pending[(newline + 1)...])
          activity.touch()
          guard let event = try? decoder.decode(WorkerEvent.self, from: line) else {
            if let text = String(data: line, encoding: .utf8), !text.isEmpty { context.log("rank output: \(text)") }
            continue
          }
          if let line = event.log { context.log(line) } else if let e = event.event(stage: stage.name) { context.emit(e) }
        }
      }
    }
    readers.enter()
    Thread.detachNewThread {
      defer { readers.leave() }
      while true {
        let chunk = err.fileHandleForReading.availableData
        if chunk.isEmpty { break }
        errors.append(chunk)
      }
    }
    var stopRequested = false, stalled = false
    var killAt: Date?
    var localRanks: Set<Int32> = []
    while process.isRunning {
      Thread.sleep(forTimeInterval: 0.1)
      if context.isCancelled && !stopRequested {
        stopRequested = true
        kill(process.processIdentifier, SIGUSR1)
      }
      if !stalled && activity.secondsSince > settings.stallTimeout {
        stalled = true
        context.log("no word from rank 0 for \(Int(settings.stallTimeout)) s (mpi.stall_timeout): stopping the ranks")
        // A rank that hangs (stopped, or blocked in the kernel) may ignore mpirun's SIGTERM and outlive
        // it: note this machine's ranks now, to kill them with mpirun if it does not end soon.
        localRanks = RankedLaunch.descendants(of: process.processIdentifier)
        kill(process.processIdentifier, SIGTERM)
        killAt = Date().addingTimeInterval(5)
      }
      if let at = killAt, Date() > at {
        for pid in localRanks.union(RankedLaunch.descendants(of: process.processIdentifier)) { kill(pid, SIGKILL) }
        kill(process.processIdentifier, SIGKILL)
        killAt = nil
      }
    }
    // Ranks that outlived mpirun after a stall: none may keep running (or stay stopped) after the stage.
    for pid in localRanks { kill(pid, SIGKILL) }
    process.waitUntilExit()
    // A rank's helper (ssh, orted) may outlive mpirun holding the pipes: do not wait for ever.
    if readers.wait(timeout: .now() + 30) == .timedOut {
      for pid in RankedLaunch.descendants(of: process.processIdentifier) { kill(pid, SIGKILL) }
      try? out.fileHandleForReading.close()
      try? err.fileHandleForReading.close()
    }
    let status = process.terminationStatus
    let result = (try? Data(contentsOf: URL(fileURLWithPath: resultPath))).flatMap { try? JSONDecoder().decode(WorkerResult.self, from: $0) }
    let resumable = "; the next run resumes it from its last checkpoint"
    if stalled {
      throw StageFailure("stopped: rank 0 reported nothing for \(Int(settings.stallTimeout)) s (mpi.stall_timeout)\(resumable)")
    }
    guard let result else {
      if status == 127 && process.terminationReason == .exit {
        throw StageFailure("mpirun was not found: install Open MPI (apt-get install openmpi-bin) to run a stage on \(ranks) ranks")
      }
      let tail = errors.text.trimmingCharacters(in: .whitespacesAndNewlines)
      throw StageFailure("its \(ranks) ranks ended without a result (mpirun exit status \(status))\(resumable)"
                           + (tail.isEmpty ? "" : ":\n" + tail))
    }
    switch result.ending {
    case .cancelled:
      throw CancellationError()
    case .failed:
      throw StageFailure(result.failure ?? "failed on rank 0")
    case .finished:
      guard status == 0 else {
        throw StageFailure("rank 0 finished but mpirun exited with status \(status)\(resumable):\n" + errors.text)
      }
      var artifacts: [String: [UInt8]] = [:]
      for (name, hash) in result.outputs { artifacts[name] = try store.blob(hash) }
      return StageOutput(artifacts: artifacts, metrics: result.metrics)
    }
  }
}

extension RankedLaunch {
  /// The processes under `root` on this machine (children, their children, …), from /proc.
  static func descendants(of root: Int32) -> Set<Int32> {
    var children: [Int32: [Int32]] = [:]
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
      guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")") else { continue }
      // After "pid (name) state ppid": the name may hold spaces and parentheses, so read after the last ')'.
      let fields = stat[stat.index(after: close)...].split(separator: " ")
      if fields.count > 1, let parent = Int32(fields[1]) { children[parent, default: []].append(pid) }
    }
    var found = Set<Int32>(), queue = [root]
    while let next = queue.popLast() {
      for child in children[next] ?? [] where found.insert(child).inserted { queue.append(child) }
    }
    return found
  }
}

/// The `mpirun` processes of stages running now, so that a second Ctrl-C, which ends `lineage run` at
/// once, ends them too: they run in their own process group, out of the terminal's reach.
public final class RunningJobs: @unchecked Sendable {  // `pids` guarded by `lock`
  public static let shared = RunningJobs()
  private let lock = NSLock()
  private var pids: Set<Int32> = []

  func add(_ pid: Int32) { lock.lock(); pids.insert(pid); lock.unlock() }
  func remove(_ pid: Int32) { lock.lock(); pids.remove(pid); lock.unlock() }

  /// Sends SIGTERM to every running `mpirun` (which passes it on to its ranks), then SIGKILL to them
  /// and their ranks on this machine after `grace` seconds.
  public func terminateAll(grace: Double = 2) {
    lock.lock()
    let running = pids
    lock.unlock()
    guard !running.isEmpty else { return }
    var ranks = Set<Int32>()
    for pid in running {
      ranks.formUnion(RankedLaunch.descendants(of: pid))
      kill(pid, SIGTERM)
    }
    Thread.sleep(forTimeInterval: grace)
    for pid in running.union(ranks) { kill(pid, SIGKILL) }
  }
}

/// When rank 0 last said something.
private final class Activity: @unchecked Sendable {  // state guarded by `lock`
  private let lock = NSLock()
  private var last = Date()
  func touch() { lock.lock(); last = Date(); lock.unlock() }
  var secondsSince: Double { lock.lock(); defer { lock.unlock() }; return Date().timeIntervalSince(last) }
}

/// The last `limit` bytes of a stream (mpirun's error output, for the failure message).
private final class TailBuffer: @unchecked Sendable {  // state guarded by `lock`
  private let lock = NSLock()
  private var data = Data()
  private let limit: Int
  init(limit: Int) { self.limit = limit }
  func append(_ chunk: Data) {
    lock.lock()
    data.append(chunk)
    if data.count > limit { data = Data(data.suffix(limit)) }
    lock.unlock()
  }
  var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}
