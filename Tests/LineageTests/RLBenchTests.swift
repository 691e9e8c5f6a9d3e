import Foundation
import Testing

/// `lineage bench rl` runs end to end at a tiny size and prints its table (no timing is checked:
/// the bench itself measures).
@Suite struct RLBenchTests {
  let cli = CLITests()

  @Test func tinyRunPrintsItsTable() throws {
    let folder = try CLITests.Folder()
    let tiny = ["bench", "rl", "--no-peer", "--rounds", "1", "--steps", "1", "--warmup", "1",
                "--prompts", "2", "--group", "2", "--response-tokens", "4"]
    let result = try cli.lineage(tiny, in: folder)
    #expect(result.status == 0, "\(result.stderr)")
    for row in ["GRPO samples/s", "generation, s per step", "learning, s per step", "generation share of the step",
                "tokens per response", "peer: skipped (--no-peer)"] {
      #expect(result.stdout.contains(row), "missing '\(row)' in:\n\(result.stdout)")
    }
    let lengths = result.stdout.split(separator: "\n").first { $0.hasPrefix("tokens per response") }
    #expect(lengths?.split(separator: " ").dropFirst(3).first == "4.0", "responses are forced to 4 tokens:\n\(result.stdout)")

    let json = try cli.lineage(tiny + ["--json"], in: folder)
    #expect(json.status == 0, "\(json.stderr)")
    let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
    let ours = report?.first { $0["engine"] as? String == "lineage" }
    #expect(ours?["rows_per_step"] as? Int == 4)
    #expect((ours?["samples_per_s"] as? Double ?? 0) > 0)
  }
}
