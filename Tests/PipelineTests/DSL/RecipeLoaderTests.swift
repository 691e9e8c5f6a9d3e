import Foundation
import Pipeline
import Testing

/// The DSL as users write it: every feature, and every mistake reported at its exact place.
@Suite struct RecipeLoaderTests {
  /// Expects exactly one diagnostic, at the marked place, whose message contains `message`.
  func expectOne(_ files: [String: String], at file: String, _ message: String, overrides: [String] = [],
                 sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
    var clean = files
    let mark = marked(files[file]!)
    clean[file] = mark.text
    let folder = try RecipeFolder(clean)
    let found = diagnostics(folder, overrides: overrides, sourceLocation: sourceLocation)
    #expect(found.count == 1, "diagnostics: \(found.map(\.description))", sourceLocation: sourceLocation)
    guard let d = found.first else { return }
    #expect(d.message.contains(message), "message: \(d.message)", sourceLocation: sourceLocation)
    #expect(d.location?.line == mark.line && d.location?.column == mark.column,
            "at \(String(describing: d.location)), expected \(mark.line):\(mark.column)", sourceLocation: sourceLocation)
    #expect(d.location?.file.hasSuffix(file) == true, sourceLocation: sourceLocation)
    #expect(d.sourceLine != nil, "the source line is shown", sourceLocation: sourceLocation)
  }

  @Test func validRecipeResolvesEverything() throws {
    let folder = try RecipeFolder([
      "recipe.yaml": "seed: 5\nvars: {n: 7, name: base}\ndefaults:\n  emit: {train: {steps: 30}}\n",
      "a.yaml": """
        x-common: &common {lr: 0.01}
        stages:
          first:
            op: emit
            doc: "the first"
            value: ${n}
            train: {<<: *common}
          second:
            op: emit
            from: first
            value: 3
            train: {steps: 40}
            tasks: {qa: 0.5, translation: 0.5}
        """,
    ])
    let recipe = try load(folder)
    #expect(recipe.stages.map(\.name) == ["first", "second"])
    let first = recipe.stage("first")!
    #expect(first.parameters["value"] == .int(7))          // whole-value interpolation keeps the type
    #expect(first.parameters[path: "train.lr"] == .float(0.01))
    #expect(first.parameters[path: "train.steps"] == .int(30))   // from defaults
    #expect(first.seed == 5)
    #expect(first.doc == "the first")
    let second = recipe.stage("second")!
    #expect(second.parameters[path: "train.steps"] == .int(40))  // the stage wins over defaults
    #expect(second.parameters[path: "train.lr"] == .float(1e-3)) // schema default
    #expect(second.inputs["from"] == [StageReference(stage: "first", output: "data")])
    #expect(recipe.graph.dependencies[1] == [0])
    if case .defaults = second.origins["train.steps"] { Issue.record("stage value must win") }
    if case .defaults = first.origins["train.steps"]! {} else { Issue.record("origin of train.steps: \(first.origins)") }
    if case .variable("n", _) = first.origins["value"]! {} else { Issue.record("origin of value: \(first.origins)") }
  }

  /// A list or map the stage file writes comes from the stage file, even when it equals the op's
  /// default (`lineage show` printed "op default" for v-eval's `tasks:`).
  @Test func aWrittenListOrMapEqualToTheDefaultComesFromTheStageFile() throws {
    let folder = try RecipeFolder([
      "recipe.yaml": "defaults:\n  report: {lines: [a, b]}\n",
      "a.yaml": """
        stages:
          r: {op: report, lines: [a, b]}
          e: {op: emit, tasks: {}}
          plain: {op: emit}
          fromDefaults: {op: report}
        """,
    ])
    let recipe = try load(folder)
    let r = try #require(recipe.stage("r"))
    #expect(r.parameters["lines"] == .list([.string("a"), .string("b")]))
    if case .stageFile? = r.origins["lines"] {} else { Issue.record("origin of lines: \(String(describing: r.origins["lines"]))") }
    let e = try #require(recipe.stage("e"))
    if case .stageFile? = e.origins["tasks"] {} else { Issue.record("origin of tasks: \(String(describing: e.origins["tasks"]))") }
    let plain = try #require(recipe.stage("plain"))
    if case .schemaDefault? = plain.origins["tasks"] {} else { Issue.record("unwritten tasks: \(String(describing: plain.origins["tasks"]))") }
    let fromDefaults = try #require(recipe.stage("fromDefaults"))
    if case .defaults? = fromDefaults.origins["lines"] {} else {
      Issue.record("lines from recipe.yaml defaults: \(String(describing: fromDefaults.origins["lines"]))")
    }
  }

  @Test func partialInterpolationMakesAString() throws {
    let folder = try RecipeFolder([
      "recipe.yaml": "vars: {size: small, copies: 2}",
      "a.yaml": "stages:\n  s:\n    op: emit\n    file: data-${size}-${copies}.txt\n",
      "data-small-2.txt": "hello",
    ])
    #expect(try load(folder).stage("s")!.parameters["file"] == .string("data-small-2.txt"))
  }

  @Test func matrixExpandsEveryCombination() throws {
    let folder = try RecipeFolder([
      "a.yaml": """
        stages:
          sweep:
            op: emit
            matrix: {lr: [1e-3, 3e-4], v: [1, 2]}
            value: ${matrix.v}
            train: {lr: "${matrix.lr}"}   # in flow style, quote: { and } end a plain scalar
        """,
    ])
    let recipe = try load(folder)
    #expect(recipe.stages.map(\.name) == [
      "sweep@lr=1e-3,v=1", "sweep@lr=1e-3,v=2", "sweep@lr=3e-4,v=1", "sweep@lr=3e-4,v=2",
    ])
    #expect(recipe.stage("sweep@lr=3e-4,v=2")!.parameters[path: "train.lr"] == .float(3e-4))
    #expect(recipe.stage("sweep@lr=3e-4,v=2")!.parameters["value"] == .int(2))
    #expect(try recipe.resolveTargets(["sweep"]).count == 4)
  }

  @Test func overridesApplyWithTypesAndOrigins() throws {
    let folder = try RecipeFolder(["a.yaml": "stages:\n  s:\n    op: emit\n    train: {lr: 0.1}\n"])
    let recipe = try load(folder, overrides: ["s.train.lr=3e-4", "s.value=9", "s.mode=fast"])
    let s = recipe.stage("s")!
    #expect(s.parameters[path: "train.lr"] == .float(3e-4))
    #expect(s.parameters["value"] == .int(9))
    #expect(s.origins["train.lr"] == .override("s.train.lr=3e-4"))
  }

  @Test func literalInputsAndOutputReferences() throws {
    let folder = try RecipeFolder([
      "a.yaml": "stages:\n  d: {op: emit}\n  m:\n    op: train\n    from: d.data\n    tokenizer: bytes\n    steps: 3\n",
    ])
    let m = try load(folder).stage("m")!
    #expect(m.inputs["from"] == [StageReference(stage: "d", output: "data")])
    #expect(m.parameters["tokenizer"] == .string("bytes"))
  }

  // MARK: - Every kind of mistake, at its place

  @Test func unknownKeySuggests() throws {
    try expectOne(["a.yaml": "stages:\n  s:\n    op: emit\n    ⟨⟩trian: {steps: 10}\n"],
                  at: "a.yaml", "unknown key 'trian'; did you mean 'train'?")
  }

  @Test func unknownNestedKey() throws {
    try expectOne(["a.yaml": "stages:\n  s:\n    op: emit\n    train: {lr: 0.1, ⟨⟩stpes: 3}\n"],
                  at: "a.yaml", "unknown key 'train.stpes'; did you mean 'steps'?")
  }

  @Test func unknownOp() throws {
    try expectOne(["a.yaml": "stages:\n  s:\n    op: ⟨⟩emitt\n"], at: "a.yaml", "unknown op 'emitt'; did you mean 'emit'?")
  }

  @Test func missingOp() throws {
    try expectOne(["a.yaml": "stages:\n  ⟨⟩s:\n    value: 1\n"], at: "a.yaml", "stage 's' has no 'op:'")
  }

  @Test func wrongType() throws {
    try expectOne(["a.yaml": "stages:\n  s:\n    op: emit\n    value: ⟨⟩\"ten\"\n"],
                  at: "a.yaml", "'value' must be an int, got the string 'ten'")
  }

  @Test func floatWhereIntExpected() throws {
    try expectOne(["a.yaml": "stages:\n  s:\n    op: emit\n    train: {steps: ⟨⟩2.5}\n"],
                  at: "a.yaml", "'train.steps' must be an int")
  }

  @Test func outOfRange() throws {
    try expectOne(["a.yaml": "stages:\n  s:\n    op: emit\n    train:\n      lr: ⟨⟩3\n"],
                  at: "a.yaml", "'train.lr' must be between 0 and 1, got 3")
  }

  @Test func badChoice() throws {
    try expectOne(["a.yaml": "stages:\n  s:\n    op: emit\n    mode: ⟨⟩fsat\n"],
                  at: "a.yaml", "'mode' must be one of fast, slow, got 'fsat'; did you mean 'fast'?")
  }

  @Test func mapKeyNotAllowed() throws {
    try expectOne(["a.yaml": "stages:\n  s:\n    op: emit\n    tasks: {qa: 0.3, ⟨⟩summary: 0.7}\n"],
                  at: "a.yaml", "unknown key 'tasks.summary'")
  }

  @Test func missingRequiredParameter() throws {
    try expectOne(["a.yaml": "stages:\n  d: {op: emit}\n  ⟨⟩m: {op: train, from: d}\n"],
                  at: "a.yaml", "missing required key 'steps'")
  }

  @Test func missingRequiredInput() throws {
    try expectOne(["a.yaml": "stages:\n  ⟨⟩m: {op: train, steps: 1}\n"], at: "a.yaml", "stage 'm' needs 'from:'")
  }

  @Test func unknownReferenceSuggests() throws {
    try expectOne(["a.yaml": "stages:\n  data: {op: emit}\n  s:\n    op: emit\n    from: ⟨⟩dta\n"],
                  at: "a.yaml", "unknown stage 'dta' in 'from'; did you mean 'data'?")
  }

  @Test func unknownOutput() throws {
    try expectOne(["a.yaml": "stages:\n  data: {op: emit}\n  s:\n    op: emit\n    from: ⟨⟩data.model\n"],
                  at: "a.yaml", "stage 'data' (op emit) has no output 'model'")
  }

  @Test func wrongArtifactKind() throws {
    try expectOne([
      "a.yaml": "stages:\n  d: {op: emit}\n  m: {op: train, from: d, steps: 1}\n  n:\n    op: train\n    steps: 1\n    from: ⟨⟩m\n",
    ], at: "a.yaml", "'from' takes dataset, but 'm.model' is a model")
  }

  @Test func duplicateAcrossFilesNamesBothPlaces() throws {
    let folder = try RecipeFolder(["a.yaml": "stages:\n  s: {op: emit}\n", "b.yaml": "stages:\n  s: {op: emit}\n"])
    let found = diagnostics(folder)
    #expect(found.count == 1)
    #expect(found.first?.message == "duplicate stage 's'")
    #expect(found.first?.location?.file.hasSuffix("b.yaml") == true)
    #expect(found.first?.notes.first?.location?.file.hasSuffix("a.yaml") == true)
    #expect(found.first?.notes.first?.location?.line == 2)
  }

  @Test func cycleIsPrintedAsAPath() throws {
    let folder = try RecipeFolder([
      "a.yaml": "stages:\n  a: {op: emit, from: c}\n  b: {op: emit, from: a}\n  c: {op: emit, from: b}\n",
    ])
    let found = diagnostics(folder)
    #expect(found.count == 1)
    #expect(found.first?.message == "stages depend on each other in a cycle: a → b → c → a"
              || found.first?.message.contains("cycle") == true)
    let path = found.first?.message.components(separatedBy: ": ").last ?? ""
    let names = path.components(separatedBy: " → ")
    #expect(names.count == 4 && names.first == names.last, "a closed path: \(path)")
  }

  @Test func unknownVariableSuggests() throws {
    try expectOne(["recipe.yaml": "vars: {steps: 3}", "a.yaml": "stages:\n  s:\n    op: emit\n    value: ⟨⟩${stesp}\n"],
                  at: "a.yaml", "unknown variable 'stesp'; did you mean 'steps'?")
  }

  @Test func variableCycle() throws {
    let folder = try RecipeFolder(["recipe.yaml": "vars: {a: '${b}', b: '${a}'}", "a.yaml": "stages:\n  s: {op: emit, value: '${a}'}\n"])
    #expect(diagnostics(folder).contains { $0.message.contains("cycle") })
  }

  @Test func crossFieldProblemFromTheOp() throws {
    try expectOne(["a.yaml": "stages:\n  s:\n    op: emit\n    mode: ⟨⟩slow\n"], at: "a.yaml", "mode 'slow' needs sleep_ms > 0")
  }

  @Test func missingFile() throws {
    try expectOne(["a.yaml": "stages:\n  s:\n    op: emit\n    file: ⟨⟩nowhere.txt\n"], at: "a.yaml", "no file or folder 'nowhere.txt'")
  }

  @Test func unknownTopLevelKey() throws {
    try expectOne(["a.yaml": "⟨⟩stage:\n  s: {op: emit}\n"], at: "a.yaml", "unknown top-level key 'stage'")
  }

  @Test func unknownRecipeKey() throws {
    try expectOne(["recipe.yaml": "⟨⟩sed: 3\n", "a.yaml": "stages: {}\n"], at: "recipe.yaml",
                  "unknown key 'sed' in recipe.yaml; did you mean 'seed'?")
  }

  @Test func emptyStageFile() throws {
    try expectOne(["a.yaml": "⟨⟩# nothing here\n"], at: "a.yaml", "stage file is empty")
  }

  @Test func syntaxErrorFromTheParser() throws {
    let folder = try RecipeFolder(["a.yaml": "stages:\n  s: {op: emit\n"])
    let found = diagnostics(folder)
    #expect(found.count == 1)
    #expect(found.first?.location?.line != nil)
  }

  @Test func badOverride() throws {
    let folder = try RecipeFolder(["a.yaml": "stages:\n  s: {op: emit}\n"])
    let found = diagnostics(folder, overrides: ["t.value=3"])
    #expect(found.first?.message.contains("no stage named 't'") == true)
    let typed = diagnostics(folder, overrides: ["s.value=abc"])
    #expect(typed.first?.message == "'value' must be an int, got the string 'abc' (from --set s.value=abc)")
  }

  @Test func allProblemsAreReportedAtOnce() throws {
    let folder = try RecipeFolder([
      "a.yaml": "stages:\n  s: {op: emit, value: x}\n  t: {op: emitt}\n",
      "b.yaml": "stages:\n  u: {op: emit, trian: 1}\n",
    ])
    #expect(diagnostics(folder).count == 3)
  }

  @Test func crlfFilesShowTheLineOfTheDiagnostic() throws {
    let folder = try RecipeFolder(["a.yaml": "stages:\r\n  s:\r\n    op: emit\r\n    trian: {steps: 10}\r\n"])
    let d = try #require(diagnostics(folder).first)
    #expect(d.location?.line == 4 && d.location?.column == 5)
    #expect(d.sourceLine == "    trian: {steps: 10}")
  }

  @Test func renderedDiagnosticShowsLineAndCaret() throws {
    let folder = try RecipeFolder(["a.yaml": "stages:\n  s:\n    op: emit\n    trian: {steps: 10}\n"])
    let text = diagnostics(folder).first!.rendered()
    let lines = text.split(separator: "\n").map(String.init)
    #expect(lines[0].hasSuffix("a.yaml:4:5: error: unknown key 'trian'; did you mean 'train'?"))
    #expect(lines[1] == "    trian: {steps: 10}")
    #expect(lines[2] == "    ^")
  }
}
