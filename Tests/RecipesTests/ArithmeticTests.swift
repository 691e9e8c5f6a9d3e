import Foundation
import Pipeline
import Recipes
import Testing

@Suite struct ArithmeticTests {
  @Test func workedStepsFollowPrecedence() {
    let (steps, answer) = ArithmeticTask.solve([12, 7, 3, 5], ["+", "*", "-"])
    #expect(steps == ["7 * 3 = 21", "12 + 21 = 33", "33 - 5 = 28"])
    #expect(answer == 28)
  }

  @Test func generationIsDeterministicPerSeed() {
    let task = ArithmeticTask(digits: 2, operations: 3)
    var a = TaskRandom(seed: 5, stream: "arithmetic/train"), b = TaskRandom(seed: 5, stream: "arithmetic/train")
    var c = TaskRandom(seed: 6, stream: "arithmetic/train")
    let x = (0..<50).map { _ in task.example(split: .train, using: &a) }
    let y = (0..<50).map { _ in task.example(split: .train, using: &b) }
    let z = (0..<50).map { _ in task.example(split: .train, using: &c) }
    #expect(x == y)
    #expect(x != z)
  }

  @Test func heldOutProblemsNeverAppearInTraining() {
    let task = ArithmeticTask(digits: 1, operations: 1)   // a small space: collisions would show
    for seed in 0..<3 {
      var train = TaskRandom(seed: UInt64(seed), stream: "arithmetic/train")
      var heldout = TaskRandom(seed: UInt64(seed), stream: "arithmetic/heldout")
      let trainPrompts = Set((0..<2000).map { _ in task.example(split: .train, using: &train).prompt })
      let heldoutPrompts = Set((0..<200).map { _ in task.example(split: .heldout, using: &heldout).prompt })
      #expect(trainPrompts.isDisjoint(with: heldoutPrompts))
      #expect(heldoutPrompts.count > 5)
    }
  }

  @Test func answersVerifyAndStepsAreConsistent() {
    let task = ArithmeticTask(digits: 3, operations: 4)
    var rng = TaskRandom(seed: 1, stream: "t")
    for _ in 0..<200 {
      let e = task.example(split: .train, using: &rng)
      #expect(ArithmeticTask.verify(e.answer, for: e))
      #expect(ArithmeticTask.verify(" \(e.answer)\n", for: e))
      #expect(!ArithmeticTask.verify(String((Int(e.answer) ?? 0) + 1), for: e))
      #expect(e.reasoning.split(separator: "\n").last?.hasSuffix("= \(e.answer)") == true)
      #expect(e.reasoning.split(separator: "\n").count == 4)
    }
  }

  @Test func jsonLinesAreValidJSON() throws {
    let e = TaskExample(task: "t", split: .heldout, prompt: "quote \" and \\ and\nnewline", reasoning: "", answer: "ñ")
    let object = try JSONSerialization.jsonObject(with: Data(e.jsonLine.utf8)) as? [String: String]
    #expect(object?["prompt"] == e.prompt)
    #expect(object?["split"] == "heldout")
    #expect(object?["answer"] == "ñ")
  }
}

@Suite struct DatasetOpTests {
  @Test func difficultiesWhoseAnswersWouldOverflowAreRejectedWithAPlace() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-dataset-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try "stages:\n  d:\n    op: dataset\n    generator: arithmetic\n    difficulty: {digits: 6, operations: 8}\n"
      .write(toFile: folder + "/a.yaml", atomically: true, encoding: .utf8)
    do {
      _ = try RecipeLoader(registry: BuiltinOperations.registry).load(directory: folder)
      Issue.record("expected a validation error")
    } catch {
      #expect(error.diagnostics.count == 1)
      #expect(error.diagnostics.first?.message.contains("digits × (operations + 1) is 54") == true)
      #expect(error.diagnostics.first?.location?.line == 5)
    }
  }

  @Test func theLargestAllowedDifficultyStaysExact() {
    let task = ArithmeticTask(digits: 2, operations: 8)
    var rng = TaskRandom(seed: 9, stream: "t")
    for _ in 0..<500 {
      let e = task.example(split: .train, using: &rng)
      #expect(ArithmeticTask.verify(e.answer, for: e))
    }
    let widest = ArithmeticTask(digits: 9, operations: 1)
    let e = widest.example(split: .train, using: &rng)
    #expect(ArithmeticTask.verify(e.answer, for: e))
  }
}
