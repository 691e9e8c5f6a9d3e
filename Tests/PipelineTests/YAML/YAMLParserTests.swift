import Foundation
import Pipeline
import Testing

@Suite struct YAMLParserTests {
  func parse(_ text: String, limits: YAMLLimits = .default) throws -> YAMLNode? {
    try YAMLParser.parse(Array(text.utf8), file: "t.yaml", limits: limits)
  }

  func error(_ text: String, limits: YAMLLimits = .default, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> YAMLError? {
    do {
      _ = try YAMLParser.parse(Array(text.utf8), file: "t.yaml", limits: limits)
      Issue.record("expected an error", sourceLocation: sourceLocation)
      return nil
    } catch {
      return error
    }
  }

  @Test(arguments: [
    ("7", YAMLScalar.int(7)), ("-12", .int(-12)), ("+3", .int(3)), ("0x1F", .int(31)), ("0o17", .int(15)),
    ("0.4", .float(0.4)), ("1e-3", .float(0.001)), ("3e-4", .float(0.0003)), ("1.5E+2", .float(150)), (".5", .float(0.5)),
    ("-.inf", .float(-.infinity)), ("true", .bool(true)), ("FALSE", .bool(false)), ("~", .null), ("null", .null),
    ("yes", .string("yes")), ("1_000", .string("1_000")), ("\"1e-3\"", .string("1e-3")), ("'7'", .string("7")),
    ("hello world", .string("hello world")), ("1e", .string("1e")), ("!!str 5", .string("5")), ("!!float 2", .float(2)),
  ])
  func scalarsResolve(text: String, expected: YAMLScalar) throws {
    let node = try #require(try parse("v: \(text)\n"))
    #expect(node["v"]?.content == .scalar(expected))
  }

  @Test func rawTextIsKept() throws {
    #expect(try parse("v: 3e-4")?["v"]?.raw == "3e-4")
  }

  @Test func locationsAreOneBased() throws {
    let node = try #require(try parse("a:\n  b: [1, 2]\n"))
    let b = try #require(node["a"]?["b"])
    #expect(b.location == SourceLocation(file: "t.yaml", line: 2, column: 6))
    guard case .sequence(let items) = b.content else { Issue.record("a list"); return }
    #expect(items[1].location.column == 10)
  }

  @Test func emptyDocumentIsNil() throws {
    #expect(try parse("") == nil)
    #expect(try parse("# only a comment\n") == nil)
  }

  @Test func integerOverflowIsAnError() {
    #expect(error("v: 99999999999999999999\n")?.message == "integer 99999999999999999999 does not fit in 64 bits")
  }

  @Test func duplicateKeysNameBothPlaces() {
    let e = error("a: 1\nb: 2\na: 3\n")
    #expect(e?.message == "duplicate key 'a'")
    #expect(e?.location.line == 3)
    #expect(e?.noteLocation?.line == 1)
  }

  @Test func mergeKeysLetOwnKeysWin() throws {
    let node = try #require(try parse("""
      base: &b {x: 1, y: 2}
      other: &o {y: 20, z: 30}
      m:
        <<: [*b, *o]
        x: 100
      """))
    let m = try #require(node["m"])
    #expect(m["x"]?.int == 100)
    #expect(m["y"]?.int == 2)      // earlier merged maps win over later ones
    #expect(m["z"]?.int == 30)
  }

  @Test func mergingANonMapIsAnError() {
    let e = error("a: &a 3\nb:\n  <<: *a\n")
    #expect(e?.message.contains("'<<' merges maps") == true)
    #expect(e?.location.line == 3)
  }

  @Test func aliasesExpand() throws {
    let node = try #require(try parse("a: &x [1, 2]\nb: *x\n"))
    #expect(node["b"]?.content == node["a"]?.content)
  }

  @Test func unknownAliasIsAnError() {
    let e = error("a: *nope\n")
    #expect(e?.message.contains("unknown alias '*nope'") == true || e?.location.line == 1)
  }

  @Test func billionLaughsIsRefusedQuickly() {
    var text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i in 1...30 {
      text += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n"
    }
    let start = Date()
    let e = error(text)
    #expect(e?.message == "document too large after expanding aliases (more than 200000 nodes)")
    #expect(Date().timeIntervalSince(start) < 2)
  }

  @Test func deepNestingIsRefused() {
    let start = Date()
    let e = error(String(repeating: "[", count: 100_000))
    #expect(e?.message == "nesting deeper than 64 levels")
    #expect(e?.location.column == 65)
    #expect(Date().timeIntervalSince(start) < 2)
  }

  @Test func tabsForIndentationAreExplained() {
    let e = error("a:\n\tb: 1\n")
    #expect(e?.message == "tab characters are not allowed for indentation; use spaces")
    #expect(e?.location.line == 2 && e?.location.column == 1)
  }

  @Test func invalidUTF8IsLocated() {
    var bytes = Array("a: ok\nb: ".utf8)
    bytes += [0xC3, 0x28, 0x0A]
    do {
      _ = try YAMLParser.parse(bytes, file: "t.yaml")
      Issue.record("expected an error")
    } catch {
      #expect(error.message.hasPrefix("invalid UTF-8"))
      #expect(error.location.line == 2)
    }
  }

  @Test func oneDocumentPerFile() {
    #expect(error("a: 1\n---\nb: 2\n")?.location.line == 2)
  }

  @Test func oversizedFilesAreRefused() {
    let e = error(String(repeating: "a", count: 100), limits: YAMLLimits(maxBytes: 10))
    #expect(e?.location.line == 1 && e?.location.column == 1)
  }

  @Test func anUnclosedFlowListPointsAtItsOpener() {
    // libyaml notices the problem on line 2; the fix goes where the '[' is.
    let e = error("a: [1, 2\nb: 3\n")
    #expect(e?.message == "this '[' is never closed: add ']' (or a ',' is missing before line 2)")
    #expect(e?.location.line == 1 && e?.location.column == 4)
  }

  @Test func unsupportedTagsAreRefused() {
    #expect(error("a: !python/object 3\n")?.message.contains("unsupported tag") == true)
  }

  @Test func unicodeSurvives() throws {
    #expect(try parse("s: \"¿Dónde está el niño? 🦙\"")?["s"]?.string == "¿Dónde está el niño? 🦙")
  }
}

@Suite struct YAMLRobustnessTests {
  static let stageFile = """
    x-train: &train {steps: 800, batch: 16}
    stages:
      v1:
        op: pretrain
        doc: "Foundational transformer"
        model: {d_model: "${d}", layers: 4, heads: 4, context: 256}
        train: {<<: *train, lr: 3e-3, warmup: 50}
      v2:
        op: multitask
        from: v1
        tasks: {translation: 0.4, qa: 0.3, summarization: 0.3}
        notes: |
          a block scalar
          over two lines
    """

  /// SplitMix64, enough to make the mutations reproducible.
  struct Mutator {
    var state: UInt64
    mutating func next(_ bound: Int) -> Int {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return Int((z ^ (z >> 31)) % UInt64(bound))
    }
  }

  /// Seeded mutations of a valid stage file each either parse or fail with an error located inside the
  /// text: never a crash, a hang, or a place that is not there.
  @Test func mutatedFilesFailCleanlyWithLocationsInsideTheText() {
    let original = Array(YAMLRobustnessTests.stageFile.unicodeScalars)
    let alphabet = Array(":-[]{},#&*!|>'\"\t\n ?%@`<x1é".unicodeScalars)
    var random = Mutator(state: 42)
    var failures = 0
    for _ in 0..<400 {
      var scalars = original
      for _ in 0...random.next(3) {
        let at = random.next(scalars.count)
        switch random.next(3) {
        case 0: scalars.remove(at: at)
        case 1: scalars.insert(alphabet[random.next(alphabet.count)], at: at)
        default: scalars[at] = alphabet[random.next(alphabet.count)]
        }
      }
      var text = ""
      text.unicodeScalars.append(contentsOf: scalars)
      let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
      do {
        _ = try YAMLParser.parse(text, file: "fuzz.yaml")
      } catch {
        failures += 1
        let line = error.location.line
        #expect(line >= 1 && line <= lines.count, "\(error) in\n\(text)")
        if line >= 1 && line <= lines.count {
          #expect(error.location.column >= 1 && error.location.column <= lines[line - 1].count + 1, "\(error) in\n\(text)")
        }
        #expect(!error.message.isEmpty)
      }
    }
    #expect(failures > 50, "the mutations do break the file, often")
  }

  @Test(arguments: [("a:\n\tb: 1\n", 2, 1), ("a:\n  b: 1\n  \tc: 2\n", 3, 3), ("stages:\n  v1:\n\t\top: x\n", 3, 1),
                    ("- a\n\t- b\n", 2, 1), ("a:\n \tb: 1\n", 2, 2)])
  func tabsUsedForIndentationSaySo(text: String, line: Int, column: Int) {
    do {
      _ = try YAMLParser.parse(text, file: "t.yaml")
      Issue.record("expected an error")
    } catch {
      #expect(error.message == "tab characters are not allowed for indentation; use spaces", "\(error)")
      #expect(error.location.line == line && error.location.column == column, "\(error)")
    }
  }

  @Test func tabsAreFineWhereYAMLAllowsThem() throws {
    let root = try #require(try YAMLParser.parse("a:\t1\nb: [1,\t2]\nc: \"x\ty\"\n", file: "t.yaml"))
    #expect(root["a"]?.int == 1)
    #expect(root["c"]?.string == "x\ty")
  }
}
