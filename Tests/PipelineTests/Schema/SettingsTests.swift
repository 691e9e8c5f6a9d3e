import Foundation
import Pipeline
import Testing

/// A settings declaration as an op would write one: scalars, an optional, a choice, a list, a map, a
/// nested group and an optional group.
private struct ToySettings: SettingsGroup {
  enum Mode: String, SettingChoice { case fast, slow }
  struct Inner: SettingsGroup {
    var steps = 10
    var rate = 0.003
    static let fields: [SettingField<Self>] = [
      .int("steps", \.steps, range: 1...100, doc: "steps"),
      .float("lr", \.rate, range: 0...1, doc: "rate"),
    ]
  }

  var count = 3
  var width: Int?
  var mode = Mode.fast
  var lengths = [1, 2]
  var weights: [String: Double] = [:]
  var train = Inner()
  var extra: Inner?
  static let fields: [SettingField<Self>] = [
    .int("count", \.count, range: 0...10, doc: "how many"),
    .int("width", \.width, range: 1...64, doc: "optional"),
    .choice("mode", \.mode, doc: "a choice"),
    .ints("lengths", \.lengths, count: 1...4, doc: "a list"),
    .weights("tasks", \.weights, keys: ["qa", "translation"], doc: "weights"),
    .group("train", \.train, doc: "a group"),
    .optionalGroup("extra", \.extra, fieldDefaults: Inner(steps: 5), doc: "an optional group"),
  ]
}

/// An op whose schema comes from `ToySettings`, recording what `run` received.
private struct ToyOp: TypedOperation {
  let name = "toy"
  let version = 1
  let summary = "test op with typed settings"
  let defaults = ToySettings()
  let inputs: [InputSlot] = []
  let outputs = [OutputSpec("data", kind: .dataset, doc: "the settings it read")]

  func problems(in settings: ToySettings) -> [ParameterProblem] {
    settings.mode == .slow && settings.count == 0 ? [ParameterProblem(path: "count", "slow needs a count")] : []
  }

  func run(_ context: StageContext, settings: ToySettings) throws -> StageOutput {
    let text = "\(settings.count) \(settings.width ?? -1) \(settings.mode.rawValue) \(settings.train.steps) \(settings.extra?.steps ?? -1)"
    return StageOutput(artifacts: ["data": Array(text.utf8)])
  }
}

@Suite struct SettingsTests {
  @Test func theDeclarationYieldsTheSchemaWithItsDefaults() throws {
    let specs = ToySettings.specs(defaults: ToySettings())
    #expect(specs.map(\.name) == ["count", "width", "mode", "lengths", "tasks", "train", "extra"])
    #expect(specs[0] == ParameterSpec("count", .int, default: .int(3), range: 0...10, doc: "how many"))
    #expect(specs[1].defaultValue == nil && !specs[1].required, "an optional without a default is left out")
    #expect(specs[2].type == .choice(["fast", "slow"]) && specs[2].defaultValue == .string("fast"))
    #expect(specs[3].defaultValue == .list([.int(1), .int(2)]) && specs[3].range == 1...4)
    #expect(specs[4].type == .map(keys: ["qa", "translation"], values: .float))
    guard case .record(let inner) = specs[5].type else { Issue.record("train is not a record"); return }
    #expect(inner.map(\.defaultValue) == [.int(10), .float(0.003)], "a Double default prints as written")
    #expect(specs[6].defaultValue == .null)
    guard case .record(let extra) = specs[6].type else { Issue.record("extra is not a record"); return }
    #expect(extra[0].defaultValue == .int(5), "an optional group's fields take their own defaults")
  }

  @Test func anOpsDefaultsAreItsSchemasDefaults() {
    var defaults = ToySettings()
    defaults.train.steps = 42
    #expect(ToySettings.specs(defaults: defaults)[5] != ToySettings.specs(defaults: ToySettings())[5])
  }

  @Test func decodingFillsTheTypedValue() throws {
    let value = ParamValue.map([
      "count": .int(7), "width": .int(16), "mode": .string("slow"), "lengths": .list([.int(8)]),
      "tasks": .map(["qa": .int(1)]), "train": .map(["lr": .float(0.5)]), "extra": .map(["lr": .float(0.1)]),
      "corpus": .string("builtin:library"),   // an input slot's literal: not a setting, ignored
    ])
    let s = try ToySettings.decode(value, defaults: ToySettings())
    #expect(s.count == 7 && s.width == 16 && s.mode == .slow && s.lengths == [8] && s.weights == ["qa": 1])
    #expect(s.train.steps == 10 && s.train.rate == 0.5, "missing fields of a group keep their defaults")
    #expect(s.extra?.steps == 5 && s.extra?.rate == 0.1)
    let absent = try ToySettings.decode(.map(["extra": .null]), defaults: ToySettings())
    #expect(absent.extra == nil && absent.width == nil && absent.count == 3)
  }

  @Test func aValueOfTheWrongTypeIsAnErrorNamingItsPath() {
    #expect(throws: SettingsError(path: "train.steps", expected: "an int", found: .string("ten"))) {
      try ToySettings.decode(.map(["train": .map(["steps": .string("ten")])]), defaults: ToySettings())
    }
    #expect(throws: SettingsError(path: "mode", expected: "fast|slow", found: .string("medium"))) {
      try ToySettings.decode(.map(["mode": .string("medium")]), defaults: ToySettings())
    }
  }

  @Test func anUnknownChoiceIsAValidationErrorAtItsPlaceNeverADefault() throws {
    let folder = try RecipeFolder(["s.yaml": "stages:\n  a:\n    op: toy\n    mode: medium\n"])
    let registry = OperationRegistry([ToyOp()])
    #expect(throws: RecipeError.self) { try RecipeLoader(registry: registry).load(directory: folder.path) }
    do {
      _ = try RecipeLoader(registry: registry).load(directory: folder.path)
    } catch {
      let first = try #require(error.diagnostics.first)
      #expect(first.location?.line == 4 && first.location?.column == 11, "\(first)")
      #expect(first.message.contains("medium") && first.message.contains("fast"), "\(first.message)")
    }
  }

  @Test func crossSettingProblemsComeFromTheTypedValue() throws {
    let folder = try RecipeFolder(["s.yaml": "stages:\n  a:\n    op: toy\n    mode: slow\n    count: 0\n"])
    do {
      _ = try RecipeLoader(registry: OperationRegistry([ToyOp()])).load(directory: folder.path)
      Issue.record("a slow toy without a count loaded")
    } catch {
      #expect(error.diagnostics.map(\.message) == ["slow needs a count"])
      #expect(error.diagnostics.first?.location?.line == 5)
    }
  }
}
