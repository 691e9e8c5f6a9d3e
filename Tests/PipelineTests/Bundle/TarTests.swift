import Foundation
import Pipeline
import Testing

/// The ustar reader and writer: round trips, the name and prefix fields, checksums, truncation.
@Suite struct TarTests {
  /// Bytes that are not all alike, so a misplaced block shows.
  static func pattern(_ count: Int, seed: Int = 7) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &+ $0 >> 8) }
  }

  static func archive(_ entries: [TarEntry]) throws -> [UInt8] {
    var writer = TarWriter()
    for entry in entries { try writer.append(entry) }
    return writer.finished()
  }

  @Test func roundTripKeepsNamesKindsAndBytes() throws {
    let name100 = String(repeating: "n", count: 96) + ".txt"
    let long = String(repeating: "d", count: 120) + "/" + String(repeating: "f", count: 90) + ".bin"  // 215 bytes
    let entries = [
      TarEntry(path: "empty", kind: .regularFile, contents: []),
      TarEntry(path: "one", kind: .regularFile, contents: [42]),
      TarEntry(path: "dir", kind: .directory),
      TarEntry(path: "dir/block-511", kind: .regularFile, contents: TarTests.pattern(511)),
      TarEntry(path: "dir/block-512", kind: .regularFile, contents: TarTests.pattern(512)),
      TarEntry(path: "dir/block-513", kind: .regularFile, contents: TarTests.pattern(513)),
      TarEntry(path: "dir/ünïcode-5000", kind: .regularFile, contents: TarTests.pattern(5000, seed: 3)),
      TarEntry(path: name100, kind: .regularFile, contents: Array("exactly 100".utf8)),
      TarEntry(path: long, kind: .regularFile, contents: Array("prefix".utf8)),
      TarEntry(path: "link", kind: .symbolicLink(target: "dir/one")),
    ]
    let bytes = try TarTests.archive(entries)
    #expect(bytes.count % 512 == 0)
    #expect(bytes.suffix(1024).allSatisfy { $0 == 0 }, "ends with two zero blocks")
    #expect(try TarReader.entries(of: bytes) == entries)

    // The 100-byte name fills the name field alone; the 215-byte one is split into prefix and name.
    let headers = stride(from: 0, to: bytes.count - 1024, by: 512).filter { offset in
      bytes[offset + 257..<offset + 262].elementsEqual("ustar".utf8)
    }
    let hundred = try #require(headers.first { bytes[$0..<$0 + 100].elementsEqual(name100.utf8) })
    #expect(bytes[hundred + 345..<hundred + 500].allSatisfy { $0 == 0 })
    let split = try #require(headers.first { bytes[$0 + 345..<$0 + 465].elementsEqual(String(repeating: "d", count: 120).utf8) })
    #expect(String(decoding: bytes[split..<split + 94].prefix { $0 != 0 }, as: UTF8.self) == String(repeating: "f", count: 90) + ".bin")
  }

  @Test func headersAreDeterministic() throws {
    let bytes = try TarTests.archive([TarEntry(path: "a.yaml", kind: .regularFile, contents: Array("x: 1\n".utf8))])
    func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }
    #expect(text(100..<108) == "0000644\0")
    #expect(text(108..<116) == "0000000\0", "uid 0")
    #expect(text(116..<124) == "0000000\0", "gid 0")
    #expect(text(124..<136) == "00000000005\0", "size")
    #expect(text(136..<148) == "00000000000\0", "mtime 0")
    #expect(text(257..<265) == "ustar\u{0}00")
    #expect(bytes[265..<329].allSatisfy { $0 == 0 }, "no user or group names")
    #expect(try TarTests.archive([TarEntry(path: "a.yaml", kind: .regularFile, contents: Array("x: 1\n".utf8))]) == bytes)
  }

  @Test func namesThatDoNotFitAreRefused() {
    let noSlash = String(repeating: "x", count: 101)
    #expect(throws: TarError.nameTooLong(noSlash)) { try TarTests.archive([TarEntry(path: noSlash, kind: .regularFile)]) }
    let tooLong = String(repeating: "a", count: 150) + "/" + String(repeating: "b", count: 150)
    #expect(throws: TarError.nameTooLong(tooLong)) { try TarTests.archive([TarEntry(path: tooLong, kind: .regularFile)]) }
    let prefixTooLong = String(repeating: "p", count: 200) + "/b"
    #expect(throws: TarError.nameTooLong(prefixTooLong)) {
      try TarTests.archive([TarEntry(path: prefixTooLong, kind: .regularFile)])
    }
    #expect(throws: TarError.invalidName("")) { try TarTests.archive([TarEntry(path: "", kind: .regularFile)]) }
  }

  @Test func aDamagedHeaderFailsItsChecksum() throws {
    let entries = [TarEntry(path: "a", kind: .regularFile, contents: TarTests.pattern(700)),
                   TarEntry(path: "b", kind: .regularFile, contents: [1, 2, 3])]
    let good = try TarTests.archive(entries)
    var renamed = good
    renamed[0] = UInt8(ascii: "c")  // the first header's name
    #expect(throws: TarError.badChecksum(offset: 0, stored: checksumField(good, at: 0), computed: checksumField(good, at: 0) + 2)) {
      try TarReader.entries(of: renamed)
    }
    var resized = good
    resized[1536 + 124 + 10] = UInt8(ascii: "4")  // the second header (after 512 + 1024 bytes): size 3 → 4
    #expect(throws: TarError.badChecksum(offset: 1536, stored: checksumField(good, at: 1536),
                                         computed: checksumField(good, at: 1536) + 1)) {
      try TarReader.entries(of: resized)
    }
    var checksum = good
    checksum[148 + 5] = UInt8(ascii: checksum[148 + 5] == UInt8(ascii: "0") ? "1" : "0")
    #expect(throws: TarError.self) { try TarReader.entries(of: checksum) }
  }

  @Test func truncatedArchivesAreReportedNotShortened() throws {
    let good = try TarTests.archive([TarEntry(path: "a", kind: .regularFile, contents: TarTests.pattern(700)),
                                     TarEntry(path: "b", kind: .regularFile, contents: [1, 2, 3])])
    // Layout: header a at 0, data 512..<1212 padded to 1536, header b at 1536, data at 2048, end at 2560.
    #expect(good.count == 2560 + 1024)
    #expect(throws: TarError.truncated(offset: 0, entry: "a")) { try TarReader.entries(of: Array(good.prefix(1000))) }
    #expect(throws: TarError.truncated(offset: 0, entry: "a")) { try TarReader.entries(of: Array(good.prefix(1300))) }
    #expect(throws: TarError.truncated(offset: 1536, entry: nil)) { try TarReader.entries(of: Array(good.prefix(1700))) }
    #expect(throws: TarError.missingEndMarker(offset: 2560)) { try TarReader.entries(of: Array(good.prefix(2560))) }
    #expect(throws: TarError.missingEndMarker(offset: 2560)) { try TarReader.entries(of: Array(good.prefix(3072))) }
    #expect(throws: TarError.missingEndMarker(offset: 0)) { try TarReader.entries(of: []) }
    #expect(try TarReader.entries(of: good + [UInt8](repeating: 0, count: 10240 - good.count)).count == 2,
            "zero padding up to a record size is fine")
    var trailing = good
    trailing.append(1)
    #expect(throws: TarError.dataAfterEnd(offset: good.count)) { try TarReader.entries(of: trailing) }
  }

  @Test func otherKindsAreReportedByTypeflag() throws {
    let bytes = try TarTests.archive([
      TarEntry(path: "hard", kind: .hardLink(target: "a")),
      TarEntry(path: "fifo", kind: .other(typeflag: UInt8(ascii: "6"))),
      TarEntry(path: "pax", kind: .other(typeflag: UInt8(ascii: "x"))),
    ])
    let kinds = try TarReader.entries(of: bytes).map(\.kind)
    #expect(kinds == [.hardLink(target: "a"), .other(typeflag: UInt8(ascii: "6")), .other(typeflag: UInt8(ascii: "x"))])
    #expect(kinds.map(\.description) == ["hard link to 'a'", "FIFO", "pax extended header"])
  }

  /// The octal checksum stored in the header at `offset`.
  func checksumField(_ bytes: [UInt8], at offset: Int) -> Int {
    Int(String(decoding: bytes[offset + 148..<offset + 154], as: UTF8.self), radix: 8) ?? -1
  }
}
