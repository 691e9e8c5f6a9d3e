/// A GGUF file (version 3): ggml's single-file model format, which llama.cpp and its tools read.
///
/// Layout (all little-endian): the magic `GGUF`, the version (UInt32 3), the tensor count and the
/// metadata count (UInt64 each); the metadata as key (string), value type (UInt32), value; one info
/// per tensor: name, dimension count (UInt32), dimensions (UInt64, innermost first), ggml type
/// (UInt32), offset (UInt64, from the start of the data section); zero padding to the alignment; the
/// tensors' data, each starting at a multiple of the alignment. A string is a UInt64 byte count and
/// UTF-8 bytes; an array is an element type, a UInt64 count and the elements.
///
/// `bytes` writes the file, `init(bytes:)` reads one back (the tests and `lineage` check what they
/// wrote with it). Reference: ggml's `docs/gguf.md` and `gguf-py/gguf/gguf_writer.py`.
public struct GGUFFile: Equatable, Sendable {
  public static let version: UInt32 = 3
  /// Where tensors start (`general.alignment`, when a file does not set it).
  public static let defaultAlignment = 32

  /// Metadata in file order (llama.cpp looks keys up by name; the order keeps the bytes stable).
  public var metadata: [(key: String, value: GGUFValue)]
  public var tensors: [GGUFTensor]

  public init(metadata: [(key: String, value: GGUFValue)], tensors: [GGUFTensor]) {
    self.metadata = metadata
    self.tensors = tensors
  }

  /// The value of `key`, if the file has it.
  public subscript(key: String) -> GGUFValue? { metadata.first { $0.key == key }?.value }

  /// The tensor named `name`, if the file has it.
  public func tensor(_ name: String) -> GGUFTensor? { tensors.first { $0.name == name } }

  /// The alignment the file declares (`general.alignment`), or 32.
  public var alignment: Int {
    if case .uint32(let a)? = self["general.alignment"] { return Int(a) }
    return GGUFFile.defaultAlignment
  }

  public static func == (a: GGUFFile, b: GGUFFile) -> Bool {
    a.tensors == b.tensors && a.metadata.map(\.key) == b.metadata.map(\.key)
      && zip(a.metadata, b.metadata).allSatisfy { $0.value == $1.value }
  }

  // MARK: - Writing

  /// The file's bytes. The same file always gives the same bytes.
  public var bytes: [UInt8] {
    var out = GGUFBytes()
    out.append(Array("GGUF".utf8))
    out.append(GGUFFile.version)
    out.append(UInt64(tensors.count))
    out.append(UInt64(metadata.count))
    for (key, value) in metadata {
      out.append(key)
      out.append(value.type.rawValue)
      out.append(value)
    }
    let align = alignment
    var offset = 0
    var offsets: [Int] = []
    for tensor in tensors {
      offsets.append(offset)
      offset = (offset + tensor.data.byteCount + align - 1) / align * align
    }
    for (tensor, offset) in zip(tensors, offsets) {
      out.append(tensor.name)
      out.append(UInt32(tensor.shape.count))
      for dimension in tensor.shape.reversed() { out.append(UInt64(dimension)) }   // ggml: innermost first
      out.append(tensor.data.type.rawValue)
      out.append(UInt64(offset))
    }
    out.pad(to: align)
    for tensor in tensors {
      out.append(tensor.data.bytes)
      out.pad(to: align)
    }
    return out.bytes
  }

  // MARK: - Reading

