import ArgumentParser
import Foundation
import Pipeline

/// `lineage bench scaling`: the reference training configuration (dense d128, 4 layers, batch 16 × 128
/// tokens) as a `pretrain` stage run by `lineage run`, on one process and on two MPI ranks, with the
/// share of the step spent in communication, and an estimate for larger jobs from the measured volume.
///
/// Each configuration is a whole `lineage run --force` in a fresh process, so the ranks pay what a
/// user's do (start-up, `mpirun`, loading the inputs); the throughput is the stage's own training
/// rate from its log, and rounds alternate the configurations so that a noisy neighbour hits them alike.
struct ScalingBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "scaling",
    abstract: "Measure data-parallel training on MPI ranks against one process, and estimate larger jobs.")

  @Option(help: "Rounds; each runs every configuration once.")
  var rounds: Int = 3

  @Option(help: "Training steps per run.")
  var steps: Int = 40

  @Option(help: "Network bandwidth for the estimate, in Gbit/s.")
  var bandwidth: Double = 25

  @Option(help: "Latency of one message for the estimate, in microseconds.")
  var latency: Double = 50

  @Flag(name: .long, help: "Print JSON.")
  var json = false

  struct Configuration {
    var name: String
    var microBatch: Int?
    var ranks: Int
    var threads: Int
  }

  /// What one run's log says.
  struct Sample {
    var tokensPerSecond: Double
    var communicationSeconds: Double?
    var trainingSeconds: Double?
    var reducedFloats: Int?
  }

  static let batch = 16, sequence = 128

  func run() async throws {
    guard rounds >= 1, steps >= 2 else { throw ValidationError("--rounds must be at least 1 and --steps at least 2") }
    let cores = ProcessInfo.processInfo.activeProcessorCount
    let configurations = [
      Configuration(name: "1 process × 1 thread, whole batch", microBatch: nil, ranks: 1, threads: 1),
      Configuration(name: "1 process × \(cores) threads, whole batch", microBatch: nil, ranks: 1, threads: cores),
      Configuration(name: "1 process × \(cores) threads, 2 micro-batches of 8", microBatch: 8, ranks: 1, threads: cores),
      Configuration(name: "2 ranks × \(max(1, cores / 2)) thread\(cores / 2 > 1 ? "s" : ""), 2 micro-batches of 8", microBatch: 8, ranks: 2,
                    threads: max(1, cores / 2)),
    ]
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-scaling-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: root) }
    var samples = [[Sample]](repeating: [], count: configurations.count)
    for round in 0..<rounds {
      for (i, configuration) in configurations.enumerated() {
        let folder = root + "/c\(i)"
        if round == 0 { try write(configuration, to: folder) }
        let sample = try measure(configuration, folder: folder)
        samples[i].append(sample)
        if !json {
          Console.error(String(format: "round %d/%d, %@: %.0f tokens/s", round + 1, rounds, configuration.name, sample.tokensPerSecond))
        }
      }
    }
    report(configurations, samples)
  }

  /// A recipe of one `pretrain` stage of the reference configuration.
  func write(_ configuration: Configuration, to folder: String) throws {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let micro = configuration.microBatch.map { ", micro_batch: \($0)" } ?? ""
    let stages = """
      stages:
        library: {op: corpus, source: "builtin:library", documents: 300}
        train:
          op: pretrain
          corpus: library
          tokenizer: bytes
          model: {d_model: 128, layers: 4, heads: 4, mlp_hidden: 512, context: \(ScalingBench.sequence)}
          train: {steps: \(steps), batch: \(ScalingBench.batch), lr: 1e-3, warmup: 2\(micro)}

      """
    try stages.write(toFile: folder + "/stages.yaml", atomically: true, encoding: .utf8)
    try "seed: 1\nmpi: {threads_per_rank: \(configuration.threads)}\n".write(toFile: folder + "/recipe.yaml", atomically: true, encoding: .utf8)
  }

  func measure(_ configuration: Configuration, folder: String) throws -> Sample {
    let (status, text) = try PipelineBench.spawnCapturing(
      PipelineBench.executable, ["run", "-v", "--recipe", folder, "--force", "train", "--ranks", String(configuration.ranks)],
      environment: ["LINEAGE_THREADS": String(configuration.threads)])
    guard status == 0 else {
      throw ValidationError("`lineage run` of \(configuration.name) failed:\n" + text.suffix(2000))
    }
    func number(after marker: String, in line: Substring) -> Double? {
      guard let range = line.range(of: marker) else { return nil }
      return Double(line[range.upperBound...].prefix { $0.isNumber || $0 == "." })
    }
    var sample = Sample(tokensPerSecond: .nan)
    for line in text.split(separator: "\n") {
      if line.contains("train: trained steps"), let rate = number(after: ": ", in: line[(line.range(of: "trained steps")!.upperBound)...]) {
        sample.tokensPerSecond = rate
      }
      if line.contains("train: communication on rank 0") {
        sample.communicationSeconds = number(after: ": ", in: line[(line.range(of: "of \(configuration.ranks)")!.upperBound)...])
        sample.trainingSeconds = number(after: " s of ", in: line)
        sample.reducedFloats = number(after: "%); ", in: line).map { Int($0) }
      }
    }
    guard sample.tokensPerSecond.isFinite else { throw ValidationError("no training rate in the log of \(configuration.name):\n\(text.suffix(2000))") }
    return sample
  }

  func report(_ configurations: [Configuration], _ samples: [[Sample]]) {
    func median(_ xs: [Double]) -> Double { EngineBench.median(xs) }
    let rates = samples.map { $0.map(\.tokensPerSecond) }
    let medians = rates.map(median)
    let ranked = samples[3]
    let shares = ranked.compactMap { s in s.communicationSeconds.flatMap { c in s.trainingSeconds.map { c / max($0, 1e-9) } } }
    let share = shares.isEmpty ? Double.nan : median(shares)
    let floats = ranked.compactMap(\.reducedFloats).first ?? 0
    let perStep = ranked.compactMap { s in s.trainingSeconds.map { $0 / Double(steps) } }
    let stepSeconds = perStep.isEmpty ? Double.nan : median(perStep)
    let computeSeconds = stepSeconds * (1 - share)
    let tokensPerRankStep = Double(ScalingBench.batch / 2 * ScalingBench.sequence)
    // Larger jobs, weak scaling: each rank keeps one micro-batch of 8 sequences, on one core, as here.
    // The reduction sends 2·(r−1)/r of the vector per rank at the given bandwidth, plus per-message
    // latency for its 2·log₂ r exchanges and the step's 3 small all-gathers (stop flag, counts, metrics),
    // with no overlap of communication and computation.
    let bytes = Double(floats) * 4
    let estimates: [(ranks: Int, network: Double, tokens: Double, efficiency: Double)] = [8, 64].map { r in
      let rounds = log2(Double(r))
      let network = 2 * Double(r - 1) / Double(r) * bytes / (bandwidth * 1e9 / 8) + (2 * rounds + 3 * rounds) * latency * 1e-6
      let step = computeSeconds + network
      return (r, network, Double(r) * tokensPerRankStep / step, computeSeconds / step)
    }
    let threadsVsRanks = medians[3] / medians[2]
    let linear = medians[3] / (2 * medians[0])
    if json {
      var object: [String: Any] = [:]
      object["configurations"] = zip(configurations, rates).map { c, r in
        ["name": c.name, "ranks": c.ranks, "threads": c.threads, "micro_batch": c.microBatch as Any, "tokens_per_second": r] as [String: Any]
      }
      object["communication_share"] = share
      object["reduced_floats"] = floats
      object["efficiency_vs_two_single_thread_processes"] = linear
      object["two_ranks_vs_threads"] = threadsVsRanks
      object["estimates"] = estimates.map { ["ranks": $0.ranks, "network_seconds_per_step": $0.network, "tokens_per_second": $0.tokens,
                                             "efficiency": $0.efficiency] }
      if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
        Console.out(String(decoding: data, as: UTF8.self))
      }
      return
    }
    var rows: [[String]] = []
    for (c, r) in zip(configurations, rates) {
      rows.append([c.name, String(format: "%.0f", median(r)), String(format: "%.0f–%.0f", r.min()!, r.max()!)])
    }
    Console.out(table(rows, header: ["reference training (d128, batch 16 × 128)", "tokens/s (median)", "min–max"]))
    Console.out(String(format: "2 ranks: communication %.1f%% of the training time on rank 0 (waiting for the other rank included); %d floats (%.2f MB) reduced per step",
                       100 * share, floats, bytes / 1e6))
    Console.out(String(format: "scaling efficiency: 2 ranks reach %.2f× two single-thread processes' worth (2 × %.0f tokens/s), and %.2f× one process on the same %d threads with the same micro-batches",
                       linear, medians[0], threadsVsRanks, configurations[2].threads))
    Console.out(String(format: "estimate at %.0f Gbit/s, %.0f µs per message, each rank one micro-batch of 8 on one core (step %.1f ms of computation, measured):",
                       bandwidth, latency, 1000 * computeSeconds))
    for e in estimates {
      Console.out(String(format: "  %d ranks: %.2f ms of network per step, %.0f tokens/s, efficiency %.0f%%", e.ranks, 1000 * e.network, e.tokens, 100 * e.efficiency))
    }
  }
}
