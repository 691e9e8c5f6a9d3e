import Foundation
import Testing

/// Commands that compute nothing start no kernel helper threads (issue 11): each helper is a `clone`,
/// and OpenBLAS's polled with `sched_yield` from the moment the library loaded (0 to 5,000 calls per
/// command under `strace -f`, the more the busier the machine).
///
/// Checked on the built binary through the line `LINEAGE_THREAD_REPORT=1` makes it print at exit.
@Suite(.serialized) struct KernelThreadsCLITests {
  let cli = CLITests()

  func report(_ arguments: [String], in folder: CLITests.Folder,
              sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let result = try cli.lineage(arguments, in: folder, environment: ["LINEAGE_THREAD_REPORT": "1"])
    #expect(result.status == 0, "lineage \(arguments.joined(separator: " ")): \(result.stderr)",
            sourceLocation: sourceLocation)
    let line = result.stderr.split(separator: "\n").last { $0.hasPrefix("thread report:") }
    #expect(line != nil, "no thread report from lineage \(arguments.joined(separator: " "))", sourceLocation: sourceLocation)
    return String(line ?? "")
  }

  @Test func commandsThatComputeNothingStartNoHelperThreads() throws {
    let folder = try CLITests.Folder()
    try folder.write("data.yaml", CLITests.recipe)
    _ = try cli.lineage(["run"], in: folder)  // fills the store, so that the run below has nothing to do
    for arguments in [["--help"], ["ops"], ["ops", "dataset"], ["status"], ["run"]] {
      let line = try report(arguments, in: folder)
      #expect(line.contains("kernel helpers started: false"), "lineage \(arguments.joined(separator: " ")): \(line)")
      #expect(line.contains("OpenBLAS helpers: 0"), "lineage \(arguments.joined(separator: " ")): \(line)")
    }
    // `--help` never reaches Swift concurrency either: the process is its main thread alone (OpenBLAS
    // used to add one, started by its constructor when the library loaded).
    #expect(try report(["--help"], in: folder).hasSuffix("threads now: 1"))
  }
}
