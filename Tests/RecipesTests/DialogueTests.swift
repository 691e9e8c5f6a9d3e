import ArtifactStore
import Foundation
@testable import Models
import Pipeline
@testable import Recipes
import Testing

/// The `dialogue` task and multi-turn GRPO: the simulated user reacts to the model's answer, the
/// training form is the final turn of the transcript rl samples, a rollout's row masks the user's
/// words, the reward scores the final turn, and a stopped rl stage with dialogues resumes bit-identically.
@Suite struct DialogueTests {
  static let task = DialogueTask()
  static let opening = task.opening(of: TaskExample(task: "dialogue", split: .train, prompt: "User: What is 6 * 3?",
                                                    reasoning: "", answer: ""))
  static func reply(_ steps: String, _ answer: String) -> String { ReasoningFormat.response(reasoning: steps, answer: answer) }

  @Test func theFollowUpDependsOnTheAnswerAndTheFinalCheckUsesIt() throws {
    let o = Self.opening
    #expect(o.prompt == "User: What is 6 * 3?" && o.answer == "18" && o.reasoning == "6 * 3 = 18")
    let instruction = DialogueTask.instruction(opening: "What is 6 * 3?", step: 1)
    let right = try #require(Self.task.followUp(after: Self.reply("6 * 3 = 18", "18"), to: o))
    let wrong = try #require(Self.task.followUp(after: Self.reply("6 * 3 = 16", "16"), to: o))
    let otherWrong = try #require(Self.task.followUp(after: Self.reply("6 * 3 = 15", "15"), to: o))
    let none = try #require(Self.task.followUp(after: "six threes", to: o))
    #expect(right.message == "Right. " + instruction.text)
    #expect(wrong.message == "No, it is 18, not 16. " + instruction.text)
    #expect(none.message == "I see no number there; it is 18. " + instruction.text)
    #expect(Set([right.message, wrong.message, otherWrong.message, none.message]).count == 4, "each answer gets its own reply")
    // The transcript holds the model's own reply and the user's words, as `Conversation` writes it.
    #expect(TaskFormat.prompt(wrong.turn) == "<s>User: What is 6 * 3?\n<think>6 * 3 = 16</think><answer>16</answer></s>"
            + "User: No, it is 18, not 16. \(instruction.text)\n")
    // The final check: the right result of the whole conversation, not the model's own number carried on.
    let (_, expected) = ArithmeticTask.solve([18, instruction.operand], [instruction.operation])
    let (_, carried) = ArithmeticTask.solve([16, instruction.operand], [instruction.operation])
    #expect(wrong.turn.answer == String(expected) && right.turn.answer == String(expected))
    #expect(Self.task.score(String(expected), for: wrong.turn) == 1)
    #expect(Self.task.score(String(carried), for: wrong.turn) == 0)
    // One follow-up, then the conversation is over.
    #expect(Self.task.followUp(after: Self.reply("", String(expected)), to: wrong.turn) == nil)
    // Two follow-ups: the second reacts to the second answer.
    let longer = DialogueTask(followUps: 2)
    let second = try #require(longer.followUp(after: "Answer: 1", to: wrong.turn))
    #expect(second.message.hasPrefix("No, it is \(expected), not 1.") && Conversation.replies(in: second.turn.prompt) == 2)
    #expect(longer.followUp(after: "", to: second.turn) == nil)
  }

  @Test func theTrainingFormIsTheFinalTurnOfTheTranscriptTheTaskWouldSimulate() throws {
    var rng = TaskRandom(seed: 4, stream: "d")
    var mistakes = 0
    let n = 2000
    for _ in 0..<n {
      let e = Self.task.example(split: .train, using: &rng)
      #expect(Conversation.replies(in: e.prompt) == 1 && e.task == "dialogue")
      // Its opening, answered with the reply the transcript holds, gives the example back.
      let opening = Self.task.opening(of: e)
      let lines = e.prompt.split(separator: "\n", maxSplits: 1)
      #expect(opening.prompt == String(lines[0]))
      let reply = String(try #require(lines[1].components(separatedBy: SpecialToken.eos.text).first))
      #expect(Self.task.followUp(after: reply, to: opening)?.turn == e)
      if !reply.hasSuffix("<answer>\(opening.answer)</answer>") { mistakes += 1 }
      #expect(Self.task.score(e.answer, for: e) == 1)
    }
    #expect((0.21...0.29).contains(Double(mistakes) / Double(n)), "\(mistakes) of \(n) replies are near misses")
  }

  /// A scripted "model": each call answers its contexts with the next list of replies, and is recorded.
  final class Script {
    let replies: [[String]]
    private(set) var calls: [[[Int32]]] = []
    init(_ replies: [[String]]) { self.replies = replies }

    func generate(_ contexts: [[Int32]]) -> [Generation] {
      let texts = replies[calls.count]
      calls.append(contexts)
      return zip(contexts, texts).map { _, text in
        Generation(tokens: TextTokenizer.bytes.encode(text + SpecialToken.eos.text), text: text, logProbabilities: [],
                   finishReason: .eos)
      }
    }
  }

  @Test func aMultiTurnRolloutMasksTheUserAndTheRewardScoresTheFinalTurn() throws {
    let arithmetic = ArithmeticTask(digits: 1, operations: 1)
    let conversation = TaskExample(task: "dialogue", split: .train, prompt: "User: What is 6 * 3?", reasoning: "", answer: "")
    let sum = TaskExample(task: "arithmetic", split: .train, prompt: "What is 2 + 2?", reasoning: "2 + 2 = 4", answer: "4")
    let prompts = [RLPrompt(example: conversation, task: Self.task, language: .english),
                   RLPrompt(example: sum, task: arithmetic, language: .english)]
    let instruction = DialogueTask.instruction(opening: "What is 6 * 3?", step: 1)
    let (_, final) = ArithmeticTask.solve([18, instruction.operand], [instruction.operation])
    let (_, carried) = ArithmeticTask.solve([16, instruction.operand], [instruction.operation])
    let firstReply = Self.reply("6 * 3 = 16", "16")
    let script = Script([[firstReply, firstReply, Self.reply("", "4"), Self.reply("", "5")],
                         [Self.reply("", String(final)), Self.reply("", String(carried))]])
    let rollouts = ConversationRollouts(tokenizer: .bytes, room: 200).sample(prompts, group: 2, generate: script.generate)
    let calls = script.calls
    #expect(calls.count == 2 && calls[1].count == 2, "turn 2 continues the two dialogue samples only")
    // Turn 2 is sampled from exactly the transcript sft trains on and eval scores.
    let secondTurn = try #require(Self.task.followUp(after: firstReply, to: Self.task.opening(of: conversation))).turn
    #expect(calls[1][0] == TextTokenizer.bytes.encode(TaskFormat.prompt(secondTurn)))
    // Only the model's tokens are trained: the prompt and the user's words are not.
    let user = TextTokenizer.bytes.encode("User: No, it is 18, not 16. \(instruction.text)\n")
    for r in rollouts[0..<2] {
      let firstCount = TextTokenizer.bytes.encode(TaskFormat.prompt(Self.task.opening(of: conversation))).count
      let replyCount = TextTokenizer.bytes.encode(firstReply + "</s>").count
      #expect(r.trained[..<firstCount].allSatisfy { !$0 })
      #expect(r.trained[firstCount..<(firstCount + replyCount)].allSatisfy { $0 })
      #expect(Array(r.tokens[(firstCount + replyCount)..<(firstCount + replyCount + user.count)]) == user)
      #expect(r.trained[(firstCount + replyCount)..<(firstCount + replyCount + user.count)].allSatisfy { !$0 })
      #expect(r.trained[(firstCount + replyCount + user.count)...].allSatisfy { $0 })
      #expect(r.turns == 2 && r.turn == secondTurn)
    }
    #expect(rollouts[2].turns == 1 && rollouts[2].turn == sum)
    // The reward reads the final turn: right after the correction, wrong when the slip is carried on.
    let accuracy = RewardFunction(terms: [.init(component: .accuracy, weight: 1)])
    let rewards = rollouts.enumerated().map { accuracy.score(GRPOObjective.rollout($1, of: prompts[$0 / 2])).total }
    #expect(rewards == [1, 0, 1, 0])
  }

  @Test func grpoRowsOfDialoguesWeightOnlyTheModelsTokens() throws {
    let config = ModelConfig(vocabularySize: TextTokenizer.bytes.vocabularySize, modelDim: 32, layerCount: 1, headCount: 2,
                             contextLength: 160)
    let model = TransformerLM(config: config, seed: 3), reference = TransformerLM(config: config, seed: 3)
    let task = Self.task
    let prompts: (Int) -> [RLPrompt] = { index in
      var rng = TaskRandom(seed: 11, stream: "dialogue-\(index)")
      return (0..<3).map { _ in RLPrompt(example: task.example(split: .train, using: &rng), task: task, language: .english) }
    }
    let objective = GRPOObjective(prompts: prompts, reward: RewardFunction(terms: [.init(component: .accuracy, weight: 1)]),
                                  reference: reference, tokenizer: .bytes,
                                  settings: .init(group: 2, sampling: SamplingSettings(temperature: 1, maxNewTokens: 6)), seed: 5)
    _ = try objective.loss(step: 0, model: model)
    let batch = try RolloutBatch(decoding: objective.state(after: 0))
    let marker = TextTokenizer.bytes.encode(Conversation.userMarker)
    let length = batch.rows[0].count
    for (r, row) in batch.rows.enumerated() {
      let weights = batch.weights[(r * (length - 1))..<((r + 1) * (length - 1))].map { $0 }
      // The user's second message starts at the second "User: ".
      let starts = (0...(row.count - marker.count)).filter { Array(row[$0..<($0 + marker.count)]) == marker }
      #expect(starts.count == 2, "row \(r): the opening and one follow-up")
      let follow = starts[1], end = row[follow...].firstIndex(of: Int32(UInt8(ascii: "\n")))!
      // Target t predicts row[t + 1]: the follow-up's tokens are targets follow − 1 ..< end.
      #expect(weights[(follow - 1)..<end].allSatisfy { $0 == 0 }, "row \(r): the user's words are not trained")
      #expect(weights[(starts[0])..<(follow - 1)].contains(1), "row \(r): the first reply is trained")
      #expect(weights[end...].contains(1), "row \(r): the second reply is trained")
      #expect(weights.filter { $0 == 1 }.count <= 12, "row \(r): at most two replies of 6 tokens")
    }
  }

  static let recipe = TrainingOpsTests.pretrain + """
      chat-rl:
        op: rl
        from: v1
        tasks: {arithmetic: 0.5, dialogue: 0.5}
        rewards: {accuracy: 1, format: 0.1}
        group: 4
        prompts: 4
        inner_steps: 2
        max_new_tokens: 12
        heldout_examples: 4
        train: {steps: 4, lr: 1e-3}

    """

  @Test func anInterruptedRLStageWithDialoguesResumesBitIdentically() async throws {
    let clean = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe])
    try await clean.run()
    let m = try clean.metrics("chat-rl")
    #expect(try #require(m["heldout_examples/dialogue"] as? Double) == 4)
    #expect(try #require(m["reward/accuracy"] as? [[Double]]).count == 4)
    let broken = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": Self.recipe])
    let control = RunControl()
    let events = EventLog { event in
      if case .stageProgress("chat-rl", let p) = event, p.step >= 1 { control.cancel() }
    }
    let first = try await Executor(recipe: try broken.recipe(), store: broken.store, events: events, control: control).run()
    #expect(first.cancelled == ["chat-rl"])
    let again = EventLog()
    try await broken.run(events: again)
    #expect(try #require(again.resumed["chat-rl"]) == 1)
    #expect(try broken.hash("chat-rl", "model") == clean.hash("chat-rl", "model"))
    #expect(try broken.hash("chat-rl", "metrics") == clean.hash("chat-rl", "metrics"))
  }
}
