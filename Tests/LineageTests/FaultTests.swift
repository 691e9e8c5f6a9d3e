import Foundation
import Testing

/// Damaged bytes on disk: fsck names them and the stages that use them, removes them, and the next run
/// recomputes exactly those results, bit-identical to before; a run that meets one repairs it itself.
@Suite(.serialized) struct FaultTests {
  static let recipe = """
    stages:
      text: {op: corpus, source: t.txt}
      m:
        op: pretrain
        corpus: text
        model: {d_model: 32, layers: 1, heads: 2, context: 64}
        train: {steps: 4, batch: 2}

    """
  static let text = (0..<60).map { "MARKER document \($0) about the mill." }.joined(separator: "\n\n")

  /// Flips the first byte of every copy of `needle` in the store's data file.
  static func corrupt(_ folder: CLITests.Folder, _ needle: String) throws -> Int {
    let path = folder.path + "/Stages/.lineage/data.mdb"
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let pattern = Array(needle.utf8)
    var flipped = 0
    var i = 0
    while i + pattern.count <= bytes.count {
      if bytes[i] == pattern[0] && Array(bytes[i..<(i + pattern.count)]) == pattern {
        bytes[i] ^= 0x20
        flipped += 1
      }
      i += 1
    }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return flipped
  }

  /// The recipe above in a fresh folder, run once to the end.
  static func finishedRecipe() throws -> CLITests.Folder {
    let folder = try CLITests.Folder()
    try folder.write("t.txt", text)
    try folder.write("s.yaml", recipe)
    #expect(try CLITests().lineage(["run"], in: folder).status == 0)
    return folder
  }

