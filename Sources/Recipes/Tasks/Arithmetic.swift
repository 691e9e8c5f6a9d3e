/// Arithmetic reasoning with worked steps: evaluate `a op b op c …` (with `*` before `+` and `-`),
/// one operation per step, as a person would write it down.
///
/// Difficulty grows with `digits` (operand size) and `operations` (expression length). The reasoning
/// shows every intermediate result, so a model can learn the procedure and a verifier can check the
/// final answer exactly.
public struct ArithmeticTask: Sendable {
  public var digits: Int
  public var operations: Int

  /// Operands can all multiply together; 10¹⁸ still fits in 64 bits.
  public static let maximumResultDigits = 18

  public init(digits: Int, operations: Int) {
    precondition((1...9).contains(digits) && (1...8).contains(operations)
                   && digits * (operations + 1) <= ArithmeticTask.maximumResultDigits,
                 "digits × (operations + 1) must be at most \(ArithmeticTask.maximumResultDigits)")
    self.digits = digits
    self.operations = operations
  }

  public static let name = "arithmetic"

  /// The next example of `split`, drawing problems until one falls in that split.
  public func example(split: Split, using rng: inout TaskRandom) -> TaskExample {
    while true {
      let (operands, operators) = drawExpression(using: &rng)
      let prompt = "What is " + ArithmeticTask.render(operands, operators) + "?"
      guard Split.of(problem: prompt) == split else { continue }
      let (steps, answer) = ArithmeticTask.solve(operands, operators)
      return TaskExample(task: ArithmeticTask.name, split: split, prompt: prompt,
                         reasoning: steps.joined(separator: "\n"), answer: String(answer))
    }
  }

  private func drawExpression(using rng: inout some RandomNumberGenerator) -> ([Int], [Character]) {
    let high = (1..<digits).reduce(10) { acc, _ in acc * 10 }
    let low = digits == 1 ? 0 : high / 10
    let operands = (0...operations).map { _ in Int.random(in: low..<high, using: &rng) }
    let operators = (0..<operations).map { _ in (["+", "-", "*"] as [Character]).randomElement(using: &rng)! }
    return (operands, operators)
  }

  static func render(_ operands: [Int], _ operators: [Character]) -> String {
    var text = String(operands[0])
    for (op, value) in zip(operators, operands.dropFirst()) { text += " \(op) \(value)" }
    return text
  }

  /// Evaluates with the usual precedence, one step per operation: first every `*` left to right,
  /// then `+` and `-` left to right. Each step is written `a op b = c`.
  public static func solve(_ operands: [Int], _ operators: [Character]) -> (steps: [String], answer: Int) {
    var values = operands
    var ops = operators
    var steps: [String] = []
    while let i = ops.firstIndex(of: "*") {
      let result = values[i] * values[i + 1]
      steps.append("\(values[i]) * \(values[i + 1]) = \(result)")
      values.replaceSubrange(i...i + 1, with: [result])
      ops.remove(at: i)
    }
    while !ops.isEmpty {
      let result = ops[0] == "+" ? values[0] + values[1] : values[0] - values[1]
      steps.append("\(values[0]) \(ops[0]) \(values[1]) = \(result)")
      values.replaceSubrange(0...1, with: [result])
      ops.removeFirst()
    }
    return (steps, values[0])
  }

  /// Whether `answer` (as a model wrote it) is the right result for `example`: integers compared
  /// exactly, surrounding space ignored.
  public static func verify(_ answer: String, for example: TaskExample) -> Bool {
    let trimmed = answer.trimmingCharacters(in: " \n\t")
    return Int(trimmed) != nil && Int(trimmed) == Int(example.answer)
  }
}

extension String {
  func trimmingCharacters(in set: String) -> String {
    let chars = Set(set)
    return String(drop { chars.contains($0) }.reversed().drop { chars.contains($0) }.reversed())
  }
}

extension ArithmeticTask: TaskGenerator {
  public var name: String { ArithmeticTask.name }
  public var metric: TaskMetric { .verified }

  public func score(_ answer: String, for example: TaskExample) -> Double {
    ArithmeticTask.verify(answer, for: example) ? 1 : 0
  }
}
