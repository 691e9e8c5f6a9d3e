import ArgumentParser
import Foundation
import Models
import Tensors

/// `lineage bench engine`: sgemm ceiling, training and generation throughput of the reference
/// configurations (PERFORMANCE.md), and the PyTorch peer run on the same machine in the same command.
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

  @Flag(name: .long, help: "Print JSON.")
  var json = false

  struct Reference {
    var name: String
    var config: ModelConfig
    var peerArguments: [String]
    var generation: Bool
  }

  /// The reference configurations of PERFORMANCE.md: byte vocabulary, 4 layers, 4 heads, context 128.
  static let references: [Reference] = [
    Reference(name: "dense d128", config: ModelConfig(vocabularySize: 256, modelDim: 128, layerCount: 4, headCount: 4,
                                                      mlpHiddenDim: 512, contextLength: 128),
              peerArguments: ["--d", "128", "--mode", "all"], generation: true),
    Reference(name: "dense d256", config: ModelConfig(vocabularySize: 256, modelDim: 256, layerCount: 4, headCount: 4,
                                                      mlpHiddenDim: 1024, contextLength: 128),
              peerArguments: ["--d", "256", "--mode", "all"], generation: true),
    Reference(name: "MoE d128 (8 routed top-2 + 1 shared)",
              config: ModelConfig(vocabularySize: 256, modelDim: 128, layerCount: 4, headCount: 4, contextLength: 128,
                                  moe: MoEConfig(routedExperts: 8, sharedExperts: 1, topK: 2, expertHiddenDim: 256)),
              peerArguments: ["--d", "128", "--moe", "--mode", "train"], generation: false),
  ]

  func run() async throws {
    Allocator.keepFreedMemory()
    var report: [[String: Any]] = []
    var rows: [[String]] = []
    let clock = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    // The ceiling: sgemm at the shapes the models use.
    var peak = 0.0
    for (m, n, k, tb) in [(2048, 2048, 2048, false), (2048, 512, 128, true), (2048, 128, 512, false), (4096, 768, 256, true),
                          (4096, 1024, 256, false), (16, 768, 256, true), (1, 768, 256, true)] {
      let raw = median(timeMatmul(m: m, n: n, k: k, transposeB: tb, raw: true, repeats: 9, clock: clock))
      let wrapped = median(timeMatmul(m: m, n: n, k: k, transposeB: tb, raw: false, repeats: 9, clock: clock))
      let flops = 2.0 * Double(m * n * k)
      peak = max(peak, flops / raw / 1e9)
      rows.append(["sgemm \(m)×\(k)×\(n)\(tb ? " NT" : "")", String(format: "%.1f GFLOP/s", flops / raw / 1e9),
                   String(format: "wrapper %.0f%%", 100 * raw / wrapped)])
      report.append(["kind": "sgemm", "m": m, "n": n, "k": k, "transpose_b": tb, "gflops_raw": flops / raw / 1e9,
                     "gflops_wrapper": flops / wrapped / 1e9])
    }

    for reference in EngineBench.references {
      let config = reference.config
      let ours = measure(config: config, generation: reference.generation, clock: clock)
      var line: [String: Any] = ["kind": "model", "name": reference.name, "train_tok_s": ours.train,
                                 "decode_tok_s_b1": ours.decode1, "decode_tok_s_b16": ours.decode16,
                                 "mfu": ours.train * flopsPerToken(config) / (peak * 1e9)]
      var peerText = ""
      if let torch = peerResult(reference.peerArguments) {
        line["torch"] = torch
        let t = torch["train"] ?? 0, g1 = torch["gen1"] ?? 0, g16 = torch["gen16"] ?? 0
        peerText = reference.generation
          ? String(format: "torch %.0f / %.0f / %.0f; ratios %.2f× / %.2f× / %.2f×", t, g1, g16,
                   ours.train / t, ours.decode1 / g1, ours.decode16 / g16)
          : String(format: "torch %.0f; ratio %.2f×", t, ours.train / t)
      }
      let mfu = 100 * ours.train * flopsPerToken(config) / (peak * 1e9)
      rows.append([reference.name, reference.generation
                     ? String(format: "train %.0f tok/s (MFU %.0f%%), decode b1 %.0f, b16 %.0f tok/s", ours.train, mfu,
                              ours.decode1, ours.decode16)
                     : String(format: "train %.0f tok/s (MFU %.0f%%)", ours.train, mfu),
                   peerText])
      report.append(line)
    }
    // MoE cost per token against a dense model with the same active parameters (MLP hidden = 3 × 256).
    let moeConfig = EngineBench.references[2].config
    let sameActive = ModelConfig(vocabularySize: 256, modelDim: 128, layerCount: 4, headCount: 4, mlpHiddenDim: 768,
                                 contextLength: 128)
    let moe = measure(config: moeConfig, generation: false, clock: clock).train
    let dense = measure(config: sameActive, generation: false, clock: clock).train
    rows.append(["MoE vs dense with the same active parameters", String(format: "%.0f vs %.0f tok/s: cost per token %.2f×", moe, dense, dense / moe), "target ≤ 1.3×"])
    report.append(["kind": "moe_vs_dense", "moe_tok_s": moe, "dense_tok_s": dense, "cost_ratio": dense / moe])

    // Attention at 8,192 tokens: a 256-token window against dense, forward + backward, one layer.
    let long = attentionSeconds(length: 8192, pattern: .dense, clock: clock)
    let window = attentionSeconds(length: 8192, pattern: .slidingWindow(window: 256, globalTokens: 0), clock: clock)
    rows.append(["attention at 8,192 tokens, fwd+bwd (4 heads × 32)",
                 String(format: "dense %.0f ms, window 256 %.0f ms: %.1f× faster", long.seconds * 1000, window.seconds * 1000, long.seconds / window.seconds),
                 String(format: "saved weights %@ vs %@", byteCount(long.bytes), byteCount(window.bytes))])
    report.append(["kind": "long_attention", "dense_seconds": long.seconds, "window_seconds": window.seconds,
                   "dense_bytes": long.bytes, "window_bytes": window.bytes])

    if json {
      printJSON(report)
    } else {
      Console.out(table(rows, header: ["measurement", "lineage", "peer"]))
    }
  }

  func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

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

  /// 6 × active matmul weights + attention (QKᵀ and PV, counted in full as the peer does), per trained token.
  func flopsPerToken(_ c: ModelConfig) -> Double {
    let matmul = Double(c.activeParameterCount - c.vocabularySize * c.modelDim - (2 * c.layerCount + 1) * c.modelDim)
    return 6 * matmul + 6 * Double(2 * c.layerCount * c.contextLength * c.modelDim)
  }

  func measure(config: ModelConfig, generation: Bool, clock: () -> Double) -> (train: Double, decode1: Double, decode16: Double) {
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
    guard generation else { return (train, 0, 0) }
    let generator = Generator(model: model)
    let tokenizer = ByteTokenizer()
    func decodeRate(_ batch: Int) -> Double {
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
    return (train, decodeRate(1), decodeRate(16))
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
