/// `word_arithmetic`: arithmetic asked in English or Spanish and worked out in words of the prompt's
/// language, the answer in digits (pass@1): reasoning with words, which the `language` reward can read.
///
/// ```
/// What is 3 times 8 plus 5?               ¿Cuánto es 3 por 8 más 5?
/// three times eight is twenty-four        tres por ocho son veinticuatro
/// twenty-four plus five is twenty-nine    veinticuatro más cinco son veintinueve
/// → 29                                    → 29
/// ```
///
/// Operands are single digits and there are at most two operations, so every number written in words
/// stays under a thousand. A share of the Spanish training prompts come with English steps
/// (`englishReasoning`), so a model trained on them drifts into English reasoning on Spanish prompts;
/// the language reward, and the mixed-language share `rl` reports on held-out Spanish prompts
/// (`responseProbes`), see it.
///
/// The split is the expression's, decided on exactly the text `arithmetic` asks (`What is 3 * 8 + 5?`):
/// a problem held out there is held out here in both languages, so neither task trains on the other's
/// held-out problems, and a Spanish prompt never trains what its English twin is scored on.
struct WordArithmeticTask: BilingualTask, ProbedTask {
  /// Operations per problem (1 or 2).
  var operations: Int
  /// The share of prompts in Spanish (the rest are English).
  var spanishShare: Double
  /// The share of Spanish training prompts whose worked steps are English, as in data whose prompts
  /// were translated and whose reasoning traces were not. A model trained on them answers some Spanish
  /// prompts with English reasoning: the language mixing the `language` reward is there to remove.
  /// Held-out examples are always written in their prompt's language.
  var englishReasoning: Double

  init(operations: Int = 2, spanishShare: Double = 0.5, englishReasoning: Double = 0.3) {
    precondition((1...2).contains(operations), "1 or 2 operations keep every number under a thousand")
    precondition((0...1).contains(spanishShare) && (0...1).contains(englishReasoning))
    self.operations = operations
    self.spanishShare = spanishShare
    self.englishReasoning = englishReasoning
  }

  static let name = "word_arithmetic"
  var name: String { WordArithmeticTask.name }
  var metric: TaskMetric { .verified }

  /// How each language asks, names the operations and states a result.
  struct Phrasing: Sendable {
    var language: PromptLanguage
    var question: String
    var operations: [Character: String]

    static let english = Phrasing(language: .english, question: "What is ",
                                  operations: ["+": "plus", "-": "minus", "*": "times"])
    static let spanish = Phrasing(language: .spanish, question: "¿Cuánto es ",
                                  operations: ["+": "más", "-": "menos", "*": "por"])

    func number(_ n: Int) -> String {
      switch language {
      case .english: return NumberWords.english(n)
      case .spanish: return NumberWords.spanish(n)
      }
    }

    /// The verb before a result: "is"; "son" ("tres por ocho son veinticuatro"), but "es" for zero and
    /// one ("dos menos dos es cero").
    func equals(_ result: Int) -> String {
      switch language {
      case .english: return "is"
      case .spanish: return abs(result) <= 1 ? "es" : "son"
      }
    }

    /// `What is 3 times 8 plus 5?`: digits, the operations in words.
    func prompt(_ operands: [Int], _ operators: [Character]) -> String {
      var text = question + String(operands[0])
      for (op, value) in zip(operators, operands.dropFirst()) { text += " \(operations[op]!) \(value)" }
      return text + "?"
    }

    /// `three times eight is twenty-four`.
    func step(_ step: WordArithmeticTask.Step) -> String {
      "\(number(step.left)) \(operations[step.operation]!) \(number(step.right)) \(equals(step.result)) \(number(step.result))"
    }
  }

  // MARK: - TaskGenerator

  func example(split: Split, using rng: inout TaskRandom) -> TaskExample {
    while true {
      let operands = (0...operations).map { _ in Int.random(in: 0..<10, using: &rng) }
      let operators = (0..<operations).map { _ in (["+", "-", "*"] as [Character]).randomElement(using: &rng)! }
      guard Split.of(problem: "What is " + ArithmeticTask.render(operands, operators) + "?") == split else { continue }
      let phrasing = Double.random(in: 0..<1, using: &rng) < spanishShare ? Phrasing.spanish : Phrasing.english
      let steps = WordArithmeticTask.steps(operands, operators)
      var reasoning = phrasing
      if phrasing.language == .spanish && split == .train && Double.random(in: 0..<1, using: &rng) < englishReasoning {
        reasoning = .english
      }
      return TaskExample(task: name, split: split, prompt: phrasing.prompt(operands, operators),
                         reasoning: steps.map(reasoning.step).joined(separator: "\n"),
                         answer: String(steps.last!.result))
    }
  }

  func score(_ answer: String, for example: TaskExample) -> Double {
    ArithmeticTask.verify(answer, for: example) ? 1 : 0
  }

