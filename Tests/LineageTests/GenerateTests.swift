import Foundation
import Testing

/// `lineage generate` through the built binary, on the tiny lineage of `ExportTests`.
@Suite(.serialized) struct GenerateTests {
  @Test func sameSeedSameTextAndClearErrors() throws {
    let folder = try ExportTests.trained()
    func generate(_ arguments: [String]) throws -> CLITests.Result {
      try ExportTests.lineage(["generate", "base", "--prompt", "the cat", "--max-tokens", "24"] + arguments, in: folder)
    }
    let a = try generate(["--seed", "7"]), b = try generate(["--seed", "7"])
    #expect(a.status == 0, "\(a.stderr)")
    #expect(!a.stdout.isEmpty && a.stdout == b.stdout)
    #expect(a.stderr.contains("tokens in") && a.stderr.contains("tokens/s"), "\(a.stderr)")
    // Other seeds sample other text (a tiny, barely trained model is close to uniform).
    let others = try (1...3).map { try generate(["--seed", "\(100 + $0)"]).stdout }
    #expect(others.contains { $0 != a.stdout }, "\(others)")
    // Greedy ignores the seed.
    #expect(try generate(["--temperature", "0", "--seed", "1"]).stdout == (try generate(["--temperature", "0", "--seed", "2"])).stdout)

    let unknown = try ExportTests.lineage(["generate", "bsae", "--prompt", "x"], in: folder)
    #expect(unknown.status == 2 && unknown.stderr.contains("no stage named 'bsae'"), "\(unknown.stderr)")
    let notModel = try ExportTests.lineage(["generate", "text", "--prompt", "x"], in: folder)
    #expect(notModel.status == 2 && notModel.stderr.contains("makes no model"), "\(notModel.stderr)")
    let tooLong = try ExportTests.lineage(["generate", "base", "--prompt", "x", "--max-tokens", "64"], in: folder)
    #expect(tooLong.status == 2 && tooLong.stderr.contains("leaves no room"), "\(tooLong.stderr)")
    let badP = try ExportTests.lineage(["generate", "base", "--prompt", "x", "--top-p", "0"], in: folder)
    #expect(badP.status != 0 && badP.stderr.contains("--top-p"), "\(badP.stderr)")
  }

  /// The chat reads a line, answers it while still waiting for the next (so the reply reaches the
  /// terminal as it is made, not at exit), and ends at /quit; the same lines and seed give the same chat.
  @Test func chatAnswersEachLineBeforeTheNextAndIsRepeatable() throws {
    let folder = try ExportTests.trained()
    func chat() throws -> String {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: CLITests.binary)
      process.arguments = ["generate", "base", "--max-tokens", "8", "--seed", "3"]
      process.currentDirectoryURL = URL(fileURLWithPath: folder.path)
      let input = Pipe(), output = Pipe()
      process.standardInput = input
      process.standardOutput = output
      process.standardError = FileHandle.nullDevice
      try process.run()
      input.fileHandleForWriting.write(Data("the cat\n".utf8))
      // The first reply arrives while the process waits for more input; a reader thread with a
      // deadline turns "never" into a failure instead of a hang.
      let first = GenerateTests.read(output.fileHandleForReading, timeout: 120)
      #expect(!first.isEmpty, "no reply before the next line was sent")
      input.fileHandleForWriting.write(Data("the dog\n/quit\n".utf8))
      let rest = output.fileHandleForReading.readDataToEndOfFile()
      process.waitUntilExit()
      #expect(process.terminationStatus == 0)
      return first + String(decoding: rest, as: UTF8.self)
    }
    let one = try chat(), two = try chat()
    #expect(one == two && !one.isEmpty)
  }

  /// What `handle` has to read within `timeout` seconds (empty when nothing came).
  static func read(_ handle: FileHandle, timeout: TimeInterval) -> String {
    final class Box: @unchecked Sendable {   // written by the reader before the semaphore is signalled
      var data = Data()
    }
    let box = Box()
    let done = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
      box.data = handle.availableData
      done.signal()
    }
    guard done.wait(timeout: .now() + timeout) == .success else { return "" }
    return String(decoding: box.data, as: UTF8.self)
  }
}
