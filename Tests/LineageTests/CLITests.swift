import Foundation
import Testing

/// `lineage` end to end, as a user runs it: a recipe in a temporary folder, the built binary.
@Suite(.serialized) struct CLITests {
  struct Result {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  /// The `lineage` binary built beside this test bundle.
  static let binary: String = {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    return exe.deletingLastPathComponent().appendingPathComponent("lineage").path
  }()

  final class Folder {
    let path: String
    init() throws {
      path = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-cli-\(UUID().uuidString)").path
      try FileManager.default.createDirectory(atPath: path + "/Stages", withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func write(_ name: String, _ text: String) throws {
      try text.write(toFile: path + "/Stages/" + name, atomically: true, encoding: .utf8)
    }
    func read(_ name: String) -> String? { try? String(contentsOfFile: path + "/Stages/" + name, encoding: .utf8) }
  }

  /// Runs `lineage arguments` in `folder`, with `environment` added to this process's, and with the
  /// shell's file-size limit (`ulimit -f`, in KiB) when `fileSizeLimitKiB` is set.
  func lineage(_ arguments: [String], in folder: Folder, environment: [String: String] = [:],
               fileSizeLimitKiB: Int? = nil) throws -> Result {
    let process = Process()
    if let fileSizeLimitKiB {
      process.executableURL = URL(fileURLWithPath: "/bin/sh")
      process.arguments = ["-c", "ulimit -f \(fileSizeLimitKiB) && exec \"$0\" \"$@\"", CLITests.binary] + arguments
    } else {
      process.executableURL = URL(fileURLWithPath: CLITests.binary)
      process.arguments = arguments
    }
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.currentDirectoryURL = URL(fileURLWithPath: folder.path)
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Result(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                  stderr: String(decoding: e, as: UTF8.self))
  }

  static let recipe = """
    stages:
      train-data:
        op: dataset
        generator: arithmetic
        count: 50
      heldout:
        op: dataset
        generator: arithmetic
        split: heldout
        count: 20
    """

  /// `lineage diff LOCKFILE`: per stage, parameters old → new, changed outputs, metrics with their
  /// difference; a stage only in the new lockfile is "added"; identical stages are only counted.
  @Test func diffShowsWhatChangedBetweenTwoLockfiles() throws {
    let folder = try Folder()
    try folder.write("data.yaml", CLITests.recipe)
    #expect(try lineage(["run"], in: folder).status == 0)
    try FileManager.default.copyItem(atPath: folder.path + "/Stages/lineage.lock", toPath: folder.path + "/old.lock")
    let same = try lineage(["diff", "old.lock"], in: folder)
    #expect(same.status == 0 && same.stdout.contains("no differences from old.lock (2 stages)"), "\(same.stdout)\(same.stderr)")

    try folder.write("data.yaml", CLITests.recipe.replacingOccurrences(of: "count: 50", with: "count: 60") + """

          extra:
            op: dataset
            generator: arithmetic
            count: 5
        """)
    #expect(try lineage(["run"], in: folder).status == 0)
    let text = try lineage(["diff", "old.lock"], in: folder)
    #expect(text.status == 0, "\(text.stderr)")
    let rows = text.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
    #expect(rows.contains("train-data"), "\(text.stdout)")
    #expect(rows.contains("params.count 50 60"), "\(text.stdout)")
    #expect(rows.contains("examples 50 60 +10"), "\(text.stdout)")
    #expect(rows.contains { $0.hasPrefix("output dataset ") }, "\(text.stdout)")
    #expect(rows.contains("extra (added)"), "\(text.stdout)")
    #expect(!rows.contains { $0.hasPrefix("heldout") }, "unchanged stages are only counted: \(text.stdout)")
    #expect(text.stdout.contains("2 stages differ, 1 unchanged"))

    let json = try lineage(["diff", "old.lock", "--json"], in: folder)
    let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
    let stages = try #require(object["stages"] as? [[String: Any]])
    let train = try #require(stages.first { $0["stage"] as? String == "train-data" })
    let examples = try #require((train["metrics"] as? [[String: Any]])?.first { $0["name"] as? String == "examples" })
    #expect(examples["difference"] as? Double == 10 && object["unchanged"] as? Int == 1)

    let bad = try lineage(["diff", "no-such-revision"], in: folder)
    #expect(bad.status == 2 && bad.stderr.contains("neither a lockfile nor a git revision"), "\(bad.stderr)")
  }

  /// `lineage diff` with no argument compares against `lineage.lock` at git's HEAD.
  @Test func diffComparesWithTheLockfileAtAGitRevision() throws {
    let folder = try Folder()
    try folder.write("data.yaml", CLITests.recipe)
    #expect(try lineage(["run"], in: folder).status == 0)
    func git(_ arguments: String...) throws {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      process.arguments = ["git", "-C", folder.path, "-c", "user.name=t", "-c", "user.email=t@example.com"] + arguments
      process.standardOutput = FileHandle.nullDevice
      process.standardError = FileHandle.nullDevice
      try process.run()
      process.waitUntilExit()
      #expect(process.terminationStatus == 0, "git \(arguments)")
    }
    try git("init", "-q")
    try git("add", ".")
    try git("commit", "-q", "-m", "first")
    try folder.write("data.yaml", CLITests.recipe.replacingOccurrences(of: "count: 20", with: "count: 30"))
    #expect(try lineage(["run"], in: folder).status == 0)
    let diff = try lineage(["diff"], in: folder)
    let rows = diff.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
    #expect(diff.status == 0 && rows.contains("params.count 20 30") && rows.contains("heldout"), "\(diff.stdout)\(diff.stderr)")
    #expect(diff.stdout.contains("1 stage differs, 1 unchanged"))
  }

  /// `lineage checkout STAGE --to DIR` writes each output as a plain file named by output and kind,
  /// byte for byte what `show --output` prints, and replaces files only with `--force`.
  @Test func checkoutWritesTheOutputsAsPlainFiles() throws {
    let folder = try Folder()
    try folder.write("data.yaml", CLITests.recipe)
    #expect(try lineage(["run"], in: folder).status == 0)
    let out = folder.path + "/out"
    let first = try lineage(["checkout", "train-data", "--to", out], in: folder)
    #expect(first.status == 0, "\(first.stderr)")
    let jsonl = try String(contentsOfFile: out + "/dataset.jsonl", encoding: .utf8)
    #expect(jsonl.split(separator: "\n").count == 50)
    #expect(jsonl == (try lineage(["show", "train-data", "--output", "dataset"], in: folder)).stdout)
    let again = try lineage(["checkout", "train-data", "--to", out], in: folder)
    #expect(again.status == 2 && again.stderr.contains("--force replaces them"), "\(again.stderr)")
    #expect(try lineage(["checkout", "train-data", "--to", out, "--force"], in: folder).status == 0)
    let missing = try lineage(["checkout", "no-such-stage", "--to", out], in: folder)
    #expect(missing.status == 2 && missing.stderr.contains("no stage named"))
  }

  @Test func runThenNothingThenEditThenRevert() throws {
    let folder = try Folder()
    try folder.write("data.yaml", CLITests.recipe)
    let first = try lineage(["run"], in: folder)
    #expect(first.status == 0, "\(first.stderr)")
    #expect(first.stderr.contains("2 ran"))
    let lock = folder.read("lineage.lock")
    #expect(lock?.contains("train-data:") == true)

    let second = try lineage(["run"], in: folder)
    #expect(second.status == 0)
    #expect(second.stderr.contains("0 to run"))
    #expect(!second.stderr.contains("ran,"))
    #expect(folder.read("lineage.lock") == lock)

    try folder.write("data.yaml", CLITests.recipe.replacingOccurrences(of: "count: 50", with: "count: 60"))
    let status = try lineage(["status"], in: folder)
    #expect(status.status == 0)
    let rows = status.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
    #expect(rows.contains("train-data stale params.count 50 → 60"), "\(status.stdout)")
    #expect(rows.contains("heldout up to date"), "\(status.stdout)")
    let edited = try lineage(["run"], in: folder)
    #expect(edited.stderr.contains("run train-data: params.count 50 → 60"), "\(edited.stderr)")
    #expect(edited.stderr.contains("1 ran"))

    try folder.write("data.yaml", CLITests.recipe)
    let reverted = try lineage(["run"], in: folder)
    #expect(reverted.stderr.contains("restore train-data from cache"), "\(reverted.stderr)")
    #expect(!reverted.stderr.contains("ran"))
    #expect(folder.read("lineage.lock") == lock)
  }

  @Test func verifyRecomputesAndCatchesALockfileThatDoesNotMatch() throws {
    let folder = try Folder()
    try folder.write("data.yaml", CLITests.recipe)
    #expect(try lineage(["run"], in: folder).status == 0)
    let lock = try #require(folder.read("lineage.lock"))

    let good = try lineage(["verify"], in: folder)
    #expect(good.status == 0, "\(good.stderr)")
    #expect(good.stdout.contains("train-data") && good.stdout.contains(" ok"), "\(good.stdout)")
    #expect(folder.read("lineage.lock") == lock, "verify never rewrites the lockfile")

    // Claim a different output for one stage: verify must notice and fail.
    let line = try #require(lock.split(separator: "\n").first { $0.contains("hash:") })
    let hash = try #require(line.split(separator: "\"").dropFirst().first)
    try folder.write("lineage.lock", lock.replacingOccurrences(of: String(hash), with: String(repeating: "0", count: 64)))
    let bad = try lineage(["verify", "train-data", "heldout"], in: folder)
    #expect(bad.status == 1, "\(bad.stdout)\n\(bad.stderr)")
    #expect(bad.stdout.contains("MISMATCH"), "\(bad.stdout)")
  }

  @Test func badRecipeExitsTwoWithLocatedDiagnostics() throws {
    let folder = try Folder()
    try folder.write("data.yaml", "stages:\n  d:\n    op: dataset\n    generator: arithmetic\n    cuont: 5\n")
    let result = try lineage(["run"], in: folder)
    #expect(result.status == 2)
    #expect(result.stderr.contains("Stages/data.yaml:5:5: error: unknown key 'cuont'; did you mean 'count'?"), "\(result.stderr)")
    #expect(result.stderr.contains("    cuont: 5\n    ^"))
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/Stages/.lineage"), "nothing written to the store")
  }

  @Test func inspectionCommands() throws {
    let folder = try Folder()
    try folder.write("data.yaml", CLITests.recipe)
    #expect(try lineage(["run", "--dry-run"], in: folder).stdout.contains("never run"))
    #expect(try lineage(["run"], in: folder).status == 0)

    let dag = try lineage(["dag", "--format", "dot"], in: folder)
    #expect(dag.stdout.contains("digraph lineage"))
    #expect(try lineage(["dag", "--format", "mermaid"], in: folder).stdout.hasPrefix("flowchart LR"))

    let show = try lineage(["show", "train-data", "--json"], in: folder)
    let json = try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any]
    #expect(json?["op"] as? String == "dataset")
    #expect((json?["outputs"] as? [String: Any])?["dataset"] != nil)
    let showText = try lineage(["show", "train-data"], in: folder).stdout
    #expect(showText.contains("count"))
    #expect(showText.contains("stage file"))
    #expect(showText.contains("op default"))

    let metrics = try lineage(["metrics", "--json"], in: folder)
    let table = try JSONSerialization.jsonObject(with: Data(metrics.stdout.utf8)) as? [String: [String: Double]]
    #expect(table?["train-data"]?["examples"] == 50)

    let ops = try lineage(["ops"], in: folder)
    #expect(ops.stdout.contains("dataset"))
    let schema = try lineage(["ops", "dataset", "--json"], in: folder)
    #expect(schema.stdout.contains("\"difficulty.digits\""))

    let fsck = try lineage(["fsck"], in: folder)
    #expect(fsck.status == 0)
    #expect(fsck.stdout.contains("store is healthy"))

    // gc keeps everything the lockfile references
    let gc = try lineage(["gc", "--dry-run"], in: folder)
    #expect(gc.stdout.contains("would delete 0 cached results"), "\(gc.stdout)")
    #expect(try lineage(["run"], in: folder).stderr.contains("2 up to date"))
  }

