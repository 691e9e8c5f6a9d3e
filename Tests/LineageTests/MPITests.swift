import Foundation
import Testing

/// Stages on several MPI ranks, end to end: `lineage run --ranks N` under Open MPI's `mpirun`. The
/// results of every training op (pretrain, MoE multitask, rl, reward_model, distill) must be the bits of one process; a rank that dies or hangs fails the stage in bounded time;
/// the stage then resumes from its checkpoint on another number of ranks.
@Suite(.serialized) struct MPITests {
  static let recipe = """
    stages:
      text: {op: corpus, source: text.txt}
      a:
        op: pretrain
        corpus: text
        model: {d_model: 32, layers: 2, heads: 2, context: 64}
        train: {steps: 8, batch: 8, micro_batch: 2}
      b:
        op: multitask
        from: a
        experts: {routed: 4, shared: 1, top_k: 1}
        tasks: {translation: 0.5, qa: 0.5}
        heldout_examples: 4
        train: {steps: 6, batch: 8, micro_batch: 2}
      r:
        op: rl
        from: b
        group: 4
        prompts: 8
        micro_batch: 2
        inner_steps: 2
        max_new_tokens: 12
        heldout_examples: 4
        tasks: {arithmetic: 1}
        rewards: {accuracy: 1.0, random: 0.5, language: 0.3}
        train: {steps: 6, lr: 1e-3}
      rm:
        op: reward_model
        from: b
        policy: b
        tasks: {arithmetic: 1}
        pairs: 16
        heldout_pairs: 4
        max_new_tokens: 12
        train: {steps: 4, batch: 8, micro_batch: 2, lr: 1e-3}
      d:
        op: distill
        teacher: r
        student: {d_model: 16, layers: 1, heads: 2, context: 64}
        tasks: {arithmetic: 1}
        modules: [attention]
        heldout_examples: 4
        train: {steps: 4, batch: 8, micro_batch: 2}

    """
  static let settings = "mpi: {oversubscribe: true, stall_timeout: 20}\n"

  static func folder(_ recipe: String = recipe) throws -> CLITests.Folder {
    let folder = try CrashTests.folder()
    try folder.write("s.yaml", recipe)
    try folder.write("recipe.yaml", settings)
    return folder
  }

  /// The lockfile's entries for the given stages (keys, output hashes, metrics).
  static func lock(_ folder: CLITests.Folder) -> String { folder.read("lineage.lock") ?? "" }

  @Test func twoAndFourRanksGiveTheBitsOfOne() throws {
    let folder = try Self.folder()
    let one = try CLITests().lineage(["run"], in: folder)
    #expect(one.status == 0, "\(one.stderr)")
    let reference = Self.lock(folder)
    #expect(reference.contains("hash:"))
    for ranks in [2, 4] {
      let run = try CLITests().lineage(["run", "-v", "--ranks", "\(ranks)"] + ["a", "b", "r", "rm", "d"].flatMap { ["--force", $0] }, in: folder)
      #expect(run.status == 0, "\(run.stderr)")
      #expect(run.stderr.components(separatedBy: "running on \(ranks) ranks").count - 1 == 5, "\(run.stderr)")
      #expect(Self.lock(folder) == reference, "the lockfile on \(ranks) ranks differs from one process's")
    }
    // `ranks` is not in the cache key: a stage file that sets it finds the stages up to date.
    try folder.write("s.yaml", Self.recipe.replacingOccurrences(of: "    op: rl\n", with: "    op: rl\n    ranks: 2\n"))
    let again = try CLITests().lineage(["run"], in: folder)
    #expect(again.status == 0 && again.stderr.contains("6 up to date"), "\(again.stderr)")
  }

