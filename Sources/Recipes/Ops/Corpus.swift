import Foundation
import Pipeline

/// `corpus`: the text a model is pretrained on — the built-in library, or the user's files.
///
/// `source: builtin:library` generates English and Spanish books and web pages about a seeded world
/// (its training documents only: held-out documents are kept for perplexity). Any other source is a
/// path in the recipe folder: a text file (documents separated by blank lines), a JSONL file (the
/// `text` field of each line) or a folder of them (files in name order). The files' contents are part of
/// the stage's key, so editing one reruns this stage and what reads it; touching one does not.
struct CorpusOp: TypedOperation {
  let name = "corpus"
  let version = 1
  let summary = "A text corpus: the built-in library, or text/JSONL files"

  struct Settings: SettingsGroup {
    var source = BuiltinCorpus.libraryName
    var documents = BuiltinCorpus.defaultDocuments
    var world = Int(BuiltinCorpus.defaultWorld)
    static let fields: [SettingField<Self>] = [
      .path("source", \.source, builtins: [BuiltinCorpus.libraryName],
            doc: "builtin:library, or a .txt/.md/.jsonl file or folder in the recipe folder"),
      .int("documents", \.documents, range: 1...1_000_000, doc: "builtin:library: training documents to generate"),
      .int("world", \.world, range: 0...1_000_000, doc: "builtin:library: the seeded world the documents describe"),
    ]
  }

  let defaults = Settings()
  let inputs: [InputSlot] = []
  let outputs = [OutputSpec("corpus", kind: .corpus, doc: "Documents separated by blank lines")]

  func run(_ context: StageContext, settings: Settings) throws -> StageOutput {
    let source = settings.source
    let documents: [String]
    if source == BuiltinCorpus.libraryName {
      documents = BuiltinCorpus.library(documents: settings.documents, world: UInt64(settings.world),
                                        split: .train, seed: context.seed)
    } else {
      documents = try UserText.documents(at: context.resolvedPath(source), named: source)
    }
    guard !documents.isEmpty else { throw StageFailure("'\(source)' holds no text") }
    let bytes = CorpusText.bytes(of: documents)
    context.log("\(documents.count) documents, \(bytes.count) bytes")
    return StageOutput(artifacts: ["corpus": bytes],
                       metrics: ["documents": Double(documents.count), "bytes": Double(bytes.count)])
  }
}

/// Reading the user's text files.
enum UserText {
  static let extensions = ["txt", "md", "jsonl"]

  /// The documents of a file or of every text file under a folder (sorted by relative path).
  static func documents(at path: String, named name: String) throws -> [String] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw StageFailure("no file or folder '\(name)'")
    }
    guard isDirectory.boolValue else { return try fileDocuments(path, named: name) }
    guard let all = FileManager.default.subpaths(atPath: path) else { throw StageFailure("cannot list '\(name)'") }
    let files = all.filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
    guard !files.isEmpty else { throw StageFailure("'\(name)' has no .txt, .md or .jsonl files") }
    return try files.flatMap { try fileDocuments(path + "/" + $0, named: name + "/" + $0) }
  }

  private static func fileDocuments(_ path: String, named name: String) throws -> [String] {
    guard let data = FileManager.default.contents(atPath: path) else { throw StageFailure("cannot read '\(name)'") }
    guard let text = String(data: data, encoding: .utf8) else { throw StageFailure("'\(name)' is not UTF-8 text") }
    let normalized = text.replacingOccurrences(of: "\r\n", with: "\n")
    if path.lowercased().hasSuffix(".jsonl") {
      var documents: [String] = []
      for (n, line) in normalized.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
      where !line.trimmingCharacters(in: .whitespaces).isEmpty {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let text = object["text"] as? String else {
          throw StageFailure("\(name):\(n + 1): expected a JSON object with a \"text\" string")
        }
        documents += paragraphs(text)
      }
      return documents
    }
    return paragraphs(normalized)
  }

  /// Blank-line-separated documents, trimmed; a document never holds a blank line.
  static func paragraphs(_ text: String) -> [String] {
    text.components(separatedBy: "\n\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
  }
}
