/// Turns YAML nodes into `SourceValue`s, replacing `${name}` with recipe variables and
/// `${matrix.key}` with the matrix value of the stage being expanded.
///
/// A scalar that is exactly one `${…}` takes the variable's value *and type* (`${d}` with `d: 128` is
/// the int 128, and a variable holding a map gives that map); `${…}` inside a longer string is
/// replaced by the value's text. `$${` writes a literal `${`. Variables may use other variables;
/// a cycle among them is an error.
struct Interpolator {
  private let variables: [String: YAMLNode]
  private var resolved: [String: SourceValue] = [:]
  private var resolving: [String] = []
  var matrix: [String: SourceValue] = [:]
  var diagnostics: [Diagnostic] = []
  /// False when recipe.yaml could not be read: its variables are then unknown rather than missing.
  var reportsUnknownVariables = true

  init(variables: [YAMLPair]) {
    var table: [String: YAMLNode] = [:]
    for pair in variables {
      if let name = pair.key.string { table[name] = pair.value }
    }
    self.variables = table
  }

  /// Converts a YAML tree; every node is tagged with `origin(location)`.
  mutating func value(of node: YAMLNode, origin: (SourceLocation) -> ValueOrigin) -> SourceValue {
    switch node.content {
    case .scalar(let scalar):
      let param = Interpolator.paramValue(scalar)
      if case .string(let text) = param, Interpolator.mentionsVariable(text) {
        return interpolate(text, node: node, origin: origin)
      }
      return SourceValue(content: .scalar(param), location: node.location,
                         origin: origin(node.location), raw: node.raw)
    case .sequence(let items):
      return SourceValue(content: .list(items.map { value(of: $0, origin: origin) }),
                         location: node.location, origin: origin(node.location))
    case .mapping(let pairs):
      var entries: [SourceValue.Entry] = []
      entries.reserveCapacity(pairs.count)
      for pair in pairs {
        guard let key = Interpolator.keyText(pair.key) else {
          diagnostics.append(Diagnostic("a key must be a plain word, not \(pair.key.description)",
                                        at: pair.key.location))
          continue
        }
        entries.append(.init(key: key, keyLocation: pair.key.location,
                             value: value(of: pair.value, origin: origin)))
      }
      return SourceValue(content: .map(entries), location: node.location, origin: origin(node.location))
    }
  }

  /// Whether `text` holds `${` (so also `$${`), scanned as bytes: Foundation's substring search
  /// costs a bridged string per scalar, and every scalar of a recipe is asked.
  static func mentionsVariable(_ text: String) -> Bool {
    var previous: UInt8 = 0
    for byte in text.utf8 {
      if previous == UInt8(ascii: "$") && byte == UInt8(ascii: "{") { return true }
      previous = byte
    }
    return false
  }

  static func paramValue(_ scalar: YAMLScalar) -> ParamValue {
    switch scalar {
    case .null: return .null
    case .bool(let v): return .bool(v)
    case .int(let v): return .int(v)
    case .float(let v): return .float(v)
    case .string(let v): return .string(v)
    }
  }

  /// Keys are names; a key YAML reads as a number or bool (`1:`, `on:`) keeps its written text.
  static func keyText(_ node: YAMLNode) -> String? {
    guard case .scalar(let scalar) = node.content else { return nil }
    switch scalar {
    case .string(let s): return s
    case .null: return nil
    default: return node.raw
    }
  }

  // MARK: - Interpolation

