import Foundation

/// Checks a stage's parameters against its op's schema and turns them into `ParamValue`s.
///
/// Every problem becomes a located diagnostic (unknown key with "did you mean", wrong type, out of
/// range, missing required); validation goes on after a problem so that one pass reports them all.
struct SchemaValidator {
  /// The recipe folder, to check that `path` parameters exist.
  var recipeDirectory: String
  /// Where `path` parameters may point: the recipe folder and recipe.yaml's `data_roots:`.
  var dataRoots: DataRoots
  var diagnostics: [Diagnostic] = []
  var origins: [String: ValueOrigin] = [:]
  var pathParameters: [String] = []

  /// Validates the fields of a record (the stage's top level, or `train:`).
  ///
  /// - Parameters:
  ///   - entries: the keys the stage file gave, in order.
  ///   - specs: the record's fields.
  ///   - prefix: dotted path of the record (`""` at the top, `"train"` inside `train:`).
  ///   - owner: where to point for a missing required field (the record's key, or the stage name).
  ///   - ignoring: keys another validator handles (`op`, `from`, input slots…).
  mutating func record(_ entries: [SourceValue.Entry], specs: [ParameterSpec], prefix: String,
                       owner: SourceLocation?, ignoring: Set<String> = []) -> ParamValue {
    var result = [String: ParamValue](minimumCapacity: specs.count)
    // A few specs each: looked through, not hashed into a set for every stage.
    for entry in entries where !specs.contains(where: { $0.name == entry.key }) && !ignoring.contains(entry.key) {
      let candidates = Set(specs.map(\.name)).union(ignoring)
      let path = join(prefix, entry.key)
      var hint = Suggestion.phrase(for: entry.key, among: candidates)
      if hint.isEmpty, let group = specs.first(where: { spec in
        if case .record(let fields) = spec.type { return fields.contains { $0.name == entry.key } }
        return false
      }) {
        hint = "; it belongs under '\(group.name):' (\(join(join(prefix, group.name), entry.key)))"
      }
      diagnostics.append(Diagnostic("unknown key '\(path)'\(hint)", at: entry.keyLocation ?? entry.value.location))
    }
    for spec in specs {
      let path = join(prefix, spec.name)
      let given = entries.first { $0.key == spec.name }
      if let given, given.value.isWrittenEmpty {
        let fallback = spec.defaultValue.flatMap { $0 == .null || $0.map != nil ? nil : " (\($0.displayText))" } ?? ""
        let what = spec.required ? "give one" : "give one, or delete the key to use the default\(fallback)"
        diagnostics.append(Diagnostic("'\(path)' has no value; \(what)", at: given.value.location))
        continue
      }
      if let given, given.value.scalar != .null {
        if let value = check(given.value, spec: spec, path: path, keyLocation: given.keyLocation) {
          result[spec.name] = value
        }
        continue
      }
      if case .record(let fields) = spec.type {
        // A group nobody wrote gets its fields' defaults, unless the group is optional
        // (default `.null`, like `experts:` — omit for a dense model).
        if spec.defaultValue != .null {
          result[spec.name] = record([], specs: fields, prefix: path, owner: given?.keyLocation ?? owner)
        }
        continue
      }
      if let value = spec.defaultValue {
        result[spec.name] = value
        for leaf in value.flattened(prefix: path) { origins[leaf.path] = .schemaDefault }
      } else if spec.required {
        diagnostics.append(Diagnostic(
          "missing required key '\(path)' (\(spec.type.name): \(spec.doc))", at: owner))
      }
    }
    return .map(result)
  }

  private func join(_ prefix: String, _ key: String) -> String {
    prefix.isEmpty ? key : "\(prefix).\(key)"
  }

