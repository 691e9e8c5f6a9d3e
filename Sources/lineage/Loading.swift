import ArgumentParser
import ArtifactStore
import Foundation
import Pipeline
import Recipes

/// Loading a recipe and its store, with the CLI's error reporting.
extension RecipeOptions {
  /// The validated recipe, or exit status 2 after printing every diagnostic.
  func loadRecipe() throws -> Recipe {
    do {
      return try RecipeLoader(registry: BuiltinOperations.registry, overrides: overrides).load(directory: recipe)
    } catch {
      throw ExitCode(Console.report(error))
    }
  }

  func loadLockfile(_ recipe: Recipe) throws -> Lockfile {
    do {
      return try Lockfile.read(directory: recipe.directory)
    } catch {
      Console.error(error.description)
      Console.error("the lockfile is damaged; restore it from version control or delete it "
                      + "(the store still has every result: the next run restores them)")
      throw ExitCode(ExitStatus.invalidRecipe)
    }
  }

  /// Takes the store's write lock, saying so while another process holds it (or failing at once
  /// with `noWait`).
  func lockStore(noWait: Bool) throws -> RunLock {
    do {
      return try RunLock(storePath: storePath, wait: !noWait) { pid in
        Console.error("waiting for another lineage process\(pid.map { " (pid \($0))" } ?? "") to finish with this store…")
      }
    } catch {
      Console.error("error: \(error)")
      throw ExitCode.failure
    }
  }

  func openStore() throws -> Store { try lineage.openStore(at: storePath) }

  /// One stage of the recipe as `show` and `checkout` see it: its definition, its status, and its
  /// cached result for the current definition (nil when it has none). An unknown name exits with
  /// status 2, naming the nearest stage or the matrix it stands for.
  func inspect(_ name: String) throws -> (definition: Stage, status: Planner.StageStatus?, record: ActionRecord?, store: Store) {
    let recipe = try loadRecipe()
    guard let definition = recipe.stage(name) else {
      let hint = recipe.groups[name].map { "; it is a matrix of: " + $0.joined(separator: ", ") }
        ?? Pipeline.Suggestion.phrase(for: name, among: recipe.stages.map(\.name))
      Console.error("error: no stage named '\(name)'\(hint)")
      throw ExitCode(ExitStatus.invalidRecipe)
    }
    let store = try openStore()
    var planner = Planner(recipe: recipe, lockfile: try loadLockfile(recipe), cache: store)
    let status = try planner.status(targets: [name]).first { $0.stage == name }
    let record = try status?.key.flatMap { try store.cachedResult(for: $0) }
    return (definition, status, record, store)
  }
}

/// Opens the store at `path` with the size limit of `LINEAGE_STORE_LIMIT`, or exits with a message.
func openStore(at path: String) throws -> Store {
  let limit: Int
  do {
    limit = try StoreLimit.fromEnvironment()
  } catch {
    Console.error("error: \(error.message)")
    throw ExitCode(ExitStatus.invalidRecipe)
  }
  // A file-size limit (`ulimit -f`) must fail the write with EFBIG, which the store reports as a full
  // disk, rather than kill the process with SIGXFSZ in the middle of a commit.
  signal(SIGXFSZ, SIG_IGN)
  do {
    return try Store(path: path, maxMapSize: limit)
  } catch {
    Console.error("error: cannot open the store at \(path): \(error)")
    throw ExitCode.failure
  }
}

/// `LINEAGE_STORE_LIMIT`: the most bytes a store may grow to (`512MiB`, `20GiB`, `1T`, or bytes).
/// A shared disk can cap each store; a stage whose results would pass the cap fails with a clear
/// message and everything finished before it stays.
enum StoreLimit {
  static let variable = "LINEAGE_STORE_LIMIT"

  struct Invalid: Error { var message: String }

  /// The limit in bytes: the variable's, or the store's default when it is unset.
  static func fromEnvironment() throws(Invalid) -> Int {
    guard let text = ProcessInfo.processInfo.environment[variable], !text.isEmpty else {
      return Store.defaultMaxMapSize
    }
    guard let bytes = parse(text) else {
      throw Invalid(message: "\(variable)='\(text)' is not a size; write it like 512MiB, 20GiB or 1TiB")
    }
    guard bytes >= 1 << 20 else { throw Invalid(message: "\(variable)='\(text)' is too small; a store needs at least 1MiB") }
    return bytes
  }

  /// `64MiB`, `64M`, `64MB`, `1.5GiB` (binary units), or a plain number of bytes.
  static func parse(_ text: String) -> Int? {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    let digits = trimmed.prefix { $0.isNumber || $0 == "." }
    var unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).uppercased()
    for suffix in ["IB", "B"] where unit.hasSuffix(suffix) {
      unit = String(unit.dropLast(suffix.count))
      break
    }
    let shifts: [String: Int] = ["": 0, "K": 10, "M": 20, "G": 30, "T": 40]
    guard let number = Double(digits), number.isFinite, let shift = shifts[unit] else { return nil }
    let bytes = number * Double(1 << shift)
    guard bytes >= 1, bytes < Double(1 << 50) else { return nil }
    return Int(bytes)
  }
}

/// JSON for `--json` outputs: pretty, keys sorted.
func printJSON(_ value: Any) {
  guard JSONSerialization.isValidJSONObject(value),
        let data = try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys]) else {
    Console.error("error: the result cannot be written as JSON (a value is NaN, infinite or not a JSON type)")
    return
  }
  Console.out(String(decoding: data, as: UTF8.self))
}

/// Pads columns of a table for the terminal.
func table(_ rows: [[String]], header: [String]? = nil) -> String {
  let all = (header.map { [$0] } ?? []) + rows
  guard let width = all.map(\.count).max(), width > 0 else { return "" }
  var widths = [Int](repeating: 0, count: width)
  for row in all { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
  func line(_ row: [String]) -> String {
    row.enumerated().map { i, cell in
      i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
    }.joined(separator: "  ")
  }
  var out = all.map(line)
  if header != nil { out.insert(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "), at: 1) }
  return out.joined(separator: "\n")
}
