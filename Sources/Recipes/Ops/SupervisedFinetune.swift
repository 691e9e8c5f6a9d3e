import Models
import Pipeline

/// `sft`: supervised fine-tuning on chat-format examples, the loss on the response only: the prompt,
/// then `<think>worked steps</think><answer>answer</answer>` (`response: think_answer`, the R-series'
/// format) or the V-series' plain form.
///
/// Its data: built-in tasks (`tasks:`, whose examples carry their worked solutions: the cold-start
/// data of R1), `dataset:` stages (e.g. a `sample` stage's verified outputs, or your JSONL), or both
/// (`dataset_share`). Reports each task's held-out loss before and after in the same format.
struct SupervisedFinetuneOp: MicroBatchedTraining {
  let name = "sft"
  let version = 1
  let summary = "Supervised fine-tuning on chat-format examples, loss on the response (R1's cold start)"

  struct Settings: ChatTrainingSettings {
    var tasks: [String: Double] = [:]
    var response = TaskFormat.Response.thinkAnswer
    var workedSteps = 1.0
    var datasetShare = 0.0
    var corpusShare = 0.0
    var world = Int(BuiltinCorpus.defaultWorld)
    var heldoutExamples = 64
    var train = TrainSettings(steps: 200, batch: 16, lr: 5e-4, warmup: 10)
    static let fields = chatTrainingFields(tasksDoc: "Built-in task → mixture weight (their examples carry worked solutions)")
  }

  let defaults = Settings()
  let inputs = [
    InputSlot("from", kinds: [.model], doc: "The model to fine-tune"),
    Slots.mixedCorpus,
    InputSlot("dataset", kinds: [.dataset], required: false, multiple: true,
              doc: "Dataset stages of examples (prompt, reasoning, answer), drawn at dataset_share"),
  ]
  let outputs = [OutputSpec("model", kind: .model, doc: "The fine-tuned model"),
                 OutputSpec("metrics", kind: .metrics, doc: "Loss curve and held-out loss per task, before and after")]

  func trainSettings(_ settings: Settings) -> TrainSettings { settings.train }

  func problems(in settings: Settings) -> [ParameterProblem] { TaskTraining.problems(settings.tasks) + settings.train.problems() }

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    let start = try ModelArtifact.input("from", of: context)
    let (mixture, options) = try settings.taskTraining(context)
    return try TaskTraining.run(context, start: start, mixture: mixture, options: options, purpose: "sft")
  }
}
