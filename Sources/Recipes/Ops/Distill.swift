import Models
import Pipeline
import Tensors

/// `distill`: knowledge distillation from `teacher:` into a student — a smaller model of its own shape
/// (`student:`, initialised from the seed) or a model stage to continue (`from:`, e.g. a small
/// pretrained base, as DeepSeek distilled R1 into Qwen and Llama bases).
///
/// The student trains on `sft`'s batches (built-in task examples in the chat format, `dataset:` stages
/// such as a `sample` stage of the teacher's own verified outputs — self-distillation —, library
/// text) against the teacher's softened distribution at `temperature`, mixed with the data's hard
/// labels by `alpha` (`DistillationObjective`). `modules: [attention]` (or `[hidden]`) also matches
/// chosen layers through learned projections: student layer i ↔ `teacher_layers[i]` (default: spread
/// evenly over the teacher's depth). Teacher and student must share the tokenizer.
///
/// Reports the loss curves (`loss`, `kd_loss`, `hard_loss`, `module_loss`), both models' parameter
/// counts, and each task's held-out loss for the teacher and for the student before and after.
struct DistillOp: MicroBatchedTraining {
  let name = "distill"
  let version = 1
  let summary = "Knowledge distillation from a teacher into a (smaller) student: soft targets, modules, own outputs"

  struct Settings: ChatTrainingSettings {
    var temperature = 2.0
    var alpha = 0.5
    var logits = true
    var modules: [String] = []
    var teacherLayers: [Int] = []
    var moduleWeight = 1.0
    var student: ModelSettings?
    var tasks: [String: Double] = [:]
    var response = TaskFormat.Response.thinkAnswer
    var workedSteps = 1.0
    var datasetShare = 0.0
    var corpusShare = 0.0
    var world = Int(BuiltinCorpus.defaultWorld)
    var heldoutExamples = 64
    var train = TrainSettings(steps: 300, batch: 16, lr: 1e-3, warmup: 20)

    static let fields: [SettingField<Self>] = [
      .float("temperature", \.temperature, range: 0.05...100, doc: "Softens both distributions (T² keeps the gradient's size)"),
      .float("alpha", \.alpha, range: 0...1, doc: "Share of the soft-target loss; the rest is the hard-label cross-entropy"),
      .bool("logits", \.logits, doc: "Distil the output distribution (off: modules and hard labels only)"),
      .words("modules", \.modules, among: TransformerLM.Module.allCases.map(\.rawValue), count: 0...1,
             doc: "Also match a layer output through a learned projection: attention (the attention branch) or hidden (the block's output)"),
      .ints("teacher_layers", \.teacherLayers, count: 0...64,
            doc: "The teacher layer each student layer matches, in student order (default: spread evenly)"),
      .float("module_weight", \.moduleWeight, range: 0...1000, doc: "Weight of the module-matching loss"),
      .optionalGroup("student", \.student, fieldDefaults: ModelSettings(),
                     doc: "The student's shape, initialised from the seed (or give from: instead)"),
    ] + chatTrainingFields(tasksDoc: "Built-in task → mixture weight (examples in the chat format, also the held-out report)")
  }

  let defaults = Settings()
  let inputs = [
    InputSlot("teacher", kinds: [.model], doc: "The model distilled from (frozen)"),
    InputSlot("from", kinds: [.model], required: false, doc: "The student to continue (or give student: for a fresh one)"),
    Slots.mixedCorpus,
    InputSlot("dataset", kinds: [.dataset], required: false, multiple: true,
              doc: "Dataset stages of examples (e.g. a sample stage of the teacher's verified outputs), drawn at dataset_share"),
  ]
  let outputs = [OutputSpec("model", kind: .model, doc: "The distilled student"),
                 OutputSpec("metrics", kind: .metrics, doc: "Loss curves, parameter counts, held-out loss of teacher and student")]

  func trainSettings(_ settings: Settings) -> TrainSettings { settings.train }

