import ArgumentParser
import Foundation
import Models
import Recipes
import Tensors

/// `lineage bench rl`: GRPO samples per second, split into generation and learning, beside the PyTorch
/// GRPO of the R1-Zero prototype (`../shared/bench/torch_grpo.py`) run in the same command.
///
/// Both engines run the prototype's configuration: d_model 128, 4 layers, 4 heads, context 96; 16 prompts
/// × group 8 = 128 samples per step; 15-token prompts (three 3-digit operands); 74-token responses at
/// temperature 0.7; clip 0.2, k3 KL 0.02 to a frozen reference, one update per batch, AdamW lr 1e-4 with
/// gradient clip 1. Ours runs the `rl` op's code (`GRPOThroughput` over `GRPOObjective`) with responses
/// forced to 74 tokens. The peer starts from its own untrained checkpoint (`sft` for a moment), whose
/// samples almost never end before its cap of 74 tokens, and generation stops only when every sample
/// of a batch has ended; the bench derives the length it really generated from its token counts and
/// prints it.
///
/// The split is the peer's: generation is sampling and scoring (the generator, rewards, advantages);
/// learning is the reference's log-probabilities, the policy's forward and backward passes and AdamW.
struct RLBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rl", abstract: "Measure GRPO samples per second (generation and learning) against PyTorch.")

  @Option(help: "Timed GRPO steps per round (after the warm-up steps).")
  var steps: Int = 8

  @Option(help: "Untimed steps first, ours and the peer's.")
  var warmup: Int = 1

  @Option(help: "Rounds: each measures ours, then the peer in a fresh process (medians of the rounds reported).")
  var rounds: Int = 3

  @Option(help: "Prompts per step.")
  var prompts: Int = 16

  @Option(help: "Samples per prompt.")
  var group: Int = 8

  @Option(help: "Tokens generated per response (the peer's, for three 3-digit operands, is 74; other lengths skip it).")
  var responseTokens: Int = 74

  @Option(help: "The PyTorch peer script; skipped when it or torch is missing.")
  var peer: String = "../shared/bench/torch_grpo.py"

  @Option(help: "Seconds of GRPO steps the peer runs per round (it takes no step count; its first step can take 30 s).")
  var peerBudget: Double = 60

  @Option(help: "Threads of both engines: 2 (this machine's cores) or 1, the stable comparison on a shared machine (the peer's own torch.set_num_threads(2) is then overridden).")
  var threads: Int = 2

  @Flag(help: "Skip the PyTorch peer.")
  var noPeer = false

  @Flag(name: .long, help: "Print JSON.")
  var json = false

  /// The prototype's model: what `torch_grpo.py`'s GPT defaults to, in our architecture (byte
  /// vocabulary, RMSNorm, RoPE, SwiGLU at 8/3·d: about the peer's 4·d GELU MLP in weights).
  static let config = ModelConfig(vocabularySize: ByteTokenizer().vocabularySize, modelDim: 128, layerCount: 4,
                                  headCount: 4, contextLength: 96)
  /// What `torch_grpo.py` is told: three operands of three digits (`R1Z_NOPS=3`, `--D 3`).
  static let operands = 3, digits = 3

  func validate() throws {
    guard rounds >= 1, steps >= 1, warmup >= 0 else { throw ValidationError("--rounds and --steps must be at least 1") }
    guard threads == 1 || threads == 2 else { throw ValidationError("--threads must be 1 or 2") }
    guard prompts >= 1, group >= 2 else { throw ValidationError("--prompts must be at least 1 and --group at least 2") }
    guard responseTokens >= 1, responseTokens + 15 <= RLBench.config.contextLength else {
      throw ValidationError("--response-tokens must be between 1 and \(RLBench.config.contextLength - 15)")
    }
  }

  func run() async throws {
    Allocator.keepFreedMemory()
    let settings = GRPOThroughput.Settings(prompts: prompts, group: group, responseTokens: responseTokens,
                                           operands: RLBench.operands, digits: RLBench.digits)
    // The peer's response cap follows from its task (three 3-digit operands: 74 tokens), not from a flag.
    var peerNote = "", runner: PeerRunner?
    if noPeer {
      peerNote = "skipped (--no-peer)"
    } else if responseTokens != 74 {
      peerNote = "skipped: its responses are 74 tokens long, not \(responseTokens)"
    } else {
      let candidate = PeerRunner(script: peer, budget: peerBudget, warmup: warmup, prompts: prompts, group: group,
                                 threads: threads)
      runner = candidate
      do { try candidate.prepare() } catch { peerNote = "unavailable: \(error)" }
    }
    defer { runner?.cleanUp() }

    var ours: [Round] = [], theirs: [Round] = []
    for round in 0..<rounds {
      var mine = try ForeignLoad.measure {
        try threads == 1 ? Parallelism.$forceSerial.withValue(true) { try measureOurs(settings) } : measureOurs(settings)
      }
      mine.value.foreignCores = mine.cores
      ours.append(mine.value)
      if let runner, peerNote.isEmpty {
        do {
          var peerRound = try ForeignLoad.measure { try runner.round(round) }
          peerRound.value.foreignCores = peerRound.cores
          theirs.append(peerRound.value)
        } catch {
          peerNote = "unavailable: \(error)"
        }
      }
    }

    let rows = prompts * group
    let mine = Summary(ours, rows: rows), peerSummary = theirs.isEmpty ? nil : Summary(theirs, rows: rows)
    if json {
      var report: [[String: Any]] = [mine.json(engine: "lineage", rounds: ours)]
      if let peerSummary {
        report.append(peerSummary.json(engine: "pytorch", rounds: theirs))
        report.append(["kind": "grpo_ratio", "samples_per_s": mine.samplesPerSecond / peerSummary.samplesPerSecond,
                       "generation_speed": peerSummary.generation / mine.generation,
                       "learning_speed": peerSummary.learning / mine.learning])
      } else {
        report.append(["kind": "peer", "note": peerNote])
      }
      printJSON(report)
      return
    }
    Console.out(table(tableRows(mine, peerSummary), header: ["measurement", "lineage", "PyTorch", "lineage ÷ PyTorch"]))
    Console.out(String(format: "%d rounds, each %d timed steps of ours after %d warm-up steps, then the peer in a fresh process; medians of the rounds' medians (min–max of the rounds)",
                       rounds, steps, warmup))
    Console.out(String(format: "model: d_model 128, 4 layers, 4 heads, context 96; ours %d weights (byte vocabulary, RMSNorm, RoPE, SwiGLU %d), the peer's 811,776 (32 symbols, LayerNorm, learned positions, GELU 512)",
                       RLBench.config.parameterCount, RLBench.config.mlpHiddenDim))
    Console.out(String(format: "step: %d prompts × group %d, %d-token prompts, %d-token responses (ours forced), temperature 0.7; %d threads of ours, %d of the peer's",
                       prompts, group, 15, responseTokens, threads == 1 ? 1 : KernelThreads.helperCount + 1, threads))
    if let peerSummary {
      let ratio = mine.samplesPerSecond / peerSummary.samplesPerSecond, share = mine.generationShare
      Console.out(String(format: "targets: samples/s ≥ 2× the peer's: %.2f× (%@); generation < 60%% of the step: %.0f%% (%@)",
                         ratio, ratio >= 2 ? "met" : "missed", 100 * share, share < 0.6 ? "met" : "missed"))
    }
    if !peerNote.isEmpty { Console.out("peer: " + peerNote) }
  }

  // MARK: - Ours

  func measureOurs(_ settings: GRPOThroughput.Settings) throws -> Round {
    let probe = GRPOThroughput(config: RLBench.config, settings: settings)
    for _ in 0..<warmup { _ = try probe.step() }
    var round = Round()
    for _ in 0..<steps {
      let step = try probe.step()
      round.generation.append(step.generationSeconds)
      round.learning.append(step.learningSeconds)
      round.responseTokens.append(Double(step.generatedTokens) / Double(settings.prompts * settings.group))
    }
    return round
  }

  // MARK: - Figures

  /// The timed steps of one round: seconds per step, and the tokens each response had.
  struct Round {
    var generation: [Double] = []
    var learning: [Double] = []
    var responseTokens: [Double] = []
    /// Cores other processes kept busy meanwhile (nil where /proc/stat is missing).
    var foreignCores: Double?
    var step: [Double] { zip(generation, learning).map(+) }
  }

  /// Medians over rounds of each round's per-step medians, with the rounds' min and max.
  struct Summary {
    var rows: Int
    var step: Double, generation: Double, learning: Double, responseTokens: Double
    var stepRange: [Double], generationRange: [Double], learningRange: [Double]

    init(_ rounds: [Round], rows: Int) {
      func fold(_ key: (Round) -> [Double]) -> (Double, [Double]) {
        let medians = rounds.map { EngineBench.median(key($0)) }
        return (EngineBench.median(medians), [medians.min() ?? 0, medians.max() ?? 0])
      }
      self.rows = rows
      (step, stepRange) = fold(\.step)
      (generation, generationRange) = fold(\.generation)
      (learning, learningRange) = fold(\.learning)
      responseTokens = fold(\.responseTokens).0
      let loads = rounds.compactMap(\.foreignCores)
      foreignCores = loads.isEmpty ? nil : EngineBench.median(loads)
    }

    /// The median over rounds of the cores other processes used.
    var foreignCores: Double?

    var samplesPerSecond: Double { Double(rows) / step }
    var generationShare: Double { generation / step }
    /// Tokens the generator produced per second of generation.
    var generatedTokensPerSecond: Double { Double(rows) * responseTokens / generation }

    func json(engine: String, rounds: [Round]) -> [String: Any] {
      ["kind": "grpo", "engine": engine, "rows_per_step": rows, "samples_per_s": samplesPerSecond,
       "samples_per_s_range": [Double(rows) / stepRange[1], Double(rows) / stepRange[0]],
       "step_s": step, "generation_s": generation, "learning_s": learning, "generation_share": generationShare,
       "generation_s_range": generationRange, "learning_s_range": learningRange,
       "response_tokens": responseTokens, "generated_tok_per_s": generatedTokensPerSecond,
       "foreign_cores": foreignCores.map { $0 as Any } ?? NSNull(),
       "rounds": rounds.map { ["generation_s": $0.generation, "learning_s": $0.learning, "foreign_cores": $0.foreignCores.map { $0 as Any } ?? NSNull()] }]
    }
  }

  func tableRows(_ mine: Summary, _ peer: Summary?) -> [[String]] {
    func seconds(_ s: Double, _ range: [Double]) -> String { String(format: "%.3f (%.3f–%.3f)", s, range[0], range[1]) }
    func rate(_ s: Summary) -> String {
      String(format: "%.1f (%.1f–%.1f)", s.samplesPerSecond, Double(s.rows) / s.stepRange[1], Double(s.rows) / s.stepRange[0])
    }
    func ratio(_ x: Double) -> String { String(format: "%.2f×", x) }
    return [
      ["GRPO samples/s", rate(mine), peer.map(rate) ?? "—", peer.map { ratio(mine.samplesPerSecond / $0.samplesPerSecond) } ?? ""],
      ["step, s", seconds(mine.step, mine.stepRange), peer.map { seconds($0.step, $0.stepRange) } ?? "—",
       peer.map { ratio($0.step / mine.step) + " the speed" } ?? ""],
      ["generation, s per step", seconds(mine.generation, mine.generationRange),
       peer.map { seconds($0.generation, $0.generationRange) } ?? "—", peer.map { ratio($0.generation / mine.generation) + " the speed" } ?? ""],
      ["learning, s per step", seconds(mine.learning, mine.learningRange),
       peer.map { seconds($0.learning, $0.learningRange) } ?? "—", peer.map { ratio($0.learning / mine.learning) + " the speed" } ?? ""],
      ["generation share of the step", String(format: "%.0f%%", 100 * mine.generationShare),
       peer.map { String(format: "%.0f%%", 100 * $0.generationShare) } ?? "—", "target < 60%"],
      ["generated tokens/s", String(format: "%.0f", mine.generatedTokensPerSecond),
       peer.map { String(format: "%.0f", $0.generatedTokensPerSecond) } ?? "—",
       peer.map { ratio(mine.generatedTokensPerSecond / $0.generatedTokensPerSecond) } ?? ""],
      ["tokens per response", String(format: "%.1f", mine.responseTokens),
       peer.map { String(format: "%.1f (mean steps generated)", $0.responseTokens) } ?? "—", ""],
      ["other processes' load, cores", mine.foreignCores.map { String(format: "%.2f", $0) } ?? "n/a",
       peer.map { $0.foreignCores.map { String(format: "%.2f", $0) } ?? "n/a" } ?? "—", "noisy above ≈ 0.15"],
    ]
  }

  // MARK: - The peer

  /// Runs `torch_grpo.py`: once `sft` for a moment (an untrained checkpoint to start from), then per
  /// round a `grpo` run of `budget` seconds, read back from the JSON it writes.
  final class PeerRunner {
    let script: String, budget: Double, warmup: Int, prompts: Int, group: Int, threads: Int
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-bench-rl-\(getpid())").path

    init(script: String, budget: Double, warmup: Int, prompts: Int, group: Int, threads: Int) {
      self.threads = threads
      self.script = URL(fileURLWithPath: script).standardizedFileURL.path   // it runs in its own folder
      self.budget = budget
      self.warmup = warmup
      self.prompts = prompts
      self.group = group
    }

    struct Failure: Error, CustomStringConvertible {
      var description: String
    }

    func prepare() throws {
      guard FileManager.default.fileExists(atPath: script) else { throw Failure(description: "no \(script)") }
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      // One optimiser step (a zero budget would divide by zero in the script's report).
      try python(["sft", "--budget", "0.001", "--k", "0", "--out", folder + "/sft"])
    }

    func round(_ index: Int) throws -> Round {
      let out = folder + "/grpo\(index)"
      try python(["grpo", "--init", folder + "/sft.pt", "--budget", String(budget), "--k", "0", "--temp", "0.7",
                  "--lr", "1e-4", "--bp", String(prompts), "--G", String(group), "--out", out])
      guard let data = FileManager.default.contents(atPath: out + ".json"),
            let result = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let log = result["log"] as? [[String: Any]], let steps = result["steps"] as? Int,
            let learnRate = result["learn_tok_per_s"] as? Double, let learnSeconds = result["learn_s"] as? Double else {
        throw Failure(description: "\(out).json is not the report torch_grpo.py writes")
      }
      guard log.count > warmup else {
        throw Failure(description: "the peer ran \(log.count) steps in --peer-budget \(budget) s, not more than the \(warmup) warm-up steps; raise it")
      }
      let timed = log.dropFirst(warmup)
      var round = Round()
      for entry in timed {
        round.generation.append(entry["gen_s"] as? Double ?? .nan)
        round.learning.append(entry["learn_s"] as? Double ?? .nan)
      }
      // learn_tok counts each row's inputs twice (reference and policy): rows · (prompt + generated − 1) · 2
      // per step, the prompt being <bos>Q:123+456+789=.
      let promptTokens = 1 + 2 + RLBench.operands * RLBench.digits + (RLBench.operands - 1) + 1
      let generated = learnRate * learnSeconds / Double(steps * prompts * group * 2) - Double(promptTokens) + 1
      round.responseTokens = [generated]
      return round
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: folder) }

    private func python(_ arguments: [String]) throws {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      if threads == 2 {
        process.arguments = ["python3", script] + arguments
      } else {
        // The script pins 2 threads when it loads; run it with that call replaced by a no-op.
        let wrapper = "import runpy, sys, torch; torch.set_num_threads(\(threads)); torch.set_num_threads = lambda n: None; "
          + "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
        process.arguments = ["python3", "-c", wrapper, script] + arguments
      }
      process.environment = ProcessInfo.processInfo.environment.merging(["R1Z_NOPS": String(RLBench.operands)]) { $1 }
      process.currentDirectoryURL = URL(fileURLWithPath: folder)
      process.standardOutput = FileHandle.nullDevice
      let errors = Pipe()
      process.standardError = errors
      try process.run()
      let message = errors.fileHandleForReading.readDataToEndOfFile()
      process.waitUntilExit()
      guard process.terminationStatus == 0 else {
        let last = String(decoding: message, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        throw Failure(description: "python3 \(script) \(arguments[0]) exited with \(process.terminationStatus): \(last)")
      }
    }
  }
}

