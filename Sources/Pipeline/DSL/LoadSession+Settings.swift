import Foundation

/// Reading recipe.yaml: the recipe-wide seed, variables, per-op defaults, remote, data roots and MPI settings.
extension LoadSession {
  struct Settings {
    var seed: UInt64 = 0
    var remote: String?
    /// Absolute folders outside the recipe folder that `path` parameters may name.
    var dataRoots: [String] = []
    var variables: [YAMLPair] = []
    /// op → (defaults value, where).
    var defaults: [String: YAMLNode] = [:]
    var mpi = MPISettings()
  }

  mutating func readSettings(_ root: YAMLNode) -> Settings {
    var settings = Settings()
    if root.isNull { return settings }  // `---` alone: no settings, like an empty file
    guard case .mapping(let pairs) = root.content else {
      diagnostics.append(Diagnostic("recipe.yaml holds a map (seed, vars, defaults, remote, data_roots, mpi), not \(root.description)",
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
      case "mpi":
        settings.mpi = readMPI(pair.value)
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
          "recipe.yaml holds settings (seed, vars, defaults, remote, data_roots, mpi); put 'stages:' in a stage file of its own, "
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

  /// `mpi:`: hostfile, oversubscribe, arguments, threads_per_rank, stall_timeout.
  mutating func readMPI(_ node: YAMLNode) -> MPISettings {
    var mpi = MPISettings()
    guard case .mapping(let pairs) = node.content else {
      if !node.isNull {
        diagnostics.append(Diagnostic("'mpi' must be a map (hostfile, oversubscribe, arguments, threads_per_rank, "
                                        + "stall_timeout), not \(node.description)", at: node.location))
      }
      return mpi
    }
    let keys = ["hostfile", "oversubscribe", "arguments", "threads_per_rank", "stall_timeout"]
    for pair in pairs {
      let key = pair.key.string ?? "", value = pair.value
      switch (key, value.content) {
      case ("hostfile", .scalar(.string(let path))) where !path.isEmpty:
        mpi.hostfile = path
      case ("oversubscribe", .scalar(.bool(let flag))):
        mpi.oversubscribe = flag
      case ("arguments", .sequence(let items)):
        for item in items {
          if case .scalar(let scalar) = item.content, let text = scalar.text { mpi.arguments.append(text) } else {
            diagnostics.append(Diagnostic("'mpi.arguments' lists \(item.description); each entry must be one argument",
                                          at: item.location))
          }
        }
      case ("threads_per_rank", .scalar(.int(let n))) where (1...256).contains(n):
        mpi.threadsPerRank = n
      case ("stall_timeout", .scalar(let scalar)) where (scalar.number ?? 0) > 0:
        mpi.stallTimeout = scalar.number ?? mpi.stallTimeout
      case ("hostfile", _), ("oversubscribe", _), ("arguments", _), ("threads_per_rank", _), ("stall_timeout", _):
        let wanted = ["hostfile": "a file path", "oversubscribe": "true or false", "arguments": "a list of arguments",
                      "threads_per_rank": "an int from 1 to 256", "stall_timeout": "seconds, above 0"][key]!
        diagnostics.append(Diagnostic("'mpi.\(key)' must be \(wanted), got \(value.description)", at: value.location))
      default:
        diagnostics.append(Diagnostic("unknown key '\(key)' in mpi\(Suggestion.phrase(for: key, among: keys))",
                                      at: pair.key.location))
      }
    }
    return mpi
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

private extension YAMLScalar {
  /// A scalar written as one command-line argument: a string, number or bool as written.
  var text: String? {
    switch self {
    case .string(let s): return s
    case .int(let i): return String(i)
    case .float(let x): return String(x)
    case .bool(let b): return String(b)
    case .null: return nil
    }
  }

  var number: Double? {
    switch self {
    case .int(let i): return Double(i)
    case .float(let x): return x
    default: return nil
    }
  }
}