  private mutating func interpolate(_ text: String, node: YAMLNode,
                                    origin: (SourceLocation) -> ValueOrigin) -> SourceValue {
    let location = node.location
    let parts = Interpolator.split(text)
    guard let parts else {
      diagnostics.append(Diagnostic("unterminated '${' in '\(text)'; close it with '}' (or write '$${' for a literal '${')",
                                    at: location))
      // Null, like an unknown variable: the validator would only add a second error for the same text.
      return SourceValue(content: .scalar(.null), location: location, origin: origin(location))
    }
    // The whole scalar is one reference: keep the referenced value's type.
    if parts.count == 1, case .reference(let name) = parts[0] {
      guard let value = lookup(name, at: location) else {
        // Reported already; null keeps the validator from adding a second, misleading error.
        return SourceValue(content: .scalar(.null), location: location, origin: origin(location))
      }
      return value.withOrigin(originOfReference(name, at: location), at: location)
    }
    var out = ""
    for part in parts {
      switch part {
      case .literal(let s): out += s
      case .reference(let name):
        guard let value = lookup(name, at: location) else { continue }
        guard case .scalar(let scalar) = value.content else {
          diagnostics.append(Diagnostic(
            "'${\(name)}' is \(value.kindDescription) and cannot be part of a longer string", at: location))
          continue
        }
        out += value.raw ?? scalar.displayText
      }
    }
    return SourceValue(content: .scalar(.string(out)), location: location, origin: origin(location),
                       raw: out)
  }

  private func originOfReference(_ name: String, at location: SourceLocation) -> ValueOrigin {
    name.hasPrefix("matrix.") ? .matrix(String(name.dropFirst(7))) : .variable(name, location)
  }

  private mutating func lookup(_ name: String, at location: SourceLocation) -> SourceValue? {
    if name.hasPrefix("matrix.") {
      let key = String(name.dropFirst(7))
      if let value = matrix[key] { return value }
      let hint = matrix.isEmpty ? "; this stage has no 'matrix:'"
        : Suggestion.closest(to: key, among: matrix.keys).map { "; did you mean 'matrix.\($0)'?" } ?? ""
      diagnostics.append(Diagnostic("unknown matrix key '\(key)' in '${\(name)}'\(hint)", at: location))
      return nil
    }
    if let value = resolved[name] { return value }
    if name.isEmpty {
      diagnostics.append(Diagnostic("empty '${}': write '${name}' for a variable (or '$${' for a literal '${')",
                                    at: location))
      return nil
    }
    guard let node = variables[name] else {
      guard reportsUnknownVariables else { return nil }
      let hint = variables.isEmpty ? "; define it under 'vars:' in recipe.yaml"
        : Suggestion.phrase(for: name, among: variables.keys)
      diagnostics.append(Diagnostic("unknown variable '\(name)'\(hint)", at: location))
      return nil
    }
    if let start = resolving.firstIndex(of: name) {
      let cycle = (resolving[start...] + [name]).joined(separator: " → ")
      diagnostics.append(Diagnostic("variables refer to each other in a cycle: \(cycle)", at: location))
      return nil
    }
    resolving.append(name)
    let value = self.value(of: node, origin: { .variable(name, $0) })
    resolving.removeLast()
    resolved[name] = value
    return value
  }

  enum Part: Equatable {
    case literal(String)
    case reference(String)
  }

  /// Splits `a${x}b` into parts; nil when a `${` is never closed. `$${` is a literal `${`.
  static func split(_ text: String) -> [Part]? {
    var parts: [Part] = []
    var literal = ""
    var i = text.startIndex
    while i < text.endIndex {
      if text[i...].hasPrefix("$${") {
        literal += "${"
        i = text.index(i, offsetBy: 3)
      } else if text[i...].hasPrefix("${") {
        let nameStart = text.index(i, offsetBy: 2)
        guard let close = text[nameStart...].firstIndex(of: "}") else { return nil }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        literal = ""
        parts.append(.reference(text[nameStart..<close].trimmingSpaces))
        i = text.index(after: close)
      } else {
        literal.append(text[i])
        i = text.index(after: i)
      }
    }
    if !literal.isEmpty || parts.isEmpty { parts.append(.literal(literal)) }
    return parts
  }
}

extension StringProtocol {
  var trimmingSpaces: String {
    String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
  }
}
