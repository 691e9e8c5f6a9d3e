// Int8 matrix–vector kernels in C, for the one thing Swift cannot do here: use AVX2 / AVX-512
// instructions chosen at run time. The package compiles Swift for baseline x86-64 (SSE2); a function
// with a `target` attribute, called only after the CPU said it has the instructions, runs them
// without tying the binary to one CPU (../../shared/TOOLCHAIN.md). Only Tensors/Kernels/Int8Matmul.swift
// imports this module.
#ifndef LINEAGE_CKERNELS_H
#define LINEAGE_CKERNELS_H

#include <stdint.h>

/// The widest int8 path this CPU runs: 3 = AVX-512 VNNI, 2 = AVX-512 BW, 1 = AVX2, 0 = none (the
/// caller uses its portable Swift loop).
int lineage_int8_level(void);

/// y[r·n + o] = Σ_b (float)(Σ_{i ∈ block b} w[o·k + i] · x[r·k + i]) · (wScales[o·blocks + b] · xScales[r·blocks + b]),
/// for outputs o in [o0, o1) and rows r in [0, rows), blocks summed in order with float multiplies and
/// adds that are never fused: the same bits as the Swift reference, whatever the path.
///
/// Shapes: w `[n, k]` int8; x `[rows, k]` int16 holding values in −127…127; wScales `[n, k / block]`;
/// xScales `[rows, k / block]`; y `[rows, n]`. `block` divides k and is a multiple of 32; `level` is
/// what `lineage_int8_level` returned (≥ 1).
void lineage_int8_linear(const int8_t *w, const float *wScales, const int16_t *x, const float *xScales, float *y,
                         long rows, long n, long k, long block, long o0, long o1, int level);

/// Quantizes activation rows per block as the Swift reference (`QuantizedRows`) does, bit for bit:
/// scale = max|x_block| / 127, q = round-to-nearest-even(x · (1 / scale)) (0 when the scale is 0).
///
/// Shapes: x `[rows, k]`; q `[rows, k]`; scales `[rows, k / block]`. `block` divides k and is a multiple
/// of 16; `level` ≥ 2 (AVX-512).
void lineage_int8_quantize_rows(const float *x, int16_t *q, float *scales, long rows, long k, long block, int level);

/// The same products for whole groups of 16 outputs, from weights packed so that no horizontal sum is
/// needed: for group g and element pair i, 32 bytes hold w[16g + l][2i], w[16g + l][2i + 1] for l = 0…15
/// (`packed` `[n / 16, k / 2, 16, 2]`), and `packedScales` `[n / 16, k / block, 16]`. Each 32-bit lane
/// of an accumulator is one output: one `vpdpwssd` (or `vpmaddwd` + add) per pair of elements adds 16
/// outputs' products with the activation pair broadcast. Outputs [16·g0, 16·g1); `level` ≥ 2.
void lineage_int8_linear_packed(const int8_t *packed, const float *packedScales, const int16_t *x, const float *xScales,
                                float *y, long rows, long n, long k, long block, long g0, long g1, int level);

#endif
