import ArtifactStore
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
}