  @Test func bundleCreateThenImportElsewhereRestoresWithoutRunning() throws {
    let source = try Folder()
    try source.write("data.yaml", CLITests.recipe)
    #expect(try lineage(["run"], in: source).status == 0)
    let file = source.path + "/share.tar"
    let created = try lineage(["bundle", "create", "-o", file], in: source)
    #expect(created.status == 0, "\(created.stderr)")
    #expect(created.stdout.contains("2 stages"), "\(created.stdout)")

    let target = try Folder()
    let imported = try lineage(["bundle", "import", file], in: target)
    #expect(imported.status == 0, "\(imported.stderr)")
    #expect(target.read("data.yaml") == CLITests.recipe)
    let run = try lineage(["run"], in: target)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stderr.contains("2 up to date"), "\(run.stderr)")
    #expect(!run.stderr.contains("ran"), "\(run.stderr)")

    // A truncated bundle: exit 1, the reason on stderr, no store created.
    let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
    try bytes.prefix(bytes.count - 1024).write(to: URL(fileURLWithPath: file))
    let other = try Folder()
    let refused = try lineage(["bundle", "import", file], in: other)
    #expect(refused.status == 1)
    #expect(refused.stderr.contains("truncated"), "\(refused.stderr)")
    #expect(!FileManager.default.fileExists(atPath: other.path + "/Stages/.lineage"), "nothing written to a store")
    #expect(other.read("data.yaml") == nil)
  }

