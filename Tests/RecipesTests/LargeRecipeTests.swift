import ArtifactStore
import Foundation
import Pipeline
import Recipes
import Testing

/// A recipe of 2,000 generated stages (1,000 `dataset` stages, each read by a `tokenizer`) loads,
/// validates and plans, with every stage accounted for. How fast is for `lineage bench pipeline`.
@Suite struct LargeRecipeTests {
  @Test func twoThousandGeneratedStagesValidateAndPlan() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-large-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var text = "stages:\n"
    for i in 0..<1_000 {
      text += "  data-\(i): {op: dataset, generator: arithmetic, count: \(1 + i % 5), seed: \(i)}\n"
      text += "  tok-\(i): {op: tokenizer, from: data-\(i), vocab_size: 270}\n"
    }
    try text.write(toFile: folder + "/stages.yaml", atomically: true, encoding: .utf8)
    let recipe = try RecipeLoader(registry: BuiltinOperations.registry).load(directory: folder)
    #expect(recipe.stages.count == 2_000)
    #expect(recipe.graph.dependencies.map(\.count).reduce(0, +) == 1_000)
    let store = try Store(path: folder + "/.lineage")
    var planner = Planner(recipe: recipe, lockfile: try Lockfile.read(directory: folder), cache: store)
    let plan = try planner.status()
    #expect(plan.count == 2_000)
    #expect(plan.allSatisfy { $0.state == .stale })
    #expect(plan.filter { $0.reasons == [.neverRun] }.count == 1_000, "each dataset stage: never run")
    #expect(plan.filter { $0.reasons == [.neverRun, .upstreamWillRerun(stage: "data-" + $0.stage.dropFirst(4))] }.count == 1_000,
            "each tokenizer: never run, and its dataset reruns first")
    // A tokenizer comes after the dataset it reads.
    let order = Dictionary(uniqueKeysWithValues: plan.enumerated().map { ($1.stage, $0) })
    #expect((0..<1_000).allSatisfy { order["data-\($0)"]! < order["tok-\($0)"]! })
  }
}
