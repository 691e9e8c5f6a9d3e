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

  func openStore() throws -> Store {
    do {
      return try Store(path: storePath)
    } catch {
      Console.error("error: cannot open the store at \(storePath): \(error)")
      throw ExitCode.failure
    }
  }
}

/// JSON for `--json` outputs: pretty, keys sorted.
func printJSON(_ value: Any) {
  guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys]) else {
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
