/// A problem found in a recipe, located in its text so that a user can go straight to it.
///
/// Diagnostics are collected, not thrown one by one: validation reports every problem of a recipe at
/// once. `RecipeError` carries them out of the loader; the CLI renders them with
/// `Diagnostic.rendered()` as `file:line:column: error: message`, the source line and a caret.
public struct Diagnostic: Error, Equatable, Sendable, CustomStringConvertible {
  /// A secondary place that explains the first (`first defined here`).
  public struct Note: Equatable, Sendable {
    public var message: String
    public var location: SourceLocation?
    public var sourceLine: String?
    public init(_ message: String, at location: SourceLocation? = nil) {
      self.message = message
      self.location = location
    }
  }

  public var message: String
  public var location: SourceLocation?
  /// The text of the line at `location`, filled in by the loader that knows the file.
  public var sourceLine: String?
  public var notes: [Note]

  public init(_ message: String, at location: SourceLocation?, notes: [Note] = []) {
    self.message = message
    self.location = location
    self.notes = notes
  }

  /// `file:line:column: error: message` (or `error: message` for a problem with no place).
  public var description: String {
    guard let location else { return "error: \(message)" }
    return "\(location): error: \(message)"
  }

  /// The diagnostic as a user sees it: the headline, the source line, a caret under the column, then
  /// each note the same way.
  public func rendered() -> String {
    var lines = [description]
    if let sourceLine, let location { lines += Diagnostic.excerpt(sourceLine, column: location.column) }
    for note in notes {
      lines.append(note.location.map { "\($0): note: \(note.message)" } ?? "note: \(note.message)")
      if let line = note.sourceLine, let location = note.location {
        lines += Diagnostic.excerpt(line, column: location.column)
      }
    }
    return lines.joined(separator: "\n")
  }

  /// The line as written and a caret under `column` (1-based, in characters); tabs are kept in the
  /// padding so the caret lines up in any terminal.
  static func excerpt(_ line: String, column: Int) -> [String] {
    let padding = line.prefix(max(0, column - 1)).map { $0 == "\t" ? "\t" : " " }.joined()
    return [line, padding + "^"]
  }
}

/// A recipe that cannot run, with every problem found in it, sorted by place.
public struct RecipeError: Error, Sendable, CustomStringConvertible {
  public var diagnostics: [Diagnostic]

  public init(_ diagnostics: [Diagnostic]) {
    self.diagnostics = diagnostics.sorted { a, b in
      switch (a.location, b.location) {
      case let (x?, y?): return x < y
      case (nil, _?): return false
      case (_?, nil): return true
      case (nil, nil): return a.message < b.message
      }
    }
  }

  public var description: String {
    diagnostics.map { $0.rendered() }.joined(separator: "\n")
  }
}
