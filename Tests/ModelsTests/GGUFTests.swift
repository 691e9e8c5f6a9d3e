import Foundation
@testable import Models
import Tensors
import Testing

/// The GGUF writer and reader, and Q8_0 blocks, against the format's bytes and hand-computed values.
@Suite struct GGUFTests {
  /// A block whose largest magnitude is 127 has d = 1, so q is x rounded half away from zero (C's
  /// `roundf`, as ggml); a block of zeros has d = 0 and q = 0. The bytes are d as Float16, then q.
  @Test func q8_0EncodesKnownValues() throws {
    var first: [Float] = [127, -127, 0.5, -0.5, 1.49, 2.5, -2.5, 0.49]
    first += [Float](repeating: 3, count: 24)
    let blocks = try Q8_0Blocks(quantizing: first + [Float](repeating: 0, count: 32))
    #expect(blocks.scales == [1, 0])
    #expect(Array(blocks.values.prefix(8)) == [127, -127, 1, -1, 1, 3, -3, 0])
    #expect(blocks.values[8..<32].allSatisfy { $0 == 3 } && blocks.values[32...].allSatisfy { $0 == 0 })
    let bytes = blocks.bytes
    #expect(bytes.count == 2 * 34)
    #expect(Array(bytes.prefix(10)) == [0x00, 0x3C, 127, 0x81, 1, 0xFF, 1, 3, 0xFD, 0])   // Float16(1) = 0x3C00
    #expect(Array(bytes[34..<36]) == [0, 0])
    #expect(Array(blocks.dequantized.prefix(8)) == [127, -127, 1, -1, 1, 3, -3, 0])
  }

  /// d = max|x| / 127; q · d is within half a step (plus the Float16 rounding of d) of x.
  @Test func q8_0ScaleAndErrorBound() throws {
    var random = RandomStream(seed: 3, purpose: .evaluation)
    let x = (0..<256).map { _ in random.normal() * 0.05 }
    let blocks = try Q8_0Blocks(quantizing: x)
    let back = blocks.dequantized
    for b in 0..<8 {
      let block = x[(b * 32)..<((b + 1) * 32)]
      let d = block.map(abs).max()! / 127
      #expect(blocks.scales[b] == Float16(d))
      let d16 = Float(blocks.scales[b])
      for i in (b * 32)..<((b + 1) * 32) {
        #expect(abs(back[i] - x[i]) <= d16 / 2 + 127 * abs(d16 - d) + 1e-7, "value \(i)")
      }
    }
  }

  @Test func q8_0RefusesWhatItCannotWrite() throws {
    #expect(throws: Q8_0Error.countNotMultipleOfBlock(33)) { try Q8_0Blocks(quantizing: [Float](repeating: 1, count: 33)) }
    #expect(throws: Q8_0Error.notFinite(index: 2)) { try Q8_0Blocks(quantizing: [1, 2, .nan] + [Float](repeating: 0, count: 29)) }
    #expect(throws: Q8_0Error.countsDisagree(values: 31, scales: 1)) { try Q8_0Blocks(values: [Int8](repeating: 0, count: 31), scales: [1]) }
    #expect(throws: Q8_0Error.scaleNotFloat16(block: 0, scale: 0.1)) { try Q8_0Blocks(values: [Int8](repeating: 0, count: 32), scales: [0.1]) }
  }

  /// Blocks quantized elsewhere (an int8 artifact) are kept bit for bit; permuting rows moves whole blocks.
  @Test func preQuantizedBlocksAreKeptAsTheyAre() throws {
    let values = (0..<64).map { Int8($0 - 32) }
    let scales = [Float(Float16(0.1)), Float(Float16(0.002))]
    let blocks = try Q8_0Blocks(values: values, scales: scales)
    #expect(blocks.values == values && blocks.scales.map { Float($0) } == scales)
    let swapped = blocks.permutingRows([1, 0], columns: 32)
    #expect(Array(swapped.values.prefix(32)) == Array(values.suffix(32)) && swapped.scales.map { Float($0) } == scales.reversed())
    #expect(Q8_0Blocks(bytes: blocks.bytes[...]) == blocks)
  }