  /// Checks one value against its spec; nil (and a diagnostic) when it does not fit.
  mutating func check(_ value: SourceValue, spec: ParameterSpec, path: String,
                      keyLocation: SourceLocation?) -> ParamValue? {
    guard let checked = check(value, type: spec.type, path: path) else { return nil }
    if let range = spec.range, let number = checked.double, !range.contains(number) {
      diagnostics.append(Diagnostic(
        "'\(path)' must be between \(format(range.lowerBound)) and \(format(range.upperBound)), "
          + "got \(value.raw ?? checked.displayText)\(source(of: value))", at: value.location))
      return nil
    }
    return checked
  }

  static let yaml11Booleans = ["yes": "true", "no": "false", "on": "true", "off": "false", "y": "true", "n": "false"]

  /// Where a value written elsewhere came from, for a message placed where it is used.
  private func source(of value: SourceValue) -> String {
    switch value.origin {
    case .variable(let name, _): return " (from vars.\(name))"
    case .matrix(let key): return " (from matrix.\(key))"
    case .override(let text): return " (from --set \(text))"
    case .stageFile, .defaults, .schemaDefault: return ""
    }
  }

  /// A bound as people write it: `1e-7`, not Swift's `1e-07`.
  private func format(_ x: Double) -> String {
    if x.rounded() == x && abs(x) < 1e15 { return String(Int(x)) }
    return ParamValue.formatFloat(x, json: false).replacingOccurrences(of: "e-0", with: "e-")
  }

  private mutating func mismatch(_ value: SourceValue, path: String, expected: String) -> ParamValue? {
    var hint = ""
    if case .string(let text)? = value.scalar, value.raw == nil || value.raw == text,
       let unquoted = try? YAMLParser.parse(text, file: ""), case .scalar(let scalar) = unquoted.content {
      switch scalar {
      case .int, .float, .bool: hint = "; quoted values are strings: remove the quotes"
      default:
        if expected == "a list" { hint = "; write [\(text)] for a list of one" }
        if expected == "true or false", let word = SchemaValidator.yaml11Booleans[text.lowercased()] {
          hint = "; YAML 1.2 reads '\(text)' as a string: write \(word)"
        }
      }
    }
    diagnostics.append(Diagnostic("'\(path)' must be \(expected), got \(value.kindDescription)\(hint)\(source(of: value))",
                                  at: value.location))
    return nil
  }

