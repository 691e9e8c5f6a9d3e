import Tensors

extension TransformerLM {
  /// A copy of this model whose matrices are quantized with `scheme`: the attention and MLP
  /// projections, the experts and an untied LM head. The embedding table and the norms stay float32
  /// (the embedding is a gather, not a product; norms are vectors), and so do the MoE router (its
  /// top-k choice is discrete: a rounding could send a token to another expert) and a value head
  /// (one row). With tied embeddings the LM head reads the float embedding table: quantizing a copy
  /// would store the table twice, and GGUF also keeps a tied output as the token embedding.
  ///
  /// - Throws: `QuantizationError` when a matrix cannot take the scheme (Q8_0 needs rows whose length
  ///   is a multiple of 32), naming it.
  public func quantized(_ scheme: QuantizedMatrix.Scheme) throws -> TransformerLM {
    guard quantization == nil else { throw QuantizedModelError.alreadyQuantized(quantization!) }
    let copy = try TransformerLM(config: config, tensors: tensors)
    var matrices: [ParameterID: QuantizedMatrix] = [:]
    for (id, v) in parameters where QuantizedMatrix.quantizes(id) {
      do {
        matrices[id] = try QuantizedMatrix(quantizing: v.value, scheme: scheme)
      } catch {
        throw QuantizedModelError.matrix(id.safetensorsName, error)
      }
    }
    try copy.replaceWithQuantized(matrices, scheme: scheme)
    return copy
  }

  /// The float matrices each quantized matrix replaced, rebuilt (value × scale), by identity: what the
  /// quantized model computes with, for measuring the rounding against the original weights.
  public var dequantizedMatrices: [ParameterID: Tensor] { quantizedMatrices.mapValues { $0.dequantized() } }
}

extension QuantizedMatrix {
  /// Whether `quantized(_:)` quantizes the matrix `id` (see there for why the others stay float).
  public static func quantizes(_ id: ParameterID) -> Bool {
    switch id.role {
    case .attention, .mlp, .expert, .sharedExperts, .lmHead: return true
    case .embedding, .attentionNorm, .mlpNorm, .finalNorm, .router, .routingBias, .valueHead, .distillationProjection: return false
    }
  }

  /// The suffix that names a quantized weight's scales beside it: `NAME.weight` → `NAME.weight_scale`.
  public static let scaleSuffix = "_scale"

  /// This matrix as two float tensors under `name` (e.g. `model.layers.0.mlp.up_proj.weight`): the
  /// values (integers, exact in float) `[out, in]` and `name + "_scale"`, `[out]` or `[out, in / 32]`.
  /// The scale's rank says the scheme.
  public func stored(as name: String) -> [String: Tensor] {
    [name: Tensor(shape: shape, scalars: values.map(Float.init)),
     name + QuantizedMatrix.scaleSuffix: Tensor(shape: scaleShape, scalars: scales)]
  }

  /// Splits tensors by name into the float ones and the quantized matrices (a `NAME_scale` beside
  /// `NAME`, as `stored(as:)` writes them), by identity.
  ///
  /// - Throws: `ModelError` for a scale without its values, values that are not integers in −127…127,
  ///   or quantized matrices of different schemes.
  static func separate(_ tensors: [String: Tensor]) throws -> (floats: [String: Tensor], quantized: [ParameterID: QuantizedMatrix]) {
    var floats = tensors
    var quantized: [ParameterID: QuantizedMatrix] = [:]
    for scaleName in tensors.keys.filter({ $0.hasSuffix(scaleSuffix) }).sorted() {
      let name = String(scaleName.dropLast(scaleSuffix.count))
      guard let id = ParameterID(safetensorsName: name) else { throw ModelError.unexpectedTensor(scaleName) }
      guard let values = tensors[name] else { throw ModelError.missingTensor(name) }
      let scales = tensors[scaleName]!
      let scheme: Scheme = scales.rank == 1 ? .perChannel : .q8_0
      guard values.scalars.allSatisfy({ $0 == $0.rounded() && abs($0) <= 127 }) else {
        throw ModelError.invalidConfig("'\(name)' has a scale but its values are not int8")
      }
      do {
        quantized[id] = try QuantizedMatrix(scheme: scheme, shape: values.shape, values: values.scalars.map { Int8($0) },
                                            scales: scales.scalars)
      } catch {
        throw ModelError.invalidConfig("'\(name)': \(error)")
      }
      floats[name] = nil
      floats[scaleName] = nil
    }
    if Set(quantized.values.map(\.scheme)).count > 1 {
      throw ModelError.invalidConfig("the checkpoint mixes per_channel and q8_0 matrices")
    }
    return (floats, quantized)
  }
}

/// A model that cannot be quantized.
public enum QuantizedModelError: Error, Equatable, CustomStringConvertible {
  case alreadyQuantized(QuantizedMatrix.Scheme)
  case matrix(String, QuantizationError)

  public var description: String {
    switch self {
    case .alreadyQuantized(let scheme): return "the model is already quantized (\(scheme.rawValue))"
    case .matrix(let name, let error): return "cannot quantize '\(name)': \(error)"
    }
  }
}
