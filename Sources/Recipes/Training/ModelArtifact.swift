import Models
import Pipeline

/// The tokenizer a model reads and writes text with: bytes, or a learned BPE.
public enum TextTokenizer: Tokenizer, Equatable {
  case bytes
  case bpe(BPETokenizer)

  /// The tokenizer a stage's `tokenizer:` slot names: the literal `bytes` or a tokenizer stage's artifact.
  static func from(_ context: StageContext, slot: String = "tokenizer") throws -> TextTokenizer {
    guard let input = context.input(slot) else { return .bytes }
    return .bpe(try BPETokenizer(serialized: try context.bytes(of: input)))
  }

  public var vocabularySize: Int {
    switch self {
    case .bytes: return ByteTokenizer().vocabularySize
    case .bpe(let t): return t.vocabularySize
    }
  }

  public func encode(_ text: String) -> [Int32] {
    switch self {
    case .bytes: return ByteTokenizer().encode(text)
    case .bpe(let t): return t.encode(text)
    }
  }

  public func decode(_ ids: [Int32]) -> String {
    switch self {
    case .bytes: return ByteTokenizer().decode(ids)
    case .bpe(let t): return t.decode(ids)
    }
  }

  public func id(of special: SpecialToken) -> Int32 { special.id }

  /// How the tokenizer is kept in a model artifact's metadata.
  var metadataValue: String {
    switch self {
    case .bytes: return "bytes"
    case .bpe(let t): return String(decoding: t.serialized(), as: UTF8.self)
    }
  }

  init(metadataValue: String) throws {
    self = metadataValue == "bytes" ? .bytes : .bpe(try BPETokenizer(serialized: Array(metadataValue.utf8)))
  }
}

/// A model artifact: safetensors weights (Llama / DeepSeek names) whose metadata holds the model config
/// (`lineage_config`) and the tokenizer it was trained with (`lineage_tokenizer`), so any later stage
/// can continue, evaluate or generate from it without knowing where it came from. A quantized model
/// (`quantize`) is one too: its int8 matrices load as such and its products run in int8.
public struct ModelArtifact {
  public var model: TransformerLM
  public var tokenizer: TextTokenizer

  public init(model: TransformerLM, tokenizer: TextTokenizer) {
    self.model = model
    self.tokenizer = tokenizer
  }

  /// Reads a model artifact.
  ///
  /// - Throws: `StageFailure` naming `source` when the bytes are not a Lineage model.
  public init(bytes: [UInt8], source: String) throws {
    do {
      let (model, metadata) = try TransformerLM.read(safetensors: bytes)
      guard let tokenizer = metadata["lineage_tokenizer"] else {
        throw StageFailure("'\(source)' has no tokenizer in its metadata")
      }
      self.init(model: model, tokenizer: try TextTokenizer(metadataValue: tokenizer))
    } catch let failure as StageFailure {
      throw failure
    } catch {
      throw StageFailure("'\(source)' is not a usable model: \(error)")
    }
  }

  /// The model artifact of a stage's input slot (`from:`, `generator:`, …).
  static func input(_ slot: String, of context: StageContext) throws -> ModelArtifact {
    guard let input = context.input(slot) else { throw StageFailure("needs '\(slot):' naming a model stage") }
    return try ModelArtifact(bytes: try context.bytes(of: input), source: input.stage)
  }

  /// The artifact's bytes (a quantized model's hold its int8 matrices, `lineage_quantization` says the scheme).
  public var bytes: [UInt8] { model.safetensors(metadata: ["lineage_tokenizer": tokenizer.metadataValue]) }

  /// Fails a stage that is about to train `model` when it is quantized: int8 weights have no
  /// gradient (`Projection.apply`), so training one would stop at a precondition, not with a message.
  ///
  /// - Throws: `StageFailure` saying what to do instead.
  static func refuseTraining(_ model: TransformerLM) throws {
    guard let scheme = model.quantization else { return }
    throw StageFailure("the model is quantized (\(scheme.rawValue)) and int8 weights cannot be trained; "
                       + "train the float model it came from, then quantize the result")
  }
}
