import ArtifactStore
import Foundation
@testable import Pipeline
import Testing

/// `Lockfile.parse` reads what Lineage writes through `LockfileFastReader` and everything else through
/// libyaml: whichever path a file takes, the result (or the failure) must be the general parser's.
@Suite struct LockfileFastReaderTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  /// Both readers agree: equal lockfiles, or both refuse.
  func expectSameBothWays(_ bytes: [UInt8], _ name: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    let fast = Result { () throws(RecipeError) -> Lockfile in try Lockfile.parse(bytes, file: name) }
    let general = Result { () throws(RecipeError) -> Lockfile in try Lockfile.parseGeneral(bytes, file: name) }
    switch (fast, general) {
    // Compared as written: NaN metrics make equal lockfiles unequal as values.
    case (.success(let a), .success(let b)):
      #expect(a.rendered() == b.rendered(), "\(name) reads differently", sourceLocation: sourceLocation)
    case (.failure(let a), .failure(let b)):
      #expect(a.diagnostics == b.diagnostics, "\(name)", sourceLocation: sourceLocation)
    default: Issue.record("\(name): one reader accepts what the other refuses", sourceLocation: sourceLocation)
    }
  }

  /// Every lockfile in the repository, and the lockfile fuzzer's corpus (hand-made and crashing inputs).
  static var files: [(name: String, bytes: [UInt8])] {
    let manager = FileManager.default
    var out: [(String, [UInt8])] = []
    var paths = ["Stages/lineage.lock"]
    for example in (try? manager.contentsOfDirectory(atPath: root.path + "/Examples")) ?? [] {
      paths.append("Examples/\(example)/lineage.lock")
    }
    for input in (try? manager.contentsOfDirectory(atPath: root.path + "/Tests/FuzzCorpus/lockfile")) ?? [] {
      paths.append("Tests/FuzzCorpus/lockfile/\(input)")
    }
    for path in paths {
      if let data = manager.contents(atPath: root.path + "/" + path) { out.append((path, Array(data))) }
    }
    return out
  }

  @Test func theRepositorysLockfilesAndTheFuzzCorpusReadTheSameBothWays() {
    let files = Self.files
    #expect(files.count > 10)
    for (name, bytes) in files { expectSameBothWays(bytes, name) }
  }

  @Test func theFastReaderTakesWhatLineageWrites() throws {
    // Otherwise every read would quietly take the slow path.
    for (name, bytes) in Self.files where name.hasSuffix("lineage.lock") {
      #expect(LockfileFastReader.lockfile(bytes) != nil, "\(name)")
    }
    let h = ContentHash.of(Array("x".utf8))
    var lock = Lockfile()
    for i in 0..<2_000 {
      lock.stages["stage-\(i)"] = .init(
        op: "emit", opVersion: 1, key: h, seed: UInt64(i),
        parameters: .map(["lr": .float(1e-3 * Double(i)), "name": .string("s \"\(i)\"\n\u{7F}é"), "n": .int(-i),
                          "on": .bool(i % 2 == 0), "none": .null, "list": .list([.int(1), .list([]), .map([:]), .float(.nan)]),
                          "nested": .map(["1": .map(["x": .float(-.infinity)])])]),
        inputs: i == 0 ? [:] : ["from": [.init(reference: StageReference(stage: "stage-\(i - 1)", output: "data"), hash: h)]],
        files: ["data.txt": h], outputs: ["data": ArtifactRef(hash: h, size: i, kind: "dataset")],
        metrics: ["loss": 1 / Double(i + 1), "nan": .nan])
    }
    let bytes = Array(lock.rendered().utf8)
    #expect(LockfileFastReader.lockfile(bytes) != nil)
    expectSameBothWays(bytes, "big.lock")
    // Round trip, exactly: read and written again, the same bytes (NaN metrics compare unequal as values).
    #expect(try Lockfile.parse(bytes, file: "big.lock").rendered() == lock.rendered(), "the round trip changed the lockfile")
  }

  @Test func handEditedAndDamagedLockfilesTakeTheGeneralPath() throws {
    let text = Lockfile(stages: ["a": .init(op: "emit", opVersion: 1, key: ContentHash.of([1]), seed: 0,
                                            parameters: .map(["x": .int(1)]), inputs: [:], files: [:],
                                            outputs: ["data": ArtifactRef(hash: ContentHash.of([2]), size: 1, kind: "dataset")],
                                            metrics: [:])]).rendered()
    let edits = [
      text.replacingOccurrences(of: "    op: ", with: "    # edited by hand\n    op: "),   // a comment inside
      text.replacingOccurrences(of: "\n    ", with: "\n        "),                        // other indentation
      text.replacingOccurrences(of: "op: \"emit\"", with: "op: emit"),                    // a plain string
      text.replacingOccurrences(of: "x: 1", with: "x: 1\n      x: 2"),                    // a duplicate key
      text.replacingOccurrences(of: "op_version: 1", with: "op_version: one"),           // a wrong type
      String(text.dropLast(45)),                                                          // truncated mid-line
      "\u{FEFF}" + text,                                                                  // a byte-order mark
      "version: 1\nstages:\n",                                                             // null stages
      text + "   ",                                                                       // spaces at the end
      text.replacingOccurrences(of: "        hash: ", with: "        hashed: "),          // an output without its hash
      text.replacingOccurrences(of: "x: 1", with: "99999999999999999999: 1"),           // a key beyond 64 bits
      text.replacingOccurrences(of: "x: 1", with: "1e3: 1\n      on: 2.50\n      -7: -0x1F"),  // keys read as text
    ]
    for (i, edited) in edits.enumerated() {
      let bytes = Array(edited.utf8)
      // Not what Lineage writes: a comment, a duplicate key, a value of the wrong type, a truncated
      // file, a byte-order mark, null stages, trailing spaces, an output without its hash, a key
      // the general parser refuses.
      if [0, 3, 4, 5, 6, 7, 8, 9, 10].contains(i) { #expect(LockfileFastReader.lockfile(bytes) == nil, "edit \(i)") }
      expectSameBothWays(bytes, "edit \(i)")
    }
    #expect(try Lockfile.parse(Array(edits[0].utf8), file: "edit").stages["a"]?.op == "emit")
    #expect(try Lockfile.parse(Array(edits[2].utf8), file: "edit").stages["a"]?.op == "emit")
    #expect(LockfileFastReader.lockfile(Array(edits[11].utf8)) != nil)
    #expect(try Lockfile.parse(Array(edits[11].utf8), file: "edit").stages["a"]?.parameters
              == .map(["1e3": .int(1), "on": .float(2.5), "-7": .string("-0x1F")]))
  }
}
