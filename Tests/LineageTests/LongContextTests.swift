import Foundation
import Testing

/// `long_context` at 8,192 tokens, measured as a user would see it: the whole `lineage run` process's
/// peak memory, which the run summary prints.
@Suite struct LongContextTests {
  /// The memory bound PERFORMANCE.md sets for `long_context` at 8,192 tokens.
  static let bound = 1 << 30

  @Test func longContextAtEightThousandTokensStaysUnderOneGiB() throws {
    let folder = try CLITests.Folder()
    let corpus = (0..<200).map { "Document \($0): the river runs past the old mill, and the miller counts \($0 * 7) sacks." }
    try folder.write("text.txt", corpus.joined(separator: "\n\n"))
    try folder.write("long.yaml", """
      stages:
        text: {op: corpus, source: text.txt}
        base:
          op: pretrain
          corpus: text
          model: {d_model: 32, layers: 2, heads: 2, context: 128}
          train: {steps: 5, batch: 4}
        sparse:
          op: sparse_attention
          from: base
          attention: {kind: sliding_window, window: 64, global_tokens: 4}
          tasks: {arithmetic: 1}
          heldout_examples: 4
          train: {steps: 2, batch: 2}
        long:
          op: long_context
          from: sparse
          corpus: text
          context: 8192
          passkey_lengths: [1024, 8192]
          passkey_examples: 2
          train: {steps: 3, batch: 1}

      """)
    let result = try CLITests().lineage(["run", "--verbose"], in: folder)
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stderr.contains("context 128 → 8192"))
    #expect(result.stderr.contains("passkey at 8192 tokens"))
    let summary = try #require(result.stderr.split(separator: "\n").last(where: { $0.contains("peak memory") }))
    let peak = try #require(PeakMemoryText.bytes(in: String(summary)), "no peak memory in: \(summary)")
    #expect(peak < Self.bound, "peak memory \(peak) bytes at 8192 tokens")
  }
}

/// Reads `peak memory 123.4 MiB` back from a run summary.
enum PeakMemoryText {
  static func bytes(in line: String) -> Int? {
    guard let r = line.range(of: "peak memory ") else { return nil }
    let parts = line[r.upperBound...].split(separator: " ")
    guard parts.count >= 2, let value = Double(parts[0]) else { return nil }
    let unit = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: ")"))
    let scales: [String: Double] = ["B": 1, "KiB": 1024, "MiB": 1_048_576, "GiB": 1_073_741_824]
    guard let scale = scales[unit] else { return nil }
    return Int(value * scale)
  }
}
