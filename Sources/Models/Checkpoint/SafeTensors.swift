import Foundation
import Tensors

/// Reads and writes the safetensors format (huggingface/safetensors): an 8-byte little-endian header
/// length N, N bytes of JSON naming each tensor's dtype, shape and byte range, then the raw
/// little-endian data. We write float32 tensors (and int8 ones: quantized weights) sorted by name,
/// laid out back to back in that order, the header padded with spaces to a multiple of 8, and
/// `__metadata__` holding string pairs (our model config as JSON under `lineage_config`). The same
/// tensors always give the same bytes, and a file without int8 tensors is byte for byte what it was
/// before int8 existed (lockfile hashes of float models do not move).
public enum SafeTensors {
  /// Int8 values and their shape (dtype `I8`), e.g. a quantized matrix's values.
  public struct Int8Tensor: Equatable, Sendable {
    public var shape: [Int]
    public var values: [Int8]
    public init(shape: [Int], values: [Int8]) {
      precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
      self.shape = shape
      self.values = values
    }
  }

  /// The file's bytes.
  ///
  /// - Parameters:
  ///   - tensors: float32 tensors by name (dtype `F32`).
  ///   - int8: int8 tensors by name (dtype `I8`); no name may be in both.
  public static func write(_ tensors: [String: Tensor], int8: [String: Int8Tensor] = [:],
                           metadata: [String: String] = [:]) -> [UInt8] {
    precondition(Set(tensors.keys).isDisjoint(with: int8.keys), "a tensor name is both F32 and I8")
    let names = (Array(tensors.keys) + Array(int8.keys)).sorted()
    var offset = 0
    var entries: [String] = []
    if !metadata.isEmpty {
      let pairs = metadata.keys.sorted().map { "\(quote($0)):\(quote(metadata[$0]!))" }
      entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
    }
    for name in names {
      let (dtype, shape, size) = tensors[name].map { ("F32", $0.shape, $0.count * 4) }
        ?? ("I8", int8[name]!.shape, int8[name]!.values.count)
      entries.append("\(quote(name)):{\"dtype\":\"\(dtype)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + size)]}")
      offset += size
    }
    var header = Array("{\(entries.joined(separator: ","))}".utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    var out = [UInt8]()
    out.reserveCapacity(8 + header.count + offset)
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { out += $0 }
    out += header
    for name in names {
      if let t = tensors[name] {
        t.withUnsafeBufferPointer { p in
          for x in p { withUnsafeBytes(of: x.bitPattern.littleEndian) { out += $0 } }
        }
      } else {
        out += int8[name]!.values.map { UInt8(bitPattern: $0) }
      }
    }
    return out
  }

  /// Tensors and metadata from a file's bytes, validated against the format.
  ///
  /// - Throws: `SafeTensorsError` naming what is wrong.
  public static func read(_ bytes: [UInt8]) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
    guard bytes.count >= 8 else { throw SafeTensorsError.truncated("no 8-byte header length") }
    let headerLength = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    guard headerLength <= UInt64(bytes.count - 8), headerLength <= 100_000_000 else {
      throw SafeTensorsError.truncated("header length \(headerLength) runs past the file (\(bytes.count) bytes)")
    }
    let dataStart = 8 + Int(headerLength)
    guard let object = try? JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart])) as? [String: Any] else {
      throw SafeTensorsError.invalidHeader("the header is not a JSON object")
    }
    var metadata: [String: String] = [:]
    var tensors: [String: Tensor] = [:]
    var ranges: [(Int, Int, String)] = []
    for (name, value) in object {
      if name == "__metadata__" {
        guard let m = value as? [String: String] else { throw SafeTensorsError.invalidHeader("__metadata__ must map strings to strings") }
        metadata = m
        continue
      }
      guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
            let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
        throw SafeTensorsError.invalidHeader("tensor '\(name)' needs dtype, shape and data_offsets")
      }
      guard shape.allSatisfy({ $0 >= 0 }) else { throw SafeTensorsError.invalidHeader("tensor '\(name)' has a negative dimension") }
      let (begin, end) = (offsets[0], offsets[1])
      guard begin >= 0, begin <= end, dataStart + end <= bytes.count else {
        throw SafeTensorsError.truncated("tensor '\(name)' bytes \(begin)..<\(end) are outside the data")
      }
      let elements = shape.reduce(1, *)
      let width: Int
      switch dtype {
      case "F32": width = 4
      case "F16", "BF16": width = 2
      case "I8": width = 1
      default: throw SafeTensorsError.unsupportedType(name, dtype)
      }
      guard elements * width == end - begin else {
        throw SafeTensorsError.invalidHeader("tensor '\(name)': shape \(shape) of \(dtype) needs \(elements * width) bytes, has \(end - begin)")
      }
      ranges.append((begin, end, name))
      let slice = bytes[(dataStart + begin)..<(dataStart + end)]
      tensors[name] = Tensor(shape: shape, scalars: decode(slice, dtype: dtype, count: elements))
    }
    // The tensors must tile the data exactly: no overlap, no gap.
    ranges.sort { $0.0 < $1.0 }
    var expected = 0
    for (begin, end, name) in ranges {
      guard begin == expected else { throw SafeTensorsError.invalidHeader("tensor '\(name)' leaves a gap or overlaps at byte \(begin)") }
      expected = end
    }
    guard dataStart + expected == bytes.count else {
      throw SafeTensorsError.invalidHeader("\(bytes.count - dataStart - expected) bytes after the last tensor")
    }
    return (tensors, metadata)
  }

  private static func decode(_ bytes: ArraySlice<UInt8>, dtype: String, count: Int) -> [Float] {
    let base = bytes.startIndex
    switch dtype {
    case "F32":
      return (0..<count).map { i in
        let j = base + 4 * i
        return Float(bitPattern: UInt32(bytes[j]) | UInt32(bytes[j + 1]) << 8 | UInt32(bytes[j + 2]) << 16 | UInt32(bytes[j + 3]) << 24)
      }
    case "BF16":
      return (0..<count).map { i in Float(bitPattern: (UInt32(bytes[base + 2 * i]) | UInt32(bytes[base + 2 * i + 1]) << 8) << 16) }
    case "F16":
      return (0..<count).map { i in Float(Float16(bitPattern: UInt16(bytes[base + 2 * i]) | UInt16(bytes[base + 2 * i + 1]) << 8)) }
    default:  // I8
      return (0..<count).map { i in Float(Int8(bitPattern: bytes[base + i])) }
    }
  }

  /// A JSON string literal (Foundation escapes quotes, backslashes and control characters).
  static func quote(_ s: String) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: s, options: [.fragmentsAllowed, .withoutEscapingSlashes])) ?? Data()
    return String(decoding: data, as: UTF8.self)
  }
}

