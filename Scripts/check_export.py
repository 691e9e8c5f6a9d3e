#!/usr/bin/env python3
"""Checks a `lineage export` folder with the real tools (optional: needs numpy, torch, transformers, gguf).

    lineage export STAGE --to DIR --reference-text "some text"                # Hugging Face folder
    lineage export STAGE --to DIR --format gguf --type q8_0 --reference-text "some text"
    python3 Scripts/check_export.py DIR [--tolerance 1e-4]

What it checks, for whatever the folder holds:

* Hugging Face (`config.json`, `model.safetensors`): `transformers` loads the folder as
  LlamaForCausalLM and runs the reference token ids (`lineage-reference.json`, written by
  `--reference-text`); the largest |logit difference| with Lineage's must be within the tolerance.
  A reward model loads as LlamaForSequenceClassification, and its score of the text must be
  Lineage's value-head score at the last token, within the tolerance.
  `tokenizers` loads `tokenizer.json`: the reference text must encode to Lineage's ids and decode back.
* GGUF (`*.gguf`): the `gguf` package reads every key and tensor; the llama keys must match
  config.json's values when both are there; every tensor is compared with the safetensors export
  (q and k rows permuted back from llama.cpp's RoPE pairing): F32 equal bit for bit, Q8_0 blocks
  equal byte for byte to `gguf.quants.quantize` of the float weight and their dequantized values
  equal to `gguf.quants.dequantize`'s. Then a NumPy forward pass written with llama.cpp's conventions
  (adjacent RoPE pairs, `rope_freqs`, token_embd as the output when output.weight is absent) gives
  logits compared with Lineage's: within the tolerance for F32, reported for Q8_0.

Only the first `dense_equivalent_length` tokens are compared: a sliding-window model equals dense
attention (what Llama runs) only that far. Exit status 0 when every check passes, 1 otherwise, 2 when a
package is missing.
"""
import argparse
import glob
import json
import math
import os
import sys


