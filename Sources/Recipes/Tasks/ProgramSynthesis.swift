/// Countdown-style program synthesis (name "program", checked by execution): reach a target with the
/// given numbers, each at most once, using + − × ÷ and parentheses. Every instance is solvable: it is
/// built from a random expression whose intermediate values are positive integers.
///
/// A model's program is parsed by a small recursive-descent parser, executed in exact integer
/// arithmetic (a division must leave no remainder), and accepted when it uses only the given numbers,
/// each at most once, and equals the target.
public struct ProgramSynthesisTask: TaskGenerator {
  /// Numbers given per problem (3 or 4).
  public var numbers: Int
  public init(numbers: Int = 3) {
    precondition((2...5).contains(numbers))
    self.numbers = numbers
  }

  public var name: String { "program" }
  public var metric: TaskMetric { .verified }

  public func example(split: Split, using rng: inout TaskRandom) -> TaskExample {
    while true {
      let values = (0..<numbers).map { _ in Int.random(in: 1...12, using: &rng) }
      guard let (expression, steps, target) = ProgramSynthesisTask.build(values, using: &rng),
            (10...200).contains(target) else { continue }
      let given = values.sorted().map(String.init).joined(separator: ", ")
      let prompt = "Reach \(target) using \(given) (each at most once, with + - * /)."
      guard Split.of(problem: prompt) == split else { continue }
      return TaskExample(task: name, split: split, prompt: prompt, reasoning: steps.joined(separator: "\n"), answer: expression)
    }
  }

  /// Combines the numbers in a random order with random operations, left to right:
  /// ((a op b) op c) …, keeping every intermediate value a positive integer.
  static func build(_ values: [Int], using rng: inout TaskRandom) -> (String, [String], Int)? {
    let order = values.shuffled(using: &rng)
    var text = String(order[0]), value = order[0]
    var steps: [String] = []
    for next in order.dropFirst() {
      var choices: [Character] = ["+", "*"]
      if value - next > 0 { choices.append("-") }
      if value % next == 0 && next > 1 { choices.append("/") }
      let op = choices.randomElement(using: &rng)!
      let result: Int
      switch op {
      case "+": result = value + next
      case "-": result = value - next
      case "*": result = value * next
      default: result = value / next
      }
      steps.append("\(value) \(op) \(next) = \(result)")
      text = steps.count == 1 ? "\(text) \(op) \(next)" : "(\(text)) \(op) \(next)"
      value = result
    }
    return (text, steps, value)
  }

  public func score(_ answer: String, for example: TaskExample) -> Double {
    guard let target = ProgramSynthesisTask.target(of: example.prompt),
          let given = ProgramSynthesisTask.numbers(of: example.prompt),
          let (value, used) = Expression.evaluate(answer) else { return 0 }
    var available = given
    for n in used {
      guard let i = available.firstIndex(of: n) else { return 0 }
      available.remove(at: i)
    }
    return value == target ? 1 : 0
  }

  static func target(of prompt: String) -> Int? {
    guard prompt.hasPrefix("Reach ") else { return nil }
    return Int(prompt.dropFirst(6).prefix { $0.isNumber })
  }

  static func numbers(of prompt: String) -> [Int]? {
    guard let start = prompt.range(of: " using "), let end = prompt.range(of: " (each") else { return nil }
    return prompt[start.upperBound..<end.lowerBound].split(separator: ",").compactMap { Int($0.filter { $0 != " " }) }
  }

  /// Arithmetic expressions over non-negative integers: `expr := term (('+'|'-') term)*`,
  /// `term := factor (('*'|'/') factor)*`, `factor := number | '(' expr ')'`.
  enum Expression {
    /// The value and the numbers used, or nil for anything malformed, a division with a remainder or
    /// by zero, an overflow, or input longer than 200 characters.
    static func evaluate(_ text: String) -> (value: Int, numbers: [Int])? {
      guard text.utf8.count <= 200 else { return nil }
      var parser = Parser(chars: Array(text.utf8))
      guard let value = parser.expression(depth: 0) else { return nil }
      parser.skipSpaces()
      return parser.position == parser.chars.count ? (value, parser.numbers) : nil
    }

    struct Parser {
      let chars: [UInt8]
      var position = 0
      var numbers: [Int] = []

      mutating func skipSpaces() { while position < chars.count && chars[position] == UInt8(ascii: " ") { position += 1 } }

      mutating func peek() -> UInt8? {
        skipSpaces()
        return position < chars.count ? chars[position] : nil
      }