/// A safetensors file that does not follow the format.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible {
  case truncated(String)
  case invalidHeader(String)
  case unsupportedType(String, String)

  public var description: String {
    switch self {
    case .truncated(let why): return "truncated safetensors file: \(why)"
    case .invalidHeader(let why): return "invalid safetensors header: \(why)"
    case .unsupportedType(let name, let dtype): return "tensor '\(name)' has unsupported dtype \(dtype)"
    }
  }
}

extension TransformerLM {
  /// The model as safetensors bytes, its config as JSON in the metadata under `lineage_config`, plus
  /// any `metadata` of the caller's (e.g. the tokenizer a model was trained with).
  ///
  /// A quantized model also writes `lineage_quantization` (`per_channel` or `q8_0`) and stores each
  /// quantized matrix `NAME.weight` as `I8` `[out, in]` with its scales `NAME.weight_scale` (`F32`,
  /// `[out]` or `[out, in / 32]`); everything else stays `F32`.
  public func safetensors(metadata extra: [String: String] = [:]) -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let config = (try? encoder.encode(config)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    var metadata = extra
    metadata["format"] = "pt"
    metadata["lineage_config"] = config
    guard let quantization else { return SafeTensors.write(tensors, metadata: metadata) }
    metadata[TransformerLM.quantizationKey] = quantization.rawValue
    var floats = Dictionary(uniqueKeysWithValues: tensorsByID.map { ($0.key.safetensorsName, $0.value) })
    var int8: [String: SafeTensors.Int8Tensor] = [:]
    for (id, q) in quantizedMatrices {
      int8[id.safetensorsName] = SafeTensors.Int8Tensor(shape: q.shape, values: q.values)
      floats[id.safetensorsName + QuantizedMatrix.scaleSuffix] = Tensor(shape: q.scaleShape, scalars: q.scales)
    }
    return SafeTensors.write(floats, int8: int8, metadata: metadata)
  }

  /// The metadata key naming a quantized model's scheme.
  public static let quantizationKey = "lineage_quantization"

  /// A model rebuilt from safetensors bytes written by `safetensors()`.
  ///
  /// - Throws: `SafeTensorsError` or `ModelError` when the file or its config is not usable.
  public convenience init(safetensors bytes: [UInt8]) throws {
    let (tensors, metadata) = try SafeTensors.read(bytes)
    try self.init(config: TransformerLM.config(in: metadata), tensors: tensors)
  }

  /// A model and the file's whole metadata (with what the writer added beside the config).
  /// A quantized model's file (`lineage_quantization` in its metadata) loads as a quantized model.
  ///
  /// - Throws: `SafeTensorsError` or `ModelError` when the file or its config is not usable, or when
  ///   `lineage_quantization` does not name the scheme its scales have.
  public static func read(safetensors bytes: [UInt8]) throws -> (model: TransformerLM, metadata: [String: String]) {
    let (tensors, metadata) = try SafeTensors.read(bytes)
    let model = try TransformerLM(config: config(in: metadata), tensors: tensors)
    if let declared = metadata[quantizationKey] {
      guard let scheme = QuantizedMatrix.Scheme(rawValue: declared) else {
        throw ModelError.invalidConfig("unknown \(quantizationKey) '\(declared)' (per_channel or q8_0)")
      }
      guard model.quantization == scheme else {
        throw ModelError.invalidConfig("\(quantizationKey) says \(declared) but the weights are \(model.quantization?.rawValue ?? "float32")")
      }
    } else if let scheme = model.quantization {
      throw ModelError.invalidConfig("the weights are \(scheme.rawValue) but the metadata has no \(quantizationKey)")
    }
    return (model, metadata)
  }

  /// A model of `config` holding `tensors` (e.g. another model's weights under a new attention pattern,
  /// RoPE scaling or context length, none of which changes a weight's shape).
  ///
  /// - Throws: `ModelError` when the config is invalid or a tensor is missing or misshapen.
  public convenience init(config: ModelConfig, tensors: [String: Tensor]) throws {
    guard config.problems.isEmpty else { throw ModelError.invalidConfig(config.problems.joined(separator: "; ")) }
    self.init(config: config, seed: 0)
    try load(tensors)
  }

  private static func config(in metadata: [String: String]) throws -> ModelConfig {
    guard let text = metadata["lineage_config"],
          let config = try? JSONDecoder().decode(ModelConfig.self, from: Data(text.utf8)) else {
      throw ModelError.invalidConfig("the checkpoint's metadata has no lineage_config")
    }
    return config
  }
}
