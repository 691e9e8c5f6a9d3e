import Foundation
import Pipeline
@testable import Recipes
import Testing

/// `Examples/quick`, the whole lineage shrunk (V1 → V2 upcycled to MoE → sparse → long → V3 → R1-Zero → R1 with a
/// reward model → R1-Lite → int8 → the table), runs end to end as shipped, and a second run finds
/// everything cached.
@Suite struct QuickExampleTests {
  static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Examples/quick").path

  @Test func theQuickLineageRunsEndToEndAndThenFromCache() async throws {
    var files: [String: String] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: Self.folder) where name.hasSuffix(".yaml") {
      files[name] = try String(contentsOfFile: Self.folder + "/" + name, encoding: .utf8)
    }
    #expect(files.count == 2, "recipe.yaml and lineage.yaml: \(files.keys.sorted())")
    let h = try RecipeHarness(files)
    let ops = Set(try h.recipe().stages.map(\.op.name))
    for op in ["pretrain", "multitask", "sparse_attention", "long_context", "finetune", "sft", "rl", "reward_model",
               "sample", "distill", "quantize", "eval"] {
      #expect(ops.contains(op), "the quick lineage has no \(op) stage")
    }
    let first = try await h.run()
    #expect(first.order.allSatisfy { if case .executed? = first.outcomes[$0] { true } else { false } })

    let table = try h.metrics("eval")
    for model in ["v1", "v3", "r1-zero", "r1", "r1-lite", "r1-lite-int8"] {
      #expect(table["\(model)/arithmetic/pass@1"] is Double, "no arithmetic score for \(model)")
      #expect(table["\(model)/parameters"] is Double, "no parameter count for \(model)")
    }
    let lite = try #require(table["r1-lite/parameters"] as? Double), r1 = try #require(table["r1/parameters"] as? Double)
    #expect(lite < r1)
    let liteSize = try #require(table["r1-lite/size"] as? Double), int8Size = try #require(table["r1-lite-int8/size"] as? Double)
    #expect(int8Size < 0.5 * liteSize, "int8 \(int8Size) bytes against float \(liteSize)")

    // V2 is upcycled into a Mixture of Experts, and the MoE travels down the lineage to R1.
    let v2 = try h.metrics("v2")
    #expect(v2["moe_tokens_dropped"] as? Double == 0 && (v2["moe_load_cv"] as? [[Double]])?.isEmpty == false)
    let r1Active = try #require(table["r1/active_parameters"] as? Double)
    #expect(r1Active < r1, "R1 is an MoE: \(r1Active) of its \(r1) parameters active per token")
    #expect(try h.metrics("r1")["moe_tokens_dropped"] as? Double == 0, "the RL stage reports its routing")

    let second = try await h.run()
    #expect(second.order.allSatisfy { if case .upToDate? = second.outcomes[$0] { true } else { false } },
            "a second run must find every stage up to date")
  }
}
