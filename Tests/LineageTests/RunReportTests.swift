import Foundation
import Testing

/// At the end of `lineage run`, each executed stage's report (an output of kind `report`, such as the
/// eval table) is printed under a heading naming the stage; a run that only restores prints none.
extension CLITests {
  static let evalRecipe = """
    stages:
      text: {op: corpus, source: t.txt}
      m:
        op: pretrain
        corpus: text
        model: {d_model: 32, layers: 1, heads: 2, context: 64}
        train: {steps: 2, batch: 2}
      scores:
        op: eval
        models: [m]
        tasks: [arithmetic, qa]
        examples: 2
        max_new_tokens: 4

    """

  @Test func anEvalStagePrintsItsTableAtTheEndOfTheRun() throws {
    let folder = try Folder()
    try folder.write("t.txt", (0..<30).map { "Document \($0) about the mill." }.joined(separator: "\n\n"))
    try folder.write("s.yaml", Self.evalRecipe)
    let run = try lineage(["run"], in: folder)
    #expect(run.status == 0, "\(run.stderr)")
    let lines = run.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let heading = try #require(lines.firstIndex(of: "== scores: table =="), "\(run.stdout)")
    #expect(lines[heading + 1].hasPrefix("| model") && lines[heading + 1].contains("arithmetic"), "\(run.stdout)")
    #expect(lines[heading + 2].hasPrefix("| -----"), "\(run.stdout)")
    #expect(lines[heading + 3].hasPrefix("| m ") && lines[heading + 3].contains(" ± "), "one row per model: \(run.stdout)")
    #expect(!run.stderr.contains("arithmetic/"), "no one-line dump of the metric names: \(run.stderr)")

    let again = try lineage(["run"], in: folder)
    #expect(again.status == 0 && !again.stdout.contains("== scores"), "nothing ran, nothing to show: \(again.stdout)")
  }
}
