import Foundation
import Models
import Testing

/// `lineage export` on a tiny trained lineage, through the built binary.
@Suite(.serialized) struct ExportTests {
  /// A tiny BPE model (grouped-query attention); children of it with sliding-window attention, YaRN and
  /// linear RoPE scaling; a byte-tokenizer model with tied embeddings; a reward model; a Mixture-of-Experts
  /// model.
  static let recipe = """
    stages:
      text: {op: corpus, source: text.txt}
      bpe: {op: tokenizer, from: text, vocab_size: 300}
      base:
        op: pretrain
        corpus: text
        tokenizer: bpe
        model: {d_model: 32, layers: 2, heads: 4, kv_heads: 2, context: 64}
        train: {steps: 3, batch: 2}
      sparse:
        op: sparse_attention
        from: base
        attention: {kind: sliding_window, window: 16, global_tokens: 2}
        tasks: {arithmetic: 1}
        heldout_examples: 4
        train: {steps: 1, batch: 2}
      yarn:
        op: long_context
        from: base
        corpus: text
        context: 256
        rope_scaling: {kind: yarn}
        passkey_lengths: [128]
        passkey_examples: 1
        train: {steps: 1, batch: 1}
      linear:
        op: long_context
        from: base
        corpus: text
        context: 128
        rope_scaling: {kind: linear}
        passkey_lengths: [128]
        passkey_examples: 1
        train: {steps: 1, batch: 1}
      bytes:
        op: pretrain
        corpus: text
        model: {d_model: 32, layers: 1, heads: 2, context: 128, tied: true}
        train: {steps: 1, batch: 2}
      rm:
        op: reward_model
        from: base
        policy: base
        tasks: {arithmetic: 1}
        pairs: 4
        heldout_pairs: 2
        max_new_tokens: 8
        train: {steps: 1, batch: 2}
      moe:
        op: pretrain
        corpus: text
        model: {d_model: 32, layers: 1, heads: 2, context: 32, experts: {routed: 4, shared: 1, top_k: 2}}
        train: {steps: 1, batch: 2}

    """

  static let text = (0..<120).map { "Note \($0): the cat sat on the mat, and the dog ran \($0 * 3) laps around the old mill." }
    .joined(separator: "\n")

  /// A folder with the recipe run.
  static func trained() throws -> CLITests.Folder {
    let folder = try CLITests.Folder()
    try folder.write("text.txt", text)
    try folder.write("tiny.yaml", recipe)
    let run = try CLITests().lineage(["run"], in: folder)
    #expect(run.status == 0, "\(run.stderr)")
    return folder
  }

  static func lineage(_ arguments: [String], in folder: CLITests.Folder) throws -> CLITests.Result {
    try CLITests().lineage(arguments, in: folder)
  }

