import Models
import Tensors

/// The Bradley–Terry preference loss: a reward model gives the preferred response the score s⁺ and
/// the other one s⁻, models P(preferred ≻ other) = σ(s⁺ − s⁻), and minimises −log σ(s⁺ − s⁻), averaged
/// over pairs (InstructGPT §3.5; Bradley & Terry 1952).
///
/// −log σ(s⁺ − s⁻) = −log(e^{s⁺} / (e^{s⁺} + e^{s⁻})) is the cross-entropy of the two scores as logits
/// with the preferred one as the target, so the loss reuses the fused, numerically stable
/// cross-entropy kernel (and its finite-difference-checked backward): ∂/∂s⁺ = −σ(s⁻ − s⁺)/n and
/// ∂/∂s⁻ = +σ(s⁻ − s⁺)/n for n pairs.
enum BradleyTerry {
  /// The mean loss of a batch of pairs.
  ///
  /// - Parameter scores: `[pairs, 2]`: each row the preferred response's score, then the other's.
  /// - Returns: a scalar.
  static func loss(_ scores: Variable) -> Variable {
    precondition(scores.shape.count == 2 && scores.shape[1] == 2, "Bradley–Terry scores are [pairs, 2], not \(scores.shape)")
    return scores.crossEntropy(targets: [Int32](repeating: 0, count: scores.shape[0]))
  }

  /// The share of pairs whose preferred response scores strictly higher (an equal score counts as
  /// wrong: the model did not tell them apart), and the mean margin s⁺ − s⁻.
  ///
  /// - Parameter scores: `[pairs, 2]` values, as for `loss`.
  static func accuracy(_ scores: Tensor) -> (accuracy: Double, margin: Double) {
    let values = scores.scalars, pairs = values.count / 2
    guard pairs > 0 else { return (0, 0) }
    var right = 0, margin = 0.0
    for p in 0..<pairs {
      let d = Double(values[2 * p]) - Double(values[2 * p + 1])
      if d > 0 { right += 1 }
      margin += d
    }
    return (Double(right) / Double(pairs), margin / Double(pairs))
  }
}

/// Trains a reward model on labelled pairs with the Bradley–Terry loss: each step scores `batch`
/// pairs drawn (with replacement, from a stream of the step's own) from the labelled ones.
///
/// The batch is a pure function of the step, so the loop's checkpoints need no state of this objective.
final class BradleyTerryObjective: TrainingObjective {
  /// One labelled pair as the reward model reads it (`RewardModelScorer.sequence`).
  struct Pair: Equatable {
    var preferred: [Int32]
    var other: [Int32]
  }

  let pairs: [Pair]
  let batch: Int
  let seed: UInt64
  let pad: Int32
  let trains: ParameterSelection
  /// Equal slices of each step's pairs whose gradients are summed in a fixed tree (`train.micro_batch`).
  let microBatches: Int

  /// - Precondition: `pairs` is not empty; `microBatches` divides `batch`.
  init(pairs: [Pair], batch: Int, seed: UInt64, pad: Int32, trains: ParameterSelection, microBatches: Int = 1) {
    precondition(batch % microBatches == 0, "micro-batches must divide the batch")
    self.microBatches = microBatches
    precondition(!pairs.isEmpty, "a reward model needs at least one labelled pair")
    self.pairs = pairs
    self.batch = batch
    self.seed = seed
    self.pad = pad
    self.trains = trains
  }

  func loss(step: Int, model: TransformerLM) throws -> ObjectiveStep {
    try loss(of: picked(step), model: model)
  }

  /// Micro-batch `index`: its pairs' mean loss over the micro-batch count (micro-batches are equal, so
  /// the step's loss is still the mean over its pairs).
  func loss(step: Int, microBatch index: Int, model: TransformerLM) throws -> ObjectiveStep {
    let size = batch / microBatches
    let outcome = try loss(of: Array(picked(step)[(index * size)..<((index + 1) * size)]), model: model)
    return ObjectiveStep(loss: outcome.loss.scaled(by: 1 / Float(microBatches)), tokens: outcome.tokens, metrics: outcome.metrics)
  }

  /// The step's pairs, drawn from a stream of its own.
  private func picked(_ step: Int) -> [Pair] {
    var rng = TaskRandom(seed: seed, stream: "reward_model/step/\(step)")
    return (0..<batch).map { _ in pairs[Int.random(in: 0..<pairs.count, using: &rng)] }
  }

  private func loss(of picked: [Pair], model: TransformerLM) throws -> ObjectiveStep {
    let sequences = picked.flatMap { [$0.preferred, $0.other] }
    let scores = RewardModelScorer.lastTokenScores(model, sequences, pad: pad).reshaped([picked.count, 2])
    let (accuracy, margin) = BradleyTerry.accuracy(scores.value)
    return ObjectiveStep(loss: BradleyTerry.loss(scores), tokens: sequences.reduce(0) { $0 + $1.count },
                         metrics: [("batch_accuracy", accuracy), ("margin", margin)])
  }
}
