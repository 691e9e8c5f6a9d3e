import ArgumentParser
import Pipeline

/// `lineage dag`: the dependency graph as a text tree, Graphviz or Mermaid.
struct Dag: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "dag", abstract: "Print the stage graph.")

  enum Format: String, ExpressibleByArgument, CaseIterable {
    case text, dot, mermaid
  }

  @OptionGroup var options: RecipeOptions

  @Option(name: .long, help: "text, dot (Graphviz) or mermaid.")
  var format: Format = .text

  func run() async throws {
    let recipe = try options.loadRecipe()
    Console.out(Dag.render(recipe, format: format))
  }

  static func render(_ recipe: Recipe, format: Format) -> String {
    let graph = recipe.graph
    let order = graph.topologicalOrder()
    switch format {
    case .dot:
      var lines = ["digraph lineage {", "  rankdir=LR;", "  node [shape=box];"]
      for i in order {
        lines.append("  \"\(graph.names[i])\" [label=\"\(graph.names[i])\\n\(recipe.stages[i].op.name)\"];")
      }
      for i in order { for d in graph.dependencies[i] { lines.append("  \"\(graph.names[d])\" -> \"\(graph.names[i])\";") } }
      return (lines + ["}"]).joined(separator: "\n")
    case .mermaid:
      var lines = ["flowchart LR"]
      for i in order { lines.append("  n\(i)[\"\(graph.names[i]) (\(recipe.stages[i].op.name))\"]") }
      for i in order { for d in graph.dependencies[i] { lines.append("  n\(d) --> n\(i)") } }
      return lines.joined(separator: "\n")
    case .text:
      // Each root with its dependents below it; a stage reached a second time is marked, not repeated.
      var printed = Set<Int>()
      var repeated = false
      var lines: [String] = []
      func walk(_ i: Int, prefix: String, last: Bool, root: Bool) {
        let label = "\(graph.names[i]) (\(recipe.stages[i].op.name))"
        let branch = root ? "" : (last ? "└── " : "├── ")
        if printed.contains(i) {
          lines.append(prefix + branch + label + " ↑")
          repeated = true
          return
        }
        printed.insert(i)
        lines.append(prefix + branch + label)
        let children = graph.dependents[i]
        let childPrefix = root ? "" : prefix + (last ? "    " : "│   ")
        for (n, c) in children.enumerated() { walk(c, prefix: childPrefix, last: n == children.count - 1, root: false) }
      }
      for i in order where graph.dependencies[i].isEmpty { walk(i, prefix: "", last: true, root: true) }
      if repeated { lines.append("(↑ marks a stage already shown above)") }
      return lines.joined(separator: "\n")
    }
  }
}
