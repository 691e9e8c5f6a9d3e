/// `dialogue`: a conversation whose next question depends on the model's previous answer; the final
/// answer is checked (pass@1).
///
/// The user opens with a small problem (`What is 6 * 3?`). The simulated user then reacts to the number
/// the model answered and asks for one more operation on the right result:
///
/// | the model answered | the user says |
/// | --- | --- |
/// | 18 (right) | `Right. Now add 7 to it.` |
/// | 16 | `No, it is 18, not 16. Now add 7 to it.` |
/// | no number | `I see no number there; it is 18. Now add 7 to it.` |
///
/// The final answer is 25 in every case: a model that carries its own wrong number on (16 + 7 = 23), or
/// that ignores the user, fails. Getting the first turn right is what makes the conversation easy,
/// and reading a correction is what saves a wrong start.
///
/// Each follow-up's operation is a function of the opening problem (an FNV-1a hash, like the split),
/// so the opening message alone defines the conversation, and `followUp(after:to:)` needs nothing
/// but the transcript. The split is the opening problem's, decided exactly as `arithmetic` decides
/// `What is 6 * 3?`: no problem held out there is trained on here.
///
/// The training form (`example(split:using:)`) is the final turn: its prompt the whole transcript
/// (`Conversation`) with the task's replies written in the R-series' tagged form
/// (`<think>6 * 3 = 18</think><answer>18</answer>`), one reply in `mistakes` a near miss the user then
/// corrects, so that fine-tuning also shows how a correction is read.
struct DialogueTask: MultiTurnTask {
  /// User follow-ups per conversation (turns − 1).
  var followUps: Int
  /// The share of the task's own earlier replies, in training transcripts, that are wrong by 1 or 2.
  var mistakes: Double

  init(followUps: Int = 1, mistakes: Double = 0.25) {
    precondition((1...3).contains(followUps), "a dialogue has 1 to 3 follow-ups")
    precondition((0...1).contains(mistakes))
    self.followUps = followUps
    self.mistakes = mistakes
  }

  static let name = "dialogue"
  var name: String { DialogueTask.name }
  var metric: TaskMetric { .verified }

  /// One operation the user asks for after a reply.
  struct Instruction: Equatable {
    var operation: Character
    var operand: Int

    var text: String {
      switch operation {
      case "+": return "Now add \(operand) to it."
      case "-": return "Now subtract \(operand) from it."
      default: return "Now multiply it by \(operand)."
      }
    }
  }

  /// The operation of follow-up `step` (1-based) of the conversation opened by `message`: add or
  /// subtract 2–9, or multiply by 2–5, chosen by a hash of the message and the step.
  static func instruction(opening message: Substring, step: Int) -> Instruction {
    let h = Split.fnv1a(String(message) + "#\(step)")
    let operation = (["+", "-", "*"] as [Character])[Int(h % 3)]
    let operand = operation == "*" ? 2 + Int((h / 3) % 4) : 2 + Int((h / 3) % 8)
    return Instruction(operation: operation, operand: operand)
  }

  // MARK: - TaskGenerator

  func example(split: Split, using rng: inout TaskRandom) -> TaskExample {
    while true {
      let a = Int.random(in: 2...20, using: &rng), b = Int.random(in: 2...9, using: &rng)
      let operation = (["+", "-", "*"] as [Character]).randomElement(using: &rng)!
      let problem = "What is \(a) \(operation) \(b)?"
      guard Split.of(problem: problem) == split else { continue }
      var turn = DialogueTask.turn(problem: problem, [a, b], [operation], split: split)
      for _ in 0..<followUps {
        var reply = Int(turn.answer)!
        if Double.random(in: 0..<1, using: &rng) < mistakes {
          reply += [-2, -1, 1, 2].randomElement(using: &rng)!
        }
        // The reply's steps are the turn's, with the slip in the last result.
        var steps = turn.reasoning.split(separator: "\n").map(String.init)
        if let last = steps.popLast(), let equals = last.range(of: " = ", options: .backwards) {
          steps.append(String(last[..<equals.upperBound]) + String(reply))
        }
        let response = ReasoningFormat.response(reasoning: steps.joined(separator: "\n"), answer: String(reply))
        guard let next = followUp(after: response, to: turn) else { break }
        turn = next.turn
      }
      return turn
    }
  }

  func score(_ answer: String, for example: TaskExample) -> Double {
    ArithmeticTask.verify(answer, for: example) ? 1 : 0
  }

  // MARK: - MultiTurnTask

  func opening(of example: TaskExample) -> TaskExample {
    let message = Conversation.openingMessage(of: example.prompt)
    guard let problem = DialogueTask.parse(message) else {
      preconditionFailure("not a dialogue this task drew: \(example.prompt)")
    }
    return DialogueTask.turn(problem: String(message), problem.operands, problem.operators, split: example.split)
  }

  func followUp(after response: String, to turn: TaskExample) -> FollowUp? {
    let step = Conversation.replies(in: turn.prompt) + 1
    guard step <= followUps, let right = Int(turn.answer) else { return nil }
    let stated = Int(TaskFormat.answer(in: response).trimmingCharacters(in: " \n\t"))
    let reaction: String
    switch stated {
    case right?: reaction = "Right."
    case let number?: reaction = "No, it is \(right), not \(number)."
    case nil: reaction = "I see no number there; it is \(right)."
    }
    let instruction = DialogueTask.instruction(opening: Conversation.openingMessage(of: turn.prompt), step: step)
    let message = reaction + " " + instruction.text
    let (steps, answer) = ArithmeticTask.solve([right, instruction.operand], [instruction.operation])
    return FollowUp(message: message,
                    turn: TaskExample(task: name, split: turn.split,
                                      prompt: Conversation.continued(turn.prompt, reply: response, message: message),
                                      reasoning: steps.joined(separator: "\n"), answer: String(answer)))
  }

  // MARK: - Private

  private static func turn(problem: String, _ operands: [Int], _ operators: [Character], split: Split) -> TaskExample {
    let (steps, answer) = ArithmeticTask.solve(operands, operators)
    return TaskExample(task: name, split: split, prompt: Conversation.opening(problem),
                       reasoning: steps.joined(separator: "\n"), answer: String(answer))
  }

  /// `What is 6 * 3?` → ([6, 3], ["*"]).
  private static func parse(_ message: Substring) -> (operands: [Int], operators: [Character])? {
    guard message.hasPrefix("What is "), message.hasSuffix("?") else { return nil }
    let parts = message.dropFirst("What is ".count).dropLast().split(separator: " ")
    guard parts.count == 3, let a = Int(parts[0]), let b = Int(parts[2]), parts[1].count == 1,
          "+-*".contains(parts[1].first!) else { return nil }
    return ([a, b], [parts[1].first!])
  }
}
