import ArgumentParser
import ArtifactStore
import Foundation
import Models
import Pipeline
import Recipes

/// `lineage export STAGE --to DIR`: a model stage's model in the formats other tools load: a Hugging
/// Face folder (`LlamaForCausalLM`) or one GGUF file for llama.cpp.
struct Export: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "export", 
    abstract: "Write a model stage's model for other tools: a Hugging Face Llama folder (safetensors) or a GGUF file.",
    discussion: """
      safetensors writes model.safetensors, config.json, tokenizer.json and tokenizer_config.json; gguf writes \
      model-f32.gguf or model-q8_0.gguf (--type). Mixture-of-Experts models have no Llama form and are \
      refused; a reward model is written as LlamaForSequenceClassification (safetensors only); a sliding-window or block-sparse model is written as dense attention, with a warning giving the \
      length up to which the two agree. --reference-text also writes lineage-reference.json: the text's token ids \
      and Lineage's logits for them, which Scripts/check_export.py compares with transformers and gguf.
      """)

  /// The two export formats.
  enum Format: String, ExpressibleByArgument, CaseIterable {
    case safetensors, gguf
  }

  @OptionGroup var options: RecipeOptions

  @Argument(help: "The model stage.")
  var stage: String

  @Option(name: .long, help: "The folder to write into (created if missing).")
  var to: String

  @Option(name: .long, help: "safetensors (a Hugging Face Llama folder) or gguf (one file for llama.cpp).")
  var format: Format = .safetensors

  @Option(name: .long, help: ArgumentHelp("The GGUF matrices' type: f32 or q8_0 (blocks of 32 int8 values with a Float16 scale).",
                                          valueName: "f32|q8_0"))
  var type: LlamaCppExport.WeightType?

  @Option(name: .long, help: "Also write lineage-reference.json: this text's token ids and Lineage's logits for them.")
  var referenceText: String?

  @Flag(name: .long, help: "Replace files that already exist.")
  var force = false

  /// The file with Lineage's own logits (and a reward model's scores), for checks outside Lineage.
  static let referenceFile = "lineage-reference.json"

  func validate() throws {
    if format == .safetensors && type != nil {
      throw ValidationError("--type applies to --format gguf; safetensors exports are float32")
    }
    if referenceText?.isEmpty == true { throw ValidationError("--reference-text needs some text") }
  }

  func run() async throws {
    let (definition, artifact) = try options.modelArtifact(of: stage)
    let tokenizer = artifact.tokenizer.bpe
    var files: [(name: String, bytes: [UInt8])]
    var warnings: [String]
    do {
      let scheme = artifact.model.quantization
      switch format {
      case .safetensors:
        let export = try HuggingFaceExport(model: artifact.model, tokenizer: tokenizer)
        (files, warnings) = (export.files, export.warnings)
        if let scheme {
          warnings.append("\(stage) is int8 (\(scheme.rawValue)): its matrices are written as float32 (value × scale); Lineage's int8 path also rounds the activations, so logits differ slightly")
        }
      case .gguf:
        // An int8 stage's Q8_0 blocks go out as they are (a Q8_0 export by default); per-channel
        // scales have no GGUF type, so those matrices are written from their float values.
        let weightType = type ?? (scheme == .q8_0 ? .q8_0 : .f32)
        var blocks: [ParameterID: Q8_0Blocks] = [:]
        if scheme == .q8_0 && weightType == .q8_0 {
          for (id, matrix) in artifact.model.quantizedMatrices {
            blocks[id] = try Q8_0Blocks(values: matrix.values, scales: matrix.scales)
          }
        }
        let export = try LlamaCppExport(model: artifact.model, tokenizer: tokenizer, name: definition.name, weightType: weightType,
                                        quantized: blocks)
        (files, warnings) = ([("model-\(weightType.rawValue).gguf", export.file.bytes)], export.warnings)
        if let scheme, blocks.isEmpty {
          warnings.append(weightType == .q8_0
            ? "\(stage) is \(scheme.rawValue) int8: its matrices were quantized again, as Q8_0, from their float values (value × scale)"
            : "\(stage) is int8 (\(scheme.rawValue)): its matrices are written as float32 (value × scale)")
        }
      }
    } catch {
      Console.error("error: cannot export \(stage): \(error)")
      throw ExitCode.failure
    }
    if let referenceText {
      files.append((Export.referenceFile, try reference(referenceText, artifact)))
    }
    let paths = files.map { to + "/" + $0.name }
    let existing = paths.filter { FileManager.default.fileExists(atPath: $0) }
    if !force && !existing.isEmpty {
      Console.error("error: " + existing.joined(separator: ", ") + " already exist\(existing.count == 1 ? "s" : ""); --force replaces them")
      throw ExitCode(ExitStatus.invalidRecipe)
    }
    try FileManager.default.createDirectory(atPath: to, withIntermediateDirectories: true)
    var rows: [[String]] = []
    for (file, path) in zip(files, paths) {
      guard FileManager.default.createFile(atPath: path, contents: Data(file.bytes)) else {
        Console.error("error: cannot write \(path)")
        throw ExitCode(ExitStatus.stageFailed)
      }
      rows.append([path, byteCount(file.bytes.count)])
    }
    for warning in warnings { Console.error("warning: \(warning)") }
    Console.out(table(rows))
  }

  /// The reference file: the text, its token ids and the model's logits at every position
  /// (`[tokens][vocabulary]`), each a Float written exactly.
  private func reference(_ text: String, _ artifact: ModelArtifact) throws -> [UInt8] {
    let ids = artifact.tokenizer.encode(text)
    let context = artifact.model.config.contextLength
    guard ids.count <= context else {
      Console.error("error: the reference text is \(ids.count) tokens, more than the model's context of \(context)")
      throw ExitCode(ExitStatus.invalidRecipe)
    }
    let vocabulary = artifact.model.config.vocabularySize
    let logits = artifact.model.logits([ids]).value.scalars
    let rows = (0..<ids.count).map { t in logits[(t * vocabulary)..<((t + 1) * vocabulary)].map { Double($0) } }
    var object: [String: Any] = ["text": text, "token_ids": ids.map { Int($0) }, "logits": rows,
                                 "dense_equivalent_length": artifact.model.config.attention.maximumKeys(length: context)]
    if let scheme = artifact.model.quantization { object["quantization"] = scheme.rawValue }
    if artifact.model.config.valueHead != nil {
      // A reward model's score at each position: the last one is its judgement of the whole text.
      object["scores"] = artifact.model.scores([ids]).value.scalars.map { Double($0) }
    }
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return Array(data) + [0x0A]
  }
}

