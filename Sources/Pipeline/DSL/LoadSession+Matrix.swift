import Foundation

/// Reading a stage file's `stages:` map, and expanding `matrix:` stages into one stage per combination
/// (`name@k1=v1,k2=v2`), each with `${matrix.key}` interpolated.
extension LoadSession {
  mutating func stages(in node: YAMLNode, interpolator: inout Interpolator,
                       seen: inout [String: SourceLocation]) -> [RawStage] {
    guard case .mapping(let pairs) = node.content else {
      if case .sequence(let items) = node.content, let first = items.first?.content,
         case .mapping(let pairs) = first, let name = pairs.first?.key.string {
        diagnostics.append(Diagnostic(
          "'stages' must be a map from stage names to definitions, not a list; write '\(name):', not '- \(name):'",
          at: node.location))
      } else if !node.isNull {
        diagnostics.append(Diagnostic("'stages' must be a map from stage names to definitions, not \(node.description)",
                                      at: node.location))
      }
      return []
    }
    var out: [RawStage] = []
    for pair in pairs {
      guard case .scalar = pair.key.content else {
        diagnostics.append(Diagnostic("a stage name must be a word, not \(pair.key.description)", at: pair.key.location))
        continue
      }
      let name = Interpolator.keyText(pair.key) ?? ""
      guard RecipeLoader.isValidStageName(name) else {
        let reason = name.contains(".") ? " ('.' separates a stage from its output, as in 'v1.model')"
          : name.contains("@") ? " ('@' names the stages a matrix expands to)" : ""
        diagnostics.append(Diagnostic(
          "invalid stage name '\(name)': use letters, digits, '_' and '-'\(reason)", at: pair.key.location))
        continue
      }
      if let first = seen[name] {
        diagnostics.append(Diagnostic("duplicate stage '\(name)'", at: pair.key.location,
                                      notes: [.init("first defined here", at: first)]))
        continue
      }
      seen[name] = pair.key.location
      guard case .mapping(let fields) = pair.value.content else {
        diagnostics.append(Diagnostic(
          "stage '\(name)' must be a map with at least 'op:', not \(pair.value.description)", at: pair.value.location))
        continue
      }
      guard let matrixNode = fields.first(where: { $0.key.string == "matrix" })?.value else {
        // No matrix (most stages): the definition is the node as written, not a copy without the key.
        interpolator.matrix = [:]
        let value = interpolator.value(of: pair.value, origin: { .stageFile($0) })
        out.append(RawStage(name: name, location: pair.key.location, value: value))
        continue
      }
      let definition = YAMLNode(content: .mapping(fields.filter { $0.key.string != "matrix" }),
                                location: pair.value.location)
      for combination in expand(matrix: matrixNode, interpolator: &interpolator) {
        interpolator.matrix = combination.values
        let value = interpolator.value(of: definition, origin: { .stageFile($0) })
        let expanded = "\(name)@\(combination.label)"
        if let first = seen[expanded] {
          diagnostics.append(Diagnostic("duplicate stage '\(expanded)'", at: pair.key.location,
                                        notes: [.init("first defined here", at: first)]))
          continue
        }
        seen[expanded] = pair.key.location
        out.append(RawStage(name: expanded, location: pair.key.location, value: value, group: name))
      }
      interpolator.matrix = [:]
    }
    return out
  }

  struct Combination {
    var values: [String: SourceValue]
    var label: String
  }

  /// Every combination of a `matrix:` map of lists, the first key varying slowest, labelled
  /// `k1=v1,k2=v2` with values as written.
  mutating func expand(matrix node: YAMLNode, interpolator: inout Interpolator) -> [Combination] {
    guard case .mapping(let axes) = node.content else {
      diagnostics.append(Diagnostic("'matrix' must be a map from names to lists of values, not \(node.description)",
                                    at: node.location))
      return []
    }
    guard !axes.isEmpty else {
      diagnostics.append(Diagnostic("'matrix' is empty; give it a key with a list of values, e.g. {count: [100, 1000]}",
                                    at: node.location))
      return []
    }
    var sizes: [Int] = []
    for axis in axes {
      let key = axis.key.string ?? ""
      switch axis.value.content {
      case .sequence(let items) where !items.isEmpty:
        sizes.append(items.count)
      case .sequence:
        diagnostics.append(Diagnostic("matrix key '\(key)' lists no values", at: axis.value.location))
        return []
      default:
        let text = axis.value.raw ?? "…"
        diagnostics.append(Diagnostic(
          "matrix key '\(key)' must be a list of values, not \(axis.value.description); write [\(text)]",
          at: axis.value.location))
        return []
      }
    }
    let total = sizes.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
    guard total <= 4096 else {
      diagnostics.append(Diagnostic(
        "matrix expands to \(sizes.map(String.init).joined(separator: " × ")) = \(total) stages, more than 4096",
        at: node.location))
      return []
    }
    var combinations = [Combination(values: [:], label: "")]
    for axis in axes {
      let key = axis.key.string ?? ""
      guard case .sequence(let allItems) = axis.value.content else { return [] }
      // A value listed twice would name two stages alike: report it, keep the first.
      var items: [YAMLNode] = []
      for item in allItems {
        if let first = items.first(where: { $0.content == item.content }) {
          diagnostics.append(Diagnostic("matrix key '\(key)' lists \(item.raw ?? item.description) twice", at: item.location,
                                        notes: [.init("first listed here", at: first.location)]))
        } else {
          items.append(item)
        }
      }
      interpolator.matrix = [:]
      let values = items.map { interpolator.value(of: $0, origin: { _ in .matrix(key) }) }
      var next: [Combination] = []
      for combination in combinations {
        for value in values {
          var c = combination
          c.values[key] = value
          let text = value.raw ?? value.plainValue.displayText
          c.label += (c.label.isEmpty ? "" : ",") + "\(key)=\(text)"
          next.append(c)
        }
      }
      combinations = next
    }
    return combinations
  }
}