  static func sampleFile() throws -> GGUFFile {
    GGUFFile(metadata: [
      ("general.architecture", .string("llama")),
      ("general.alignment", .uint32(32)),
      ("a.u8", .uint8(7)), ("a.i8", .int8(-7)), ("a.u16", .uint16(600)), ("a.i16", .int16(-600)),
      ("a.i32", .int32(-70_000)), ("a.f32", .float32(1.5)), ("a.bool", .bool(true)), ("a.u64", .uint64(1 << 40)),
      ("a.i64", .int64(-(1 << 40))), ("a.f64", .float64(0.1)),
      ("a.strings", .strings(["Ġthe", "é", ""])), ("a.ints", .int32s([1, 3, 5])),
    ], tensors: [
      GGUFTensor(name: "norm", shape: [3], data: .f32([1, 2, 3])),
      GGUFTensor(name: "matrix", shape: [2, 32], data: .q8_0(try Q8_0Blocks(quantizing: (0..<64).map { Float($0) / 10 }))),
      GGUFTensor(name: "after", shape: [2, 2], data: .f32([-1, 0, 1, 2])),
    ])
  }

  /// Everything written reads back equal.
  @Test func fileRoundTrips() throws {
    let file = try GGUFTests.sampleFile()
    let bytes = file.bytes
    #expect(try GGUFFile(bytes: bytes) == file)
    #expect(bytes == file.bytes, "the same file gives the same bytes")
  }

  /// The header as the format defines it: magic, version 3, counts; each tensor's dimensions innermost
  /// first; data starting on a multiple of 32, each tensor too.
  @Test func headerBytesFollowTheFormat() throws {
    let file = try GGUFTests.sampleFile()
    let bytes = file.bytes
    func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
    func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * $1) } }
    #expect(Array(bytes.prefix(4)) == Array("GGUF".utf8))
    #expect(u32(4) == 3 && u64(8) == 3 && u64(16) == UInt64(file.metadata.count))
    #expect(u64(24) == UInt64("general.architecture".utf8.count))
    #expect(String(decoding: bytes[32..<52], as: UTF8.self) == "general.architecture")
    #expect(u32(52) == GGUFValueType.string.rawValue)
    // The matrix's info: name, 2 dimensions, 32 then 2 (innermost first), type 8, offset 32 (after 12 bytes of norm, padded).
    let name = Array("matrix".utf8)
    let at = try #require((0..<(bytes.count - name.count)).first { i in Array(bytes[i..<(i + name.count)]) == name && u64(i - 8) == 6 })
    var p = at + name.count
    #expect(u32(p) == 2 && u64(p + 4) == 32 && u64(p + 12) == 2 && u32(p + 20) == 8 && u64(p + 24) == 32)
    p += 32
    // "after" follows at 32 + 68 rounded up to 128.
    #expect(u64(p + 8 + 5 + 4 + 16 + 4) == 128)
    #expect(bytes.count % 32 == 0)
    let dataStart = bytes.count - 128 - 32   // "after" is 16 bytes, padded to 32
    #expect(dataStart % 32 == 0)
    #expect(Array(bytes[dataStart..<(dataStart + 4)]) == [0, 0, 0x80, 0x3F])   // 1.0f, the norm's first value
  }

  @Test func readerRefusesDamage() throws {
    let bytes = try GGUFTests.sampleFile().bytes
    #expect(throws: GGUFError.malformed("no GGUF magic")) { try GGUFFile(bytes: [0x47, 0x47, 0x55, 0x47] + bytes.dropFirst(4)) }
    #expect(throws: GGUFError.self) { try GGUFFile(bytes: Array(bytes.prefix(bytes.count - 40))) }
    var version = bytes
    version[4] = 2
    #expect(throws: GGUFError.unsupported("version 2")) { try GGUFFile(bytes: version) }
  }
}
