import Models
import Pipeline

/// `multitask` (V2): continues a model on a weighted mixture of tasks, plus an optional share of
/// corpus text.
///
/// Reports each task's held-out loss before (the input model) and after, on held-out examples no
/// training stage sees.
struct MultitaskOp: TypedOperation {
  let name = "multitask"
  /// 2: its task examples changed (QA, summarisation and entailment split by fact; new sentiment and
  /// entailment), so its model and held-out losses did.
  let version = 2
  let summary = "Continue a model on a weighted mixture of tasks (V2)"

  struct Settings: SettingsGroup {
    var tasks: [String: Double] = [:]
    var corpusShare = 0.0
    var datasetShare = 0.25
    var world = Int(BuiltinCorpus.defaultWorld)
    var heldoutExamples = 64
    var train = TrainSettings(steps: 300, batch: 16, lr: 1e-3, warmup: 20)
    static let fields: [SettingField<Self>] = [
      .taskWeights(\.tasks, doc: "Task → mixture weight, e.g. {translation: 0.4, qa: 0.3, summarization: 0.3}"),
      .corpusShare(\.corpusShare),
      .float("dataset_share", \.datasetShare, range: 0...1, doc: "Share of rows taken from the dataset: stages, when given"),
      .world(\.world),
      .heldoutExamples(\.heldoutExamples),
      .group("train", \.train, doc: "Optimisation settings"),
    ]
  }

  let defaults = Settings()
  let inputs = [
    InputSlot("from", kinds: [.model], doc: "The model to continue"),
    Slots.mixedCorpus,
    InputSlot("dataset", kinds: [.dataset], required: false, multiple: true,
              doc: "Dataset stages (e.g. your JSONL examples) mixed in at dataset_share"),
  ]
  let outputs = [OutputSpec("model", kind: .model, doc: "The continued model"),
                 OutputSpec("metrics", kind: .metrics, doc: "Loss curve and held-out loss per task, before and after")]

  func problems(in settings: Settings) -> [ParameterProblem] { TaskTraining.problems(settings.tasks) }

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    let start = try ModelArtifact.input("from", of: context)
    let mixture = TaskMixture(weights: settings.tasks, world: UInt64(settings.world))
    let options = TaskTraining.Options(train: settings.train, heldoutExamples: settings.heldoutExamples,
                                       corpusShare: settings.corpusShare, datasetShare: settings.datasetShare)
    return try TaskTraining.run(context, start: start, mixture: mixture, options: options, purpose: "multitask")
  }
}