def load_reference(folder):
    path = os.path.join(folder, "lineage-reference.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        ref = json.load(f)
    n = min(len(ref["token_ids"]), ref["dense_equivalent_length"])
    return ref, n


class Report:
    def __init__(self):
        self.failures = []

    def check(self, ok, message):
        print(("ok    " if ok else "FAIL  ") + message)
        if not ok:
            self.failures.append(message)


def check_huggingface(folder, reference, tolerance, report):
    import numpy as np
    import torch
    import transformers
    from tokenizers import Tokenizer

    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    architecture = config["architectures"][0]   # LlamaForCausalLM, or a reward model's LlamaForSequenceClassification
    model = getattr(transformers, architecture).from_pretrained(folder, torch_dtype=torch.float32)
    model.eval()
    report.check(type(model).__name__ == architecture, f"transformers {transformers.__version__} loads a {architecture}")

    tokenizer = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    if reference is None:
        print("note  no lineage-reference.json (export with --reference-text): logits not compared")
        return config
    ref, n = reference
    ids = ref["token_ids"]
    encoded = tokenizer.encode(ref["text"]).ids
    report.check(encoded == ids, f"tokenizer.json encodes the reference text to Lineage's {len(ids)} ids")
    decoded = tokenizer.decode(ids, skip_special_tokens=False)
    report.check(decoded == ref["text"], "tokenizer.json decodes Lineage's ids to the text")

    with torch.no_grad():
        output = model(torch.tensor([ids[:n]])).logits[0].numpy()
    if architecture == "LlamaForSequenceClassification":
        # The score at the last token, Lineage's reward for the whole text.
        difference = float(abs(output[0] - ref["scores"][n - 1]))
        report.check(difference <= tolerance, f"transformers score of {n} tokens: {output[0]:.6f} vs Lineage's "
                     f"{ref['scores'][n - 1]:.6f}, |difference| {difference:.3e} (tolerance {tolerance:g})")
        return config
    expected = np.array(ref["logits"][:n], dtype=np.float32)
    difference = float(np.max(np.abs(output - expected)))
    if ref.get("quantization"):
        # Lineage's int8 path also rounds each activation row to int8; the export holds value × scale
        # in float32, so the two differ by that rounding, which is reported, not checked.
        print(f"info  transformers logits on {n} tokens: max |difference| {difference:.3e} "
              f"({ref['quantization']} stage: Lineage rounds activations to int8, the export computes in float)")
        return config
    report.check(difference <= tolerance,
                 f"transformers logits on {n} tokens: max |difference| {difference:.3e} (tolerance {tolerance:g})")
    return config


def llama_cpp_rows(heads, head_dim):
    """Row r of llama.cpp's q/k is our row order[r] (convert_hf_to_gguf.py's permute)."""
    half = head_dim // 2
    order = []
    for h in range(heads):
        for i in range(half):
            order += [h * head_dim + i, h * head_dim + half + i]
    return order


def gguf_value(field):
    import gguf
    if field.types[0] == gguf.GGUFValueType.ARRAY:
        return [field.contents(i) for i in range(len(field.data))]
    return field.contents()


def check_gguf(path, folder, reference, tolerance, report):
    import numpy as np
    import gguf
    from gguf.quants import dequantize, quantize

    reader = gguf.GGUFReader(path)
    name = os.path.basename(path)
    keys = {field.name: gguf_value(field) for field in reader.fields.values() if not field.name.startswith("GGUF.")}
    report.check(keys.get("general.architecture") == "llama", f"{name}: general.architecture is llama ({len(keys)} keys read)")
    required = ["llama.context_length", "llama.embedding_length", "llama.block_count", "llama.feed_forward_length",
                "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.freq_base",
                "llama.attention.layer_norm_rms_epsilon", "tokenizer.ggml.model", "tokenizer.ggml.tokens",
                "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"]
    missing = [k for k in required if k not in keys]
    report.check(not missing, f"{name}: llama and tokenizer keys present" + (f" (missing {missing})" if missing else ""))
    report.check(reader.alignment == 32, f"{name}: alignment {reader.alignment}")
    tensors = {}
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type)   # shape (rows, columns), as PyTorch
        tensors[t.name] = (t, np.asarray(values, dtype=np.float32).reshape([int(d) for d in reversed(t.shape)]))
    types = sorted({t.tensor_type.name for t, _ in tensors.values()})
    report.check(len(tensors) == len(reader.tensors), f"{name}: {len(tensors)} tensors read ({', '.join(types)})")

    heads, kv_heads = keys["llama.attention.head_count"], keys["llama.attention.head_count_kv"]
    d = keys["llama.embedding_length"]
    head_dim = d // heads
    layers = keys["llama.block_count"]

    config_path = os.path.join(folder, "config.json")
    safetensors_path = os.path.join(folder, "model.safetensors")
    if os.path.exists(config_path) and os.path.exists(safetensors_path):
        from safetensors.numpy import load_file
        with open(config_path) as f:
            config = json.load(f)
        pairs = [("llama.context_length", "max_position_embeddings"), ("llama.embedding_length", "hidden_size"),
                 ("llama.block_count", "num_hidden_layers"), ("llama.feed_forward_length", "intermediate_size"),
                 ("llama.attention.head_count", "num_attention_heads"), ("llama.attention.head_count_kv", "num_key_value_heads")]
        report.check(all(keys[a] == config[b] for a, b in pairs), f"{name}: sizes equal config.json's")
        report.check(math.isclose(keys["llama.rope.freq_base"], config["rope_theta"], rel_tol=1e-6),
                     f"{name}: rope freq_base {keys['llama.rope.freq_base']} = rope_theta {config['rope_theta']}")
        weights = load_file(safetensors_path)
        names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                 "output.weight": "lm_head.weight"}
        for l in range(layers):
            for ours, theirs in [("attn_norm", "input_layernorm"), ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"),
                                 ("attn_v", "self_attn.v_proj"), ("attn_output", "self_attn.o_proj"),
                                 ("ffn_norm", "post_attention_layernorm"), ("ffn_gate", "mlp.gate_proj"),
                                 ("ffn_up", "mlp.up_proj"), ("ffn_down", "mlp.down_proj")]:
                names[f"blk.{l}.{ours}.weight"] = f"model.layers.{l}.{theirs}.weight"
        exact, mismatched = 0, []
        for tname, (t, values) in tensors.items():
            if tname == "rope_freqs.weight":
                continue
            expected = weights[names[tname]]
            if ".attn_q." in tname:
                expected = expected[llama_cpp_rows(heads, head_dim)]
            elif ".attn_k." in tname:
                expected = expected[llama_cpp_rows(kv_heads, head_dim)]
            if t.tensor_type == gguf.GGMLQuantizationType.F32:
                same = values.shape == expected.shape and np.array_equal(values, expected)
            else:
                blocks = quantize(expected, t.tensor_type)
                same = np.array_equal(np.asarray(t.data).reshape(-1), blocks.reshape(-1)) \
                    and np.array_equal(values, dequantize(blocks, t.tensor_type).reshape(values.shape))
            exact += same
            if not same:
                mismatched.append(tname)
        report.check(not mismatched, f"{name}: {exact} tensors equal the safetensors export's (Q8_0 byte for byte with gguf.quants)"
                     + (f"; differ: {mismatched[:5]}" if mismatched else ""))
    else:
        print(f"note  {name}: no safetensors export beside it: tensors not compared with it")

    if reference is None:
        print(f"note  {name}: no lineage-reference.json: logits not computed")
        return
    ref, n = reference
    logits = llama_cpp_forward(keys, tensors, ref["token_ids"][:n])
    expected = np.array(ref["logits"][:n], dtype=np.float64)
    difference = float(np.max(np.abs(logits - expected)))
    quantized = any(t.tensor_type != gguf.GGMLQuantizationType.F32 for t, _ in tensors.values())
    if quantized:
        print(f"info  {name}: NumPy llama.cpp-convention forward on {n} tokens: max |logit difference| {difference:.3e} "
              "(Q8_0 weights: quantization error, not checked against the tolerance)")
    else:
        report.check(difference <= tolerance, f"{name}: NumPy llama.cpp-convention forward on {n} tokens: "
                     f"max |logit difference| {difference:.3e} (tolerance {tolerance:g})")


