import Pipeline

/// The ops Lineage ships, frozen into one registry at startup.
public enum BuiltinOperations {
  public static let registry = OperationRegistry([
    CorpusOp(),
    DatasetOp(),
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
