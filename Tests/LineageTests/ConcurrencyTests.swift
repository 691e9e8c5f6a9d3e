import Foundation
import Testing

/// Two processes on one store: a second `run` waits for the first (or fails at once with --no-wait),
/// and readers never wait.
@Suite struct ConcurrencyTests {
  static let slowRecipe = """
    stages:
      text: {op: corpus, source: text.txt}
      slow:
        op: pretrain
        corpus: text
        model: {d_model: 64, layers: 2, heads: 2, context: 128}
        train: {steps: 150, batch: 8}

    """

  @Test func aSecondRunWaitsForTheFirstAndReadersNeverBlock() throws {
    let folder = try CLITests.Folder()
    try folder.write("text.txt", (0..<100).map { "Line \($0) of a small text about rivers and hills." }.joined(separator: "\n\n"))
    try folder.write("s.yaml", Self.slowRecipe)

    let first = Process()
    first.executableURL = URL(fileURLWithPath: CLITests.binary)
    first.arguments = ["run"]
    first.currentDirectoryURL = URL(fileURLWithPath: folder.path)
    first.standardOutput = FileHandle.nullDevice
    first.standardError = FileHandle.nullDevice
    try first.run()
    defer { if first.isRunning { first.terminate() } }
    // Wait until the first run holds the lock (it writes its pid into the lock file).
    let lockPath = folder.path + "/Stages/.lineage/run.lock"
    for _ in 0..<200 where (try? String(contentsOfFile: lockPath, encoding: .utf8))?.isEmpty ?? true { usleep(10_000) }
    #expect(first.isRunning, "the first run should still be training")

    let refused = try CLITests().lineage(["run", "--no-wait"], in: folder)
    #expect(refused.status == 1, "\(refused.stderr)")
    #expect(refused.stderr.contains("another lineage process (pid \(first.processIdentifier)) is writing to this store"), "\(refused.stderr)")

    let started = Date()
    let status = try CLITests().lineage(["status"], in: folder)
    #expect(status.status == 0)
    #expect(Date().timeIntervalSince(started) < 2, "status does not wait for the run")

    let second = try CLITests().lineage(["run"], in: folder)
    #expect(second.status == 0, "\(second.stderr)")
    #expect(second.stderr.contains("waiting for another lineage process"), "\(second.stderr)")
    first.waitUntilExit()   // it released the lock as it finished; the process may take a moment to end
    #expect(first.terminationStatus == 0)
    #expect(second.stderr.contains("0 to run") || second.stderr.contains("up to date"), "the second run found the first's results: \(second.stderr)")
  }
}