  @Test func aStageThatCannotSplitRunsOnOneProcessAndSaysWhy() throws {
    let folder = try Self.folder(Self.recipe.replacingOccurrences(of: "train: {steps: 8, batch: 8, micro_batch: 2}",
                                                                  with: "train: {steps: 8, batch: 8}"))
    let run = try CLITests().lineage(["run", "-v", "--ranks", "2", "a"], in: folder)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stderr.contains("runs on one process, not --ranks 2"), "\(run.stderr)")
    #expect(run.stderr.contains("set train.micro_batch"), "\(run.stderr)")
  }

  /// The `lineage worker` processes of a run in `folder`, by pid.
  static func workers(in folder: CLITests.Folder) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { Int32($0) }.filter { pid in
      guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
      let words = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
      return words.contains("worker") && words.contains { $0.hasPrefix(folder.path) } && !words.contains("mpirun")
        && !(words.first?.hasSuffix("mpirun") ?? false)
    }.sorted()
  }

  /// A long single stage, so that a rank can be stopped mid-way.
  static let long = """
    stages:
      text: {op: corpus, source: text.txt}
      a:
        op: pretrain
        corpus: text
        model: {d_model: 32, layers: 2, heads: 2, context: 64}
        train: {steps: 4000, batch: 8, micro_batch: 2}

    """

  /// Starts `lineage run --ranks 2` on the long stage and waits until it has run for `seconds` with
  /// both workers alive; returns the run and the workers' pids.
  static func startTwoRanks(in folder: CLITests.Folder, seconds: Double) throws -> (Process, Pipe, [Int32]) {
    let (process, err) = try CrashTests.start(["run", "--ranks", "2", "--checkpoint-every", "0.2", "a"], in: folder)
    let deadline = Date().addingTimeInterval(120)
    var pids: [Int32] = []
    while Date() < deadline {
      pids = workers(in: folder)
      if pids.count == 2 { break }
      Thread.sleep(forTimeInterval: 0.05)
    }
    Thread.sleep(forTimeInterval: seconds)
    return (process, err, pids)
  }

  static func wait(_ process: Process, within seconds: Double) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
    return !process.isRunning
  }

  @Test func aKilledRankFailsTheStageAndCtrlCStopsItAndBothResumeOnOtherRankCounts() throws {
    let reference = try Self.folder(Self.long)
    #expect(try CLITests().lineage(["run"], in: reference).status == 0)

    enum Fault { case killedRank, interrupted }
    for (fault, resumeRanks) in [(Fault.killedRank, "1"), (.killedRank, "4"), (.interrupted, "2")] {
      let folder = try Self.folder(Self.long)
      let (process, err, pids) = try Self.startTwoRanks(in: folder, seconds: 2)
      #expect(pids.count == 2, "workers: \(pids)")
      guard let rank = pids.last else { process.terminate(); return }
      switch fault {
      case .killedRank: kill(rank, SIGKILL)
      case .interrupted: kill(process.processIdentifier, SIGINT)  // Ctrl-C reaches `lineage run`, not mpirun's group
      }
      let ended = Self.wait(process, within: 60)
      #expect(ended, "the run did not end within 60 s of \(fault)")
      if !ended { process.terminate() }
      let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      switch fault {
      case .killedRank:
        #expect(process.terminationStatus == 1, "\(stderr)")
        #expect(stderr.contains("ranks ended without a result"), "\(stderr)")
      case .interrupted:
        #expect(process.terminationStatus == 130, "\(stderr)")
        #expect(stderr.contains("interrupted a"), "\(stderr)")
      }
      #expect(Self.workers(in: folder).isEmpty, "no worker outlives its stage")

      let resumed = try CLITests().lineage(["run", "-v", "--ranks", resumeRanks], in: folder)
      #expect(resumed.status == 0, "\(resumed.stderr)")
      #expect(resumed.stderr.contains("resumed at step"), "\(resumed.stderr)")
      #expect(CrashTests.outputs(folder) == CrashTests.outputs(reference), "after \(fault), resumed on \(resumeRanks) rank(s)")
    }
  }

  @Test func aHungRankStopsTheStageAtTheStallTimeout() throws {
    let folder = try Self.folder(Self.long)
    try folder.write("recipe.yaml", "mpi: {stall_timeout: 3}\n")
    let (process, err, pids) = try Self.startTwoRanks(in: folder, seconds: 1)
    #expect(pids.count == 2, "workers: \(pids)")
    guard let rank = pids.last else { process.terminate(); return }
    kill(rank, SIGSTOP)  // alive but silent: rank 0 waits on it for ever
    let ended = Self.wait(process, within: 60)
    #expect(ended, "the run did not end within 60 s of a rank's hang")
    if !ended { process.terminate() }
    #expect(Self.workers(in: folder).isEmpty, "the hung rank was stopped with its stage")
    kill(rank, SIGKILL)
    let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    #expect(process.terminationStatus == 1, "\(stderr)")
    #expect(stderr.contains("mpi.stall_timeout"), "\(stderr)")
    let resumed = try CLITests().lineage(["run", "-v"], in: folder)
    #expect(resumed.status == 0 && resumed.stderr.contains("resumed at step"), "\(resumed.stderr)")
  }
}
