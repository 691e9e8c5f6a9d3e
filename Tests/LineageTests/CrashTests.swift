import Foundation
import Testing

/// Killing `lineage run` at random moments never costs finished work: after each kill the store checks
/// clean, the next run resumes interrupted training from its checkpoint, and the results are
/// bit-identical to an uninterrupted run.
@Suite(.serialized) struct CrashTests {
  static let recipe = """
    stages:
      text: {op: corpus, source: text.txt}
      a:
        op: pretrain
        corpus: text
        model: {d_model: 32, layers: 2, heads: 2, context: 64}
        train: {steps: 60, batch: 8}
      b:
        op: multitask
        from: a
        tasks: {arithmetic: 1}
        heldout_examples: 4
        train: {steps: 60, batch: 8}
      c:
        op: sparse_attention
        from: b
        attention: {kind: sliding_window, window: 16, global_tokens: 2}
        tasks: {arithmetic: 1}
        heldout_examples: 4
        train: {steps: 60, batch: 8}

    """
  static let text = (0..<80).map { "Line \($0): the miller of Arden counts \($0 * 3) sacks of flour." }.joined(separator: "\n\n")

  static func folder() throws -> CLITests.Folder {
    let folder = try CLITests.Folder()
    try folder.write("text.txt", text)
    try folder.write("s.yaml", recipe)
    return folder
  }

  /// Output hashes per stage, from the lockfile.
  static func outputs(_ folder: CLITests.Folder) -> [String] {
    (folder.read("lineage.lock") ?? "").split(separator: "\n").filter { $0.contains("hash:") }.map(String.init)
  }

  static func start(_ arguments: [String], in folder: CLITests.Folder) throws -> (Process, Pipe) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CLITests.binary)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: folder.path)
    let err = Pipe()
    process.standardOutput = FileHandle.nullDevice
    process.standardError = err
    try process.run()
    return (process, err)
  }

  @Test func thirtyKillsAtRandomMomentsLoseNothing() throws {
    let clean = try Self.folder()
    let reference = try CLITests().lineage(["run"], in: clean)
    #expect(reference.status == 0, "\(reference.stderr)")
    let expected = Self.outputs(clean)
    #expect(expected.count >= 7)

    var random = SystemRandomNumberGenerator.Seeded(seed: 2026)
    var resumedMidStage = 0
    for trial in 0..<30 {
      let folder = try Self.folder()
      let (process, err) = try Self.start(["run", "--checkpoint-every", "0"], in: folder)
      usleep(UInt32(Int.random(in: 150_000...1_400_000, using: &random)))
      kill(process.processIdentifier, SIGKILL)
      _ = err.fileHandleForReading.readDataToEndOfFile()
      process.waitUntilExit()

      let fsck = try CLITests().lineage(["fsck"], in: folder)
      #expect(fsck.status == 0, "trial \(trial): fsck after SIGKILL\n\(fsck.stdout)\(fsck.stderr)")
      let again = try CLITests().lineage(["run"], in: folder)
      #expect(again.status == 0, "trial \(trial): \(again.stderr)")
      for line in again.stderr.split(separator: "\n") where line.contains("from checkpoint at step") {
        let step = Int(line.split(separator: " ").last!.split(separator: "/").first!) ?? 0
        #expect(step > 0, "trial \(trial): \(line)")
        resumedMidStage += 1
      }
      #expect(Self.outputs(folder) == expected, "trial \(trial): results differ from an uninterrupted run")
    }
    print("CrashTests: \(resumedMidStage) of 30 kills resumed a stage from its checkpoint")
    #expect(resumedMidStage >= 10, "only \(resumedMidStage) of 30 kills landed mid-training")
  }

  @Test func ctrlCCheckpointsReleasesTheLockAndExitsInterrupted() throws {
    let folder = try Self.folder()
    let (process, err) = try Self.start(["run", "--checkpoint-every", "1000"], in: folder)
    // Interrupt once the second stage is training.
    var seen = Data()
    let handle = err.fileHandleForReading
    while !String(decoding: seen, as: UTF8.self).contains("b: step") {
      let chunk = handle.availableData
      if chunk.isEmpty { break }
      seen += chunk
    }
    kill(process.processIdentifier, SIGINT)
    seen += handle.readDataToEndOfFile()
    process.waitUntilExit()
    let output = String(decoding: seen, as: UTF8.self)
    #expect(process.terminationStatus == 130, "\(output)")
    #expect(output.contains("interrupted"), "\(output)")

    let again = try CLITests().lineage(["run", "--no-wait"], in: folder)
    #expect(again.status == 0, "the lock was released: \(again.stderr)")
    #expect(again.stderr.contains("resume b from checkpoint at step"), "\(again.stderr)")
    #expect(!again.stderr.contains("run a:"), "a finished before the interrupt and stays cached: \(again.stderr)")
  }
}

extension SystemRandomNumberGenerator {
  /// A seeded generator for the kill moments (SplitMix64), so a failing trial can be replayed.
  struct Seeded: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }
}
