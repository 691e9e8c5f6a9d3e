/// The stage graph of a load: references resolved to outputs, artifact kinds checked, cycles found.
extension LoadSession {
  /// Resolves references to outputs, checks artifact kinds and finds cycles.
  mutating func buildGraph(_ stages: [Stage], allNames: Set<String>, groups: [String: [String]]) -> (StageGraph, [Stage])? {
    // Stages by position, not copies of them by name: a stage is a large value, and a sweep has
    // thousands.
    var index: [String: Int] = [:]
    index.reserveCapacity(stages.count)
    for i in stages.indices { index[stages[i].name] = i }
    var resolved = stages
    for i in resolved.indices where !resolved[i].inputs.isEmpty {
      let schema = resolved[i].op.schema
      for (slotName, refs) in resolved[i].inputs {
        let slot = schema.input(slotName)!
        resolved[i].inputs[slotName] = refs.compactMap { ref in
          resolve(ref.stage, at: ref.location, slot: slot, stages: stages, index: index, allNames: allNames, groups: groups)
        }
      }
    }
    for broken in brokenStages {
      for (slotName, refs) in broken.inputs {
        guard let slot = broken.slots.first(where: { $0.name == slotName }) else { continue }
        for ref in refs {
          _ = resolve(ref.stage, at: ref.location, slot: slot, stages: stages, index: index, allNames: allNames, groups: groups)
        }
      }
    }
    let names = resolved.indices.map { resolved[$0].name }
    let dependencies = resolved.indices.map { resolved[$0].dependencies.compactMap { index[$0] } }
    let graph = StageGraph(names: names, dependencies: dependencies)
    if let cycle = graph.findCycle() {
      // cycle[i] feeds cycle[i + 1]: point at each reference that reads the stage before it.
      func reference(reading source: String, in reader: String) -> SourceLocation? {
        let stage = resolved[index[reader]!]
        return stage.inputs.keys.sorted().flatMap { stage.inputs[$0]! }.first { $0.stage == source }?.location
          ?? stage.location
      }
      let first = cycle[0]
      if cycle.count == 2 {
        diagnostics.append(Diagnostic("stage '\(first)' reads its own output", at: reference(reading: first, in: first)))
        return nil
      }
      let notes = (1..<cycle.count - 1).map { i in
        Diagnostic.Note("'\(cycle[i])' reads '\(cycle[i - 1])' here", at: reference(reading: cycle[i - 1], in: cycle[i]))
      }
      diagnostics.append(Diagnostic(
        "stages depend on each other in a cycle: \(cycle.joined(separator: " → "))",
        at: reference(reading: cycle[cycle.count - 2], in: first), notes: notes))
      return nil
    }
    return (graph, resolved)
  }

  mutating func resolve(_ text: String, at location: SourceLocation?, slot: InputSlot, stages: [Stage],
                        index: [String: Int], allNames: Set<String>, groups: [String: [String]]) -> StageReference? {
    var stageName = text
    var outputName: String?
    if index[text] == nil && !allNames.contains(text), let dot = text.lastIndex(of: ".") {
      stageName = String(text[..<dot])
      outputName = String(text[text.index(after: dot)...])
    }
    guard let position = index[stageName] else {
      if allNames.contains(stageName) { return nil }  // that stage has its own errors, already reported
      if let members = groups[stageName] {
        diagnostics.append(Diagnostic(
          "'\(stageName)' is a matrix of \(members.count) stages; name one, e.g. '\(members[0])'", at: location))
        return nil
      }
      let hint = Suggestion.phrase(for: stageName, among: allNames.union(slot.literals))
      let literals = slot.literals.isEmpty || !hint.isEmpty ? ""
        : "; name a stage or \(slot.literals.map { "'\($0)'" }.joined(separator: ", "))"
      diagnostics.append(Diagnostic("unknown stage '\(stageName)' in '\(slot.name)'\(hint)\(literals)", at: location))
      return nil
    }
    let op = stages[position].op
    let outputs = op.schema.outputs
    guard let output = outputName.map({ name in outputs.first { $0.name == name } }) ?? outputs.first else {
      let name = outputName ?? ""
      diagnostics.append(Diagnostic(
        "stage '\(stageName)' (op \(op.name)) has no output '\(name)'"
          + "\(Suggestion.phrase(for: name, among: outputs.map(\.name))); it has \(outputs.map(\.name).joined(separator: ", "))",
        at: location))
      return nil
    }
    guard slot.kinds.contains(output.kind) else {
      let fitting = outputs.first { slot.kinds.contains($0.kind) }.map { "; did you mean '\(stageName).\($0.name)'?" } ?? ""
      diagnostics.append(Diagnostic(
        "'\(slot.name)' takes \(slot.kinds.map(\.rawValue).joined(separator: " or ")), but '\(stageName).\(output.name)' is a \(output.kind.rawValue) output\(fitting)",
        at: location))
      return nil
    }
    return StageReference(stage: stageName, output: output.name, location: location)
  }
}
