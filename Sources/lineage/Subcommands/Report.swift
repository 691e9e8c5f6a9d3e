import ArgumentParser
import Foundation
import Pipeline

/// `lineage report [-o report.html]`: the lineage on one self-contained HTML page — the stage graph
/// coloured by state, loss curves, RL curves, distillation and quantization comparisons, eval tables.
struct Report: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "report", 
    abstract: "Write one self-contained HTML page: the stage graph by state, loss and RL curves, distillation and quantization comparisons, eval tables.",
    discussion: "Reads the recipe, lineage.lock and the store; runs nothing. The page has inline CSS and SVG only: no script, nothing from the network.")

  @OptionGroup var options: RecipeOptions

  @Option(name: [.short, .customLong("output")], help: "Where to write the page.")
  var output = "report.html"

  func run() async throws {
    let recipe = try options.loadRecipe()
    let lockfile = try options.loadLockfile(recipe)
    let store = try options.openStore()
    let (model, warnings) = try ReportModel.load(recipe: recipe, lockfile: lockfile, store: store)
    for warning in warnings { Console.error("warning: " + warning) }
    let page = ReportPage(model: model)
    let sections = page.sections
    do {
      try Data(page.html.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
    } catch {
      Console.error("error: cannot write \(output): \(error.localizedDescription)")
      throw ExitCode.failure
    }
    let charts = sections.map(\.figureCount).reduce(0, +)
    Console.out("wrote \(output): \(model.stages.count) stages, \(charts) figure\(charts == 1 ? "" : "s") ("
                + sections.map { "\($0.title.lowercased()) \($0.figureCount)" }.joined(separator: ", ") + ")")
  }
}
