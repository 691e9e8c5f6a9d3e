import ArgumentParser
import ArtifactStore
import Foundation
import Pipeline

/// `lineage checkout STAGE --to DIR`: a stage's outputs as plain files, for tools outside Lineage.
struct Checkout: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "checkout", 
    abstract: "Write a stage's outputs as plain files: models as safetensors, datasets as JSONL, metrics as JSON, …")

  @OptionGroup var options: RecipeOptions

  @Argument(help: "The stage.")
  var stage: String

  @Option(name: .long, help: "The folder to write into (created if missing).")
  var to: String

  @Flag(name: .long, help: "Replace files that already exist.")
  var force = false

  /// The file extension of each kind of artifact: what its bytes already are.
  static func fileExtension(_ kind: ArtifactKind) -> String {
    switch kind {
    case .model: return "safetensors"      // with the tokenizer in its metadata (`lineage_tokenizer`)
    case .dataset: return "jsonl"
    case .tokenizer, .metrics: return "json"
    case .corpus: return "txt"
    case .report: return "md"
    }
  }

  func run() async throws {
    let (definition, _, found, store) = try options.inspect(stage)
    guard let record = found else {
      Console.error("error: \(stage) has no results for its current definition (run it with `lineage run \(stage)`)")
      throw ExitCode(ExitStatus.stageFailed)
    }
    let files = record.outputs.keys.sorted().map { name -> (name: String, path: String, ref: ArtifactRef) in
      let ref = record.outputs[name]!
      let kind = ArtifactKind(rawValue: ref.kind) ?? definition.op.schema.outputs.first { $0.name == name }?.kind ?? .report
      return (name, to + "/" + name + "." + Checkout.fileExtension(kind), ref)
    }
    let existing = files.filter { FileManager.default.fileExists(atPath: $0.path) }
    if !force && !existing.isEmpty {
      Console.error("error: " + existing.map(\.path).joined(separator: ", ") + " already exist; --force replaces them")
      throw ExitCode(ExitStatus.invalidRecipe)
    }
    try FileManager.default.createDirectory(atPath: to, withIntermediateDirectories: true)
    var rows: [[String]] = []
    for file in files {
      let bytes = try store.blob(file.ref.hash)
      guard FileManager.default.createFile(atPath: file.path, contents: Data(bytes)) else {
        Console.error("error: cannot write \(file.path)")
        throw ExitCode(ExitStatus.stageFailed)
      }
      rows.append([file.name, file.path, byteCount(bytes.count)])
    }
    Console.out(table(rows))
  }
}
