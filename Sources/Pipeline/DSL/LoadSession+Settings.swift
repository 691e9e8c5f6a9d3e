import Foundation

/// Reading recipe.yaml: the recipe-wide seed, variables, per-op defaults, remote and data roots.
extension LoadSession {
  struct Settings {
    var seed: UInt64 = 0
    var remote: String?
    /// Absolute folders outside the recipe folder that `path` parameters may name.
    var dataRoots: [String] = []
    var variables: [YAMLPair] = []
    /// op → (defaults value, where).
    var defaults: [String: YAMLNode] = [:]
  }

  mutating func readSettings(_ root: YAMLNode) -> Settings {
    var settings = Settings()
    if root.isNull { return settings }  // `---` alone: no settings, like an empty file
    guard case .mapping(let pairs) = root.content else {
      diagnostics.append(Diagnostic("recipe.yaml holds a map (seed, vars, defaults, remote, data_roots), not \(root.description)",
                                    at: root.location))
      return settings
    }
    for pair in pairs {
      let key = pair.key.string ?? ""
      switch key {
      case "seed":
        if case .scalar(.int(let v)) = pair.value.content, v >= 0 {
          settings.seed = UInt64(v)
        } else {
          diagnostics.append(Diagnostic("'seed' must be a non-negative int, got \(pair.value.description)",
                                        at: pair.value.location))
        }
      case "remote":
        if case .scalar(.string(let v)) = pair.value.content { settings.remote = v } else {
          diagnostics.append(Diagnostic("'remote' must be a URL string, got \(pair.value.description)",
                                        at: pair.value.location))
        }
      case "data_roots":
        settings.dataRoots = readDataRoots(pair.value)
      case "vars":
        if case .mapping(let vars) = pair.value.content { settings.variables = vars } else if !pair.value.isNull {
          diagnostics.append(Diagnostic("'vars' must be a map of names to values, not \(pair.value.description)",
                                        at: pair.value.location))
        }
      case "defaults":
        guard case .mapping(let ops) = pair.value.content else {
          if !pair.value.isNull {
            diagnostics.append(Diagnostic(
              "'defaults' must be a map from op names to parameters, not \(pair.value.description)", at: pair.value.location))
          }
          continue
        }
        for op in ops {
          let name = op.key.string ?? ""
          guard loader.registry[name] != nil else {
            diagnostics.append(Diagnostic(
              "unknown op '\(name)' in defaults\(Suggestion.phrase(for: name, among: loader.registry.names))",
              at: op.key.location))
            continue
          }
          guard case .mapping = op.value.content else {
            diagnostics.append(Diagnostic("defaults for '\(name)' must be a map of parameters, not \(op.value.description)",
                                          at: op.value.location))
            continue
          }
          settings.defaults[name] = op.value
        }
      case "stages":
        diagnostics.append(Diagnostic(
          "recipe.yaml holds settings (seed, vars, defaults, remote, data_roots); put 'stages:' in a stage file of its own, "
            + "e.g. stages.yaml", at: pair.key.location))
      default:
        if !key.hasPrefix("x-") {
          diagnostics.append(Diagnostic(
            "unknown key '\(key)' in recipe.yaml\(Suggestion.phrase(for: key, among: RecipeLoader.recipeKeys))",
            at: pair.key.location))
        }
      }
    }
    return settings
  }

  /// `data_roots:`: a list of absolute folders. A relative entry would depend on the folder lineage
  /// runs in, so it is an error rather than resolved against anything.
  mutating func readDataRoots(_ node: YAMLNode) -> [String] {
    guard case .sequence(let items) = node.content else {
      if !node.isNull {
        diagnostics.append(Diagnostic("'data_roots' must be a list of absolute folders, not \(node.description); "
                                        + "write [/srv/corpora]", at: node.location))
      }
      return []
    }
    var roots: [String] = []
    for item in items {
      guard case .scalar(.string(let folder)) = item.content, !folder.isEmpty else {
        diagnostics.append(Diagnostic("'data_roots' lists \(item.description); each entry must be an absolute folder",
                                      at: item.location))
        continue
      }
      guard folder.hasPrefix("/") else {
        diagnostics.append(Diagnostic(
          "'data_roots' lists '\(folder)'; each entry must be an absolute folder (a relative one would depend on "
            + "where lineage runs)", at: item.location))
        continue
      }
      roots.append(folder)
    }
    return roots
  }
}
