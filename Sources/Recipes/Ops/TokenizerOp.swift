import Foundation
import Models
import Pipeline

/// `tokenizer`: trains a byte-level BPE tokenizer on a dataset or a text corpus.
///
/// The texts are a dataset's prompts, reasoning and answers (one text per example) or a corpus's
/// documents. The artifact is the tokenizer's serialised form (`BPETokenizer.serialized()`), which
/// training ops read with `BPETokenizer(serialized:)`.
struct TokenizerOp: TypedOperation {
  let name = "tokenizer"
  let version = 1
  let summary = "Train a byte-level BPE tokenizer on a dataset or corpus"

  struct Settings: SettingsGroup {
    var vocabularySize = 512
    var minFrequency = 2
    static let fields: [SettingField<Self>] = [
      .int("vocab_size", \.vocabularySize, range: 263...65_536, doc: "Ids in all: 256 bytes + 7 special tokens + learned merges"),
      .int("min_frequency", \.minFrequency, range: 1...1_000_000,
           doc: "Stop merging when the most frequent pair occurs less often"),
    ]
  }

  let defaults = Settings()
  let inputs = [InputSlot("from", kinds: [.dataset, .corpus], doc: "The texts to learn merges from")]
  let outputs = [OutputSpec("tokenizer", kind: .tokenizer, doc: "The tokenizer (lineage-bpe JSON)")]

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    guard let input = context.input("from") else { throw StageFailure("tokenizer needs 'from:'") }
    let texts = try TextSource.texts(in: try context.bytes(of: input), kind: input.kind)
    guard !texts.isEmpty else { throw StageFailure("'\(input.stage)' holds no text to train on") }
    context.progress(step: 0, of: 1)
    let tokenizer = BPETokenizer.train(texts: texts, vocabularySize: settings.vocabularySize,
                                       minFrequency: settings.minFrequency)
    context.progress(step: 1, of: 1)
    let bytes = texts.reduce(0) { $0 + $1.utf8.count }
    let tokens = texts.reduce(0) { $0 + tokenizer.encode($1).count }
    context.log("learned \(tokenizer.merges.count) merges from \(texts.count) texts")
    return StageOutput(artifacts: ["tokenizer": tokenizer.serialized()],
                       metrics: ["vocab_size": Double(tokenizer.vocabularySize),
                                 "bytes_per_token": Double(bytes) / Double(max(1, tokens))])
  }
}

/// Reading the texts out of dataset and corpus artifacts.
enum TextSource {
  /// A dataset (JSONL of task examples): each example's prompt, reasoning and answer as one text.
  /// A corpus: documents separated by a blank line.
  static func texts(in bytes: [UInt8], kind: ArtifactKind) throws -> [String] {
    switch kind {
    case .dataset:
      var texts: [String] = []
      for (n, line) in bytes.split(separator: UInt8(ascii: "\n")).enumerated() {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
          throw StageFailure("dataset line \(n + 1) is not a JSON object")
        }
        let parts = ["prompt", "reasoning", "answer", "text"].compactMap { object[$0] as? String }.filter { !$0.isEmpty }
        texts.append(parts.joined(separator: "\n"))
      }
      return texts
    default:
      return String(decoding: bytes, as: UTF8.self).components(separatedBy: "\n\n").filter { !$0.isEmpty }
    }
  }
}