  /// Importing a shared bundle into a folder that does not exist yet (the common case) creates it.
  @Test func bundleImportIntoANewFolderCreatesIt() throws {
    let source = try Folder()
    try source.write("data.yaml", CLITests.recipe)
    #expect(try lineage(["run"], in: source).status == 0)
    let file = source.path + "/share.tar"
    #expect(try lineage(["bundle", "create", "-o", file], in: source).status == 0)

    let target = try Folder()
    let imported = try lineage(["bundle", "import", file, "--recipe", "shared/lineage"], in: target)
    #expect(imported.status == 0, "\(imported.stderr)")
    let copied = try? String(contentsOfFile: target.path + "/shared/lineage/data.yaml", encoding: .utf8)
    #expect(copied == CLITests.recipe)
    let run = try lineage(["run", "--recipe", "shared/lineage"], in: target)
    #expect(run.status == 0 && run.stderr.contains("2 up to date"), "\(run.stderr)")
  }

  @Test func gcDeletesWhatNothingReferences() throws {
    let folder = try Folder()
    try folder.write("data.yaml", CLITests.recipe)
    #expect(try lineage(["run"], in: folder).status == 0)
    try folder.write("data.yaml", CLITests.recipe.replacingOccurrences(of: "count: 50", with: "count: 51"))
    #expect(try lineage(["run"], in: folder).status == 0)
    let gc = try lineage(["gc"], in: folder)
    #expect(gc.stdout.contains("deleted 1 cached result and 1 blob"), "\(gc.stdout)")
    let after = try lineage(["run"], in: folder)
    #expect(after.stderr.contains("2 up to date"))
  }
}
