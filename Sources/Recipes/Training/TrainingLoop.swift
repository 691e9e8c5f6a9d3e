import Foundation
import Models
import Pipeline
import Tensors

/// One batch of language-model training: `tokens[b]` holds a sequence and its next token
/// (`[batch][seq + 1]`); `weights[b][t]` weights the prediction of token t (0 masks prompts and padding;
/// nil: all 1).
struct TrainingBatch {
  var tokens: [[Int32]]
  var weights: [[Float]]?
}

extension TrainingBatch {
  /// Micro-batch `index` of `count` equal slices of the rows, and its share of the batch's weight (the
  /// predictions' weights; a row's first token is never predicted): scaling a micro-batch's mean loss by
  /// its share makes the micro-batches add up to the batch's mean.
  ///
  /// - Throws: `StageFailure` when `count` does not divide the rows.
  func microBatch(_ index: Int, of count: Int) throws -> (batch: TrainingBatch, share: Double) {
    guard tokens.count % count == 0 else {
      throw StageFailure("a batch of \(tokens.count) rows does not split into \(count) micro-batches")
    }
    let size = tokens.count / count
    let rows = (index * size)..<((index + 1) * size)
    func weight(_ range: Range<Int>) -> Double {
      range.reduce(0.0) { sum, r in
        sum + (weights.map { $0[r].dropFirst().reduce(0.0) { $0 + Double($1) } } ?? Double(tokens[r].count - 1))
      }
    }
    let total = weight(0..<tokens.count)
    return (TrainingBatch(tokens: Array(tokens[rows]), weights: weights.map { Array($0[rows]) }),
            total > 0 ? weight(rows) / total : 0)
  }
}

/// The loop every training op shares: the objective's loss per step, backward, the hooks, AdamW,
/// progress, the curves, and checkpoints into the store so that a killed or interrupted run resumes
/// mid-stage, bit-identically.
///
/// An objective's loss is a pure function of the step number and state it restores (each step draws
/// from its own seeded stream), so the checkpoint needs only the weights, the optimizer's moments, the
/// curves so far (an MoE model's expert-load log among them) and the op's own state.
final class TrainingLoop {
  let context: StageContext
  let model: TransformerLM
  let objective: any TrainingObjective
  let hooks: TrainingHooks
  let optimizer: AdamW
  let steps: Int
  /// Losses of the steps taken so far, one per step.
  private(set) var losses: [Float] = []
  /// The objective's further per-step values (`ObjectiveStep.metrics`), one curve per name.
  private(set) var curves: [String: [Double]] = [:]
  /// An MoE model's routing per step and layer (empty for a dense model): `recordExpertMetrics` reports it.
  private(set) var expertLoad = ExpertLoadLog()
  /// Bytes an op keeps across a checkpoint (e.g. adaptive mixture weights); restored before `run` goes on.
  var opState: [UInt8] = []

  init(context: StageContext, model: TransformerLM, objective: any TrainingObjective, settings: AdamW.Settings,
       steps: Int, hooks: TrainingHooks = TrainingHooks()) {
    self.context = context
    self.model = model
    self.objective = objective
    self.hooks = hooks
    model.trainable = objective.trains
    self.optimizer = AdamW(parameters: model.parameters + objective.auxiliaryParameters, settings: settings,
                           trains: objective.trains)
    self.steps = steps
    checkpointInterval = context.checkpointSeconds
  }

  /// Seconds between checkpoints (one is also saved when the run is interrupted).
  let checkpointInterval: TimeInterval

  /// Resumes from this stage's checkpoint if there is one; returns the first step still to run.
  ///
  /// - Throws: `StageFailure` when the checkpoint cannot be read (its blob is verified by the store).
  func resume() throws -> Int {
    // Reading is not decoding: a store or transport error fails the stage and keeps the checkpoint;
    // only bytes that do not decode are dropped below.
    guard let saved = try context.loadCheckpoint() else { return 0 }
    do {
      var reader = SectionReader(saved.state)
      try model.load(try SafeTensors.read(try reader.next()).tensors)
      try optimizer.restore(try reader.next())
      losses = try reader.next().withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
      opState = try reader.next()
      (curves, expertLoad) = try ExpertLoadLog.split(try Curves.decode(try reader.next()))
      let auxiliary = objective.auxiliaryParameters
      if !auxiliary.isEmpty {
        let saved = try SafeTensors.read(try reader.next()).tensors
        for (id, v) in auxiliary {
          guard let t = saved[id.safetensorsName], t.shape == v.value.shape else {
            throw StageFailure("it lacks \(id.safetensorsName)")
          }
          v.value = t
        }
      }
      guard losses.count == saved.step, optimizer.step == saved.step else {
        throw StageFailure("it records step \(saved.step) but holds \(losses.count) losses")
      }
      guard model.config.moe == nil || expertLoad.steps == saved.step else {
        throw StageFailure("it records step \(saved.step) but the expert load of \(expertLoad.steps) steps")
      }
      context.log("resumed at step \(saved.step) of \(steps)")
      return saved.step
    } catch {
      // Never train on from a damaged state: drop it, so the next run starts this stage over.
      try? context.discardCheckpoint()
      throw StageFailure("this stage's checkpoint is damaged (\(error)); it was removed and the next run starts the stage over")
    }
  }

