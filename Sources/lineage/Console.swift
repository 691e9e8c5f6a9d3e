import Foundation
import Pipeline

/// Where the CLI writes: standard output for results, standard error for diagnostics and progress.
enum Console {
  static func out(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
  }

  static func error(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
  }

  /// Whether standard error is a terminal (progress lines redraw in place there).
  static var isTerminal: Bool { isatty(2) == 1 }

  /// Prints a recipe's diagnostics and returns the exit status for an invalid recipe.
  static func report(_ error: RecipeError) -> Int32 {
    Console.error(error.description)
    let count = error.diagnostics.count
    Console.error("\(count) error\(count == 1 ? "" : "s") in the recipe; nothing was run.")
    return ExitStatus.invalidRecipe
  }

  /// `1.2 s`, `3 min 04 s`, `1 h 02 min`.
  static func duration(_ seconds: Double) -> String {
    if seconds < 10 { return String(format: "%.2f s", seconds) }
    if seconds < 60 { return String(format: "%.1f s", seconds) }
    let s = Int(seconds.rounded())
    if s < 3600 { return String(format: "%d min %02d s", s / 60, s % 60) }
    return String(format: "%d h %02d min", s / 3600, (s % 3600) / 60)
  }

  /// Metrics as `name=value` pairs with sensible precision.
  static func metrics(_ metrics: [String: Double]) -> String {
    metrics.keys.sorted().map { "\($0)=\(number(metrics[$0]!))" }.joined(separator: " ")
  }

  static func number(_ v: Double) -> String {
    if v.rounded() == v && abs(v) < 1e12 { return String(Int(v)) }
    if abs(v) >= 100 { return String(format: "%.1f", v) }
    return String(format: "%.4g", v)
  }
}
