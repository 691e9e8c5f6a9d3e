import Models
import Pipeline
import Tensors

/// Knowledge distillation: the student learns the teacher's whole next-token distribution, not only
/// the data's one right token.
///
/// On each batch (task examples, a `sample` stage's verified outputs, library text — the same batches
/// `sft` trains on), the loss is
///
///   α · T² · KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 − α) · cross-entropy(student, data)
///   + β · mean over matched layers of ‖P·student module − teacher module‖² / d_teacher
///
/// on the response tokens (the prompt masked as in `sft`). The last term is modular distillation:
/// each matched student layer's attention branch or block output is mapped by a learned projection P
/// (`[d_teacher, d_student]`, identity-like at the start when the widths agree) onto its teacher
/// layer's, on every non-padding position. With `logits` off, the first term is dropped (modules and
/// hard labels only). The teacher is frozen and read as a constant: no gradient reaches it.
final class DistillationObjective: TrainingObjective {
  /// How the student's layers are matched to the teacher's.
  struct ModuleMatching {
    var module: TransformerLM.Module
    /// Student layer → teacher layer.
    var layers: [(student: Int, teacher: Int)]
    /// β.
    var weight: Float
  }

  let teacher: TransformerLM
  private let batch: (Int) throws -> TrainingBatch
  let temperature: Float
  /// α: the soft targets' share of the logit loss (the rest is the hard-label cross-entropy).
  let alpha: Float
  /// Whether the logits are distilled at all (off: hard labels and modules only).
  let distillsLogits: Bool
  let matching: ModuleMatching?
  let auxiliaryParameters: [(id: ParameterID, variable: Variable)]
  private let pad: Int32
  /// Equal slices of each batch whose gradients are summed in a fixed tree (`train.micro_batch`).
  let microBatches: Int
  /// The last step's batch, so that its micro-batches draw it once.
  private var drawn: (step: Int, batch: TrainingBatch)?

  /// - Parameters:
  ///   - studentWidth: the student's `d_model`, for the projections' shapes.
  ///   - seed: draws the projections' initial weights when the widths differ.
  init(teacher: TransformerLM, studentWidth: Int, temperature: Float, alpha: Float, distillsLogits: Bool,
       matching: ModuleMatching?, pad: Int32, seed: UInt64, microBatches: Int = 1,
       batch: @escaping (Int) throws -> TrainingBatch) {
    self.microBatches = microBatches
    teacher.trainable = .only([])
    self.teacher = teacher
    self.batch = batch
    self.temperature = temperature
    self.alpha = alpha
    self.distillsLogits = distillsLogits
    self.matching = matching
    self.pad = pad
    var rng = RandomStream(seed: seed, purpose: .initialization)
    let dt = teacher.config.modelDim, ds = studentWidth
    auxiliaryParameters = (matching?.layers ?? []).map { pair in
      // The identity where the widths agree (the student starts by copying the teacher's geometry);
      // otherwise small random weights, as any fresh projection.
      let scalars: [Float] = (0..<(dt * ds)).map { i in
        dt == ds ? (i / ds == i % ds ? 1 : 0) : rng.normal() * (1 / Float(ds).squareRoot())
      }
      return (ParameterID(layer: pair.student, role: .distillationProjection),
              Variable(Tensor(shape: [dt, ds], scalars: scalars), requiresGrad: true))
    }
  }

  func loss(step: Int, model: TransformerLM) throws -> ObjectiveStep {
    try loss(of: try batch(step), model: model)
  }

  /// Micro-batch `index`: its rows' loss (each term a mean over the micro-batch), times the micro-batch's
  /// share of the batch's response-token weight. The hard and soft terms then add up to the whole
  /// batch's exactly (in exact arithmetic); the module term, a mean over non-padding positions, is
  /// weighted the same way, so it matches the whole batch's only as far as the two counts agree.
  func loss(step: Int, microBatch index: Int, model: TransformerLM) throws -> ObjectiveStep {
    if drawn?.step != step { drawn = (step, try batch(step)) }
    let (part, share) = try drawn!.batch.microBatch(index, of: microBatches)
    let outcome = try loss(of: part, model: model)
    return ObjectiveStep(loss: outcome.loss.scaled(by: Float(share)), tokens: outcome.tokens, metrics: outcome.metrics)
  }

  private func loss(of b: TrainingBatch, model: TransformerLM) throws -> ObjectiveStep {
    let inputs = b.tokens.map { Array($0.dropLast()) }
    let targets = b.tokens.flatMap { $0.dropFirst() }
    let weights = b.weights.map { $0.flatMap { $0.dropFirst() } } ?? [Float](repeating: 1, count: targets.count)
    let module = matching?.module ?? .hidden
    let teacherOut = teacher.logits(inputs, capturing: module, layers: Set(matching?.layers.map(\.teacher) ?? []))
    let studentOut = model.logits(inputs, capturing: module, layers: Set(matching?.layers.map(\.student) ?? []))

    let hard = studentOut.logits.crossEntropy(targets: targets, weights: weights)
    var metrics: [(name: String, value: Double)] = [("hard_loss", Double(hard.value.scalars[0]))]
    var loss = hard
    if distillsLogits {
      let soft = studentOut.logits.distillationLoss(teacher: teacherOut.logits.value, temperature: temperature, weights: weights)
      metrics.append(("kd_loss", Double(soft.value.scalars[0])))
      loss = soft.scaled(by: alpha) + hard.scaled(by: 1 - alpha)
    }
    if let matching, !matching.layers.isEmpty {
      let rows = inputs.flatMap { $0 }.enumerated().compactMap { $0.element == pad ? nil : Int32($0.offset) }
      let width = Float(teacher.config.modelDim)
      var total: Variable?
      for (pair, projection) in zip(matching.layers, auxiliaryParameters) {
        let student = Variable.gatherRows(studentOut.modules[pair.student]!, rows).linear(projection.variable)
        var negatedTarget = Variable.gatherRows(teacherOut.modules[pair.teacher]!, rows).value
        negatedTarget.scale(by: -1)
        let difference = student + Variable(negatedTarget)
        let squared = (difference * difference).sum().scaled(by: 1 / (Float(rows.count) * width))
        total = total.map { $0 + squared } ?? squared
      }
      let moduleLoss = total!.scaled(by: 1 / Float(matching.layers.count))
      metrics.append(("module_loss", Double(moduleLoss.value.scalars[0])))
      loss = loss + moduleLoss.scaled(by: matching.weight)
    }
    return ObjectiveStep(loss: loss, tokens: targets.count, metrics: metrics)
  }
}