  @Test func exportWritesHuggingFaceAndGGUFFilesAndRefusesWhatItMust() throws {
    let folder = try ExportTests.trained()
    let out = folder.path + "/out"
    let first = try ExportTests.lineage(["export", "base", "--to", out, "--reference-text", "the cat sat"], in: folder)
    #expect(first.status == 0, "\(first.stderr)")
    for name in ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "lineage-reference.json"] {
      #expect(FileManager.default.fileExists(atPath: out + "/" + name), "\(name) missing")
    }
    let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))) as? [String: Any])
    #expect(config["num_key_value_heads"] as? Int == 2 && config["hidden_size"] as? Int == 32)
    let weights = try SafeTensors.read(Array(try Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors"))))
    #expect(weights.tensors["model.layers.1.self_attn.k_proj.weight"]?.shape == [16, 32])
    let reference = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/lineage-reference.json"))) as? [String: Any])
    let ids = try #require(reference["token_ids"] as? [Int])
    #expect((reference["logits"] as? [[Double]])?.count == ids.count && !ids.isEmpty)

    // Existing files are kept unless --force.
    let again = try ExportTests.lineage(["export", "base", "--to", out], in: folder)
    #expect(again.status == 2 && again.stderr.contains("--force replaces them"), "\(again.stderr)")
    #expect(try ExportTests.lineage(["export", "base", "--to", out, "--force"], in: folder).status == 0)

    // GGUF, Q8_0: one file, read back by our reader.
    let gguf = try ExportTests.lineage(["export", "base", "--to", out, "--format", "gguf", "--type", "q8_0"], in: folder)
    #expect(gguf.status == 0, "\(gguf.stderr)")
    let file = try GGUFFile(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: out + "/model-q8_0.gguf"))))
    #expect(file["general.name"] == .string("base") && file["llama.attention.head_count_kv"] == .uint32(2))
    #expect(file.tensor("blk.0.ffn_up.weight")?.data.type == .q8_0 && file.tensor("output_norm.weight")?.data.type == .f32)

    // A sliding-window model exports with a warning.
    let sparse = try ExportTests.lineage(["export", "sparse", "--to", folder.path + "/sparse"], in: folder)
    #expect(sparse.status == 0 && sparse.stderr.contains("warning:") && sparse.stderr.contains("up to 18 tokens"), "\(sparse.stderr)")

    // A reward model is a sequence classifier, for Hugging Face only.
    let rm = try ExportTests.lineage(["export", "rm", "--to", folder.path + "/rm"], in: folder)
    #expect(rm.status == 0 && rm.stderr.contains("LlamaForSequenceClassification"), "\(rm.stderr)")
    let rmGGUF = try ExportTests.lineage(["export", "rm", "--to", folder.path + "/rm", "--format", "gguf"], in: folder)
    #expect(rmGGUF.status == 1 && rmGGUF.stderr.contains("reward model"), "\(rmGGUF.stderr)")

    // Refusals: Mixture of Experts, a stage that makes no model, an unknown stage, --type without gguf.
    let moe = try ExportTests.lineage(["export", "moe", "--to", folder.path + "/moe"], in: folder)
    #expect(moe.status == 1 && moe.stderr.contains("Mixture of Experts"), "\(moe.stderr)")
    let tokenizer = try ExportTests.lineage(["export", "bpe", "--to", folder.path + "/bpe"], in: folder)
    #expect(tokenizer.status == 2 && tokenizer.stderr.contains("makes no model"), "\(tokenizer.stderr)")
    let unknown = try ExportTests.lineage(["export", "bsae", "--to", folder.path + "/x"], in: folder)
    #expect(unknown.status == 2 && unknown.stderr.contains("no stage named 'bsae'") && unknown.stderr.contains("base"), "\(unknown.stderr)")
    let type = try ExportTests.lineage(["export", "base", "--to", out, "--type", "q8_0"], in: folder)
    #expect(type.status != 0 && type.stderr.contains("--type applies to --format gguf"), "\(type.stderr)")
  }

  /// Whether `python3` has what `Scripts/check_export.py` needs (it is optional: the suite passes without).
  static let pythonCanCheck: Bool = {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", "import numpy, torch, transformers, tokenizers, gguf, safetensors"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
  }()

  /// The real tools on the exports: transformers' logits within 1e-4 of ours, tokenizer.json's ids ours,
  /// the GGUF files' keys and tensors (F32 and Q8_0) as the gguf package reads them.
  @Test(.enabled(if: ExportTests.pythonCanCheck, "python3 with torch, transformers and gguf"))
  func transformersAndGGUFAgreeWithLineage() throws {
    let folder = try ExportTests.trained()
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("Scripts/check_export.py").path
    // Texts within each model's context: base and sparse have 64 tokens, the RoPE-scaled ones more, and
    // the byte-tokenizer model (tied embeddings) 128.
    for (stage, repeats) in [("base", 1), ("sparse", 1), ("yarn", 3), ("linear", 3), ("bytes", 0), ("rm", 1)] {
      let out = folder.path + "/" + stage
      let text = "<s>the cat sat on the mat, and the dog ran 12 laps.\n" + String(repeating: "Note 7: the dog ran 21 laps around the old mill. ", count: repeats)
      // Each export writes the reference file again (the same bytes): --force lets the later ones replace it.
      for arguments in stage == "rm" ? [[]] : [[], ["--format", "gguf"], ["--format", "gguf", "--type", "q8_0"]] {
        let export = try ExportTests.lineage(["export", stage, "--to", out, "--reference-text", text, "--force"] + arguments, in: folder)
        #expect(export.status == 0, "\(export.stderr)")
      }
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      process.arguments = ["python3", script, out]
      let pipe = Pipe()
      process.standardOutput = pipe
      process.standardError = pipe
      try process.run()
      let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      process.waitUntilExit()
      #expect(process.terminationStatus == 0, "\(stage):\n\(output)")
      #expect(output.contains("all checks passed") && output.contains(stage == "rm" ? "transformers score" : "transformers logits"), "\(output)")
    }
  }
}
