import ArgumentParser
import Foundation
import Models
import Tensors

/// `lineage bench engine`: sgemm ceiling, training and generation throughput of the reference
/// configurations (PERFORMANCE.md), and the PyTorch peer run on the same machine in the same command.
///
/// Training is reported two ways, from the same model FLOPs (`ModelFLOPs`: 6·N plus causal attention):
/// MFU, over the hardware's peak (`HardwarePeak`, whose derivation is printed), as the field reports
/// it; and the share of the sgemm ceiling, over the fastest sgemm measured at the models' shapes in
/// the same run, which says how close training comes to what OpenBLAS reaches here.
struct EngineBench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "engine", abstract: "Measure sgemm, training and generation throughput against PyTorch.")

  @Option(help: "Threads the peer may use (ours: both cores, by splitting products and kernels).")
  var threads: Int = 2

  @Option(help: "Training steps measured per configuration (after 3 warm-up steps).")
  var steps: Int = 8

  @Option(help: "Generation repeats per batch size.")
  var repeats: Int = 5

  @Option(help: "The PyTorch peer script; skipped when it or torch is missing.")
  var peer: String = "../shared/bench/torch_gpt.py"

  @Flag(help: "Skip the PyTorch peer.")
  var noPeer = false

  @Option(help: "Rounds per configuration: each measures ours, then the peer in a fresh process (medians reported).")
  var rounds: Int = 5

  @Option(name: .long, parsing: .upToNextOption,
          help: "Measure only these parts: sgemm, d128, d256, moe, moe-cost, attention, int8 (default: all).")
  var only: [String] = []

  @Flag(name: .long, help: "Print JSON.")
  var json = false

  static let parts = ["sgemm", "d128", "d256", "moe", "moe-cost", "attention", "int8"]

  func validate() throws {
    guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
    if let unknown = only.first(where: { !EngineBench.parts.contains($0) }) {
      throw ValidationError("unknown part '\(unknown)'; choose from \(EngineBench.parts.joined(separator: ", "))")
    }
  }

  func wants(_ part: String) -> Bool { only.isEmpty || only.contains(part) }

  struct Reference {
    var part: String
    var name: String
    var config: ModelConfig
    var peerArguments: [String]
    var generation: Bool
  }

  /// The reference configurations of PERFORMANCE.md: byte vocabulary, 4 layers, 4 heads, context 128.
  static let references: [Reference] = [
    Reference(part: "d128", name: "dense d128", config: ModelConfig(vocabularySize: 256, modelDim: 128, layerCount: 4, headCount: 4,
                                                      mlpHiddenDim: 512, contextLength: 128),
              peerArguments: ["--d", "128", "--mode", "all"], generation: true),
    Reference(part: "d256", name: "dense d256", config: ModelConfig(vocabularySize: 256, modelDim: 256, layerCount: 4, headCount: 4,
                                                      mlpHiddenDim: 1024, contextLength: 128),
              peerArguments: ["--d", "256", "--mode", "all"], generation: true),
    Reference(part: "moe", name: "MoE d128 (8 routed top-2 + 1 shared)",
              config: ModelConfig(vocabularySize: 256, modelDim: 128, layerCount: 4, headCount: 4, contextLength: 128,
                                  moe: MoEConfig(routedExperts: 8, sharedExperts: 1, topK: 2, expertHiddenDim: 256)),
              peerArguments: ["--d", "128", "--moe", "--mode", "train"], generation: false),
  ]

  func run() async throws {
    Allocator.keepFreedMemory()
    var report: [[String: Any]] = []
    var rows: [[String]] = []
    let clock = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    let hardware = HardwarePeak.current()
    func shareOfPeak(_ gflops: Double) -> String {
      hardware.map { String(format: "%.0f%%", 100 * gflops / $0.gflops) } ?? "n/a"
    }
    if let hardware {
      report.append(["kind": "hardware_peak", "gflops": hardware.gflops, "cores": hardware.cores, "clock_ghz": hardware.clockGHz,
                     "flops_per_cycle": hardware.flopsPerCycle, "derivation": hardware.derivation])
    }

    // The sgemm ceiling: sgemm at the shapes the models use (always measured: the share of it needs it).
    var ceiling = 0.0
    for (m, n, k, tb) in [(2048, 2048, 2048, false), (2048, 512, 128, true), (2048, 128, 512, false), (4096, 768, 256, true),
                          (4096, 1024, 256, false), (16, 768, 256, true), (1, 768, 256, true)] {
      let samples = timeMatmul(m: m, n: n, k: k, transposeB: tb, repeats: 9, clock: clock)
      let raw = median(samples.raw), wrapped = median(samples.wrapped)
      let flops = 2.0 * Double(m * n * k)
      ceiling = max(ceiling, flops / raw / 1e9)
      guard wants("sgemm") else { continue }
      rows.append(["sgemm \(m)×\(k)×\(n)\(tb ? " NT" : "")",
                   String(format: "%.1f GFLOP/s, wrapper %.0f%%", flops / raw / 1e9, 100 * raw / wrapped),
                   shareOfPeak(flops / raw / 1e9), "", ""])
      report.append(["kind": "sgemm", "m": m, "n": n, "k": k, "transpose_b": tb, "gflops_raw": flops / raw / 1e9,
                     "gflops_wrapper": flops / wrapped / 1e9])
    }

    report.append(["kind": "sgemm_ceiling", "gflops": ceiling])
    var flopNotes: [String] = []

    // The models: `rounds` rounds, each ours then the peer in a fresh process, so that both meet the
    // same phases of a shared machine; medians (min–max) of the rounds.
    for reference in EngineBench.references where wants(reference.part) {
      let config = reference.config
      var ours: [Throughput] = []
      var peer: [Throughput] = []
      for _ in 0..<rounds {
        ours.append(measure(config: config, generation: reference.generation, clock: clock))
        if let torch = peerResult(reference.peerArguments) {
          peer.append(Throughput(train: torch["train"] ?? 0, decode1: torch["gen1"] ?? 0, decode16: torch["gen16"] ?? 0))
        }
      }
      let mine = Throughput.median(ours), theirs = peer.isEmpty ? nil : Throughput.median(peer)
      let flops = ModelFLOPs(config: config, sequenceLength: EngineBench.sequenceLength)
      let achieved = mine.train * flops.perToken / 1e9  // model GFLOP/s
      let shareOfCeiling = achieved / ceiling
      var line: [String: Any] = ["kind": "model", "name": reference.name, "rounds": rounds,
                                 "train_tok_s": mine.train, "decode_tok_s_b1": mine.decode1,
                                 "decode_tok_s_b16": mine.decode16, "model_gflops": achieved,
                                 "flops_per_token": flops.perToken, "flops_per_token_attention": flops.attentionFLOPs,
                                 "share_of_sgemm_ceiling": shareOfCeiling,
                                 "train_tok_s_range": Throughput.range(ours, \.train)]
      if let hardware { line["mfu"] = achieved / hardware.gflops }
      flopNotes.append(String(format: "%@ %.2f MFLOP/token (6·N %.2f + causal attention %.2f)", reference.name,
                              flops.perToken / 1e6, flops.weightFLOPs / 1e6, flops.attentionFLOPs / 1e6))
      var peerText = ""
      if let theirs {
        line["torch"] = ["train": theirs.train, "gen1": theirs.decode1, "gen16": theirs.decode16,
                         "train_range": Throughput.range(peer, \.train)]
        line["ratios"] = reference.generation
          ? ["train": mine.train / theirs.train, "gen1": mine.decode1 / theirs.decode1, "gen16": mine.decode16 / theirs.decode16]
          : ["train": mine.train / theirs.train]
        peerText = reference.generation
          ? String(format: "torch %.0f / %.0f / %.0f; ratios %.2f× / %.2f× / %.2f×", theirs.train, theirs.decode1,
                   theirs.decode16, mine.train / theirs.train, mine.decode1 / theirs.decode1, mine.decode16 / theirs.decode16)
          : String(format: "torch %.0f; ratio %.2f×", theirs.train, mine.train / theirs.train)
        let peerRange = Throughput.range(peer, \.train)
        peerText += String(format: " (train %.0f–%.0f)", peerRange[0], peerRange[1])
      }
      let trainRange = Throughput.range(ours, \.train)
      rows.append([reference.name, (reference.generation
                     ? String(format: "train %.0f tok/s (%.0f–%.0f), decode b1 %.0f, b16 %.0f tok/s", mine.train,
                              trainRange[0], trainRange[1], mine.decode1, mine.decode16)
                     : String(format: "train %.0f tok/s (%.0f–%.0f)", mine.train, trainRange[0], trainRange[1])),
                   shareOfPeak(achieved), String(format: "%.0f%%", 100 * shareOfCeiling), peerText])
      report.append(line)
    }

    if wants("moe-cost") {
      // MoE cost per token against a dense model with the same active parameters: the reference MoE
      // (MLP hidden = 3 × 256), and the default lineage's V2 shape (V1's MLP of hidden 344 upcycled to
      // 1 shared + 4 routed experts of 172, top-1 with a sigmoid gate).
      let dense344 = ModelConfig(vocabularySize: 256, modelDim: 128, layerCount: 4, headCount: 4, contextLength: 128)
      var upcycled = dense344
      upcycled.moe = MoEConfig(routedExperts: 4, sharedExperts: 1, topK: 1, expertHiddenDim: 172, gate: .sigmoid,
                               balancing: .auxiliaryLossFree(biasUpdateRate: 1e-3))
      let pairs = [
        ("MoE vs dense with the same active parameters", "moe_vs_dense", EngineBench.references[2].config,
         ModelConfig(vocabularySize: 256, modelDim: 128, layerCount: 4, headCount: 4, mlpHiddenDim: 768, contextLength: 128)),
        ("upcycled V2 (1 shared + 4 routed of 172, top-1) vs dense 344", "upcycled_vs_dense", upcycled, dense344),
      ]
      for (title, kind, moeConfig, sameActive) in pairs {
        var ratios: [Double] = [], moes: [Double] = [], denses: [Double] = []
        for _ in 0..<rounds {
          let moe = measure(config: moeConfig, generation: false, clock: clock).train
          let dense = measure(config: sameActive, generation: false, clock: clock).train
          moes.append(moe)
          denses.append(dense)
          ratios.append(dense / moe)
        }
        let ratio = median(ratios)
        rows.append([title,
                     String(format: "%.0f vs %.0f tok/s: cost per token %.2f× (%.2f–%.2f)", median(moes), median(denses), ratio,
                            ratios.min()!, ratios.max()!), "", "", "target ≤ 1.3×"])
        report.append(["kind": kind, "moe_tok_s": median(moes), "dense_tok_s": median(denses), "cost_ratio": ratio])
      }
    }

    if wants("attention") {
      // Attention at 8,192 tokens: a 256-token window against dense, forward + backward, one layer.
      let long = attentionSeconds(length: 8192, pattern: .dense, clock: clock)
      let window = attentionSeconds(length: 8192, pattern: .slidingWindow(window: 256, globalTokens: 0), clock: clock)
      rows.append(["attention at 8,192 tokens, fwd+bwd (4 heads × 32)",
                   String(format: "dense %.0f ms, window 256 %.0f ms: %.1f× faster", long.seconds * 1000, window.seconds * 1000, long.seconds / window.seconds),
                   "", "", String(format: "saved weights %@ vs %@", byteCount(long.bytes), byteCount(window.bytes))])
      report.append(["kind": "long_attention", "dense_seconds": long.seconds, "window_seconds": window.seconds,
                     "dense_bytes": long.bytes, "window_bytes": window.bytes])
      // Block-sparse attention (blocks of 64, the top 4 chosen) beside them at 2,048 and 8,192 tokens. Random
      // inputs make a block's queries choose different blocks (the thin gathered products of its kernel);
      // a trained model's neighbouring queries agree more.
      let blockSparse = AttentionPattern.blockSparse(block: 64, topBlocks: 4)
      for length in [2048, 8192] {
        let dense = length == 8192 ? long : attentionSeconds(length: length, pattern: .dense, clock: clock)
        let windowed = length == 8192
          ? window : attentionSeconds(length: length, pattern: .slidingWindow(window: 256, globalTokens: 0), clock: clock)
        let blocks = attentionSeconds(length: length, pattern: blockSparse, clock: clock)
        let pairs = blockSparse.scoredPairs(length: length), scores = blockSparse.blockScores(length: length)
        rows.append(["block_sparse at \(length) tokens, fwd+bwd (4 heads × 32)",
                     String(format: "block 64 top 4 %.0f ms, window 256 %.0f ms, dense %.0f ms", blocks.seconds * 1000,
                            windowed.seconds * 1000, dense.seconds * 1000),
                     "", "", String(format: "%d pairs scored per head, %d of them block scores", pairs, scores)])
        report.append(["kind": "block_sparse_attention", "length": length, "block_sparse_seconds": blocks.seconds,
                       "window_seconds": windowed.seconds, "dense_seconds": dense.seconds, "block_sparse_bytes": blocks.bytes,
                       "scored_pairs": pairs, "block_scores": scores])
      }
    }

    if wants("int8") {
      // Int8 decoding against float32, the same weights, at batch 1 and 16: each round measures the
      // three models in turn, so that all meet the same phases of a shared machine.
      for reference in EngineBench.references where reference.generation {
        let model = TransformerLM(config: reference.config, seed: 0)
        let schemes = QuantizedMatrix.Scheme.allCases
        let quantized = try schemes.map { try model.quantized($0) }
        for batch in [1, 16] {
          var float: [Double] = [], int8: [[Double]] = schemes.map { _ in [] }, ratios: [[Double]] = schemes.map { _ in [] }
          for _ in 0..<rounds {
            let f = decodeRate(Generator(model: model), batch: batch, clock: clock)
            float.append(f)
            for (i, q) in quantized.enumerated() {
              let rate = decodeRate(Generator(model: q), batch: batch, clock: clock)
              int8[i].append(rate)
              ratios[i].append(rate / f)
            }
          }
          var line: [String: Any] = ["kind": "int8_decode", "name": reference.name, "batch": batch, "rounds": rounds,
                                     "float_tok_s": median(float), "float_tok_s_range": [float.min()!, float.max()!]]
          var texts: [String] = []
          for (i, scheme) in schemes.enumerated() {
            line["\(scheme.rawValue)_tok_s"] = median(int8[i])
            line["\(scheme.rawValue)_ratio"] = median(ratios[i])
            line["\(scheme.rawValue)_ratio_range"] = [ratios[i].min()!, ratios[i].max()!]
            texts.append(String(format: "%@ %.0f (%.2f×, %.2f–%.2f)", scheme.rawValue, median(int8[i]), median(ratios[i]),
                                ratios[i].min()!, ratios[i].max()!))
          }
          rows.append(["\(reference.name) int8 decode, batch \(batch)",
                       String(format: "float32 %.0f tok/s; ", median(float)) + texts.joined(separator: "; "), "", "",
                       batch == 1 ? "target ≥ 1.5× float32" : ""])
          report.append(line)
        }
      }
    }

    if json {
      printJSON(report)
    } else {
      Console.out(table(rows, header: ["measurement", "lineage", "MFU (÷ hardware peak)", "share of sgemm ceiling", "peer"]))
      Console.out("hardware peak: " + (hardware?.derivation ?? "unknown (no /proc/cpuinfo)"))
      Console.out(String(format: "sgemm ceiling: %.1f GFLOP/s, the fastest raw sgemm at the shapes above (%d threads of ours)",
                         ceiling, KernelThreads.helperCount + 1))
      if !flopNotes.isEmpty {
        Console.out("model FLOPs, training, per token: " + flopNotes.joined(separator: "; "))
      }
    }
  }

  func median(_ xs: [Double]) -> Double { EngineBench.median(xs) }
  static func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

  /// Tokens per second of one measurement: training, and decoding at batch 1 and 16.
  struct Throughput {
    var train: Double
    var decode1: Double
    var decode16: Double

    /// The median of each figure on its own.
    static func median(_ xs: [Throughput]) -> Throughput {
      func m(_ key: KeyPath<Throughput, Double>) -> Double { EngineBench.median(xs.map { $0[keyPath: key] }) }
      return Throughput(train: m(\.train), decode1: m(\.decode1), decode16: m(\.decode16))
    }

    static func range(_ xs: [Throughput], _ key: KeyPath<Throughput, Double>) -> [Double] {
      let values = xs.map { $0[keyPath: key] }
      return [values.min() ?? 0, values.max() ?? 0]
    }
  }

  /// One attention layer forward and backward at `length` tokens; the median of 3, and the bytes of
  /// softmax weights it keeps for the backward pass.
  func attentionSeconds(length: Int, pattern: AttentionPattern, clock: () -> Double) -> (seconds: Double, bytes: Int) {
    var random = RandomStream(seed: 2, purpose: .evaluation)
    func input() -> Tensor { Tensor(shape: [length, 128], scalars: (0..<(length * 128)).map { _ in random.normal() }) }
    let q = Variable(input(), requiresGrad: true), k = Variable(input(), requiresGrad: true), v = Variable(input(), requiresGrad: true)
    var samples: [Double] = []
    for _ in 0..<3 {
      let start = clock()
      Variable.attention(q: q, k: k, v: v, batch: 1, heads: 4, kvHeads: 4, pattern: pattern).sum().backward()
      samples.append(clock() - start)
    }
    return (median(samples), 4 * length * pattern.maximumKeys(length: length) * 4)
  }

  /// Tokens per training sequence: batches are 16 sequences of 129 tokens, 128 predicted.
  static let sequenceLength = 128

  func measure(config: ModelConfig, generation: Bool, clock: () -> Double) -> Throughput {
    let model = TransformerLM(config: config, seed: 0)
    let optimizer = AdamW(parameters: model.parameters, settings: .init(schedule: LearningRateSchedule(peak: 3e-4, warmupSteps: 0, totalSteps: 100)))
    var random = RandomStream(seed: 0, purpose: .dataOrder)
    var times: [Double] = []
    for step in 0..<(steps + 3) {
      let batch = (0..<16).map { _ in (0...128).map { _ in Int32(random.nextUInt32() % 256) } }
      let start = clock()
      model.zeroGradients()
      let loss = model.loss(batch)
      loss.backward()
      optimizer.update()
      if step >= 3 { times.append(clock() - start) }
    }
    let train = Double(16 * 128) / median(times)
    guard generation else { return Throughput(train: train, decode1: 0, decode16: 0) }
    let generator = Generator(model: model)
    return Throughput(train: train, decode1: decodeRate(generator, batch: 1, clock: clock),
                      decode16: decodeRate(generator, batch: 16, clock: clock))
  }

  /// Decoding tokens/s: `batch` prompts of 64 random bytes, the 63 greedy steps after the first token
  /// (the time for 64 new tokens minus that for 1, which reads the prompt); the median of `repeats`
  /// after one warm-up. The prompts are drawn from a fixed seed, so every model decodes the same ones.
  func decodeRate(_ generator: Generator, batch: Int, clock: () -> Double) -> Double {
    var random = RandomStream(seed: UInt64(batch), purpose: .dataOrder)
    let tokenizer = ByteTokenizer()
    let prompts = (0..<batch).map { _ in (0..<64).map { _ in Int32(random.nextUInt32() % 256) } }
    var samples: [Double] = []
    for _ in 0..<(repeats + 1) {
      var r = RandomStream(seed: 1, purpose: .sampling)
      let t0 = clock()
      _ = generator.generate(prompts: prompts, settings: SamplingSettings(maxNewTokens: 1, stopAtEOS: false), tokenizer: tokenizer, random: &r)
      let t1 = clock()
      _ = generator.generate(prompts: prompts, settings: SamplingSettings(maxNewTokens: 64, stopAtEOS: false), tokenizer: tokenizer, random: &r)
      let t2 = clock()
      samples.append((t2 - t1) - (t1 - t0))  // decode time: the 63 steps after the prefill
    }
    return Double(batch * 63) / median(Array(samples.dropFirst()))
  }

  /// The peer's tokens/s (train, decode at batch 1 and 16), or nil when it cannot run here.
  func peerResult(_ arguments: [String]) -> [String: Double]? {
    guard !noPeer, FileManager.default.fileExists(atPath: peer) else { return nil }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", peer, "--threads", String(threads), "--steps", String(steps),
                         "--gen-repeats", String(repeats)] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    var out: [String: Double] = [:]
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix("JSON ") {
      guard let object = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(5).utf8)) as? [String: Any] else { continue }
      if object["kind"] as? String == "train" { out["train"] = object["tok_per_s_median"] as? Double }
      if object["kind"] as? String == "gen", let b = object["batch"] as? Int {
        out["gen\(b)"] = object["decode_tok_per_s_median"] as? Double
      }
    }
    return out.isEmpty ? nil : out
  }
}
