import ArgumentParser
import ArtifactStore
import Pipeline

/// `lineage fsck`: rehash every blob in the store and name the corrupt ones and the stages using them.
struct Fsck: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Check the store: rehash every blob, name corrupt ones and the stages whose results use them.")

  @Option(name: .long, help: "The recipe folder (its store is RECIPE/.lineage).")
  var recipe: String = "Stages"

  @Option(name: .long, help: "The store folder (default: RECIPE/.lineage).")
  var store: String?

  func run() async throws {
    let path = store ?? recipe + "/.lineage"
    let opened = try openStore(at: path)
    let report = try opened.fsck()
    let actions = try opened.read { try $0.actions() }
    Console.out("checked \(report.blobsChecked) blob\(report.blobsChecked == 1 ? "" : "s") (\(byteCount(report.bytesChecked)))")
    for hash in report.corrupt {
      let users = actions.filter { $0.outputs.values.contains { $0.hash == hash } }
        .map { "\($0.stage).\($0.outputs.first { $1.hash == hash }!.key)" }
      Console.out("corrupt blob \(hash.hex)" + (users.isEmpty ? "" : " used by " + Set(users).sorted().joined(separator: ", ")))
    }
    for missing in report.actionsWithMissingOutputs {
      Console.out("stage \(missing.stage) (key \(missing.action.short)) lost \(missing.missing.count) output blob(s); it will rerun")
    }
    if report.corrupt.isEmpty && report.actionsWithMissingOutputs.isEmpty {
      Console.out("store is healthy")
      return
    }
    if !report.corrupt.isEmpty {
      // Corrupt bytes are useless: remove them, so that no run can read them and their stages rerun.
      let lock = try RunLock(storePath: path, wait: true) { pid in
        Console.error("waiting for another lineage process\(pid.map { " (pid \($0))" } ?? "") to finish with this store…")
      }
      try opened.write { txn in for hash in report.corrupt { try txn.deleteBlob(hash) } }
      withExtendedLifetime(lock) {}
      Console.out("removed \(report.corrupt.count) corrupt blob\(report.corrupt.count == 1 ? "" : "s")")
    }
    Console.out("the next `lineage run` recomputes the affected stages")
    throw ExitCode.failure
  }
}
