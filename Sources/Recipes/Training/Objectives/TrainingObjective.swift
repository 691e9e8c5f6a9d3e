import Models
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
}

extension TrainingObjective {
  var trains: ParameterSelection { .all }
  var auxiliaryParameters: [(id: ParameterID, variable: Variable)] { [] }
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

  /// - Parameters:
  ///   - batch: the batch of step `s`; must depend only on `s` and fixed inputs (or state the op
  ///     restores from the loop's `opState`).
  ///   - trains: the parameters updated (all, unless the op freezes some).
  init(trains: ParameterSelection = .all, batch: @escaping (Int) throws -> TrainingBatch) {
    self.batch = batch
    self.trains = trains
  }

  func loss(step: Int, model: TransformerLM) throws -> ObjectiveStep {
    let b = try batch(step)
    return ObjectiveStep(loss: model.loss(b.tokens, weights: b.weights),
                         tokens: b.tokens.reduce(0) { $0 + $1.count - 1 })
  }
}