def llama_cpp_forward(keys, tensors, ids):
    """Logits [tokens, vocab] from GGUF tensors, computed as llama.cpp's llama graph does (float64)."""
    import numpy as np

    def w(name):
        return tensors[name][1].astype(np.float64)

    heads, kv_heads = keys["llama.attention.head_count"], keys["llama.attention.head_count_kv"]
    d = keys["llama.embedding_length"]
    head_dim = d // heads
    eps = keys["llama.attention.layer_norm_rms_epsilon"]
    base = keys["llama.rope.freq_base"]
    position_scale = 1.0
    if keys.get("llama.rope.scaling.type") == "linear":
        position_scale = 1.0 / keys["llama.rope.scaling.factor"]
    theta = base ** (-np.arange(0, head_dim, 2) / head_dim)
    if "rope_freqs.weight" in tensors:
        theta = theta / w("rope_freqs.weight")
    n = len(ids)
    angles = (np.arange(n)[:, None] * position_scale) * theta[None, :]        # [n, head_dim/2]
    cos, sin = np.cos(angles), np.sin(angles)

    def rope(x):                                                              # [n, heads, head_dim], adjacent pairs
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = a * cos[:, None, :] - b * sin[:, None, :]
        out[..., 1::2] = b * cos[:, None, :] + a * sin[:, None, :]
        return out

    def norm(x, weight):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight

    x = w("token_embd.weight")[ids]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for l in range(keys["llama.block_count"]):
        h = norm(x, w(f"blk.{l}.attn_norm.weight"))
        q = rope((h @ w(f"blk.{l}.attn_q.weight").T).reshape(n, heads, head_dim))
        k = rope((h @ w(f"blk.{l}.attn_k.weight").T).reshape(n, kv_heads, head_dim))
        v = (h @ w(f"blk.{l}.attn_v.weight").T).reshape(n, kv_heads, head_dim)
        group = heads // kv_heads
        out = np.empty((n, heads, head_dim))
        for head in range(heads):
            scores = q[:, head] @ k[:, head // group].T / math.sqrt(head_dim) + mask
            p = np.exp(scores - scores.max(axis=-1, keepdims=True))
            p /= p.sum(axis=-1, keepdims=True)
            out[:, head] = p @ v[:, head // group]
        x = x + out.reshape(n, d) @ w(f"blk.{l}.attn_output.weight").T
        h = norm(x, w(f"blk.{l}.ffn_norm.weight"))
        gate, up = h @ w(f"blk.{l}.ffn_gate.weight").T, h @ w(f"blk.{l}.ffn_up.weight").T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w(f"blk.{l}.ffn_down.weight").T
    x = norm(x, w("output_norm.weight"))
    output = w("output.weight") if "output.weight" in tensors else w("token_embd.weight")
    return x @ output.T


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    try:
        import numpy  # noqa: F401
    except ImportError:
        print("numpy is not installed", file=sys.stderr)
        return 2
    reference = load_reference(args.folder)
    report = Report()
    has_hf = os.path.exists(os.path.join(args.folder, "config.json"))
    ggufs = sorted(glob.glob(os.path.join(args.folder, "*.gguf")))
    if not has_hf and not ggufs:
        print(f"{args.folder} holds no export (config.json or *.gguf)", file=sys.stderr)
        return 1
    try:
        if has_hf:
            check_huggingface(args.folder, reference, args.tolerance, report)
        for path in ggufs:
            check_gguf(path, args.folder, reference, args.tolerance, report)
    except ImportError as error:
        print(f"missing Python package: {error.name} (pip install torch transformers gguf)", file=sys.stderr)
        return 2
    print(f"{'all checks passed' if not report.failures else str(len(report.failures)) + ' check(s) failed'}")
    return 0 if not report.failures else 1


if __name__ == "__main__":
    sys.exit(main())
