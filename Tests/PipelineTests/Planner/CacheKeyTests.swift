import ArtifactStore
import Pipeline
import Testing

/// Keys depend on values, never on how a recipe is written.
@Suite struct CacheKeyTests {
  func key(_ text: String, file: String = "a.yaml", extra: [String: String] = [:]) throws -> ContentHash {
    let folder = try RecipeFolder([file: text].merging(extra) { a, _ in a })
    let recipe = try load(folder)
    let s = recipe.stages[0]
    return CacheKeyInputs(op: s.op.name, opVersion: s.op.version, parameters: s.parameters, inputs: [:],
                          files: [:], seed: s.seed).key
  }

  @Test func formattingCommentsAndKeyOrderDoNotChangeTheKey() throws {
    let a = try key("stages:\n  s:\n    op: emit\n    value: 3\n    train: {lr: 0.01, steps: 5}\n")
    let b = try key("""
      # a comment
      stages:
        s:   # the stage
          train:
            steps: 5
            lr: 1e-2
          value: 3
          op: emit
      """)
    #expect(a == b)
  }

  @Test func theStageNameAndFileDoNotChangeTheKey() throws {
    #expect(try key("stages:\n  s: {op: emit}\n") == key("stages:\n  other: {op: emit}\n", file: "b.yaml"))
  }

  @Test func defaultsWrittenOutGiveTheSameKey() throws {
    #expect(try key("stages:\n  s: {op: emit}\n") == key("stages:\n  s: {op: emit, value: 0, train: {lr: 0.001}}\n"))
  }

  @Test func intAndFloatForAFloatParameterAreOneValue() throws {
    #expect(try key("stages:\n  s: {op: emit, train: {lr: 1}}\n") == key("stages:\n  s: {op: emit, train: {lr: 1.0}}\n"))
  }

  @Test func everyValueChangeChangesTheKey() throws {
    let base = try key("stages:\n  s: {op: emit, value: 3}\n")
    #expect(try base != key("stages:\n  s: {op: emit, value: 4}\n"))
    #expect(try base != key("stages:\n  s: {op: emit, value: 3, train: {lr: 0.002}}\n"))
    #expect(try base != key("stages:\n  s: {op: emit, value: 3, seed: 1}\n"))
    #expect(try base != key("stages:\n  s: {op: emit, value: 3, mode: slow, sleep_ms: 1}\n"))
  }

  @Test func opVersionAndInputsEnterTheKey() throws {
    let h1 = ContentHash.of(Array("one".utf8)), h2 = ContentHash.of(Array("two".utf8))
    let base = CacheKeyInputs(op: "emit", opVersion: 1, parameters: .map([:]), inputs: ["from": [h1]], files: [:], seed: 0)
    var other = base
    other.opVersion = 2
    #expect(base.key != other.key)
    other = base
    other.inputs = ["from": [h2]]
    #expect(base.key != other.key)
    other = base
    other.files = ["file": h1]
    #expect(base.key != other.key)
    #expect(base.key == CacheKeyInputs(op: "emit", opVersion: 1, parameters: .map([:]), inputs: ["from": [h1]],
                                       files: [:], seed: 0).key)
  }

  @Test func canonicalTextIsStable() {
    let inputs = CacheKeyInputs(op: "emit", opVersion: 2, parameters: .map(["b": .float(0.5), "a": .int(1)]),
                                inputs: [:], files: [:], seed: 7)
    #expect(inputs.canonicalText
              == "lineage-key-v1\n{\"files\":{},\"inputs\":{},\"op\":\"emit\",\"params\":{\"a\":1,\"b\":0.5},\"seed\":\"7\",\"version\":2}")
  }

  /// The text written directly equals the canonical JSON of the key's document, which is how it was
  /// first defined (and how every key in a committed lockfile was computed).
  @Test func canonicalTextIsTheDocumentsCanonicalJSON() {
    let h1 = ContentHash.of(Array("a".utf8)), h2 = ContentHash.of(Array("b".utf8))
    let cases = [
      CacheKeyInputs(op: "emit", opVersion: 2, parameters: .map([:]), inputs: [:], files: [:], seed: 0),
      CacheKeyInputs(op: "q\"uote\\d", opVersion: -1,
                     parameters: .map(["z": .list([.null, .bool(true), .float(1), .string("é\n\u{1}")]),
                                       "a\"b": .map(["y": .int(-3), "x": .float(.nan)])]),
                     inputs: ["teacher": [h1], "from": [h2, h1, h2], "\u{7}": []],
                     files: ["data.txt": h1, "a\tb": h2], seed: UInt64.max),
    ]
    for inputs in cases {
      let document: ParamValue = .map([
        "files": .map(inputs.files.mapValues { .string($0.hex) }),
        "inputs": .map(inputs.inputs.mapValues { .list($0.map { .string($0.hex) }) }),
        "op": .string(inputs.op),
        "params": inputs.parameters,
        "seed": .string(String(inputs.seed)),
        "version": .int(inputs.opVersion),
      ])
      #expect(inputs.canonicalText == "lineage-key-v1\n" + document.canonicalJSON)
    }
  }
}
