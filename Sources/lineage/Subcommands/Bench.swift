import ArgumentParser

/// `lineage bench`: measurements against peers, run in one process on this machine.
struct Bench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "bench", 
    abstract: "Measure the pipeline, the engine and GRPO (medians over repeated runs).",
    subcommands: [PipelineBench.self, EngineBench.self, RLBench.self, ScalingBench.self])
}