  @Test func fsckNamesRemovesAndTheNextRunRecomputes() throws {
    let folder = try Self.finishedRecipe()
    let lock = folder.read("lineage.lock")
    #expect(try Self.corrupt(folder, "MARKER document 17 ") > 0)

    let fsck = try CLITests().lineage(["fsck"], in: folder)
    #expect(fsck.status == 1)
    #expect(fsck.stdout.contains("corrupt blob") && fsck.stdout.contains("used by text.corpus"), "\(fsck.stdout)")
    #expect(fsck.stdout.contains("removed 1 corrupt blob"), "\(fsck.stdout)")
    let run = try CLITests().lineage(["run"], in: folder)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stderr.contains("run text:"), "\(run.stderr)")
    #expect(folder.read("lineage.lock") == lock, "recomputed bytes are the old bytes")
    #expect(try CLITests().lineage(["fsck"], in: folder).status == 0)
  }

  /// A damaged action record (here its JSON broken, so not even its own stage field is readable): `show`
  /// points at fsck; fsck names it and its stage (from the lockfile), removes it, exits 1; the next run
  /// recomputes the stage.
  @Test func fsckNamesADamagedRecordAndItsStage() throws {
    let folder = try Self.finishedRecipe()
    let lock = folder.read("lineage.lock")
    #expect(try Self.corrupt(folder, "\"stage\":\"text\"") > 0)
    // `show` reads the record and points at fsck. A run does not read an up-to-date stage's record (its
    // lockfile entry is its result, and its outputs are intact), so it has nothing to do.
    let blocked = try CLITests().lineage(["show", "text"], in: folder)
    #expect(blocked.status != 0 && blocked.stderr.contains("`lineage fsck` names and removes it"), "\(blocked.stdout)\(blocked.stderr)")
    let noOp = try CLITests().lineage(["run"], in: folder)
    #expect(noOp.status == 0 && !noOp.stderr.contains("run text:"), "\(noOp.stderr)")

    let fsck = try CLITests().lineage(["fsck"], in: folder)
    #expect(fsck.status == 1, "\(fsck.stdout)\(fsck.stderr)")
    #expect(!fsck.stdout.contains("healthy"), "\(fsck.stdout)")
    #expect(fsck.stdout.contains("damaged action record") && fsck.stdout.contains("of stage text"), "\(fsck.stdout)")
    #expect(fsck.stdout.contains("removed 1 damaged action record"), "\(fsck.stdout)")
    let run = try CLITests().lineage(["run"], in: folder)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stderr.contains("run text:"), "\(run.stderr)")
    #expect(folder.read("lineage.lock") == lock, "recomputed bytes are the old bytes")
    #expect(try CLITests().lineage(["fsck"], in: folder).status == 0)
  }

  @Test func aRunThatReadsACorruptInputRemovesItAndRecomputesItsProducer() throws {
    let folder = try Self.finishedRecipe()
    let lock = folder.read("lineage.lock")
    #expect(try Self.corrupt(folder, "MARKER document 23 ") > 0)

    let run = try CLITests().lineage(["run", "--force", "m"], in: folder)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stderr.contains("was corrupt on disk; removed it"), "\(run.stderr)")
    #expect(run.stderr.contains("done text"), "the producer was recomputed: \(run.stderr)")
    #expect(folder.read("lineage.lock") == lock)
  }

  @Test func aDamagedLockfileStopsTheRunWithAClearMessage() throws {
    let folder = try Self.finishedRecipe()
    let lock = try #require(folder.read("lineage.lock"))
    try folder.write("lineage.lock", String(lock.prefix(lock.count / 2)))
    let run = try CLITests().lineage(["run"], in: folder)
    #expect(run.status == 2, "\(run.stderr)")
    #expect(run.stderr.contains("the lockfile is damaged"), "\(run.stderr)")
    try folder.write("lineage.lock", "stages: [not, a, map]\n")
    #expect(try CLITests().lineage(["run"], in: folder).status == 2)
  }
  /// A stage file that cannot be read (here a link to nothing; a folder or a permission error read the
  /// same way): a located message, exit 2, and the store is not touched.
  @Test func anUnreadableStageFileStopsTheRunWithItsName() throws {
    let folder = try Self.finishedRecipe()
    let lock = folder.read("lineage.lock")
    try FileManager.default.createSymbolicLink(atPath: folder.path + "/Stages/more.yaml", withDestinationPath: "nowhere.yaml")
    let run = try CLITests().lineage(["run"], in: folder)
    #expect(run.status == 2, "\(run.stderr)")
    #expect(run.stderr.contains("more.yaml:1:1: error: cannot read stage file"), "\(run.stderr)")
    #expect(folder.read("lineage.lock") == lock)
    try FileManager.default.removeItem(atPath: folder.path + "/Stages/more.yaml")
    let again = try CLITests().lineage(["run"], in: folder)
    #expect(again.status == 0 && again.stderr.contains("0 to run"), "\(again.stderr)")
  }

  // MARK: - Full store, full disk

  /// A small stage and a 4 MiB one: the second cannot fit under a 2 MiB limit.
  static func twoCorpora() throws -> CLITests.Folder {
    let folder = try CLITests.Folder()
    try folder.write("small.txt", Self.text)
    var big = ""
    var state: UInt64 = 88172645463325252
    for document in 0..<40_000 {  // incompressible-looking text, so no layer can shrink it
      state ^= state << 13; state ^= state >> 7; state ^= state << 17
      big += "doc \(document) \(String(state, radix: 36)) \(String(state &* 31, radix: 36)) \(String(state >> 3, radix: 36))\n"
      big += String(repeating: String(state % 9973), count: 20) + "\n\n"
    }
    try folder.write("big.txt", big)
    try folder.write("s.yaml", """
      stages:
        small: {op: corpus, source: small.txt}
        big: {op: corpus, source: big.txt}

      """)
    return folder
  }

  /// The map may not grow past LINEAGE_STORE_LIMIT: the stage that needs more fails with a message
  /// that says what to do, the run exits 1, and what finished before is kept and not recomputed.
  @Test func aStoreAtItsLimitFailsTheStageAndKeepsFinishedWork() throws {
    let folder = try Self.twoCorpora()
    #expect(try CLITests().lineage(["run", "small"], in: folder).status == 0)
    let limited = ["LINEAGE_STORE_LIMIT": "2MiB"]
    let full = try CLITests().lineage(["run"], in: folder, environment: limited)
    #expect(full.status == 1, "\(full.stderr)")
    #expect(full.stderr.contains("the store is full: it reached its limit of 2 MiB (set LINEAGE_STORE_LIMIT higher"),
            "\(full.stderr)")
    #expect(!full.stderr.contains("run small"), "\(full.stderr)")
    #expect(try CLITests().lineage(["fsck"], in: folder, environment: limited).status == 0)

    let bad = try CLITests().lineage(["status"], in: folder, environment: ["LINEAGE_STORE_LIMIT": "lots"])
    #expect(bad.status == 2 && bad.stderr.contains("LINEAGE_STORE_LIMIT='lots' is not a size"), "\(bad.stderr)")

    let rerun = try CLITests().lineage(["run"], in: folder)
    #expect(rerun.status == 0, "\(rerun.stderr)")
    #expect(rerun.stderr.contains("run big") && !rerun.stderr.contains("run small"), "\(rerun.stderr)")
  }

  /// The file system refuses bytes (here a 2 MiB file-size limit, as a full disk would): the stage
  /// fails saying the disk is full, the store stays consistent, and the next run finishes only it.
  @Test func aFullDiskFailsTheStageAndKeepsFinishedWork() throws {
    let folder = try Self.twoCorpora()
    #expect(try CLITests().lineage(["run", "small"], in: folder).status == 0)
    let full = try CLITests().lineage(["run"], in: folder, fileSizeLimitKiB: 2048)
    #expect(full.status == 1, "\(full.stderr)")
    #expect(full.stderr.contains("FAILED big: the disk refused to write the store (") && full.stderr.contains("is it full?"),
            "\(full.stderr)")
    #expect(try CLITests().lineage(["fsck"], in: folder).status == 0)
    let status = try CLITests().lineage(["status"], in: folder)
    #expect(status.stdout.contains("small") && status.stdout.contains("up to date"), "\(status.stdout)")

    let rerun = try CLITests().lineage(["run"], in: folder)
    #expect(rerun.status == 0, "\(rerun.stderr)")
    #expect(rerun.stderr.contains("run big") && !rerun.stderr.contains("run small"), "\(rerun.stderr)")
  }
}

