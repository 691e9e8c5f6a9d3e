import Pipeline

/// The ops Lineage ships, frozen into one registry at startup.
public enum BuiltinOperations {
  public static let registry = OperationRegistry([
    CorpusOp(),
    DatasetOp(),
    DistillOp(),
    EvalOp(),
    FinetuneOp(),
    LongContextOp(),
    MultitaskOp(),
    PretrainOp(),
    QuantizeOp(),
    SampleOp(),
    ReinforcementLearningOp(),
    RewardModelOp(),
    SparseAttentionOp(),
    SupervisedFinetuneOp(),
    TokenizerOp(),
  ])
}