extension RecipeOptions {
  /// A model stage's definition and its cached model artifact. Exits with status 2 for an unknown
  /// stage or one that makes no model, 1 when the stage has no result for its current definition.
  func modelArtifact(of name: String) throws -> (definition: Stage, artifact: ModelArtifact) {
    let (definition, _, found, store) = try inspect(name)
    let models = definition.op.schema.outputs.filter { $0.kind == .model }
    guard let output = models.first else {
      Console.error("error: \(name) (op \(definition.op.name)) makes no model; its outputs are "
                    + definition.op.schema.outputs.map { "\($0.name) (\($0.kind.rawValue))" }.joined(separator: ", "))
      throw ExitCode(ExitStatus.invalidRecipe)
    }
    guard let record = found, let ref = record.outputs[output.name] else {
      Console.error("error: \(name) has no results for its current definition (run it with `lineage run \(name)`)")
      throw ExitCode(ExitStatus.stageFailed)
    }
    do {
      return (definition, try ModelArtifact(bytes: try store.blob(ref.hash), source: name))
    } catch {
      Console.error("error: \(error)")
      throw ExitCode(ExitStatus.stageFailed)
    }
  }
}

extension TextTokenizer {
  /// The tokenizer as a BPE: the byte tokenizer is the BPE with no merges (same ids, same words).
  var bpe: BPETokenizer {
    switch self {
    case .bytes: return BPETokenizer(merges: [])
    case .bpe(let t): return t
    }
  }
}

extension LlamaCppExport.WeightType: ExpressibleByArgument {}