  /// Runs the remaining steps.
  ///
  /// - Parameters:
  ///   - restore: called with `opState` when the run resumes from a checkpoint that holds one.
  ///   - afterStep: called after each update with the step and its loss (before a checkpoint is saved,
  ///     so state it puts in `opState` is saved with that step).
  func run(restore: ([UInt8]) throws -> Void = { _ in }, afterStep: (Int, Float) throws -> Void = { _, _ in }) throws {
    try ModelArtifact.refuseTraining(model)
    // Checked on every rank alike, before any collective call.
    let group = context.processes
    if let problem = Ranks.problem(ranks: group?.size ?? 1, microBatches: objective.microBatches) {
      throw StageFailure(problem)
    }
    let first = try resume()
    if first > 0 && !opState.isEmpty { try restore(opState) }
    var lastSave = Date()
    let started = Date()
    var tokensSeen = 0
    var smoothed: Float?
    for step in first..<steps {
      // Every rank stops at the same step: a stop seen by one is agreed by all before the step's collectives.
      if try communicating({ try group?.any(context.stopRequested) }) ?? context.isCancelled {
        try save(step: step)
        throw CancellationError()
      }
      let taken = objective.microBatches > 1 || group != nil ? try microBatchedStep(step) : try wholeBatchStep(step)
      try hooks.afterBackward(model)
      let (_, lr) = optimizer.update()
      let load = try hooks.expertLoad(taken.load)
      model.updateRoutingBias(load: load)
      if model.config.moe != nil && !load.isEmpty { expertLoad.record(load: load, dropped: taken.dropped) }
      let value = taken.loss
      guard value.isFinite else { throw StageFailure("the loss became \(value) at step \(step + 1); lower train.lr") }
      losses.append(value)
      for (name, x) in taken.metrics { curves[name, default: []].append(x) }
      tokensSeen += taken.tokens
      let shown = smoothed.map { 0.9 * $0 + 0.1 * value } ?? value
      smoothed = shown
      try afterStep(step, value)
      let elapsed = Date().timeIntervalSince(started)
      context.progress(step: step + 1, of: steps, [("loss", Double(shown)), ("lr", Double(lr)),
                                                   ("tok/s", Double(tokensSeen) / max(elapsed, 1e-9))])
      if Date().timeIntervalSince(lastSave) >= checkpointInterval && step + 1 < steps {
        try save(step: step + 1)
        lastSave = Date()
      }
    }
    let elapsed = Date().timeIntervalSince(started)
    if first < steps {
      context.log(String(format: "trained steps %d–%d: %.0f tokens/s, final loss %.4f",
                         first + 1, steps, Double(tokensSeen) / max(elapsed, 1e-9), Double(finalLoss)))
      if let group {
        // Each rank sends 2·(r−1)/r of the reduced vector per step (`ProcessGroup.treeSum`).
        let sent = 2 * Double(group.size - 1) / Double(group.size) * Double(reducedFloats) * 4
        context.log(String(format: "communication on rank %d of %d: %.3f s of %.3f s (%.1f%%); %d floats reduced per step, %.3f MB sent per rank per step",
                           group.rank, group.size, communicationSeconds, elapsed, 100 * communicationSeconds / max(elapsed, 1e-9),
                           reducedFloats, sent / 1e6))
      }
    }
  }

  /// One step's gradients (left in the parameters' `grad`) and what it reports.
  private struct TakenStep {
    var loss: Float
    var tokens: Int
    var metrics: [(name: String, value: Double)]
    /// Routed tokens `[layer][expert]` and dropped tokens per layer (empty for a dense model).
    var load: [[Int]]
    var dropped: [Int]
  }

  /// The whole batch in one pass.
  private func wholeBatchStep(_ step: Int) throws -> TakenStep {
    model.zeroGradients()
    for (_, v) in objective.auxiliaryParameters { v.zeroGrad() }
    let outcome = try objective.loss(step: step, model: model)
    outcome.loss.backward()
    return TakenStep(loss: outcome.loss.value.scalars[0], tokens: outcome.tokens, metrics: outcome.metrics,
                     load: model.lastExpertLoad, dropped: model.lastDroppedTokens)
  }

