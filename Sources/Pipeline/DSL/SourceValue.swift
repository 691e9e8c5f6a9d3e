/// A value read from a recipe, before validation: the YAML tree with every leaf's place and origin.
///
/// The loader turns YAML nodes into `SourceValue`s while it interpolates `${…}`, expands `matrix:`,
/// merges `defaults:` and applies `--set`; the schema validator then turns them into `ParamValue`s and
/// keeps the origins for `lineage show`.
struct SourceValue: Sendable {
  enum Content: Sendable {
    case scalar(ParamValue)
    case list([SourceValue])
    case map([Entry])
  }

  struct Entry: Sendable {
    var key: String
    var keyLocation: SourceLocation?
    var value: SourceValue
  }

  var content: Content
  var location: SourceLocation?
  var origin: ValueOrigin
  /// For scalars: the text as written (`3e-4`), used to name matrix stages.
  var raw: String?

  /// The entry under `key` of a map.
  subscript(key: String) -> SourceValue? {
    guard case .map(let entries) = content else { return nil }
    return entries.first { $0.key == key }?.value
  }

  func entry(_ key: String) -> Entry? {
    guard case .map(let entries) = content else { return nil }
    return entries.first { $0.key == key }
  }

  var entries: [Entry]? {
    if case .map(let entries) = content { return entries }
    return nil
  }

  var scalar: ParamValue? {
    if case .scalar(let v) = content { return v }
    return nil
  }

  /// A key written with nothing after it (`steps:`), as opposed to an explicit `null` or `~`: most
  /// likely an unfinished edit, never silently the default.
  var isWrittenEmpty: Bool {
    scalar == .null && raw == ""
  }

  /// What kind of value this is, for "got …" in messages.
  var kindDescription: String {
    switch content {
    case .scalar(let v):
      switch v {
      case .null: return "null"
      case .bool(let b): return "the bool \(b)"
      case .int(let i): return "the int \(i)"
      case .float: return "the float \(raw ?? v.displayText)"
      case .string(let s): return "the string '\(s)'"
      case .list, .map: return v.displayText
      }
    case .list: return "a list"
    case .map: return "a map"
    }
  }

  /// Removes every origin/place detail: the plain value.
  var plainValue: ParamValue {
    switch content {
    case .scalar(let v): return v
    case .list(let items): return .list(items.map(\.plainValue))
    case .map(let entries):
      var out: [String: ParamValue] = [:]
      for entry in entries { out[entry.key] = entry.value.plainValue }
      return .map(out)
    }
  }

  /// A copy whose every node says it came from `origin` (an interpolated variable, a `--set`).
  func withOrigin(_ origin: ValueOrigin, at location: SourceLocation?) -> SourceValue {
    var copy = self
    copy.origin = origin
    if let location { copy.location = location }
    switch content {
    case .scalar: break
    case .list(let items): copy.content = .list(items.map { $0.withOrigin(origin, at: location) })
    case .map(let entries):
      copy.content = .map(entries.map {
        Entry(key: $0.key, keyLocation: location ?? $0.keyLocation,
              value: $0.value.withOrigin(origin, at: location))
      })
    }
    return copy
  }

  /// `base` with `overlay` on top: maps merge key by key (recursively), anything else is replaced.
  static func merged(base: SourceValue, overlay: SourceValue) -> SourceValue {
    guard case .map(let baseEntries) = base.content, case .map(let overlayEntries) = overlay.content
    else { return overlay }
    var result = baseEntries
    for entry in overlayEntries {
      if let i = result.firstIndex(where: { $0.key == entry.key }) {
        result[i].value = merged(base: result[i].value, overlay: entry.value)
        result[i].keyLocation = entry.keyLocation ?? result[i].keyLocation
      } else {
        result.append(entry)
      }
    }
    var out = overlay
    out.content = .map(result)
    return out
  }

  /// Sets the value at a dotted path, creating maps on the way.
  mutating func set(path: ArraySlice<String>, to value: SourceValue) {
    guard let key = path.first else {
      self = value
      return
    }
    var entries = self.entries ?? []
    if let i = entries.firstIndex(where: { $0.key == key }) {
      entries[i].value.set(path: path.dropFirst(), to: value)
    } else {
      var child = SourceValue(content: .map([]), location: value.location, origin: value.origin)
      child.set(path: path.dropFirst(), to: value)
      entries.append(Entry(key: key, keyLocation: value.location, value: child))
    }
    content = .map(entries)
  }
}

/// Where a parameter's value came from; `lineage show` prints it beside the value.
public enum ValueOrigin: Sendable, Equatable, CustomStringConvertible {
  case stageFile(SourceLocation)
  case defaults(SourceLocation)
  case variable(String, SourceLocation)
  case matrix(String)
  case override(String)
  case schemaDefault

  public var description: String {
    switch self {
    case .stageFile(let l): return "stage file \(l)"
    case .defaults(let l): return "defaults \(l)"
    case .variable(let name, let l): return "vars.\(name) (used at \(l))"
    case .matrix(let key): return "matrix.\(key)"
    case .override(let text): return "--set \(text)"
    case .schemaDefault: return "op default"
    }
  }
}