  func problems(in settings: Settings, filledSlots: Set<String>) -> [ParameterProblem] {
    var problems = TaskTraining.problems(settings.tasks)
    problems += settings.train.problems()
    switch (filledSlots.contains("from"), settings.student) {
    case (true, .some):
      problems.append(ParameterProblem(path: "student", "give either from: (a model stage) or student: (a shape), not both"))
    case (false, nil):
      problems.append(ParameterProblem(path: "student", "give the student: from: naming a model stage, or student: with its shape"))
    case (false, .some(let shape)):
      problems += shape.problems().map { ParameterProblem(path: "student", $0.message) }
    case (true, nil):
      break
    }
    if !settings.teacherLayers.isEmpty && settings.modules.isEmpty {
      problems.append(ParameterProblem(path: "teacher_layers", "teacher_layers maps modules; add modules: [attention] or [hidden]"))
    }
    if !settings.logits && settings.modules.isEmpty {
      problems.append(ParameterProblem(path: "logits", "with logits: false there is nothing to distil; add modules:"))
    }
    return problems
  }

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    let teacher = try ModelArtifact.input("teacher", of: context)
    let (mixture, options) = try settings.taskTraining(context)
    let student: ModelArtifact
    if let shape = settings.student {
      let config = shape.config(vocabulary: teacher.tokenizer.vocabularySize)
      student = ModelArtifact(model: TransformerLM(config: config, seed: context.seed), tokenizer: teacher.tokenizer)
    } else {
      student = try ModelArtifact.input("from", of: context)
      guard student.tokenizer == teacher.tokenizer else {
        throw StageFailure("the student (from: \(context.input("from")!.stage)) and the teacher use different tokenizers; distillation matches their tokens one for one")
      }
    }
    guard teacher.model.config.vocabularySize == student.model.config.vocabularySize else {
      throw StageFailure("teacher and student must share the vocabulary")
    }
    let matching = try Self.matching(settings, teacher: teacher.model.config, student: student.model.config)
    let teacherParameters = teacher.model.config.parameterCount, studentParameters = student.model.config.parameterCount
    context.log("teacher \(teacherParameters) parameters → student \(studentParameters) (\(Self.percent(1 - Double(studentParameters) / Double(teacherParameters))) fewer)")
    if let matching {
      context.log("matching \(matching.module.rawValue) outputs, student → teacher layers: "
                  + matching.layers.map { "\($0.student)→\($0.teacher)" }.joined(separator: ", "))
    }

    let pad = student.tokenizer.id(of: .pad)
    return try TaskTraining.run(context, start: student, mixture: mixture, options: options, purpose: "distill",
      extraMetrics: { metrics, headline in
        metrics.set("teacher_parameters", Double(teacherParameters))
        metrics.set("student_parameters", Double(studentParameters))
        headline["student_parameters"] = Double(studentParameters)
        headline["teacher_parameters"] = Double(teacherParameters)
        let maxTokens = min(settings.train.sequence ?? student.model.config.contextLength, student.model.config.contextLength)
        for (i, task) in mixture.names.enumerated() where settings.heldoutExamples > 0 {
          let examples = mixture.examples(i, count: settings.heldoutExamples, split: .heldout, seed: context.seed,
                                          stream: "distill/report")
          metrics.set("teacher_heldout_loss/\(task)",
                      TaskLoss.mean(teacher.model, tokenizer: teacher.tokenizer, examples: examples, maxTokens: maxTokens,
                                    as: settings.response))
        }
      },
      objective: { batch in
        DistillationObjective(teacher: teacher.model, studentWidth: student.model.config.modelDim,
                              temperature: Float(settings.temperature), alpha: Float(settings.alpha),
                              distillsLogits: settings.logits, matching: matching, pad: pad, seed: context.seed,
                              microBatches: settings.train.microBatches, batch: batch)
      })
  }

  /// The layer matching the settings ask for, checked against both models' depths.
  static func matching(_ settings: Settings, teacher: ModelConfig, student: ModelConfig) throws -> DistillationObjective.ModuleMatching? {
    guard let name = settings.modules.first, let module = TransformerLM.Module(rawValue: name) else { return nil }
    let teacherLayers: [Int]
    if settings.teacherLayers.isEmpty {
      teacherLayers = (0..<student.layerCount).map { ($0 + 1) * teacher.layerCount / student.layerCount - 1 }
    } else {
      guard settings.teacherLayers.count == student.layerCount else {
        throw StageFailure("teacher_layers names \(settings.teacherLayers.count) layers but the student has \(student.layerCount)")
      }
      if let bad = settings.teacherLayers.first(where: { $0 < 0 || $0 >= teacher.layerCount }) {
        throw StageFailure("teacher_layers names layer \(bad) but the teacher's layers are 0–\(teacher.layerCount - 1)")
      }
      teacherLayers = settings.teacherLayers
    }
    return .init(module: module, layers: teacherLayers.enumerated().map { (student: $0.offset, teacher: $0.element) },
                 weight: Float(settings.moduleWeight))
  }

  static func percent(_ x: Double) -> String { "\(Int((x * 100).rounded()))%" }
}