  /// A file read back from its bytes, every tensor decoded.
  ///
  /// - Throws: `GGUFError` naming what does not follow the format.
  public init(bytes: [UInt8]) throws(GGUFError) {
    var reader = GGUFReader(bytes: bytes)
    guard try reader.bytes(4) == Array("GGUF".utf8) else { throw .malformed("no GGUF magic") }
    let version = try reader.uint32()
    guard version == GGUFFile.version else { throw .unsupported("version \(version)") }
    let tensorCount = try reader.count(), metadataCount = try reader.count()
    var metadata: [(key: String, value: GGUFValue)] = []
    for _ in 0..<metadataCount {
      let key = try reader.string()
      metadata.append((key, try reader.value(of: try reader.valueType())))
    }
    var infos: [(name: String, shape: [Int], type: GGUFTensorType, offset: Int)] = []
    for _ in 0..<tensorCount {
      let name = try reader.string()
      let rank = Int(try reader.uint32())
      guard rank <= 4 else { throw .malformed("tensor '\(name)' has \(rank) dimensions") }
      var shape: [Int] = []
      for _ in 0..<rank { shape.insert(try reader.count(), at: 0) }
      let raw = try reader.uint32()
      guard let type = GGUFTensorType(rawValue: raw) else { throw .unsupported("tensor '\(name)' has ggml type \(raw)") }
      infos.append((name, shape, type, Int(try reader.uint64())))
    }
    self.init(metadata: metadata, tensors: [])
    let align = alignment
    let dataStart = (reader.position + align - 1) / align * align
    for info in infos {
      guard info.offset % align == 0 else { throw .malformed("tensor '\(info.name)' is not aligned to \(align)") }
      let count = info.shape.reduce(1, *)
      guard info.type != .q8_0 || count % Q8_0Blocks.blockSize == 0 else {
        throw .malformed("Q8_0 tensor '\(info.name)' has \(count) values, not a multiple of 32")
      }
      let size = info.type == .f32 ? count * 4 : count / Q8_0Blocks.blockSize * Q8_0Blocks.bytesPerBlock
      let start = dataStart + info.offset
      guard start + size <= bytes.count else { throw .malformed("tensor '\(info.name)' runs past the end of the file") }
      let slice = bytes[start..<(start + size)]
      let data: GGUFTensorData = info.type == .f32 ? .f32(GGUFReader.floats(slice)) : .q8_0(Q8_0Blocks(bytes: slice))
      tensors.append(GGUFTensor(name: info.name, shape: info.shape, data: data))
    }
  }
}

/// One tensor: its name, its shape as PyTorch writes it (`[rows, columns]`; the file stores it
/// reversed, innermost first) and its data.
public struct GGUFTensor: Equatable, Sendable {
  public var name: String
  public var shape: [Int]
  public var data: GGUFTensorData

  /// - Precondition: the data holds `shape`'s product of values.
  public init(name: String, shape: [Int], data: GGUFTensorData) {
    precondition(data.count == shape.reduce(1, *), "tensor '\(name)': \(data.count) values for shape \(shape)")
    self.name = name
    self.shape = shape
    self.data = data
  }
}

/// The ggml tensor types this writer produces.
public enum GGUFTensorType: UInt32, CaseIterable, Sendable {
  case f32 = 0
  case q8_0 = 8
}

/// A tensor's values in one of the written types.
public enum GGUFTensorData: Equatable, Sendable {
  case f32([Float])
  case q8_0(Q8_0Blocks)

  public var type: GGUFTensorType {
    switch self {
    case .f32: return .f32
    case .q8_0: return .q8_0
    }
  }

  public var count: Int {
    switch self {
    case .f32(let x): return x.count
    case .q8_0(let q): return q.values.count
    }
  }

  /// The values as floats (Q8_0 dequantized).
  public var floats: [Float] {
    switch self {
    case .f32(let x): return x
    case .q8_0(let q): return q.dequantized
    }
  }

  var byteCount: Int {
    switch self {
    case .f32(let x): return x.count * 4
    case .q8_0(let q): return q.scales.count * Q8_0Blocks.bytesPerBlock
    }
  }

  var bytes: [UInt8] {
    switch self {
    case .f32(let x):
      var out: [UInt8] = []
      out.reserveCapacity(x.count * 4)
      for v in x { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } }
      return out
    case .q8_0(let q): return q.bytes
    }
  }
}

/// A metadata value. Arrays are homogeneous: the element type is stored once.
public indirect enum GGUFValue: Equatable, Sendable {
  case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
  case float32(Float), bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
  case array(GGUFValueType, [GGUFValue])

  public var type: GGUFValueType {
    switch self {
    case .uint8: return .uint8
    case .int8: return .int8
    case .uint16: return .uint16
    case .int16: return .int16
    case .uint32: return .uint32
    case .int32: return .int32
    case .float32: return .float32
    case .bool: return .bool
    case .string: return .string
    case .array: return .array
    case .uint64: return .uint64
    case .int64: return .int64
    case .float64: return .float64
    }
  }

  /// An array of strings (`tokenizer.ggml.tokens`, `tokenizer.ggml.merges`).
  public static func strings(_ values: [String]) -> GGUFValue { .array(.string, values.map { .string($0) }) }
  /// An array of Int32 (`tokenizer.ggml.token_type`).
  public static func int32s(_ values: [Int32]) -> GGUFValue { .array(.int32, values.map { .int32($0) }) }
}

/// GGUF's value type codes.
public enum GGUFValueType: UInt32, Sendable {
  case uint8 = 0, int8, uint16, int16, uint32, int32, float32, bool, string, array, uint64, int64, float64
}

/// A file that does not follow GGUF version 3 as written here.
public enum GGUFError: Error, Equatable, CustomStringConvertible {
  case malformed(String)
  case unsupported(String)

  public var description: String {
    switch self {
    case .malformed(let why): return "malformed GGUF file: \(why)"
    case .unsupported(let what): return "unsupported GGUF content: \(what)"
    }
  }
}

