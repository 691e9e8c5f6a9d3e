import ArgumentParser
import ArtifactStore
import Pipeline

/// `lineage fsck`: rehash every blob and decode every action record; name what is damaged and the
/// stages it belongs to, remove it so the next run recomputes those stages, and exit 1.
struct Fsck: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "fsck", 
    abstract: "Check the store: rehash every blob and read every result; name damaged ones and their stages.")

  @Option(name: .long, help: "The recipe folder (its store is RECIPE/.lineage).")
  var recipe: String = "Stages"

  @Option(name: .long, help: "The store folder (default: RECIPE/.lineage).")
  var store: String?

  func run() async throws {
    let path = store ?? recipe + "/.lineage"
    let opened = try openStore(at: path)
    let report = try opened.fsck()
    Console.out("checked \(report.blobsChecked) blob\(report.blobsChecked == 1 ? "" : "s") (\(byteCount(report.bytesChecked)))")
    for hash in report.corrupt {
      let users = report.corruptUsers[hash] ?? []
      Console.out("corrupt blob \(hash.hex)" + (users.isEmpty ? "" : " used by " + users.joined(separator: ", ")))
    }
    if !report.damagedRecords.isEmpty {
      let stages = stagesByKey()
      for damaged in report.damagedRecords {
        // The lockfile names the stage even when nothing of the record is readable.
        let stage = stages.names[damaged.key] ?? damaged.stage
        let owner = stage.map { " of stage \($0)" } ?? " of an unknown stage (\(stages.why))"
        Console.out("damaged action record \(damaged.key.short)\(owner): \(damaged.reason)")
      }
    }
    for missing in report.actionsWithMissingOutputs {
      Console.out("stage \(missing.stage) (key \(missing.action.short)) lost \(missing.missing.count) output blob(s); it will rerun")
    }
    if report.corrupt.isEmpty && report.actionsWithMissingOutputs.isEmpty && report.damagedRecords.isEmpty {
      Console.out("store is healthy")
      return
    }
    if !report.corrupt.isEmpty || !report.damagedRecords.isEmpty {
      // Damaged bytes are useless: remove them, so that no run can read them and their stages rerun.
      let lock = try RunLock(storePath: path, wait: true) { pid in
        Console.error("waiting for another lineage process\(pid.map { " (pid \($0))" } ?? "") to finish with this store…")
      }
      try opened.write { txn in
        for hash in report.corrupt { try txn.deleteBlob(hash) }
        for damaged in report.damagedRecords { try txn.deleteAction(damaged.key) }
      }
      withExtendedLifetime(lock) {}
      if !report.corrupt.isEmpty {
        Console.out("removed \(report.corrupt.count) corrupt blob\(report.corrupt.count == 1 ? "" : "s")")
      }
      if !report.damagedRecords.isEmpty {
        let count = report.damagedRecords.count
        Console.out("removed \(count) damaged action record\(count == 1 ? "" : "s")")
      }
    }
    Console.out("the next `lineage run` recomputes the affected stages")
    throw ExitCode.failure
  }

  /// The lockfile's stage of each key, and why there may be none: a damaged record's own `stage`
  /// field may be unreadable, the lockfile's entry is not.
  private func stagesByKey() -> (names: [ContentHash: String], why: String) {
    do {
      let lock = try Lockfile.read(directory: recipe)
      var names: [ContentHash: String] = [:]
      for (name, entry) in lock.stages { names[entry.key] = name }
      return (names, "its key is not in \(recipe)/lineage.lock")
    } catch {
      return ([:], "\(recipe)/lineage.lock cannot be read: \(error.diagnostics.first?.message ?? "\(error)")")
    }
  }
}