/// The inputs fuzzing saved (seeds, and every input that once crashed a reader or broke its round
/// trip) still go through their target cleanly: `lineage-fuzz TARGET Tests/FuzzCorpus/TARGET`.
@Suite struct FuzzCorpusTests {
  static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("FuzzCorpus").path

  /// Replays every file of `target`'s corpus; returns the outcome printed for each file, by name.
  func replay(_ target: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: String] {
    let folder = FuzzCorpusTests.corpus + "/" + target
    let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { !$0.hasPrefix(".") }
    let replay = URL(fileURLWithPath: CLITests.binary).deletingLastPathComponent().appendingPathComponent("lineage-fuzz").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: replay)
    process.arguments = [target, folder]
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "\(text)", sourceLocation: sourceLocation)
    var outcomes: [String: String] = [:]
    for line in text.split(separator: "\n") {
      guard let colon = line.range(of: ": ") else { continue }
      outcomes[String(line[..<colon.lowerBound].split(separator: "/").last ?? "")] = String(line[colon.upperBound...])
    }
    #expect(outcomes.keys.sorted() == files.sorted(), "every file replayed once:\n\(text)", sourceLocation: sourceLocation)
    return outcomes
  }

  @Test func theLoaderSurvivesEverySavedFuzzInput() throws {
    let outcomes = try replay("loader")
    #expect(outcomes.count >= 3)
    #expect(outcomes.values.allSatisfy { $0.hasSuffix(" diagnostics") }, "\(outcomes)")
  }

  @Test func theBundleReaderSurvivesEverySavedFuzzInput() throws {
    let outcomes = try replay("bundle")
    #expect(outcomes.count >= 3)
    #expect(outcomes.values.allSatisfy { $0.hasPrefix("read: ") || $0.hasPrefix("refused") }, "\(outcomes)")
    // The seeds made by `lineage bundle create` are read, not refused: the target reaches past the checks.
    #expect(outcomes.filter { $0.key.hasPrefix("seed-created") }.allSatisfy { $0.value.hasPrefix("read: ") }, "\(outcomes)")
  }

  @Test func theLockfileReaderSurvivesEverySavedFuzzInput() throws {
    let outcomes = try replay("lockfile")
    #expect(outcomes.count >= 3)
    #expect(outcomes.values.allSatisfy { $0.hasPrefix("read: ") || $0.hasPrefix("refused: ") }, "\(outcomes)")
    #expect(outcomes["seed-stages-lineage.lock"]?.hasPrefix("read: ") == true, "\(outcomes)")
  }
}