  /// The step's micro-batches, this rank's share of them: each one's gradient, summed in `FixedTree`'s
  /// order here and then over the ranks (`ProcessGroup.treeSum`), so that every rank holds the same
  /// gradient — the same bits as one process computing every micro-batch.
  ///
  /// One vector per micro-batch carries the trained parameters' gradients, a flag per parameter
  /// (whether it got a gradient at all: one that none got stays without, as on one pass) and the loss.
  /// Token counts and expert loads are summed exactly; each metric is averaged over the micro-batches
  /// in their order, after every rank has them all.
  private func microBatchedStep(_ step: Int) throws -> TakenStep {
    let group = context.processes
    let count = objective.microBatches
    let share = FixedTree.share(of: count, rank: group?.rank ?? 0, ranks: group?.size ?? 1)
    let trained = gradientVariables
    let sizes = trained.map(\.value.scalars.count)
    let gradientLength = sizes.reduce(0, +)
    var tokens = 0
    var load = model.config.moe.map { [[Int]](repeating: [Int](repeating: 0, count: $0.routedExperts), count: model.config.layerCount) } ?? []
    var dropped = [Int](repeating: 0, count: load.count)
    var metrics: [[UInt8]] = []
    var sum = try FixedTree.sum(share) { index in
      model.zeroGradients()
      for (_, v) in objective.auxiliaryParameters { v.zeroGrad() }
      let outcome = try objective.loss(step: step, microBatch: index, model: model)
      outcome.loss.backward()
      tokens += outcome.tokens
      metrics.append(MicroBatchMetrics.encode(index: index, outcome.metrics))
      for (l, layer) in model.lastExpertLoad.enumerated() where l < load.count {
        for (e, n) in layer.enumerated() where e < load[l].count { load[l][e] += n }
      }
      for (l, n) in model.lastDroppedTokens.enumerated() where l < dropped.count { dropped[l] += n }
      var vector = [Float]()
      vector.reserveCapacity(gradientLength + trained.count + 1)
      for (k, variable) in trained.enumerated() {
        if let g = variable.grad { vector += g.scalars } else { vector += repeatElement(0, count: sizes[k]) }
      }
      for variable in trained { vector.append(variable.grad == nil ? 0 : 1) }
      vector.append(outcome.loss.value.scalars[0])
      return vector
    }
    try communicating { try group?.treeSum(&sum) }
    reducedFloats = sum.count
    var offset = 0
    for (k, variable) in trained.enumerated() {
      variable.grad = sum[gradientLength + k] > 0
        ? Tensor(shape: variable.value.shape, scalars: Array(sum[offset..<(offset + sizes[k])])) : nil
      offset += sizes[k]
    }
    var counts = [tokens] + load.flatMap { $0 } + dropped
    var everyMetric = metrics
    if let group {
      try communicating {
        counts = try group.sum(counts)
        everyMetric = try group.allGather(MicroBatchMetrics.join(metrics)).flatMap { try MicroBatchMetrics.split($0) }
      }
    }
    var cursor = 1
    for l in load.indices {
      for e in load[l].indices { load[l][e] = counts[cursor]; cursor += 1 }
    }
    for l in dropped.indices { dropped[l] = counts[cursor]; cursor += 1 }
    return TakenStep(loss: sum[sum.count - 1], tokens: counts[0], metrics: try MicroBatchMetrics.mean(everyMetric, count: count),
                     load: load, dropped: dropped)
  }

  /// Seconds this process spent in collective calls (waiting for the other ranks included), and the
  /// length of the vector each step reduces: for the log, never for the artifacts.
  private var communicationSeconds = 0.0
  private var reducedFloats = 0

  private func communicating<T>(_ body: () throws -> T) rethrows -> T {
    let started = DispatchTime.now().uptimeNanoseconds
    defer { communicationSeconds += Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }
    return try body()
  }

  /// The variables whose gradients a step computes: the trained parameters and the objective's own.
  private lazy var gradientVariables: [Variable] = {
    model.parameters.filter { objective.trains.contains($0.id) }.map(\.variable) + objective.auxiliaryParameters.map(\.variable)
  }()

  /// The mean loss over the last tenth of the steps (at least one): less noisy than the last step.
  var finalLoss: Float {
    let tail = losses.suffix(max(1, losses.count / 10))
    return tail.isEmpty ? .nan : tail.reduce(0, +) / Float(tail.count)
  }

  private func save(step: Int) throws {
    guard (context.processes?.rank ?? 0) == 0 else { return }  // rank 0 saves; the others' state is the same
    var state = SectionWriter()
    state.append(SafeTensors.write(model.tensors))
    state.append(optimizer.serialized())
    state.append(losses.withUnsafeBytes { Array($0) })
    state.append(opState)
    // The routing log rides with the curves under its own prefix: a dense model's checkpoint is unchanged.
    state.append(Curves.encode(curves.merging(expertLoad.curves) { objective, _ in objective }))
    let auxiliary = objective.auxiliaryParameters
    if !auxiliary.isEmpty {
      state.append(SafeTensors.write(Dictionary(uniqueKeysWithValues: auxiliary.map { ($0.id.safetensorsName, $0.variable.value) })))
    }
    try context.saveCheckpoint(step: step, of: steps, state: state.bytes)
  }
}

