import Models

/// A task whose examples are conversations: the model answers, a simulated user replies to what it
/// answered, the model answers again, and only the last answer is scored (the seeds' "rollout
/// simulations" of coherent conversations).
///
/// In `rl`, `ConversationRollouts` samples the opening turn of every conversation of a batch at once,
/// asks the task for the user's reply to each sample (`followUp(after:to:)`), and samples the next turn
/// from the whole transcript; the user's tokens are context, never trained on, and the reward scores the
/// last turn against the example the last follow-up made.
///
/// Everywhere else a conversation is its final turn, written as text (`Conversation`): the task's
/// `example(split:using:)` returns it with the task's own replies in the earlier turns, so the same
/// transcript trains `sft` and `multitask`, is what `eval` scores, and is what `rl` rebuilds turn by
/// turn from the model's own replies.
protocol MultiTurnTask: TaskGenerator {
  /// The first turn of the conversation whose final turn is `example` (one this task drew): the
  /// user's opening message as the prompt, and its right answer.
  func opening(of example: TaskExample) -> TaskExample

  /// The user's reply to `response` (what the model wrote for `turn`, end-of-sequence removed) and the
  /// turn it opens; nil when `turn` was the conversation's last. A conversation must end: after
  /// finitely many follow-ups this returns nil whatever the responses.
  func followUp(after response: String, to turn: TaskExample) -> FollowUp?
}

/// What the simulated user says after a reply, and the turn it opens.
struct FollowUp: Equatable {
  /// The user's message, without the `User: ` marker.
  var message: String
  /// The next turn: its prompt is the transcript through `message` (`Conversation.continued`), its
  /// answer the right answer given everything said so far.
  var turn: TaskExample
}

/// How a conversation reads as text.
///
/// The opening message is the first turn's prompt, after `User: `. Each reply of the model ends with the
/// end-of-sequence token, as every response does, and the user's next message follows it at once,
/// after `User: `; the newline that `TaskFormat.prompt` puts after a prompt ends each user message:
///
/// ```
/// <s>User: What is 6 * 3?
/// <think>6 * 3 = 18</think><answer>18</answer></s>User: Right. Now add 7 to it.
/// <think>18 + 7 = 25</think><answer>25</answer></s>
/// ```
///
/// So `TaskFormat.prompt` of a later turn's example is the previous turn's prompt, the reply, then
/// `interjection(_:afterFinishedReply:)`: the token sequence `rl` samples each turn from, and the
/// transcript `sft` and `eval` read. The markers are plain text the tokenizers handle like any other;
/// the boundaries are special tokens, so a transcript tokenizes the same in parts and whole.
enum Conversation {
  static let userMarker = "User: "

  /// The opening prompt of a conversation whose user says `message`.
  static func opening(_ message: String) -> String { userMarker + message }

  /// The prompt of the turn after the model's `reply` to `transcript` (a turn's prompt) and the user's
  /// `message`.
  static func continued(_ transcript: String, reply: String, message: String) -> String {
    transcript + "\n" + reply + SpecialToken.eos.text + userMarker + message
  }

  /// The text between a reply's tokens and the next reply: the end of the model's turn when it did not
  /// end the turn itself (a reply cut at the token limit), the user's message, and the newline after
  /// which the model answers.
  static func interjection(_ message: String, afterFinishedReply finished: Bool) -> String {
    (finished ? "" : SpecialToken.eos.text) + userMarker + message + "\n"
  }

  /// The number of model replies a turn's prompt already holds.
  static func replies(in transcript: String) -> Int {
    var count = 0, rest = Substring(transcript)
    while let r = rest.range(of: SpecialToken.eos.text) {
      count += 1
      rest = rest[r.upperBound...]
    }
    return count
  }

  /// The user's opening message, without the marker: the transcript's first line.
  static func openingMessage(of transcript: String) -> Substring {
    let line = transcript.prefix { $0 != "\n" }
    return line.hasPrefix(userMarker) ? line.dropFirst(userMarker.count) : line
  }
}
