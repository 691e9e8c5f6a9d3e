import Foundation
import Models
import Pipeline

/// How a task example reads as text for the model: the prompt, then (learned and generated) the worked
/// reasoning and the answer.
///
/// ```
/// <s>What is 12 + 7 * 3?
/// 7 * 3 = 21
/// 12 + 21 = 33
/// Answer: 33</s>
/// ```
///
/// Training masks the prompt out of the loss; evaluation feeds the prompt and reads the answer back
/// from what the model writes (`answer(in:)`).
enum TaskFormat {
  static let answerMarker = "Answer: "

  /// How a response is written: the V-series' plain form (steps, then `Answer: …`), or the R-series'
  /// tagged form (`<think>steps</think><answer>…</answer>`, `ReasoningFormat`) that the R-series'
  /// format reward asks for.
  enum Response: String, SettingChoice {
    case plain
    case thinkAnswer = "think_answer"
  }

  /// The text the model is given.
  static func prompt(_ example: TaskExample) -> String {
    SpecialToken.bos.text + example.prompt + "\n"
  }

  /// The text the model should write after the prompt (ending with the end-of-sequence token).
  static func completion(_ example: TaskExample, as response: Response = .plain) -> String {
    switch response {
    case .plain:
      return (example.reasoning.isEmpty ? "" : example.reasoning + "\n") + answerMarker + example.answer + SpecialToken.eos.text
    case .thinkAnswer:
      return ReasoningFormat.response(reasoning: example.reasoning, answer: example.answer) + SpecialToken.eos.text
    }
  }

  /// The answer in a generated completion: what follows the last "Answer: " up to the end of its line
  /// (or the last line when the marker is missing).
  /// A tagged response's answer is the content of its last `<answer>…</answer>`.
  static func answer(in completion: String) -> String {
    let text = completion.replacingOccurrences(of: SpecialToken.eos.text, with: "")
    if let tagged = ReasoningFormat.parse(text).answer { return tagged }
    if let r = text.range(of: answerMarker, options: .backwards) {
      return String(text[r.upperBound...].prefix { $0 != "\n" })
    }
    return String(text.split(separator: "\n").last ?? "")
  }

  /// A response taken apart into the reasoning and the answer a training example holds: from
  /// `<think>`/`<answer>` (trimmed), else the text before and after the last `Answer: `, else no
  /// reasoning and the whole text as the answer.
  static func reasoningAndAnswer(in response: String) -> (reasoning: String, answer: String) {
    let parts = ReasoningFormat.parse(response)
    if let answer = parts.answer {
      return ((parts.reasoning ?? "").trimmingCharacters(in: .whitespacesAndNewlines),
              answer.trimmingCharacters(in: .whitespacesAndNewlines))
    }
    if let r = response.range(of: answerMarker, options: .backwards) {
      return (String(response[..<r.lowerBound]).trimmingCharacters(in: .newlines), String(response[r.upperBound...]))
    }
    return ("", response)
  }

  /// Tokens and loss weights of one example: 0 on the prompt, 1 on the completion.
  static func encode(_ example: TaskExample, with tokenizer: TextTokenizer, maxTokens: Int,
                     as response: Response = .plain) -> (tokens: [Int32], weights: [Float]) {
    let p = tokenizer.encode(prompt(example)), c = tokenizer.encode(completion(example, as: response))
    var tokens = p + c
    var weights = [Float](repeating: 0, count: p.count) + [Float](repeating: 1, count: c.count)
    if tokens.count > maxTokens {
      tokens = Array(tokens.suffix(maxTokens))   // keep the answer; the prompt's start goes first
      weights = Array(weights.suffix(maxTokens))
    }
    return (tokens, weights)
  }
}

/// Pads variable-length rows into one batch: each row becomes `length` tokens (the longest row), with
/// padding weighted 0.
func paddedBatch(_ rows: [(tokens: [Int32], weights: [Float])], pad: Int32) -> TrainingBatch {
  let length = rows.map(\.tokens.count).max() ?? 0
  var tokens: [[Int32]] = [], weights: [[Float]] = []
  for row in rows {
    let missing = length - row.tokens.count
    tokens.append(row.tokens + [Int32](repeating: pad, count: missing))
    weights.append(row.weights + [Float](repeating: 0, count: missing))
  }
  return TrainingBatch(tokens: tokens, weights: weights)
}
