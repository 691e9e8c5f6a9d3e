import ArgumentParser
import Foundation
import Models
import Recipes
import Tensors

/// `lineage generate STAGE`: text from a model stage, streamed to the terminal as it is sampled; a
/// chat when no prompt is given.
struct Generate: AsyncParsableCommand {
  static let configuration = CommandConfiguration(commandName: "generate", 
    abstract: "Sample from a model stage, streaming the text; without --prompt, chat with it.",
    discussion: """
      With --prompt, the text is given to the model as a task prompt (<s>TEXT and a newline, as the task-training \
      ops write prompts; --raw gives it as it is) and the continuation is printed as it is sampled. Without \
      --prompt, each line read from standard input is a user message of a conversation in the format sft and rl \
      train (<s>User: message, the reply ended by </s>, User: next message, …); /quit or end of input ends it. \
      The same seed, settings and input give the same text.
      """)

  @OptionGroup var options: RecipeOptions

  @Argument(help: "The model stage.")
  var stage: String

  @Option(name: .long, help: "The prompt (without it: an interactive chat).")
  var prompt: String?

  @Flag(name: .long, help: "Give --prompt to the model as it is, without <s> before it and a newline after it.")
  var raw = false

  @Option(name: .long, help: "Sampling temperature; 0 picks the most likely token.")
  var temperature: Float = 0.7

  @Option(name: .long, help: "Sample from the smallest set of tokens whose probability reaches P (1: all).")
  var topP: Float = 1

  @Option(name: .long, help: "The most tokens of each reply.")
  var maxTokens = 200

  @Option(name: .long, help: "The sampling seed.")
  var seed: UInt64 = 0

  func validate() throws {
    guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be 0 or more") }
    guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
    guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
    if raw && prompt == nil { throw ValidationError("--raw applies to --prompt") }
    if prompt?.isEmpty == true { throw ValidationError("--prompt needs some text") }
  }

  func run() async throws {
    let (_, artifact) = try options.modelArtifact(of: stage)
    let context = artifact.model.config.contextLength
    guard maxTokens < context else {
      Console.error("error: --max-tokens \(maxTokens) leaves no room for a prompt in the model's context of \(context) tokens")
      throw ExitCode(ExitStatus.invalidRecipe)
    }
    var session = GenerationSession(artifact: artifact, settings: SamplingSettings(
      temperature: temperature, topP: topP < 1 ? topP : nil, maxNewTokens: maxTokens), seed: seed)
    if let prompt {
      var tokens = artifact.tokenizer.encode(raw ? prompt : SpecialToken.bos.text + prompt + "\n")
      if tokens.count + maxTokens > context {
        Console.error("warning: the prompt is \(tokens.count) tokens; only its last \(context - maxTokens) fit the context")
        tokens = Array(tokens.suffix(context - maxTokens))
      }
      let start = Date()
      let generation = session.stream(tokens)
      Console.out("")
      let seconds = Date().timeIntervalSince(start)
      let took = seconds < 1 ? String(format: "%.0f ms", seconds * 1000) : Console.duration(seconds)
      Console.error("(\(generation.tokens.count) tokens in \(took), "
                    + String(format: "%.1f tokens/s; ", Double(generation.tokens.count) / max(seconds, 1e-9))
                    + Generate.describe(generation.finishReason) + ")")
      return
    }
    chat(&session, context: context)
  }

  /// The interactive chat: one user message per line, the transcript kept as tokens in the trained
  /// format, restarted (and said so) when it would no longer fit the context.
  private func chat(_ session: inout GenerationSession, context: Int) {
    let interactive = isatty(0) == 1
    if interactive {
      Console.error("chatting with \(stage) (temperature \(temperature), seed \(seed)); /quit or Ctrl-D ends")
    }
    var transcript: [Int32] = []
    var finished = true
    while true {
      if interactive { FileHandle.standardOutput.write(Data("> ".utf8)) }
      guard let line = readLine() else {
        if interactive { Console.out("") }
        return
      }
      let message = line.trimmingCharacters(in: .whitespaces)
      if message == "/quit" { return }
      if message.isEmpty { continue }
      let turn = transcript.isEmpty ? ChatFormat.opening(message) : ChatFormat.interjection(message, afterFinishedReply: finished)
      transcript += session.tokenizer.encode(turn)
      if transcript.count + maxTokens > context {
        Console.error("(the conversation no longer fits the model's context of \(context) tokens; starting a new one with this message)")
        transcript = session.tokenizer.encode(ChatFormat.opening(message))
      }
      let reply = session.stream(transcript)
      Console.out("")
      transcript += reply.tokens
      finished = reply.finishReason == .eos
    }
  }

  static func describe(_ reason: Generation.FinishReason) -> String {
    switch reason {
    case .eos: return "ended with </s>"
    case .length: return "stopped at --max-tokens"
    case .stopString: return "stopped at a stop string"
    }
  }
}

/// The chat format `sft` and `rl` train on dialogues (`Conversation` in Recipes, whose members are
/// internal there): `<s>User: message` and a newline; the reply, ended by `</s>`; then `User: next
/// message` and a newline. A reply cut at the token limit gets its `</s>` before the next message, so
/// the model always sees finished turns.
enum ChatFormat {
  static let userMarker = "User: "

  /// The text that opens a conversation with `message`.
  static func opening(_ message: String) -> String { SpecialToken.bos.text + userMarker + message + "\n" }

  /// The text between a reply's tokens and the next reply.
  static func interjection(_ message: String, afterFinishedReply finished: Bool) -> String {
    (finished ? "" : SpecialToken.eos.text) + userMarker + message + "\n"
  }
}

/// One model sampling with one random stream, each reply's text written to standard output as its
/// tokens are chosen.
struct GenerationSession {
  let generator: Generator
  let tokenizer: TextTokenizer
  let settings: SamplingSettings
  private var random: RandomStream

  init(artifact: ModelArtifact, settings: SamplingSettings, seed: UInt64) {
    generator = Generator(model: artifact.model)
    tokenizer = artifact.tokenizer
    self.settings = settings
    random = RandomStream(seed: seed, purpose: .sampling)
  }

  /// Continues `tokens`, printing the text as it comes (the end-of-sequence token is not printed).
  mutating func stream(_ tokens: [Int32]) -> Generation {
    var text = TextStream(tokenizer: tokenizer)
    let eos = tokenizer.id(of: .eos)
    let output = FileHandle.standardOutput
    let generations = generator.generate(prompts: [tokens], settings: settings, tokenizer: tokenizer, random: &random) { _, token in
      guard token != eos else { return }
      let piece = text.append(token)
      if !piece.isEmpty { output.write(Data(piece.utf8)) }
    }
    let rest = text.finish()
    if !rest.isEmpty { output.write(Data(rest.utf8)) }
    return generations[0]
  }
}
