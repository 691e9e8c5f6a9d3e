import Foundation
@testable import Models
@testable import Tensors
import Testing

/// Int8 weights: the schemes' rounding, GGUF's Q8_0 layout, the int8 product against the float product
/// of the dequantized weights, and quantized models through safetensors.
@Suite struct QuantizationTests {
  static func matrix(_ rows: Int, _ columns: Int, seed: UInt64, scale: Float = 0.05) -> Tensor {
    var random = RandomStream(seed: seed, purpose: .evaluation)
    return Tensor(shape: [rows, columns], scalars: (0..<(rows * columns)).map { _ in random.normal() * scale })
  }

  // MARK: - Rounding

  @Test(arguments: QuantizedMatrix.Scheme.allCases)
  func everyWeightIsWithinHalfAScaleOfItsDequantizedValue(_ scheme: QuantizedMatrix.Scheme) throws {
    let w = Self.matrix(24, 96, seed: 1)
    let q = try QuantizedMatrix(quantizing: w, scheme: scheme)
    let back = q.dequantized()
    #expect(back.shape == [24, 96])
    for i in 0..<w.count {
      let d = q.scales[i / q.blockSize]
      #expect(abs(w.scalars[i] - back.scalars[i]) <= d / 2 * (1 + 1e-6), "element \(i): \(w.scalars[i]) → \(back.scalars[i]), d \(d)")
      #expect(abs(Int(q.values[i])) <= 127)
    }
  }

  @Test func perChannelKeepsOneScalePerRowTheRowsLargestMagnitudeOver127() throws {
    let w = Self.matrix(7, 40, seed: 2)  // 40: per-channel takes any row length
    let q = try QuantizedMatrix(quantizing: w, scheme: .perChannel)
    #expect(q.scaleShape == [7] && q.scales.count == 7)
    for r in 0..<7 {
      let row = w.scalars[(r * 40)..<((r + 1) * 40)]
      let amax = row.map(abs).max()!
      #expect(q.scales[r] == amax / 127)
      // The largest element lands on ±127.
      let at = row.firstIndex { abs($0) == amax }!
      #expect(abs(Int(q.values[at])) == 127)
    }
  }

  /// GGUF's Q8_0: blocks of 32 along a row, d = max|block| / 127 as Float16, q = round(x / d) with that d.
  @Test func q8_0BlocksFollowGGUFsRule() throws {
    let w = Self.matrix(5, 128, seed: 3)
    let q = try QuantizedMatrix(quantizing: w, scheme: .q8_0)
    #expect(q.scaleShape == [5, 4] && q.scales.count == 20 && q.values.count == 640)
    for r in 0..<5 {
      for b in 0..<4 {
        let start = r * 128 + b * 32
        let block = Array(w.scalars[start..<(start + 32)])
        let d = Float(Float16(block.map(abs).max()! / 127))
        #expect(q.scales[r * 4 + b] == d, "row \(r) block \(b)")
        #expect(Float(Float16(q.scales[r * 4 + b])) == q.scales[r * 4 + b], "exactly a Float16")
        for j in 0..<32 {
          let expected = Int8(max(-127, min(127, (block[j] / d).rounded(.toNearestOrAwayFromZero))))
          #expect(q.values[start + j] == expected, "row \(r) block \(b) element \(j)")
        }
      }
    }
  }

