import Foundation

/// Checking one stage against its op's schema: the op, `doc`, `seed`, the parameters (through
/// `SchemaValidator`), the input slots, and the op's own cross-field checks.
extension LoadSession {
  mutating func validate(_ raw: RawStage, recipeSeed: UInt64, dataRoots: DataRoots) -> Stage? {
    let before = diagnostics.count
    guard let entries = raw.value.entries else { return nil }
    guard let opEntry = raw.value.entry("op") else {
      diagnostics.append(Diagnostic("stage '\(raw.name)' has no 'op:'; choose one of \(loader.registry.names.joined(separator: ", "))",
                                    at: raw.location))
      return nil
    }
    // Sorted and joined only for a message: every stage passes here.
    var opList: String { loader.registry.names.joined(separator: ", ") }
    guard case .string(let opName)? = opEntry.value.scalar else {
      let problem = opEntry.value.isWrittenEmpty ? "'op' has no value" : "'op' must be the name of an op, not \(opEntry.value.kindDescription)"
      diagnostics.append(Diagnostic("\(problem); choose one of \(opList)", at: opEntry.value.location))
      return nil
    }
    guard let op = loader.registry[opName] else {
      let hint = Suggestion.phrase(for: opName, among: loader.registry.names)
      diagnostics.append(Diagnostic(
        "unknown op '\(opName)'\(hint.isEmpty ? "; the ops are \(opList)" : hint)", at: opEntry.value.location))
      return nil
    }
    var doc: String?
    if let d = raw.value.entry("doc") {
      if case .string(let text)? = d.value.scalar { doc = text } else {
        diagnostics.append(Diagnostic("'doc' must be a string, got \(d.value.kindDescription)", at: d.value.location))
      }
    }
    var seed = recipeSeed
    if let s = raw.value.entry("seed") {
      if case .int(let v)? = s.value.scalar, v >= 0 { seed = UInt64(v) } else {
        diagnostics.append(Diagnostic("'seed' must be a non-negative int, got \(s.value.kindDescription)",
                                      at: s.value.location))
      }
    }
    var ranks: Int?
    var ranksLocation = raw.location
    if let r = raw.value.entry("ranks") {
      ranksLocation = r.value.location ?? raw.location
      if case .int(let v)? = r.value.scalar, (1...Ranks.maximum).contains(v) { ranks = v } else {
        diagnostics.append(Diagnostic("'ranks' must be an int from 1 to \(Ranks.maximum) (the MPI processes the stage runs on), got \(r.value.kindDescription)",
                                      at: r.value.location))
      }
    }
    let schema = op.schema
    var validator = SchemaValidator(recipeDirectory: directory, dataRoots: dataRoots)
    var parameters = validator.record(entries, specs: schema.parameters, prefix: "", owner: raw.location,
                                      ignoring: ignoredKeys(of: op.name, schema))
    diagnostics += validator.diagnostics

    // Input slots: references (checked against the graph later) or allowed literals.
    var inputs: [String: [StageReference]] = [:]
    var filledSlots = Set<String>()
    for slot in schema.inputs {
      if let entry = raw.value.entry(slot.name), entry.value.isWrittenEmpty {
        let literals = slot.literals.map { " (or '\($0)')" }.joined()
        diagnostics.append(Diagnostic(
          "'\(slot.name)' has no value; name a stage\(literals), or delete the key", at: entry.value.location))
        continue
      }
      guard let entry = raw.value.entry(slot.name), entry.value.scalar != .null else {
        if slot.required {
          diagnostics.append(Diagnostic(
            "stage '\(raw.name)' needs '\(slot.name):' (\(slot.kinds.map(\.rawValue).joined(separator: " or ")): \(slot.doc))",
            at: raw.location))
        }
        continue
      }
      var items: [SourceValue] = []
      if case .list(let list) = entry.value.content, slot.multiple {
        items = list
      } else if case .scalar = entry.value.content {
        items = [entry.value]
      } else {
        diagnostics.append(Diagnostic(
          "'\(slot.name)' must name \(slot.multiple ? "a stage or list stages" : "one stage"), got \(entry.value.kindDescription)",
          at: entry.value.location))
        continue
      }
      filledSlots.insert(slot.name)
      for item in items {
        guard case .string(let text)? = item.scalar else {
          diagnostics.append(Diagnostic("'\(slot.name)' must name a stage, got \(item.kindDescription)", at: item.location))
          continue
        }
        if slot.literals.contains(text) {
          if case .map(var m) = parameters { m[slot.name] = .string(text); parameters = .map(m) }
          continue
        }
        inputs[slot.name, default: []].append(StageReference(stage: text, output: "", location: item.location))
      }
    }
    // The op's own checks read a schema-valid value: after a schema error they would only echo it.
    if diagnostics.count == before {
      for problem in op.validate(parameters, filledSlots: filledSlots) {
        let place = problem.path.isEmpty ? raw.location : location(of: problem.path, in: raw.value)
        diagnostics.append(Diagnostic(problem.message, at: place ?? raw.location))
      }
      if let ranks, diagnostics.count == before, let problem = op.rankProblem(ranks: ranks, parameters: parameters) {
        diagnostics.append(Diagnostic(problem, at: ranksLocation))
      }
    }
    guard diagnostics.count == before else {
      // Its references are still checked, so that one pass reports every problem.
      brokenStages.append(BrokenStage(slots: schema.inputs, inputs: inputs))
      return nil
    }
    return Stage(name: raw.name, op: op, doc: doc, parameters: parameters, origins: validator.origins,
                 inputs: inputs, pathParameters: validator.pathParameters, seed: seed, ranks: ranks, location: raw.location,
                 matrixGroup: raw.group)
  }

  /// The place of a dotted parameter path in the stage as written (its value, else its key).
  func location(of path: String, in value: SourceValue) -> SourceLocation? {
    var current = value
    for key in path.split(separator: ".") {
      guard let next = current[String(key)] else { return current.location }
      current = next
    }
    return current.location
  }

  /// The keys of a stage of `op` that the schema validator leaves to others: the reserved keys and the
  /// op's input slots.
  mutating func ignoredKeys(of op: String, _ schema: OpSchema) -> Set<String> {
    if let known = ignoredKeysByOp[op] { return known }
    let keys = RecipeLoader.reservedKeys.union(schema.inputs.map(\.name))
    ignoredKeysByOp[op] = keys
    return keys
  }
}
