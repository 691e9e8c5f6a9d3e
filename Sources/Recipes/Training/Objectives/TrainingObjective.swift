import Models
import Pipeline
import Tensors

/// What a training step minimises: language-model cross-entropy, and next GRPO, knowledge distillation
/// or a Bradley–Terry reward loss.
///
/// The training loop owns the optimizer, the schedule, checkpoints and progress; an objective owns
/// its data and its loss. `loss(step:model:)` must depend only on the step number, the objective's fixed
/// inputs and state it restores from the loop's `opState`, so that a resumed run is bit-identical.
protocol TrainingObjective: AnyObject {
  /// The loss of step `step` (0-based) as a scalar on the autograd tape, and what the step reports.
  func loss(step: Int, model: TransformerLM) throws -> ObjectiveStep

  /// The parameters this objective trains (e.g. a reward model's value head on a frozen body); the
  /// others are constants in the forward pass and untouched by the optimizer.
  var trains: ParameterSelection { get }

  /// Weights the objective owns and trains beside the model's (modular distillation's projections):
  /// the optimizer updates them and checkpoints keep them, but they are not part of the model artifact.
  var auxiliaryParameters: [(id: ParameterID, variable: Variable)] { get }

  /// The micro-batches of every step's batch. With 1, a step is `loss(step:model:)` on the whole batch
  /// at once (and the stage runs on one process). With n > 1 the loop calls `loss(step:microBatch:model:)`
  /// for each and sums their gradients in `FixedTree`'s order, over as many ranks as divide n.
  var microBatches: Int { get }

  /// The loss of micro-batch `index` (0..<microBatches) of step `step`, scaled so that the step's
  /// micro-batch losses add up to the loss of its whole batch; and its report (`tokens` of this
  /// micro-batch; `metrics` as means over it, which the loop averages over the micro-batches).
  ///
  /// Must depend only on the step, the index and what `loss(step:model:)` may depend on: never on which
  /// other micro-batches this process computes.
  func loss(step: Int, microBatch index: Int, model: TransformerLM) throws -> ObjectiveStep
}

extension TrainingObjective {
  var trains: ParameterSelection { .all }
  var auxiliaryParameters: [(id: ParameterID, variable: Variable)] { [] }
  var microBatches: Int { 1 }

  func loss(step: Int, microBatch index: Int, model: TransformerLM) throws -> ObjectiveStep {
    precondition(index == 0 && microBatches == 1, "an objective of several micro-batches must compute each")
    return try loss(step: step, model: model)
  }
}

/// One step's loss and its report.
struct ObjectiveStep {
  /// A scalar `Variable`; the loop calls `backward()` on it.
  var loss: Variable
  /// Tokens the step read, for the tokens/s figure.
  var tokens: Int
  /// Further per-step values (reward, KL, response length, …): the loop keeps each as a curve in the
  /// checkpoint and hands the curves back at the end.
  var metrics: [(name: String, value: Double)] = []
}

/// Where a training step can be extended without touching the loop: gradient reduction across
/// processes before the update, and the expert load the MoE routing bias follows after it.
struct TrainingHooks {
  /// Between backward and the optimizer update: e.g. average the gradients of several processes.
  var afterBackward: (TransformerLM) throws -> Void = { _ in }
  /// The step's expert load (`[layer][expert]` routed-token counts) before the routing bias moves:
  /// e.g. summed across processes, so that every process moves the bias the same way.
  var expertLoad: ([[Int]]) throws -> [[Int]] = { $0 }
}

/// Next-token cross-entropy on batches that are a pure function of the step (pretraining, multitask,
/// long context, fine-tuning).
final class LanguageModelObjective: TrainingObjective {
  private let batch: (Int) throws -> TrainingBatch
  let trains: ParameterSelection
  let microBatches: Int
  /// The last step's batch, so that its micro-batches draw it once.
  private var drawn: (step: Int, batch: TrainingBatch)?

  /// - Parameters:
  ///   - batch: the batch of step `s`; must depend only on `s` and fixed inputs (or state the op
  ///     restores from the loop's `opState`).
  ///   - trains: the parameters updated (all, unless the op freezes some).
  ///   - microBatches: equal slices of each batch whose gradients are summed in a fixed tree
  ///     (`train.micro_batch`); it must divide the batch.
  init(trains: ParameterSelection = .all, microBatches: Int = 1, batch: @escaping (Int) throws -> TrainingBatch) {
    self.batch = batch
    self.trains = trains
    self.microBatches = microBatches
  }

  /// Micro-batch `index`: its rows' mean weighted cross-entropy, times their share of the batch's
  /// weight, so that the micro-batches add up to the batch's mean.
  func loss(step: Int, microBatch index: Int, model: TransformerLM) throws -> ObjectiveStep {
    if drawn?.step != step { drawn = (step, try batch(step)) }
    let (part, share) = try drawn!.batch.microBatch(index, of: microBatches)
    return ObjectiveStep(loss: model.loss(part.tokens, weights: part.weights).scaled(by: Float(share)),
                         tokens: part.tokens.reduce(0) { $0 + $1.count - 1 })
  }

  func loss(step: Int, model: TransformerLM) throws -> ObjectiveStep {
    let b = try batch(step)
    return ObjectiveStep(loss: model.loss(b.tokens, weights: b.weights),
                         tokens: b.tokens.reduce(0) { $0 + $1.count - 1 })
  }
}
