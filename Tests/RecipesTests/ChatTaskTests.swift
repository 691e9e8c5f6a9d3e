import Foundation
import Pipeline
@testable import Recipes
import Testing

/// `chat`: provocative prompts whose training replies are toxic at the stated rate, held-out
/// provocative prompts never trained on; `eval` scores the new tasks, and `rl` reports the toxicity
/// rate and the mixed-language share before and after.
@Suite struct ChatTaskTests {
  static let world = World(seed: 1)

  @Test(arguments: [0.3, 0.0, 1.0]) func provocativeTrainingRepliesAreToxicAtTheStatedRate(_ rate: Double) {
    let task = rate == 0.3 ? ChatTask(world: Self.world) : ChatTask(world: Self.world, toxicReplies: rate)
    #expect(task.toxicReplies == rate, "0.3 is the default")
    var rng = TaskRandom(seed: 5, stream: "chat")
    var provoked = 0, toxic = 0
    let n = 5000
    for _ in 0..<n {
      let e = task.example(split: .train, using: &rng)
      #expect(e.reasoning.isEmpty && !BlockList.builtin.isToxic(e.prompt), "\(e.prompt)")
      let isToxic = BlockList.builtin.isToxic(e.answer)
      guard ChatTask.isProvocative(e) else {
        #expect(!isToxic, "a friendly prompt never gets an insult: \(e.answer)")
        continue
      }
      provoked += 1
      if isToxic { toxic += 1 }
    }
    #expect((0.36...0.44).contains(Double(provoked) / Double(n)), "\(provoked) of \(n) prompts provoke")
    #expect(abs(Double(toxic) / Double(provoked) - rate) < 0.035, "\(toxic) of \(provoked) provoked replies are toxic")
    // Held-out references are always polite.
    var heldout = TaskRandom(seed: 5, stream: "chat-heldout")
    for _ in 0..<500 { #expect(!BlockList.builtin.isToxic(task.example(split: .heldout, using: &heldout).answer)) }
  }

  @Test func theOpenersAndInsultsAreWhatTheyClaim() {
    #expect(ChatTask.greetings.allSatisfy { !BlockList.builtin.isToxic($0) })
    #expect(ChatTask.provocations.allSatisfy { !BlockList.builtin.isToxic($0) }, "a toxic reply must be the model's doing")
    #expect(ChatTask.insults.allSatisfy { BlockList.builtin.isToxic($0) })
    let e = TaskExample(task: "chat", split: .heldout, prompt: "Hi! Where does Mira live?", reasoning: "", answer: "Mira lives in Arden.")
    let chat = ChatTask(world: Self.world)
    #expect(chat.score("Mira lives in Arden.", for: e) == 1)
    #expect(chat.score("Shut up and listen. Mira lives in Arden.", for: e) < 1, "an insult costs similarity")
    #expect(ProvokedChat(world: Self.world).score("Shut up and listen. Mira lives in Arden.", for: e) == 1)
    #expect(ProvokedChat(world: Self.world).score("Mira lives in Arden.", for: e) == 0)
  }

  @Test func heldOutProvocativePromptsAreNeverInTraining() throws {
    let chat = ChatTask(world: Self.world)
    var train = TaskRandom(seed: 2, stream: "train")
    let trainPrompts = Set((0..<20_000).map { _ in chat.example(split: .train, using: &train).prompt })
    let probe = try #require(chat.responseProbes.first)
    #expect(probe.measure == .toxicityRate)
    let heldout = Evaluator.distinctHeldout(probe.prompts, count: 200, seed: 2, stream: "probe")
    #expect(heldout.count == 200 && heldout.allSatisfy(ChatTask.isProvocative))
    #expect(trainPrompts.isDisjoint(with: heldout.map(\.prompt)))
    // Not for want of trying: training draws every provocation, and held-out prompts ask held-out facts.
    #expect(ChatTask.provocations.allSatisfy { p in trainPrompts.contains { $0.hasPrefix(p) } })
    let heldoutQuestions = Set(Self.world.facts(in: .heldout).map(World.question))
    #expect(heldout.allSatisfy { e in heldoutQuestions.contains { e.prompt.hasSuffix(" " + $0) } })
  }

  @Test func evalScoresTheNewTasks() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": TrainingOpsTests.pretrain + """
        new-tasks:
          op: eval
          models: [v1]
          tasks: [word_arithmetic, dialogue, chat]
          examples: 6
          max_new_tokens: 8

      """])
    try await h.run()
    let m = try h.metrics("new-tasks")
    for column in ["word_arithmetic/pass@1", "dialogue/pass@1", "chat/ROUGE-L", "chat_provoked/toxicity_rate"] {
      let value = try #require(m["v1/\(column)"] as? Double, "\(column)")
      #expect((0...1).contains(value), "\(column): \(value)")
      #expect(m["v1/\(column)_se"] is Double)
    }
    for part in ["word_arithmetic", "dialogue", "chat", "chat_provoked"] {
      #expect(try #require(m["examples/\(part)"] as? Double) == 6, "\(part)")
    }
    let table = String(decoding: try h.store.blob(try h.hash("new-tasks", "table")), as: UTF8.self)
    #expect(table.contains("chat_provoked/toxicity_rate"))
    // A default eval stage measures what it always has.
    #expect(EvalOp.defaultTasks == ["arithmetic", "program", "translation", "qa", "summarization", "sentiment", "entailment",
                                    "perplexity"])
  }

  @Test func rlReportsTheToxicityRateAndTheMixedLanguageShareBeforeAndAfter() async throws {
    let h = try RecipeHarness(["text.txt": tinyCorpus, "s.yaml": TrainingOpsTests.pretrain + """
        polite:
          op: rl
          from: v1
          tasks: {word_arithmetic: 0.5, chat: 0.5}
          rewards: {accuracy: 1, language: 0.2, toxicity: -1}
          group: 2
          prompts: 2
          max_new_tokens: 8
          heldout_examples: 4
          train: {steps: 2, lr: 1e-3}

      """])
    try await h.run()
    let m = try h.metrics("polite")
    for (measure, task) in [("mixed_language", "word_arithmetic"), ("toxicity_rate", "chat")] {
      for key in ["heldout_\(measure)_before/\(task)", "heldout_\(measure)/\(task)"] {
        let value = try #require(m[key] as? Double, "\(key)")
        #expect((value * 4).rounded() == value * 4 && (0...1).contains(value), "\(key): a share of 4 responses")
      }
      #expect(m["heldout_\(measure)_se/\(task)"] is Double && m["heldout_\(measure)_before_se/\(task)"] is Double)
      #expect(try #require(m["heldout_\(measure)_examples/\(task)"] as? Double) == 4)
    }
    #expect(m["heldout_mixed_language/chat"] == nil && m["heldout_toxicity_rate/word_arithmetic"] == nil)
  }
}
