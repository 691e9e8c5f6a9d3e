import ArgumentParser
import Pipeline
import Recipes

/// `lineage ops [NAME]`: the ops a stage can name, and their schemas.
struct Ops: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "ops", abstract: "List the ops, or print one op's parameter schema.")

  @Argument(help: "An op to describe.")
  var name: String?

  @Flag(name: .long, help: "Print JSON.")
  var json = false

  func run() async throws {
    let registry = BuiltinOperations.registry
    guard let name else {
      if json {
        printJSON(registry.all.map { ["name": $0.name, "version": $0.version, "summary": $0.summary] as [String: Any] })
      } else {
        Console.out(table(registry.all.map { [$0.name, "v\($0.version)", $0.summary] }, header: ["op", "version", "summary"]))
      }
      return
    }
    guard let op = registry[name] else {
      Console.error("error: unknown op '\(name)'\(Suggestion.phrase(for: name, among: registry.names))")
      throw ExitCode(ExitStatus.invalidRecipe)
    }
    let rows = Ops.rows(op.schema.parameters, prefix: "")
    if json {
      printJSON([
        "name": op.name, "version": op.version, "summary": op.summary,
        "parameters": rows.map { ["name": $0[0], "type": $0[1], "default": $0[2], "range": $0[3], "doc": $0[4]] },
        "inputs": op.schema.inputs.map { ["name": $0.name, "kinds": $0.kinds.map(\.rawValue), "required": $0.required,
                                          "multiple": $0.multiple, "literals": $0.literals, "doc": $0.doc] as [String: Any] },
        "outputs": op.schema.outputs.map { ["name": $0.name, "kind": $0.kind.rawValue, "doc": $0.doc] },
      ] as [String: Any])
      return
    }
    var text = "\(op.name) (version \(op.version)): \(op.summary)\n"
    if !op.schema.inputs.isEmpty {
      text += "\ninputs:\n" + table(op.schema.inputs.map {
        ["  " + $0.name, ($0.multiple ? "list of " : "") + $0.kinds.map(\.rawValue).joined(separator: "|")
          + ($0.literals.isEmpty ? "" : " or " + $0.literals.joined(separator: "|")),
         $0.required ? "required" : "optional", $0.doc]
      }) + "\n"
    }
    text += "\nparameters:\n" + table(rows.map { ["  " + $0[0]] + $0.dropFirst() },
                                      header: ["  name", "type", "default", "range", "doc"]) + "\n"
    text += "\noutputs:\n" + table(op.schema.outputs.map { ["  " + $0.name, $0.kind.rawValue, $0.doc] })
    Console.out(text)
  }

  /// One row per parameter, records flattened to dotted names.
  static func rows(_ specs: [ParameterSpec], prefix: String) -> [[String]] {
    specs.flatMap { spec -> [[String]] in
      let name = prefix.isEmpty ? spec.name : "\(prefix).\(spec.name)"
      if case .record(let fields) = spec.type {
        return [[name, "map", spec.defaultValue == .null ? "(absent)" : "", "", spec.doc]] + rows(fields, prefix: name)
      }
      let def = spec.defaultValue.map { $0.displayText } ?? (spec.required ? "required" : "")
      let range = spec.range.map { "\(Console.number($0.lowerBound))…\(Console.number($0.upperBound))" } ?? ""
      return [[name, spec.type.name, def, range, spec.doc]]
    }
  }
}