/// Named curves as bytes: per curve, its name's UTF-8 and its values' bit patterns, as sections.
enum Curves {
  static func encode(_ curves: [String: [Double]]) -> [UInt8] {
    var out = SectionWriter()
    for name in curves.keys.sorted() {
      out.append(Array(name.utf8))
      var values: [UInt8] = []
      for x in curves[name] ?? [] { withUnsafeBytes(of: x.bitPattern.littleEndian) { values += $0 } }
      out.append(values)
    }
    return out.bytes
  }

  static func decode(_ bytes: [UInt8]) throws -> [String: [Double]] {
    var reader = SectionReader(bytes), curves: [String: [Double]] = [:]
    while !reader.isAtEnd {
      let name = String(decoding: try reader.next(), as: UTF8.self), values = try reader.next()
      guard values.count % 8 == 0 else { throw StageFailure("a curve of the checkpoint is damaged") }
      curves[name] = stride(from: 0, to: values.count, by: 8).map { start in
        var bits: UInt64 = 0
        for b in 0..<8 { bits |= UInt64(values[start + b]) << (8 * UInt64(b)) }
        return Double(bitPattern: bits)
      }
    }
    return curves
  }
}

/// Length-prefixed byte sections (little-endian UInt64 lengths).
struct SectionWriter {
  private(set) var bytes: [UInt8] = []
  mutating func append(_ section: [UInt8]) {
    withUnsafeBytes(of: UInt64(section.count).littleEndian) { bytes += $0 }
    bytes += section
  }
}

struct SectionReader {
  private let bytes: [UInt8]
  private var offset = 0
  init(_ bytes: [UInt8]) { self.bytes = bytes }
  var isAtEnd: Bool { offset >= bytes.count }

  mutating func next() throws -> [UInt8] {
    guard offset + 8 <= bytes.count else { throw StageFailure("truncated state") }
    var length: UInt64 = 0
    for i in 0..<8 { length |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
    offset += 8
    guard length <= UInt64(bytes.count - offset) else { throw StageFailure("truncated state") }
    defer { offset += Int(length) }
    return Array(bytes[offset..<(offset + Int(length))])
  }
}

/// A micro-batch's metrics as bytes, so that ranks can gather them: its index, then each name and the
/// value's bit pattern, as sections.
enum MicroBatchMetrics {
  static func encode(index: Int, _ metrics: [(name: String, value: Double)]) -> [UInt8] {
    var body = SectionWriter()
    body.append(withUnsafeBytes(of: UInt64(index).littleEndian) { Array($0) })
    for (name, value) in metrics {
      body.append(Array(name.utf8))
      body.append(withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) })
    }
    return body.bytes
  }

  /// Several records as one message (a section each), and back.
  static func join(_ records: [[UInt8]]) -> [UInt8] {
    var out = SectionWriter()
    for record in records { out.append(record) }
    return out.bytes
  }

  static func split(_ bytes: [UInt8]) throws -> [[UInt8]] {
    var reader = SectionReader(bytes), out: [[UInt8]] = []
    while !reader.isAtEnd { out.append(try reader.next()) }
    return out
  }

  /// Each metric's mean over the micro-batches, added in micro-batch order, names in micro-batch 0's order.
  static func mean(_ records: [[UInt8]], count: Int) throws -> [(name: String, value: Double)] {
    var byIndex: [Int: [(name: String, value: Double)]] = [:]
    for record in records {
      var reader = SectionReader(record)
      let index = Int(try integer(try reader.next()))
      var metrics: [(name: String, value: Double)] = []
      while !reader.isAtEnd {
        let name = String(decoding: try reader.next(), as: UTF8.self)
        metrics.append((name, Double(bitPattern: try integer(try reader.next()))))
      }
      byIndex[index] = metrics
    }
    guard byIndex.count == count, let first = byIndex[0] else {
      throw StageFailure("the ranks reported \(byIndex.count) of \(count) micro-batches")
    }
    return first.map { metric in
      var total = 0.0
      for i in 0..<count { total += byIndex[i]?.first { $0.name == metric.name }?.value ?? .nan }
      return (metric.name, total / Double(count))
    }
  }

  private static func integer(_ b: [UInt8]) throws -> UInt64 {
    guard b.count == 8 else { throw StageFailure("a micro-batch report is damaged") }
    return b.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
  }
}