  func language(of example: TaskExample) -> PromptLanguage {
    example.prompt.hasPrefix(Phrasing.spanish.question) ? .spanish : .english
  }

  /// Pass@1 on every held-out prompt (`word_arithmetic`), and on Spanish ones the share of responses
  /// whose reasoning stays in Spanish (`word_arithmetic_es`, the language-consistency column).
  var evaluationParts: [EvaluationPart] {
    [EvaluationPart(column: name, generator: self),
     EvaluationPart(column: "word_arithmetic_es",
                    generator: SpanishReasoning(spanish: WordArithmeticTask(operations: operations, spanishShare: 1,
                                                                           englishReasoning: englishReasoning)))]
  }

  /// Held-out Spanish prompts, on which `rl` reports the share of mixed-language reasoning.
  var responseProbes: [ResponseProbe] {
    [ResponseProbe(measure: .mixedLanguage,
                   prompts: WordArithmeticTask(operations: operations, spanishShare: 1, englishReasoning: englishReasoning))]
  }

  // MARK: - Steps

  /// One operation of the worked solution: `left operation right = result`.
  struct Step: Equatable {
    var left: Int
    var operation: Character
    var right: Int
    var result: Int
  }

  /// The steps `ArithmeticTask.solve` writes, as numbers: every `*` left to right, then `+` and `-`.
  static func steps(_ operands: [Int], _ operators: [Character]) -> [Step] {
    var values = operands, ops = operators, steps: [Step] = []
    func apply(_ i: Int) {
      let (a, b) = (values[i], values[i + 1])
      let result = ops[i] == "*" ? a * b : ops[i] == "+" ? a + b : a - b
      steps.append(Step(left: a, operation: ops[i], right: b, result: result))
      values.replaceSubrange(i...i + 1, with: [result])
      ops.remove(at: i)
    }
    while let i = ops.firstIndex(of: "*") { apply(i) }
    while !ops.isEmpty { apply(0) }
    return steps
  }
}

/// Integers of magnitude under a thousand in English and Spanish words.
enum NumberWords {
  private static let englishOnes = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                                    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                                    "eighteen", "nineteen"]
  private static let englishTens = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

  /// `twenty-four`, `seven hundred twenty-nine`, `minus seven`.
  static func english(_ n: Int) -> String {
    precondition(abs(n) < 1000, "number words go up to 999")
    if n < 0 { return "minus " + english(-n) }
    if n < 20 { return englishOnes[n] }
    if n < 100 { return englishTens[n / 10] + (n % 10 == 0 ? "" : "-" + englishOnes[n % 10]) }
    return englishOnes[n / 100] + " hundred" + (n % 100 == 0 ? "" : " " + english(n % 100))
  }

  /// Spanish writes 16–29 as one word, with accents where the stress needs one.
  private static let spanishUnder30 = [
    "cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez", "once", "doce", "trece",
    "catorce", "quince", "dieciséis", "diecisiete", "dieciocho", "diecinueve", "veinte", "veintiuno", "veintidós",
    "veintitrés", "veinticuatro", "veinticinco", "veintiséis", "veintisiete", "veintiocho", "veintinueve",
  ]
  private static let spanishTens = ["", "", "", "treinta", "cuarenta", "cincuenta", "sesenta", "setenta", "ochenta", "noventa"]
  private static let spanishHundreds = ["", "ciento", "doscientos", "trescientos", "cuatrocientos", "quinientos",
                                        "seiscientos", "setecientos", "ochocientos", "novecientos"]

  /// `veinticuatro`, `setecientos veintinueve`, `cien`, `menos siete`.
  static func spanish(_ n: Int) -> String {
    precondition(abs(n) < 1000, "number words go up to 999")
    if n < 0 { return "menos " + spanish(-n) }
    if n < 30 { return spanishUnder30[n] }
    if n < 100 { return spanishTens[n / 10] + (n % 10 == 0 ? "" : " y " + spanishUnder30[n % 10]) }
    if n == 100 { return "cien" }
    return spanishHundreds[n / 100] + (n % 100 == 0 ? "" : " " + spanish(n % 100))
  }
}

/// The Spanish prompts of `word_arithmetic`, scored by whether the response's reasoning stays in
/// Spanish (1) or mixes in English (0, `ResponseMeasures.isMixedLanguage`): `eval`'s language
/// consistency, the complement of `rl`'s mixed-language share.
struct SpanishReasoning: TaskGenerator {
  let spanish: WordArithmeticTask

  var name: String { spanish.name }
  var metric: TaskMetric { .languageConsistency }

  func example(split: Split, using rng: inout TaskRandom) -> TaskExample { spanish.example(split: split, using: &rng) }

  func score(_ answer: String, for example: TaskExample) -> Double { score(response: answer, for: example) }

  func score(response: String, for example: TaskExample) -> Double {
    ResponseMeasures.isMixedLanguage(response, language: .spanish) ? 0 : 1
  }
}
