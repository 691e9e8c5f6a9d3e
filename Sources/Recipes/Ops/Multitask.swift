import Models
import Pipeline

/// `multitask` (V2): continues a model on a weighted mixture of tasks, plus an optional share of
/// corpus text.
///
/// Reports each task's held-out loss before (the input model) and after, on held-out examples no
/// training stage sees.
///
/// With `experts:` a dense input model is first upcycled into a Mixture of Experts
/// (`TransformerLM.upcycled`: the MLP split into shared and routed experts that together compute
/// what it computed, then a seeded perturbation) and trained as such: V2 as an MoE at the dense
/// model's active parameters. An input that is an MoE already fails the stage, whatever its experts:
/// upcycling it again would be a different model, and accepting it silently would hide that the
/// setting does nothing.
struct MultitaskOp: MicroBatchedTraining {
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
    var experts: UpcyclingSettings?
    static let fields: [SettingField<Self>] = [
      .taskWeights(\.tasks, doc: "Task → mixture weight, e.g. {translation: 0.4, qa: 0.3, summarization: 0.3}"),
      .corpusShare(\.corpusShare),
      .float("dataset_share", \.datasetShare, range: 0...1, doc: "Share of rows taken from the dataset: stages, when given"),
      .world(\.world),
      .heldoutExamples(\.heldoutExamples),
      .group("train", \.train, doc: "Optimisation settings"),
      // Optional and absent by default: a stage without it keeps its parameters, hence its cache key.
      .optionalGroup("experts", \.experts, fieldDefaults: UpcyclingSettings(),
                     doc: "Upcycle the dense input into a Mixture of Experts before training (omit to stay dense)"),
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
                 OutputSpec("metrics", kind: .metrics,
                            doc: "Loss curve and held-out loss per task, before and after; an MoE model's expert load and routing bias")]

  func trainSettings(_ settings: Settings) -> TrainSettings { settings.train }

  func problems(in settings: Settings) -> [ParameterProblem] {
    TaskTraining.problems(settings.tasks) + (settings.experts?.problems ?? []) + settings.train.problems()
  }

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    var start = try ModelArtifact.input("from", of: context)
    if let experts = settings.experts { start.model = try experts.upcycle(start.model, context: context) }
    let mixture = TaskMixture(weights: settings.tasks, world: UInt64(settings.world))
    let options = TaskTraining.Options(train: settings.train, heldoutExamples: settings.heldoutExamples,
                                       corpusShare: settings.corpusShare, datasetShare: settings.datasetShare)
    return try TaskTraining.run(context, start: start, mixture: mixture, options: options, purpose: "multitask")
  }
}


/// `experts:` of `multitask` — how a dense model becomes a Mixture of Experts (DeepSeekMoE layout:
/// shared experts plus fine-grained routed ones, a sigmoid gate, auxiliary-loss-free balancing).
struct UpcyclingSettings: SettingsGroup {
  var routed = 4
  var shared = 1
  var topK = 1
  var hidden: Int?
  var balanceRate = 1e-3
  var perturbation = 0.01

  static let fields: [SettingField<Self>] = [
    .int("routed", \.routed, range: 1...256, doc: "Routed experts, each a copy of the dense MLP's last `hidden` units"),
    .int("shared", \.shared, range: 0...16, doc: "Shared experts every token uses: the MLP's first shared · hidden units"),
    .int("top_k", \.topK, range: 1...64, doc: "Routed experts per token (1: the dense model's active parameters)"),
    .int("hidden", \.hidden, range: 1...65_536,
         doc: "Hidden size of one expert; (shared + 1) · hidden must equal the MLP's; default: MLP hidden / (shared + 1)"),
    .float("balance_rate", \.balanceRate, range: 0...1, doc: "Routing-bias step of auxiliary-loss-free balancing"),
    .float("perturbation", \.perturbation, range: 0...1,
           doc: "Relative noise on the routed experts and scale of the router, so experts diverge (0: an exact copy)"),
  ]

  /// What the schema cannot see alone; the MLP's size is known only when the stage runs.
  var problems: [ParameterProblem] {
    topK > routed ? [ParameterProblem(path: "experts.top_k", "top_k \(topK) exceeds the \(routed) routed experts")] : []
  }

  /// The MoE layer for a dense MLP of hidden size `mlpHidden`: a sigmoid gate (with top_k 1 the
  /// upcycling scales the experts by 2 to undo its ½), auxiliary-loss-free balancing.
  func config(mlpHidden: Int) -> MoEConfig {
    MoEConfig(routedExperts: routed, sharedExperts: shared, topK: topK, expertHiddenDim: hidden ?? mlpHidden / (shared + 1),
              gate: .sigmoid, balancing: .auxiliaryLossFree(biasUpdateRate: Float(balanceRate)))
  }

  /// `model` upcycled, seeded by the stage.
  ///
  /// - Throws: `StageFailure` naming `experts:` when the model is not a dense float model or its MLP
  ///   does not split as asked.
  func upcycle(_ model: TransformerLM, context: StageContext) throws -> TransformerLM {
    let f = model.config.mlpHiddenDim
    if hidden == nil && f % (shared + 1) != 0 {
      throw StageFailure("experts: the input's MLP hidden size \(f) does not split into \(shared) shared and one routed "
                         + "expert of equal size; choose shared so that shared + 1 divides \(f)")
    }
    let moe = config(mlpHidden: f)
    let upcycled: TransformerLM
    do {
      upcycled = try model.upcycled(to: moe, perturbation: Float(perturbation), seed: context.seed)
    } catch {
      let input = context.input("from")?.stage ?? "from"
      throw StageFailure("experts: cannot upcycle '\(input)': \(error)")
    }
    let c = upcycled.config
    context.log("upcycled to \(routed) routed + \(shared) shared experts of hidden \(moe.expertHiddenDim), top-\(topK): "
                + "\(c.parameterCount) parameters (\(c.activeParameterCount) active; dense \(model.config.parameterCount))")
    return upcycled
  }
}