/// The CPU other processes used while something ran, in cores: the machine's busy time (`/proc/stat`,
/// steal included) minus this process's and its waited-for children's, over the wall time. As
/// `../shared/bench/loadmon.py` measures it; above about 0.15 cores a measurement is noisy.
enum ForeignLoad {
  static func measure<T>(_ body: () throws -> T) rethrows -> (value: T, cores: Double?) {
    let busy = busySeconds(), own = ownSeconds(), start = DispatchTime.now().uptimeNanoseconds
    let value = try body()
    let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    guard let busy, let after = busySeconds(), wall > 0 else { return (value, nil) }
    return (value, max(0, ((after - busy) - (ownSeconds() - own)) / wall))
  }

  /// user + nice + system + irq + softirq + steal of all CPUs, in seconds.
  static func busySeconds() -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
          let line = text.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
    let v = line.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard v.count >= 8 else { return nil }
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / Double(sysconf(Int32(_SC_CLK_TCK)))
  }

  static func ownSeconds() -> Double {
    func seconds(_ who: __rusage_who) -> Double {
      var usage = rusage()
      getrusage(__rusage_who_t(who.rawValue), &usage)
      return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
    return seconds(RUSAGE_SELF) + seconds(RUSAGE_CHILDREN)
  }
}