      mutating func expression(depth: Int) -> Int? {
        guard depth < 32, var value = term(depth: depth) else { return nil }
        while let c = peek(), c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
          position += 1
          guard let rhs = term(depth: depth) else { return nil }
          let (r, overflow) = c == UInt8(ascii: "+") ? value.addingReportingOverflow(rhs) : value.subtractingReportingOverflow(rhs)
          guard !overflow else { return nil }
          value = r
        }
        return value
      }

      mutating func term(depth: Int) -> Int? {
        guard var value = factor(depth: depth) else { return nil }
        while let c = peek(), c == UInt8(ascii: "*") || c == UInt8(ascii: "/") {
          position += 1
          guard let rhs = factor(depth: depth) else { return nil }
          if c == UInt8(ascii: "*") {
            let (r, overflow) = value.multipliedReportingOverflow(by: rhs)
            guard !overflow else { return nil }
            value = r
          } else {
            guard rhs != 0, value % rhs == 0 else { return nil }
            value /= rhs
          }
        }
        return value
      }

      mutating func factor(depth: Int) -> Int? {
        guard let c = peek() else { return nil }
        if c == UInt8(ascii: "(") {
          position += 1
          guard let value = expression(depth: depth + 1), peek() == UInt8(ascii: ")") else { return nil }
          position += 1
          return value
        }
        var digits = 0, value = 0
        while position < chars.count, chars[position] >= UInt8(ascii: "0"), chars[position] <= UInt8(ascii: "9"), digits < 9 {
          value = value * 10 + Int(chars[position] - UInt8(ascii: "0"))
          position += 1
          digits += 1
        }
        guard digits > 0 else { return nil }
        numbers.append(value)
        return value
      }
    }
  }
}

/// Passkey retrieval at a given length (name "passkey", exact match): a long filler text with
/// "The pass key is 73914. Remember it." at a random depth; the model must give the digits back.
///
/// Held-out documents share nothing with training ones but the form: the passkey decides the split
/// (one key in ten is held out, so a held-out key never appears in a training document) and each split
/// draws its filler from its own sentences.
public struct PasskeyTask: TaskGenerator {
  /// Target prompt length in bytes (within a few per cent).
  public var length: Int
  public var digits: Int

  public init(length: Int, digits: Int = 5) {
    precondition(length >= 64 && (1...9).contains(digits))
    self.length = length
    self.digits = digits
  }

  public var name: String { "passkey" }
  public var metric: TaskMetric { .exactMatch }

  /// Filler sentences of training documents.
  static let trainingFillers = ["The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.",
                                "There and back again.", "The river flows to the sea.", "Birds sing in the trees."]
  /// Filler sentences of held-out documents: none of them is ever in a training document.
  static let heldoutFillers = ["The moon is white.", "Snow falls in winter.", "The road turns left.", "Bread is warm.",
                               "A cat sleeps by the fire.", "The bell rings at noon.", "Leaves fall in the wind."]
  static let question = " What is the pass key? The pass key is"

  /// Whether `key` is a held-out passkey.
  static func split(ofKey key: String) -> Split { Split.of(problem: "passkey " + key) }

  public func example(split: Split, using rng: inout TaskRandom) -> TaskExample {
    let low = (1..<digits).reduce(1) { acc, _ in acc * 10 }
    var key: String
    repeat { key = String(Int.random(in: low..<(low * 10), using: &rng)) } while PasskeyTask.split(ofKey: key) != split
    let fillers = split == .heldout ? PasskeyTask.heldoutFillers : PasskeyTask.trainingFillers
    let needle = "The pass key is \(key). Remember it. \(key) is the pass key."
    let room = length - needle.utf8.count - PasskeyTask.question.utf8.count - 1
    var filler: [String] = []
    var size = 0
    while size < room - 12 {
      let sentence = fillers.randomElement(using: &rng)!
      guard size + sentence.utf8.count + 1 <= room else { break }
      filler.append(sentence)
      size += sentence.utf8.count + 1
    }
    filler.insert(needle, at: Int.random(in: 0...filler.count, using: &rng))
    let prompt = filler.joined(separator: " ") + PasskeyTask.question
    return TaskExample(task: name, split: split, prompt: prompt, reasoning: "", answer: key)
  }

  public func score(_ answer: String, for example: TaskExample) -> Double {
    TextMetrics.exactMatch(answer, example.answer) ? 1 : 0
  }
}