  private mutating func check(_ value: SourceValue, type: ParamType, path: String) -> ParamValue? {
    switch type {
    case .int:
      guard let scalar = value.scalar else { return mismatch(value, path: path, expected: "an int") }
      switch scalar {
      case .int(let v):
        return record(origin: value, path: path, .int(v))
      case .float(let v) where v.rounded() == v && abs(v) <= 9.007e15:
        return record(origin: value, path: path, .int(Int(v)))
      default: return mismatch(value, path: path, expected: "an int")
      }
    case .float:
      guard let number = value.scalar?.double, value.scalar?.bool == nil else {
        return mismatch(value, path: path, expected: "a number")
      }
      guard number.isFinite else { return mismatch(value, path: path, expected: "a finite number") }
      return record(origin: value, path: path, .float(number))
    case .bool:
      guard case .bool(let v)? = value.scalar else { return mismatch(value, path: path, expected: "true or false") }
      return record(origin: value, path: path, .bool(v))
    case .string:
      guard case .string(let v)? = value.scalar else { return mismatch(value, path: path, expected: "a string") }
      return record(origin: value, path: path, .string(v))
    case .path, .pathOrBuiltin:
      guard case .string(let v)? = value.scalar, !v.isEmpty else {
        return mismatch(value, path: path, expected: "a path")
      }
      if case .pathOrBuiltin(let builtins) = type {
        if builtins.contains(v) { return record(origin: value, path: path, .string(v)) }
        if v.hasPrefix("builtin:") {
          let hint = Suggestion.phrase(for: v, among: builtins)
          diagnostics.append(Diagnostic(
            "'\(path)': no built-in source '\(v)'; built-ins are \(builtins.joined(separator: ", "))\(hint)",
            at: value.location))
          return nil
        }
      }
      let full = v.hasPrefix("/") ? v : recipeDirectory + "/" + v
      guard FileManager.default.fileExists(atPath: full) else {
        let shown = ParamValue.jsonQuoted(v).dropFirst().dropLast()   // a line break shows as \n
        let escape = shown.count != v.count
          ? "; in double quotes a backslash starts an escape ('\\n' is a line break): write paths with '/'" : ""
        diagnostics.append(Diagnostic("no file or folder '\(shown)' (paths are relative to the recipe folder)\(escape)",
                                      at: value.location))
        return nil
      }
      if let escape = dataRoots.escape(of: full) {
        diagnostics.append(Diagnostic(SchemaValidator.outsideMessage(path, written: v, escape), at: value.location))
        return nil
      }
      pathParameters.append(path)
      return record(origin: value, path: path, .string(v))
    case .choice(let words):
      guard case .string(let v)? = value.scalar else {
        return mismatch(value, path: path, expected: "one of \(words.joined(separator: ", "))")
      }
      guard words.contains(v) else {
        let hint = Suggestion.phrase(for: v, among: words)
        diagnostics.append(Diagnostic(
          "'\(path)' must be one of \(words.joined(separator: ", ")), got '\(v)'\(hint)", at: value.location))
        return nil
      }
      return record(origin: value, path: path, .string(v))
    case .list(let element):
      guard case .list(let items) = value.content else { return mismatch(value, path: path, expected: "a list") }
      // The list as a whole comes from where it is written, even when it equals the op's default.
      origins[path] = value.origin
      var out: [ParamValue] = []
      var ok = true
      for (i, item) in items.enumerated() {
        if let v = check(item, type: element, path: "\(path)[\(i)]") { out.append(v) } else { ok = false }
      }
      return ok ? .list(out) : nil
    case .map(let keys, let valueType):
      guard let entries = value.entries else { return mismatch(value, path: path, expected: "a map") }
      origins[path] = value.origin  // an empty map is one leaf: `show` looks its origin up by this path
      var out: [String: ParamValue] = [:]
      var ok = true
      for entry in entries {
        if let keys, !keys.contains(entry.key) {
          diagnostics.append(Diagnostic(
            "unknown key '\(path).\(entry.key)'\(Suggestion.phrase(for: entry.key, among: keys))"
              + " (allowed: \(keys.joined(separator: ", ")))", at: entry.keyLocation ?? entry.value.location))
          ok = false
          continue
        }
        if let v = check(entry.value, type: valueType, path: "\(path).\(entry.key)") {
          out[entry.key] = v
        } else { ok = false }
      }
      return ok ? .map(out) : nil
    case .record(let fields):
      guard let entries = value.entries else { return mismatch(value, path: path, expected: "a map") }
      let before = diagnostics.count
      let result = record(entries, specs: fields, prefix: path, owner: value.location)
      return diagnostics.count == before ? result : nil
    }
  }

  /// Why a `path` parameter may not be read, and how to allow it.
  static func outsideMessage(_ path: String, written: String, _ escape: DataRoots.Escape) -> String {
    let shown = ParamValue.jsonQuoted(written).dropFirst().dropLast()
    let (name, resolved, link): (String, String, Bool)
    switch escape {
    case .outside(let target, let throughLink): (name, resolved, link) = (String(shown), target, throughLink)
    case .linkBelow(let entry, let target): (name, resolved, link) = ("\(shown)/\(entry)", target, true)
    }
    let folder = URL(fileURLWithPath: resolved).deletingLastPathComponent().path
    return "'\(path)': '\(name)' is outside the recipe folder (\(link ? "through a symbolic link, " : "")it is \(resolved)); "
      + "a recipe reads only its own folder and the folders recipe.yaml lists under 'data_roots:' "
      + "(add '\(folder)' there to allow it)"
  }

  private mutating func record(origin value: SourceValue, path: String, _ v: ParamValue) -> ParamValue {
    origins[path] = value.origin
    return v
  }
}
