import Pipeline
import Testing

/// A generated sweep puts every stage in one `stages:` map: a duplicate key must still be found, at its
/// place, and the check must not grow with the square of the keys (the 10,000-key case below took
/// seconds when every key was compared with every earlier one; timing itself lives in `lineage bench`).
@Suite struct LargeMappingTests {
  @Test func aDuplicateAmongTenThousandKeysIsFoundWhereItIsWritten() throws {
    var text = "stages:\n"
    for i in 0..<10_000 { text += "  s\(i): {op: dataset, seed: \(i)}\n" }
    text += "  s4321: {op: dataset}\n"  // line 10,002
    do {
      _ = try YAMLParser.parse(text, file: "big.yaml")
      Issue.record("a duplicate key was not found")
    } catch {
      #expect(error.message == "duplicate key 's4321'")
      #expect(error.location == SourceLocation(file: "big.yaml", line: 10_002, column: 3))
      #expect(error.noteLocation == SourceLocation(file: "big.yaml", line: 4_323, column: 3))
    }
  }

  @Test func equalKeysWrittenDifferentlyAreStillDuplicates() {
    // The hashed lookup compares resolved values, as the pairwise check did: 0x10 and 16 are one key,
    // "16" (a string) is another.
    #expect(throws: YAMLError.self) { _ = try YAMLParser.parse("a:\n  0x10: 1\n  16: 2\n", file: "k.yaml") }
    #expect((try? YAMLParser.parse("a:\n  \"16\": 1\n  16: 2\n", file: "k.yaml")) != nil)
  }

  @Test func aLargeFileWrittenOutIsNotTakenForAnAliasBomb() throws {
    // 250,000 nodes in 3 MB: over the 200,000-node cap of small files, under one node per byte.
    var text = "stages:\n"
    for i in 0..<50_000 { text += "  s\(i): {a: 1, b: 2}\n" }
    #expect(text.utf8.count < 4 << 20)
    #expect(try YAMLParser.parse(text, file: "big.yaml") != nil)
  }
}
