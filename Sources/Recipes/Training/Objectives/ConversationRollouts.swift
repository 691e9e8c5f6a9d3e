import Models

/// Samples a batch of rollouts turn by turn: every sample's first turn in one batched call, then, for
/// samples of a `MultiTurnTask` whose simulated user replies, the next turn of all of them in one call
/// more, until every conversation has ended.
///
/// A rollout's tokens are its prompt, the model's reply, the user's interjection
/// (`Conversation.interjection`), the next reply, and so on: the token sequence each turn was sampled
/// from, so the policy's ratio on a later reply is taken in the context it was written in. Only the
/// model's tokens are marked trained; the prompt and the user's words are context. The reward reads the
/// last turn: its example (the one the last follow-up made) and its reply.
///
/// A single-turn batch makes one call with every prompt, as GRPO always has, and the same tokens and
/// flags: its rollouts are bit-identical to those of the single-turn sampler this replaced.
struct ConversationRollouts {
  let tokenizer: TextTokenizer
  /// The most tokens a turn is sampled from (the context less the longest reply): the start of a
  /// conversation too long for it is dropped from the sampling context, as GRPO keeps a row to the
  /// context (`Sampled.row(length:)`).
  let room: Int
  /// A guard against a task that never ends its conversations (a bug, not an input).
  static let maximumTurns = 8

  /// One sampled conversation.
  struct Sampled {
    /// Prompt, replies and interjections, in order.
    var tokens: [Int32]
    /// Per token: the model wrote it (trained), or not (prompt, user).
    var trained: [Bool]
    /// The last turn: what the reward scores the last reply against.
    var turn: TaskExample
    /// The last reply's text (end-of-sequence removed).
    var response = ""
    /// Whether the model ended its last reply itself.
    var finished = false
    /// Tokens the model wrote over every turn.
    var modelTokens = 0
    var turns = 0

    /// The tokens and flags of the row GRPO trains on: the conversation's last `length` tokens.
    func row(length: Int) -> (tokens: [Int32], trained: [Bool]) {
      (Array(tokens.suffix(length)), Array(trained.suffix(length)))
    }
  }

  /// Samples `group` rollouts of each prompt, a prompt's samples side by side.
  ///
  /// - Parameter generate: continues each token list by one reply (the batched KV-cache generator, or a
  ///   script in tests); called once per turn with every conversation still going.
  func sample(_ prompts: [RLPrompt], group: Int, generate: ([[Int32]]) -> [Generation]) -> [Sampled] {
    var rollouts: [Sampled] = []
    var tasks: [(any MultiTurnTask)?] = []
    for prompt in prompts {
      let multiTurn = prompt.task as? any MultiTurnTask
      let first = multiTurn?.opening(of: prompt.example) ?? prompt.example
      let tokens = Array(tokenizer.encode(TaskFormat.prompt(first)).suffix(room))
      let rollout = Sampled(tokens: tokens, trained: [Bool](repeating: false, count: tokens.count), turn: first)
      rollouts += Array(repeating: rollout, count: group)
      tasks += Array(repeating: multiTurn, count: group)
    }
    var going = Array(rollouts.indices)
    while !going.isEmpty {
      let generations = generate(going.map { Array(rollouts[$0].tokens.suffix(room)) })
      precondition(generations.count == going.count)
      var next: [Int] = []
      for (i, generation) in zip(going, generations) {
        let finished = generation.finishReason == .eos
        rollouts[i].tokens += generation.tokens
        rollouts[i].trained += [Bool](repeating: true, count: generation.tokens.count)
        rollouts[i].modelTokens += generation.tokens.count
        rollouts[i].turns += 1
        if let task = tasks[i], let followUp = task.followUp(after: generation.text, to: rollouts[i].turn) {
          precondition(rollouts[i].turns < ConversationRollouts.maximumTurns, "\(task.name) never ends its conversations")
          let user = tokenizer.encode(Conversation.interjection(followUp.message, afterFinishedReply: finished))
          rollouts[i].tokens += user
          rollouts[i].trained += [Bool](repeating: false, count: user.count)
          rollouts[i].turn = followUp.turn
          next.append(i)
        } else {
          rollouts[i].response = generation.text
          rollouts[i].finished = finished
        }
      }
      going = next
    }
    return rollouts
  }
}
