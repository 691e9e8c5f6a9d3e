import Foundation
import Tensors

/// A dense model as a Hugging Face model folder that `transformers` loads as `LlamaForCausalLM` (a
/// reward model: as `LlamaForSequenceClassification`, without its LM head, which that class has no
/// use for): `model.safetensors`, `config.json`, `tokenizer.json` and `tokenizer_config.json`.
///
/// The weights keep their names (ours are Llama's) and their float32 values, except that q and k
/// carry YaRN's attention temperature when the model uses YaRN (`LlamaLayout`); the safetensors
/// metadata holds only `format: pt`. `config.json` has Llama's fields, RoPE scaling in the form that
/// gives our frequencies, and, for a sparse attention pattern, `lineage_attention` (the pattern and the
/// length up to which dense attention equals it).
///
/// `tokenizer.json` is our byte-level BPE for the `tokenizers` library: the byte-level vocabulary and
/// merges (`ByteLevelVocabulary`), the special tokens as added tokens (matched before anything else, as
/// ours are), no normalizer, and a pre-tokenizer regex that states our word rule (a run of letters with
/// the one space before it, a single digit, a run of other characters, a run of white space). Where it
/// cannot be exact:
/// - "letter" and "white space" are Unicode properties (`\p{Alphabetic}`, `\p{White_Space}`), looked up
///   in the Unicode version of the regex library (Oniguruma) rather than Swift's, which differ only for
///   characters added between the two versions;
/// - ids whose bytes an earlier id already spells (`ByteLevelVocabulary.duplicates`) are not in the
///   vocabulary, so text that we encode with one of them encodes with other ids there (the exporter
///   warns with the count; the default lineage's tokenizer has none).
/// Decoding is exact for every id either way.
public struct HuggingFaceExport {
  /// The files to write, by name, in a fixed order.
  public let files: [(name: String, bytes: [UInt8])]
  /// Where the export is not exactly the model (the layout's, then the tokenizer's).
  public let warnings: [String]

  /// The export of `model`, read with `tokenizer`.
  ///
  /// - Throws: `LlamaExportError` for a model Llama cannot express.
  public init(model: TransformerLM, tokenizer: BPETokenizer) throws(LlamaExportError) {
    let layout = try LlamaLayout(model.config)
    let vocabulary = ByteLevelVocabulary(tokenizer)
    var weights = layout.weights(of: model)
    var warnings = layout.warnings
    if layout.head == .score {
      weights[.lmHead] = nil
      warnings.append("a reward model: exported as LlamaForSequenceClassification, whose output is the value head's "
                      + "score at the last token (Lineage's reward); its LM head is left out")
    }
    let tensors = Dictionary(uniqueKeysWithValues: weights.map { ($0.key.safetensorsName, $0.value) })
    files = [
      ("model.safetensors", SafeTensors.write(tensors, metadata: ["format": "pt"])),
      ("config.json", HuggingFaceExport.json(HuggingFaceExport.config(layout))),
      ("tokenizer.json", HuggingFaceExport.json(HuggingFaceExport.tokenizer(vocabulary))),
      ("tokenizer_config.json", HuggingFaceExport.json(HuggingFaceExport.tokenizerConfig(contextLength: model.config.contextLength))),
    ]
    self.warnings = warnings + vocabulary.warnings
  }

  // MARK: - config.json

  /// Llama's configuration fields for `layout`'s model.
  static func config(_ layout: LlamaLayout) -> [String: Any] {
    let c = layout.config
    var rope: [String: Any] = ["rope_type": "default", "rope_theta": layout.ropeTheta]
    var scaling: Any = NSNull()
    switch layout.ropeScaling {
    case .none: break
    case .linear(let factor):
      scaling = ["rope_type": "linear", "type": "linear", "factor": decimal(factor)]
    case .llama3(let factor, let low, let high, let original):
      scaling = ["rope_type": "llama3", "factor": decimal(factor), "low_freq_factor": decimal(low),
                 "high_freq_factor": decimal(high), "original_max_position_embeddings": original]
    }
    if let s = scaling as? [String: Any] { rope.merge(s.filter { $0.key != "type" }) { _, new in new } }   // "type": before 4.45
    var out: [String: Any] = [
      "architectures": [layout.head == .languageModel ? "LlamaForCausalLM" : "LlamaForSequenceClassification"],
      "model_type": "llama",
      "hidden_size": c.modelDim,
      "intermediate_size": c.mlpHiddenDim,
      "num_hidden_layers": c.layerCount,
      "num_attention_heads": c.headCount,
      "num_key_value_heads": c.kvHeadCount,
      "head_dim": c.headDim,
      "vocab_size": c.vocabularySize,
      "max_position_embeddings": c.contextLength,
      "rms_norm_eps": decimal(c.normEps),
      // Transformers before 5 read rope_theta and rope_scaling; 5 reads rope_parameters. Same values.
      "rope_theta": layout.ropeTheta,
      "rope_scaling": scaling,
      "rope_parameters": rope,
      "hidden_act": "silu",
      "attention_bias": false,
      "mlp_bias": false,
      "attention_dropout": 0.0,
      "initializer_range": 0.02,
      "tie_word_embeddings": c.tiedEmbeddings,
      "bos_token_id": Int(SpecialToken.bos.id),
      "eos_token_id": Int(SpecialToken.eos.id),
      "pad_token_id": Int(SpecialToken.pad.id),
      "torch_dtype": "float32",
      "use_cache": true,
    ]
    if layout.head == .score {
      out["id2label"] = ["0": "score"]
      out["label2id"] = ["score": 0]
    }
    switch c.attention {
    case .dense: break
    case .slidingWindow(let window, let globalTokens):
      out["lineage_attention"] = ["kind": "sliding_window", "window": window, "global_tokens": globalTokens,
                                  "dense_equivalent_length": layout.denseEquivalentLength]
    case .blockSparse(let block, let topBlocks):
      out["lineage_attention"] = ["kind": "block_sparse", "block": block, "top_blocks": topBlocks,
                                  "dense_equivalent_length": layout.denseEquivalentLength]
    }
    return out
  }