// MARK: - Bytes

/// Little-endian output with GGUF's string and value encodings.
private struct GGUFBytes {
  var bytes: [UInt8] = []

  mutating func append(_ raw: [UInt8]) { bytes += raw }
  mutating func append<T: FixedWidthInteger>(_ x: T) { withUnsafeBytes(of: x.littleEndian) { bytes += $0 } }
  mutating func append(_ s: String) {
    append(UInt64(s.utf8.count))
    bytes += Array(s.utf8)
  }

  mutating func append(_ value: GGUFValue) {
    switch value {
    case .uint8(let x): append(x)
    case .int8(let x): append(x)
    case .uint16(let x): append(x)
    case .int16(let x): append(x)
    case .uint32(let x): append(x)
    case .int32(let x): append(x)
    case .float32(let x): append(x.bitPattern)
    case .bool(let x): append(UInt8(x ? 1 : 0))
    case .string(let s): append(s)
    case .uint64(let x): append(x)
    case .int64(let x): append(x)
    case .float64(let x): append(x.bitPattern)
    case .array(let type, let elements):
      precondition(elements.allSatisfy { $0.type == type }, "a GGUF array holds one type")
      append(type.rawValue)
      append(UInt64(elements.count))
      for e in elements { append(e) }
    }
  }

  mutating func pad(to alignment: Int) {
    while bytes.count % alignment != 0 { bytes.append(0) }
  }
}

/// Reads what `GGUFBytes` writes, bounds-checked.
private struct GGUFReader {
  let bytes: [UInt8]
  var position = 0

  init(bytes: [UInt8]) { self.bytes = bytes }

  mutating func bytes(_ n: Int) throws(GGUFError) -> [UInt8] {
    guard n >= 0, position + n <= bytes.count else { throw .malformed("truncated at byte \(position)") }
    defer { position += n }
    return Array(bytes[position..<(position + n)])
  }

  mutating func integer<T: FixedWidthInteger>(_: T.Type) throws(GGUFError) -> T {
    let raw = try bytes(MemoryLayout<T>.size)
    return raw.reversed().reduce(T.zero) { $0 << 8 | T(truncatingIfNeeded: $1) }
  }

  mutating func uint32() throws(GGUFError) -> UInt32 { try integer(UInt32.self) }
  mutating func uint64() throws(GGUFError) -> UInt64 { try integer(UInt64.self) }

  /// A UInt64 count or size, refused when larger than the file could hold.
  mutating func count() throws(GGUFError) -> Int {
    let n = try uint64()
    guard n <= UInt64(bytes.count) else { throw .malformed("count \(n) at byte \(position - 8) exceeds the file") }
    return Int(n)
  }

  mutating func string() throws(GGUFError) -> String {
    let raw = try bytes(try count())
    guard let s = String(validating: raw, as: UTF8.self) else { throw .malformed("a string before byte \(position) is not UTF-8") }
    return s
  }

  mutating func valueType() throws(GGUFError) -> GGUFValueType {
    let raw = try uint32()
    guard let type = GGUFValueType(rawValue: raw) else { throw .malformed("unknown value type \(raw)") }
    return type
  }

  mutating func value(of type: GGUFValueType) throws(GGUFError) -> GGUFValue {
    switch type {
    case .uint8: return .uint8(try integer(UInt8.self))
    case .int8: return .int8(try integer(Int8.self))
    case .uint16: return .uint16(try integer(UInt16.self))
    case .int16: return .int16(try integer(Int16.self))
    case .uint32: return .uint32(try uint32())
    case .int32: return .int32(try integer(Int32.self))
    case .float32: return .float32(Float(bitPattern: try uint32()))
    case .bool: return .bool(try integer(UInt8.self) != 0)
    case .string: return .string(try string())
    case .uint64: return .uint64(try uint64())
    case .int64: return .int64(try integer(Int64.self))
    case .float64: return .float64(Double(bitPattern: try uint64()))
    case .array:
      let elementType = try valueType()
      guard elementType != .array else { throw .unsupported("nested arrays") }
      let n = try count()
      var elements: [GGUFValue] = []
      for _ in 0..<n { elements.append(try value(of: elementType)) }
      return .array(elementType, elements)
    }
  }

  static func floats(_ slice: ArraySlice<UInt8>) -> [Float] {
    let base = slice.startIndex
    return (0..<(slice.count / 4)).map { i in
      let j = base + 4 * i
      return Float(bitPattern: UInt32(slice[j]) | UInt32(slice[j + 1]) << 8 | UInt32(slice[j + 2]) << 16 | UInt32(slice[j + 3]) << 24)
    }
  }
}
