import ArtifactStore
import Foundation
import Pipeline
import Testing

@Suite struct LockfileTests {
  func sample() -> Lockfile {
    let h = ContentHash.of(Array("x".utf8))
    return Lockfile(stages: [
      "b@lr=1e-3": .init(op: "emit", opVersion: 2, key: h, seed: 18_446_744_073_709_551_615,
                         parameters: .map(["lr": .float(1e-3), "name": .string("true"), "n": .int(3),
                                           "tags": .list([.string("a"), .string("b: c")]),
                                           "nested": .map(["deep": .map(["x": .float(0.5)])])]),
                         inputs: ["from": [.init(reference: StageReference(stage: "a", output: "data"), hash: h)]],
                         files: ["file": h], outputs: ["data": ArtifactRef(hash: h, size: 12, kind: "dataset")],
                         metrics: ["loss": 0.25]),
      "a": .init(op: "emit", opVersion: 1, key: h, seed: 0, parameters: .map([:]), inputs: [:], files: [:],
                 outputs: ["data": ArtifactRef(hash: h, size: 1, kind: "dataset")], metrics: [:]),
    ])
  }

  @Test func roundTripsExactly() throws {
    let lock = sample()
    let text = lock.rendered()
    let folder = try RecipeFolder(["lineage.lock": text])
    #expect(try Lockfile.read(directory: folder.path) == lock)
  }

  @Test func renderingIsStableAndSorted() {
    let text = sample().rendered()
    #expect(text == sample().rendered())
    let a = text.range(of: "\n  a:\n")!, b = text.range(of: "\n  \"b@lr=1e-3\":\n")!
    #expect(a.lowerBound < b.lowerBound)
  }

  @Test func truncatedOrEditedLockfilesAreReportedWithAPlace() throws {
    let text = sample().rendered()
    let truncated = String(text.prefix(text.count * 2 / 3))
    let folder = try RecipeFolder(["lineage.lock": truncated])
    #expect(throws: RecipeError.self) { _ = try Lockfile.read(directory: folder.path) }
    try folder.write("lineage.lock", text.replacingOccurrences(of: "op_version: 2", with: "op_version: two"))
    do {
      _ = try Lockfile.read(directory: folder.path)
      Issue.record("an edited lockfile must be rejected")
    } catch {
      #expect(error.diagnostics.first?.location != nil)
    }
  }

  // MARK: - Round trips that broke the lockfile fuzz target (inputs: Tests/FuzzCorpus/lockfile/crash-*)

  /// Writes `lock` and reads it back; the value must be the one written.
  func expectRoundTrip(_ lock: Lockfile, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    let text = lock.rendered()
    do {
      let again = try Lockfile.parse(Array(text.utf8), file: "lineage.lock")
      #expect(again == lock, "read back:\n\(again.rendered())\nwritten:\n\(text)", sourceLocation: sourceLocation)
    } catch {
      Issue.record("the written lockfile does not read back: \(error.diagnostics)\n\(text)", sourceLocation: sourceLocation)
    }
  }

  /// A lockfile with one stage `name`, whose parameters, output, file, input slot and metric are given.
  func lock(stage name: String = "s", parameters: ParamValue = .map([:]), output: String = "data",
            file: String? = nil, slot: String? = nil, metric: String? = nil) -> Lockfile {
    let h = ContentHash.of(Array("x".utf8))
    return Lockfile(stages: [name: .init(
      op: "emit", opVersion: 1, key: h, seed: 1, parameters: parameters,
      inputs: slot.map { [$0: [.init(reference: StageReference(stage: "a", output: "data"), hash: h)]] } ?? [:],
      files: file.map { [$0: h] } ?? [:], outputs: [output: ArtifactRef(hash: h, size: 1, kind: "dataset")],
      metrics: metric.map { [$0: 0.5] } ?? [:])])
  }

  /// A parameter holding a literal `${` (written `$${` in the stage file) is recorded as it was
  /// resolved; reading the lockfile must not interpolate it again (it used to read back as null).
  @Test func aParameterWithALiteralDollarBraceReadsBackAsWritten() {
    expectRoundTrip(lock(parameters: .map(["template": .string("${name}"), "both": .string("a ${x} and $${y}"),
                                           "list": .list([.string("${z}")])])))
  }

  /// Characters YAML reads as line breaks (NEL, LS, PS) would be folded into spaces inside a quoted
  /// string, and those it does not accept raw (DEL, C1 controls, U+FFFE/U+FFFF) would make the file
  /// unreadable: the writer escapes them, in values and in names.
  @Test func stringsWithLineBreaksAndControlCharactersReadBackAsWritten() {
    let odd = ["nel\u{85}", "ls\u{2028}", "ps\u{2029}", "del\u{7F}", "c1\u{80}\u{9F}", "bom\u{FEFF}",
               "nonchar\u{FFFE}\u{FFFF}", "nul\u{0}", "esc\u{1B}", "cr\r lf\n tab\t", "😀 漢字 é"]
    for text in odd {
      expectRoundTrip(lock(parameters: .map(["p": .string(text), text: .int(1)])))
      expectRoundTrip(lock(stage: text, output: text, file: text, slot: text, metric: text))
    }
  }

  /// Names that YAML would read as numbers (`.inf`, `0o17`) are written so that they read back as
  /// the same names: output, file, input slot and metric names used to be dropped or refused.
  @Test func namesThatLookLikeNumbersReadBackAsNames() {
    for name in [".inf", "-.inf", ".NaN", "0o17", "0x1F", "1e5", "-1", "Null", "~", "TRUE", "-", "<<"] {
      expectRoundTrip(lock(stage: name, parameters: .map([name: .string(name)]), output: name, file: name,
                           slot: name, metric: name))
    }
  }

  /// YAML reads a key written before `:` only up to 1024 characters; longer names (a matrix stage over
  /// long strings) must still read back, wherever they appear.
  @Test func veryLongNamesReadBack() {
    for count in [999, 1000, 1100, 3000] {
      let long = String(repeating: "k", count: count - 1) + "é"
      let parameters = ParamValue.map([long: .map([long: .int(1)]), "list": .list([.map([long: .int(2), "a": .int(3)]),
                                                                                   .list([.map([long: .string(long)])])]),
                                       "first": .list([.map([long: .map(["b": .int(4)])]), .int(5)])])
      expectRoundTrip(lock(stage: long, parameters: parameters, output: long, file: long, slot: long, metric: long))
    }
  }

  /// The default recipe's lockfile, read and written again, is the same bytes: the writer's escaping and
  /// key quoting changed only for names and strings that did not read back before.
  @Test func theDefaultRecipesLockfileIsWrittenAsItIs() throws {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Stages/lineage.lock").path
    let bytes = try #require(FileManager.default.contents(atPath: path))
    #expect(try Lockfile.parse(Array(bytes), file: path).rendered() == String(decoding: bytes, as: UTF8.self))
  }
}