  /// A Float as the decimal Swift prints for it (1e-05, not 9.99999974737875e-06): the value a
  /// Python reader rounds back to the same Float.
  static func decimal(_ x: Float) -> Double { Double("\(x)") ?? Double(x) }

  // MARK: - tokenizer.json

  /// Our pre-tokenisation rule (`BPETokenizer.words`) as an Oniguruma regex: letters with the one
  /// space before them; one ASCII digit; other characters; white space up to a space that starts a
  /// word of letters; any other white space.
  static let wordPattern = #" ?\p{Alphabetic}+|[0-9]|[^\p{Alphabetic}0-9\p{White_Space}]+|\p{White_Space}+?(?= \p{Alphabetic})|\p{White_Space}+"#

  static func tokenizer(_ vocabulary: ByteLevelVocabulary) -> [String: Any] {
    var vocab: [String: Int] = [:]
    for (id, token) in vocabulary.tokens.enumerated() where vocab[token] == nil { vocab[token] = id }
    let added: [[String: Any]] = SpecialToken.allCases.map {
      ["id": Int($0.id), "content": $0.text, "single_word": false, "lstrip": false, "rstrip": false,
       "normalized": false, "special": true]
    }
    return [
      "version": "1.0",
      "truncation": NSNull(),
      "padding": NSNull(),
      "added_tokens": added,
      "normalizer": NSNull(),
      "pre_tokenizer": [
        "type": "Sequence",
        "pretokenizers": [
          ["type": "Split", "pattern": ["Regex": wordPattern], "behavior": "Isolated", "invert": false],
          ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
        ],
      ],
      "post_processor": NSNull(),
      "decoder": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
      "model": [
        "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
        "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
        "vocab": vocab, "merges": vocabulary.merges,
      ] as [String: Any],
    ]
  }

  /// The chat format `sft` and `rl` train (`Conversation` in Recipes): `<s>`, then each user message
  /// as `User: …` and a newline, each reply followed by `</s>`.
  public static let chatTemplate = "{{ '<s>' }}{% for message in messages %}{% if message['role'] == 'user' %}"
    + "{{ 'User: ' + message['content'] + '\\n' }}{% else %}{{ message['content'] + '</s>' }}{% endif %}{% endfor %}"

  static func tokenizerConfig(contextLength: Int) -> [String: Any] {
    ["tokenizer_class": "PreTrainedTokenizerFast", "bos_token": SpecialToken.bos.text, "eos_token": SpecialToken.eos.text,
     "pad_token": SpecialToken.pad.text, "add_bos_token": false, "add_eos_token": false,
     "clean_up_tokenization_spaces": false, "model_max_length": contextLength, "chat_template": chatTemplate]
  }

  static func json(_ object: [String: Any]) -> [UInt8] {
    do {
      let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
      return Array(data) + [0x0A]
    } catch {
      // Every value above is a string, a number, a Boolean, null or a collection of them.
      preconditionFailure("export JSON is not serializable: \(error)")
    }
  }
}

extension ByteLevelVocabulary {
  /// The duplicate ids, as one warning, if any.
  var warnings: [String] {
    guard let first = duplicates.first else { return [] }
    return ["\(duplicates.count) token id(s) spell the same bytes as an earlier id (e.g. \(first.id) as \(first.sameAs)); "
            + "files keyed by token text keep the earlier id, so text encoded outside Lineage may use other ids"]
  }
}
