import ArgumentParser
import ArtifactStore
import Foundation
import Pipeline

/// `lineage show STAGE`: everything about one stage.
struct Show: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "show", 
    abstract: "Show a stage: resolved parameters and where each came from, inputs, outputs, metrics.")

  @OptionGroup var options: RecipeOptions

  @Argument(help: "The stage.")
  var stage: String

  @Flag(name: .long, help: "Print JSON.")
  var json = false

  @Option(name: .long, help: "Write the bytes of this output (e.g. a dataset's JSONL, a metrics artifact's JSON) to standard output instead.")
  var output: String?

  func run() async throws {
    let (definition, status, record, store) = try options.inspect(stage)
    let leaves = definition.parameters.flattened()

    if let output {
      guard let record else {
        Console.error("error: \(stage) has no results yet (run it with `lineage run \(stage)`)")
        throw ExitCode(ExitStatus.stageFailed)
      }
      guard let ref = record.outputs[output] else {
        Console.error("error: \(stage) has no output '\(output)'; it has: " + record.outputs.keys.sorted().joined(separator: ", "))
        throw ExitCode(ExitStatus.invalidRecipe)
      }
      FileHandle.standardOutput.write(Data(try store.blob(ref.hash)))
      return
    }

    if json {
      var out: [String: Any] = [
        "stage": definition.name, "op": definition.op.name, "op_version": definition.op.version,
        "seed": definition.seed, "location": "\(definition.location)",
        "parameters": leaves.map { ["path": $0.path, "value": $0.value.displayText,
                                    "from": (definition.origins[$0.path] ?? .schemaDefault).description] },
        "inputs": definition.inputs.mapValues { $0.map(\.description) },
        "state": status?.state.rawValue ?? "stale",
        "reasons": status?.reasons.map(\.description) ?? [],
      ]
      if let doc = definition.doc { out["doc"] = doc }
      if let key = status?.key { out["key"] = key.hex }
      if let record {
        out["outputs"] = record.outputs.mapValues { ["hash": $0.hash.hex, "size": $0.size, "kind": $0.kind] }
        out["metrics"] = record.metrics
        out["duration_seconds"] = record.durationSeconds
      }
      printJSON(out)
      return
    }
    var lines = ["stage \(definition.name)  (op \(definition.op.name) v\(definition.op.version), defined at \(definition.location))"]
    if let doc = definition.doc { lines.append("  \(doc)") }
    lines.append("seed: \(definition.seed)")
    if let key = status?.key { lines.append("key: \(key.hex)") }
    lines.append("state: " + (status.map { $0.state == .stale ? "stale: " + $0.reasons.map(\.description).joined(separator: "; ") : $0.state.rawValue } ?? "stale"))
    lines.append("\nparameters:")
    lines.append(table(leaves.map { ["  " + $0.path, $0.value.displayText,
                                     (definition.origins[$0.path] ?? .schemaDefault).description] }))
    if !definition.inputs.isEmpty {
      lines.append("\ninputs:")
      for slot in definition.inputs.keys.sorted() {
        lines.append("  \(slot): " + definition.inputs[slot]!.map(\.description).joined(separator: ", "))
      }
    }
    if let record {
      lines.append("\noutputs:")
      lines.append(table(record.outputs.keys.sorted().map { name in
        let o = record.outputs[name]!
        return ["  " + name, o.kind, o.hash.hex, byteCount(o.size)]
      }))
      if !record.metrics.isEmpty {
        lines.append("\nmetrics:")
        lines.append(table(record.metrics.keys.sorted().map { ["  " + $0, Console.number(record.metrics[$0]!)] }))
      }
      if let ref = record.outputs["metrics"], record.metrics["moe_tokens_dropped"] != nil {
        // An MoE stage's routing per layer: the headline metrics above hold only its summary.
        do {
          if let routing = try StageMetrics(json: try store.blob(ref.hash)).routing {
            lines.append("\nmixture of experts: " + routing.summary)
            lines.append(table(([ExpertRouting.header] + routing.rows).map { ["  " + $0[0]] + $0.dropFirst() }))
          }
        } catch {
          lines.append("\nmixture of experts: its metrics artifact cannot be read (\(error))")
        }
      }
      lines.append("\nlast run took \(Console.duration(record.durationSeconds))")
    } else {
      lines.append("\noutputs: none yet (run it with `lineage run \(definition.name)`)")
    }
    Console.out(lines.joined(separator: "\n"))
  }
}

/// `1.2 KiB`, `3.4 MiB`.
func byteCount(_ n: Int) -> String {
  let units = ["B", "KiB", "MiB", "GiB", "TiB"]
  var value = Double(n)
  var unit = 0
  while value >= 1024 && unit < units.count - 1 {
    value /= 1024
    unit += 1
  }
  return unit == 0 ? "\(n) B" : String(format: "%.1f", value) + " " + units[unit]
}
