import Foundation
import Models
import Pipeline
import Tensors

/// One batch of a training step: `tokens[b]` holds a sequence and its next token (`[batch][seq + 1]`);
/// `weights[b][t]` weights the prediction of token t (0 masks prompts and padding; nil: all 1).
struct TrainingBatch {
  var tokens: [[Int32]]
  var weights: [[Float]]?
}

/// The loop every training op shares: a batch per step, AdamW, progress, the loss curve, and
/// checkpoints into the store so that a killed or interrupted run resumes mid-stage, bit-identically.
///
/// Batches are a pure function of the step number (each step draws from its own seeded stream), so the
/// checkpoint needs only the weights, the optimizer's moments, the curve so far and the op's own state.
final class TrainingLoop {
  let context: StageContext
  let model: TransformerLM
  let optimizer: AdamW
  let steps: Int
  /// Losses of the steps taken so far, one per step.
  private(set) var losses: [Float] = []
  /// Bytes an op keeps across a checkpoint (e.g. adaptive mixture weights); restored before `run` goes on.
  var opState: [UInt8] = []

  init(context: StageContext, model: TransformerLM, settings: AdamW.Settings, steps: Int) {
    self.context = context
    self.model = model
    self.optimizer = AdamW(parameters: model.parameters, settings: settings)
    self.steps = steps
    checkpointInterval = context.checkpointSeconds
  }

  /// Seconds between checkpoints (one is also saved when the run is interrupted).
  let checkpointInterval: TimeInterval

  /// Resumes from this stage's checkpoint if there is one; returns the first step still to run.
  ///
  /// - Throws: `StageFailure` when the checkpoint cannot be read (its blob is verified by the store).
  func resume() throws -> Int {
    do {
      guard let saved = try context.loadCheckpoint() else { return 0 }
      var reader = SectionReader(saved.state)
      try model.load(try SafeTensors.read(try reader.next()).tensors)
      try optimizer.restore(try reader.next())
      losses = try reader.next().withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
      opState = try reader.next()
      guard losses.count == saved.step, optimizer.step == saved.step else {
        throw StageFailure("it records step \(saved.step) but holds \(losses.count) losses")
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
  ///   - batch: the batch of step `s` (0-based); must depend only on `s` and the op's fixed inputs
  ///     (and `opState`).
  ///   - restore: called with `opState` when the run resumes from a checkpoint that holds one.
  ///   - afterStep: called after each update with the step and its loss (before a checkpoint is saved,
  ///     so state it puts in `opState` is saved with that step).
  func run(batch: (Int) throws -> TrainingBatch, restore: ([UInt8]) throws -> Void = { _ in },
           afterStep: (Int, Float) throws -> Void = { _, _ in }) throws {
    let first = try resume()
    if first > 0 && !opState.isEmpty { try restore(opState) }
    var lastSave = Date()
    let started = Date()
    var tokensSeen = 0
    var smoothed: Float?
    for step in first..<steps {
      if context.isCancelled {
        try save(step: step)
        throw CancellationError()
      }
      let b = try batch(step)
      model.zeroGradients()
      let loss = model.loss(b.tokens, weights: b.weights)
      loss.backward()
      let (_, lr) = optimizer.update()
      model.updateRoutingBias()
      let value = loss.value.scalars[0]
      guard value.isFinite else { throw StageFailure("the loss became \(value) at step \(step + 1); lower train.lr") }
      losses.append(value)
      tokensSeen += b.tokens.reduce(0) { $0 + $1.count - 1 }
      smoothed = smoothed.map { 0.9 * $0 + 0.1 * value } ?? value
      try afterStep(step, value)
      let elapsed = Date().timeIntervalSince(started)
      context.progress(step: step + 1, of: steps, [("loss", Double(smoothed!)), ("lr", Double(lr)),
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
    }
  }

  /// The mean loss over the last tenth of the steps (at least one): less noisy than the last step.
  var finalLoss: Float {
    let tail = losses.suffix(max(1, losses.count / 10))
    return tail.isEmpty ? .nan : tail.reduce(0, +) / Float(tail.count)
  }

  private func save(step: Int) throws {
    var state = SectionWriter()
    state.append(SafeTensors.write(model.tensors))
    state.append(optimizer.serialized())
    state.append(losses.withUnsafeBytes { Array($0) })
    state.append(opState)
    try context.saveCheckpoint(step: step, of: steps, state: state.bytes)
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