  @Test func q8_0NeedsRowsOfWholeBlocks() {
    #expect(throws: QuantizationError.columnsNotMultipleOfBlock(columns: 40, block: 32)) {
      try QuantizedMatrix(quantizing: Self.matrix(2, 40, seed: 4), scheme: .q8_0)
    }
  }

  @Test(arguments: QuantizedMatrix.Scheme.allCases)
  func zeroRowsAndBlocksHaveScaleZeroAndValuesZero(_ scheme: QuantizedMatrix.Scheme) throws {
    var w = Self.matrix(3, 64, seed: 5)
    w.scalars.replaceSubrange(64..<128, with: repeatElement(0, count: 64))   // row 1: zeros
    w.scalars.replaceSubrange(160..<192, with: repeatElement(0, count: 32))  // row 2, second block: zeros
    let q = try QuantizedMatrix(quantizing: w, scheme: scheme)
    #expect(q.values[64..<128].allSatisfy { $0 == 0 })
    #expect(q.values[160..<192].allSatisfy { $0 == 0 })
    if scheme == .perChannel {
      #expect(q.scales[1] == 0 && q.scales[0] > 0 && q.scales[2] > 0)
    } else {
      #expect(q.scales[2] == 0 && q.scales[3] == 0 && q.scales[5] == 0 && q.scales[4] > 0)
    }
    #expect(q.dequantized().scalars[64..<128].allSatisfy { $0 == 0 })
    // And the product of a zero row is exactly 0.
    let y = q.apply(Self.matrix(2, 64, seed: 6))
    #expect(y[0, 1] == 0 && y[1, 1] == 0)
  }

  @Test func storedValuesAreValidated() throws {
    #expect(throws: QuantizationError.valueOutOfRange) {
      try QuantizedMatrix(scheme: .perChannel, shape: [1, 2], values: [-128, 1], scales: [0.1])
    }
    #expect(throws: QuantizationError.scaleNotFloat16(0.1)) {
      try QuantizedMatrix(scheme: .q8_0, shape: [1, 32], values: Array(repeating: 1, count: 32), scales: [0.1])
    }
    #expect(throws: QuantizationError.countMismatch(shape: [2, 32], values: 64, scales: 1)) {
      try QuantizedMatrix(scheme: .perChannel, shape: [2, 32], values: Array(repeating: 1, count: 64), scales: [0.1])
    }
    let q = try QuantizedMatrix(quantizing: Self.matrix(4, 64, seed: 7), scheme: .q8_0)
    #expect(try QuantizedMatrix(scheme: .q8_0, shape: q.shape, values: q.values, scales: q.scales) == q)
  }

  // MARK: - The int8 product

  /// The int8 product is within the activations' rounding of the float product of the dequantized
  /// weights: per output, Σ_blocks sw · (sx / 2) · Σ|qw| (|x − sx·qx| ≤ sx/2 per element), plus float
  /// rounding. Checked at batch 1 (decoding), 3 and 16 (prefill, a batch of sequences).
  @Test(arguments: [(QuantizedMatrix.Scheme.perChannel, 1), (.perChannel, 16), (.q8_0, 1), (.q8_0, 3), (.q8_0, 16)])
  func theInt8ProductIsTheFloatProductOfTheDequantizedWeightsWithinTheActivationRounding(
    _ scheme: QuantizedMatrix.Scheme, _ rows: Int) throws {
    let (n, k) = (96, 256)
    let q = try QuantizedMatrix(quantizing: Self.matrix(n, k, seed: 8), scheme: scheme)
    let x = Self.matrix(rows, k, seed: 9, scale: 1)
    let y = q.apply(x)
    let reference = Tensor.matmul(x, q.dequantized(), transposeB: true)
    let block = q.blockSize, blocks = k / block
    var worst: Float = 0
    for r in 0..<rows {
      for o in 0..<n {
        var bound: Float = 0
        for b in 0..<blocks {
          let xs = x.scalars[(r * k + b * block)..<(r * k + (b + 1) * block)].map(abs).max()! / 127
          let sumQ = q.values[(o * k + b * block)..<(o * k + (b + 1) * block)].reduce(0) { $0 + abs(Float($1)) }
          bound += q.scales[o * blocks + b] * xs / 2 * sumQ
        }
        bound = bound * 1.001 + 1e-5
        let error = abs(y[r, o] - reference[r, o])
        worst = max(worst, error / bound)
        #expect(error <= bound, "row \(r) output \(o): \(y[r, o]) vs \(reference[r, o]), bound \(bound)")
      }
    }
    #expect(worst > 0.005, "the bound is not vacuous: the worst error uses \(worst) of it")
  }

  /// The SIMD kernel equals the plain loops bit for bit, at shapes with and without a tail.
  @Test(arguments: [(1, 64, 128, 128), (5, 33, 96, 96), (16, 40, 256, 32), (2, 17, 64, 32), (3, 8, 50, 50), (1, 512, 128, 32),
                    (64, 256, 512, 512)])
  func theKernelEqualsTheReferenceLoops(_ rows: Int, _ n: Int, _ k: Int, _ block: Int) {
    var random = RandomStream(seed: 10, purpose: .evaluation)
    let weights = (0..<(n * k)).map { _ in Int8(Int(random.nextUInt32() % 255) - 127) }
    let scales = (0..<(n * (k / block))).map { _ in random.uniform() * 0.01 }
    let x = Tensor(shape: [rows, k], scalars: (0..<(rows * k)).map { _ in random.normal() })
    let y = Tensor.int8Linear(x, weights: weights, weightScales: scales, outputs: n, block: block)
    let expected = int8LinearReference(x: x.scalars, weights: weights, weightScales: scales, rows: rows, n: n, k: k, block: block)
    #expect(y.scalars == expected)
    // The packed layout of the AVX-512 kernel (16 outputs per group, the rest plain), the same bits.
    let packed = PackedInt8Weights(values: weights, scales: scales, outputs: n, block: block)
    let fromPacked = Tensor.int8Linear(x, weights: weights, weightScales: scales, outputs: n, block: block, packed: packed)
    #expect(fromPacked.scalars == expected, "packed groups: \(packed.groups)")
    // The Swift loop, which runs where the C kernels cannot, gives the same bits.
    var portable = [Float](repeating: .nan, count: rows * n)
    x.withUnsafeBufferPointer { px in
      portable.withUnsafeMutableBufferPointer { py in
        int8LinearForward(x: px.baseAddress!, weights: weights, weightScales: scales, y: py.baseAddress!, rows: rows, n: n,
                          k: k, block: block, portable: true)
      }
    }
    #expect(portable == expected, "SIMD level \(int8SIMDLevel)")
  }

  /// A row's result does not depend on the batch around it, nor on the thread count.
  @Test func resultsAreTheSameForAnyBatchAndThreadCount() throws {
    let q = try QuantizedMatrix(quantizing: Self.matrix(512, 256, seed: 11), scheme: .q8_0)
    let x = Self.matrix(16, 256, seed: 12, scale: 1)
    let batched = q.apply(x)
    let serial = Parallelism.$forceSerial.withValue(true) { q.apply(x) }
    #expect(batched.scalars == serial.scalars)
    for r in [0, 7, 15] {
      let alone = q.apply(Tensor(shape: [1, 256], scalars: Array(x.scalars[(r * 256)..<((r + 1) * 256)])))
      #expect(alone.scalars == Array(batched.scalars[(r * 512)..<((r + 1) * 512)]), "row \(r)")
    }
  }

  // MARK: - Models

  /// A tiny model whose matrices all have rows of whole Q8_0 blocks (d 64, MLP hidden 128), untied head.
  static let config = ModelConfig(vocabularySize: 263, modelDim: 64, layerCount: 2, headCount: 4, mlpHiddenDim: 128,
                                  contextLength: 64)

  static func header(_ bytes: [UInt8]) -> String {
    let length = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    return String(decoding: bytes[8..<(8 + length)], as: UTF8.self)
  }

  @Test(arguments: QuantizedMatrix.Scheme.allCases)
  func aQuantizedModelRoundTripsThroughSafetensors(_ scheme: QuantizedMatrix.Scheme) throws {
    let float = TransformerLM(config: Self.config, seed: 13)
    let model = try float.quantized(scheme)
    #expect(model.quantization == scheme && float.quantization == nil)
    #expect(model.quantizedMatrices.count == 2 * 7 + 1, "q, k, v, o, gate, up, down per layer, and the untied head")
    #expect(model.quantizedMatrices[.lmHead] != nil && model.parameter(.embedding) != nil)
    #expect(!model.parameters.contains { model.quantizedMatrices[$0.id] != nil })
    let bytes = model.safetensors(metadata: ["lineage_tokenizer": "bytes"])
    let header = Self.header(bytes)
    #expect(header.contains("\"model.layers.0.self_attn.q_proj.weight\":{\"dtype\":\"I8\",\"shape\":[64,64]"))
    let scaleShape = scheme == .perChannel ? "[64]" : "[64,2]"
    #expect(header.contains("\"model.layers.0.self_attn.q_proj.weight_scale\":{\"dtype\":\"F32\",\"shape\":\(scaleShape)"))
    #expect(header.contains("\"lineage_quantization\":\"\(scheme.rawValue)\""))
    #expect(header.contains("\"model.embed_tokens.weight\":{\"dtype\":\"F32\""))
    let (read, metadata) = try TransformerLM.read(safetensors: bytes)
    #expect(metadata["lineage_tokenizer"] == "bytes")
    #expect(read.quantization == scheme && read.quantizedMatrices == model.quantizedMatrices)
    #expect(read.safetensors(metadata: ["lineage_tokenizer": "bytes"]) == bytes, "rewriting gives the same bytes")
    // About a quarter of the float file (the float embedding table and norms stay).
    #expect(Double(bytes.count) < 0.45 * Double(float.safetensors().count))
    // The same logits as the model it was written from.
    let tokens: [[Int32]] = [[1, 5, 9, 200, 17, 3]]
    #expect(read.logits(tokens).value == model.logits(tokens).value)
  }

  /// A float model's file has no I8 tensor and no quantization key: float bytes are what they were.
  @Test func aFloatModelsFileIsUnchanged() throws {
    let model = TransformerLM(config: Self.config, seed: 14)
    let bytes = model.safetensors()
    let text = Self.header(bytes)
    #expect(!text.contains("I8") && !text.contains("lineage_quantization") && !text.contains("_scale"))
    #expect(SafeTensors.write(model.tensors, int8: [:], metadata: [:]) == SafeTensors.write(model.tensors))
  }

  @Test func quantizedLogitsFollowTheFloatModel() throws {
    let float = TransformerLM(config: Self.config, seed: 15)
    let tokens: [[Int32]] = [(0..<24).map { Int32(($0 * 37) % 263) }]
    let reference = float.logits(tokens).value.scalars
    let spread = reference.map(abs).max()!
    for scheme in QuantizedMatrix.Scheme.allCases {
      let logits = try float.quantized(scheme).logits(tokens).value.scalars
      let worst = zip(logits, reference).map { abs($0 - $1) }.max()!
      #expect(worst < 0.05 * spread, "\(scheme): worst logit error \(worst) against a largest logit of \(spread)")
    }
  }

  /// With tied embeddings the LM head is the float embedding table: nothing is stored twice.
  @Test func aTiedHeadReadsTheFloatEmbeddingTable() throws {
    var config = Self.config
    config.tiedEmbeddings = true
    let model = try TransformerLM(config: config, seed: 16).quantized(.q8_0)
    #expect(model.quantizedMatrices[.lmHead] == nil && model.quantizedMatrices[.embedding] == nil)
    guard case .float32(let head) = model.projection(.lmHead).storage else {
      Issue.record("the tied head is not the float table")
      return
    }
    #expect(head.value == model.parameter(.embedding)?.value)
    guard case .int8(let q) = model.projection(ParameterID(layer: 1, role: .mlp(.down))).storage else {
      Issue.record("mlp.down is not int8")
      return
    }
    #expect(q.shape == [64, 128] && q.scaleShape == [64, 4])
  }

  @Test func aQ8_0ModelNeedsDimensionsThatAreMultiplesOf32() throws {
    let config = ModelConfig(vocabularySize: 64, modelDim: 48, layerCount: 1, headCount: 2, contextLength: 16)
    #expect(throws: QuantizedModelError.self) { try TransformerLM(config: config, seed: 1).quantized(.q8_0) }
    #expect(try TransformerLM(config: config, seed: 1).quantized(.perChannel).quantization == .perChannel)
  }
}
