import ArgumentParser
import Pipeline

/// `lineage metrics`: every stage's headline metrics in one table.
struct Metrics: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "metrics", abstract: "Tabulate the metrics of every stage in the lockfile.")

  @OptionGroup var options: RecipeOptions

  @Flag(name: .long, help: "Print JSON.")
  var json = false

  func run() async throws {
    let recipe = try options.loadRecipe()
    let lockfile = try options.loadLockfile(recipe)
    let stages = recipe.stages.map(\.name).filter { lockfile.stages[$0] != nil }
    if json {
      printJSON(Dictionary(uniqueKeysWithValues: stages.map { ($0, lockfile.stages[$0]!.metrics) }))
      return
    }
    let names = Set(stages.flatMap { lockfile.stages[$0]!.metrics.keys }).sorted()
    guard !names.isEmpty else {
      Console.out("No metrics yet: run the recipe first (`lineage run`).")
      return
    }
    // Stages as rows, metrics as columns; a long metric list is shown one stage at a time.
    if names.count <= 6 {
      Console.out(table(stages.map { s in
        [s] + names.map { lockfile.stages[s]!.metrics[$0].map(Console.number) ?? "-" }
      }, header: ["stage"] + names))
    } else {
      for s in stages where !lockfile.stages[s]!.metrics.isEmpty {
        let m = lockfile.stages[s]!.metrics
        Console.out(s)
        Console.out(table(m.keys.sorted().map { ["  " + $0, Console.number(m[$0]!)] }))
      }
    }
  }
}
