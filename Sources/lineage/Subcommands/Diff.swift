import ArgumentParser
import Foundation
import Pipeline

/// `lineage diff [REV | LOCKFILE]`: what changed between the recipe's `lineage.lock` and the one at a
/// git revision (default `HEAD`) or in another file — parameters, outputs and metrics, per stage.
struct Diff: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "diff", 
    abstract: "Compare lineage.lock with the one at a git revision (default HEAD) or another lockfile: parameters, outputs and metrics per stage.")

  @Option(name: .long, help: "The recipe folder.")
  var recipe: String = "Stages"

  @Argument(help: "A git revision (HEAD, main~3, a tag) or the path of another lockfile.")
  var against: String = "HEAD"

  @Flag(name: .long, help: "Print JSON.")
  var json = false

  func run() async throws {
    let diff: LockfileDiff
    switch Result(catching: { () throws(RecipeError) -> LockfileDiff in
      LockfileDiff(old: try baseline(), new: try Lockfile.read(directory: recipe))
    }) {
    case .success(let value): diff = value
    case .failure(let error):
      Console.error(error.description)
      throw ExitCode(ExitStatus.invalidRecipe)
    }
    if json {
      printJSON([
        "against": against, "unchanged": diff.unchanged,
        "stages": diff.changes.map { change -> [String: Any] in
          var out: [String: Any] = [
            "stage": change.stage, "kind": change.kind.rawValue,
            "parameters": change.parameters.map(Diff.row),
            "outputs": change.outputs.map(Diff.row),
            "metrics": change.metrics.map { m -> [String: Any] in
              var row = Diff.row(m)
              if let old = m.old, let new = m.new { row["difference"] = new - old }
              return row
            },
          ]
          if let v = change.opVersion { out["op_version"] = Diff.row(v) }
          return out
        },
      ])
      return
    }
    guard !diff.changes.isEmpty else {
      Console.out("no differences from \(against) (\(diff.unchanged) stages)")
      return
    }
    var rows: [[String]] = []
    for change in diff.changes {
      let what = change.kind == .changed ? "" : " (\(change.kind.rawValue))"
      rows.append([change.stage + what, "", "", "", ""])
      if let v = change.opVersion { rows.append(["  op_version", v.old.map(String.init) ?? "–", v.new.map(String.init) ?? "–", "", ""]) }
      for p in change.parameters { rows.append(["  params." + p.name, p.old ?? "–", p.new ?? "–", "", ""]) }
      for o in change.outputs {
        rows.append(["  output " + o.name, o.old.map { String($0.prefix(12)) } ?? "–", o.new.map { String($0.prefix(12)) } ?? "–", "", ""])
      }
      for m in change.metrics {
        let difference = m.old.flatMap { old in m.new.map { ($0 - old >= 0 ? "+" : "") + Console.number($0 - old) } } ?? ""
        rows.append(["  " + m.name, m.old.map(Console.number) ?? "–", m.new.map(Console.number) ?? "–", difference, ""])
      }
    }
    Console.out(table(rows.map { Array($0.prefix(4)) }, header: ["stage", against, "lineage.lock", "difference"]))
    Console.out(diff.changes.count == 1 ? "1 stage differs, \(diff.unchanged) unchanged"
                  : "\(diff.changes.count) stages differ, \(diff.unchanged) unchanged")
  }

  /// A change as JSON: absent sides are null.
  private static func row<Value>(_ change: LockfileDiff.StageChange.Change<Value>) -> [String: Any] {
    ["name": change.name, "old": change.old.map { $0 as Any } ?? NSNull(), "new": change.new.map { $0 as Any } ?? NSNull()]
  }

  private func failure(_ message: String) -> RecipeError { RecipeError([Diagnostic(message, at: nil)]) }

  /// The other lockfile: the file `against` names, else `lineage.lock` at git revision `against`.
  private func baseline() throws(RecipeError) -> Lockfile {
    if FileManager.default.fileExists(atPath: against) {
      guard let data = FileManager.default.contents(atPath: against) else { throw failure("cannot read \(against)") }
      return try Lockfile.parse(Array(data), file: against)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    // `REV:./path` is relative to the folder git runs in.
    process.arguments = ["git", "-C", recipe, "show", "\(against):./lineage.lock"]
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    do { try process.run() } catch {
      throw failure("'\(against)' is not a file, and git could not be started to read it as a revision: \(error)")
    }
    let bytes = out.fileHandleForReading.readDataToEndOfFile()
    let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      throw failure("'\(against)' is neither a lockfile nor a git revision with \(recipe)/lineage.lock: "
                          + message.trimmingCharacters(in: .whitespacesAndNewlines))
    }
    return try Lockfile.parse(Array(bytes), file: "\(against):\(recipe)/lineage.lock")
  }
}
