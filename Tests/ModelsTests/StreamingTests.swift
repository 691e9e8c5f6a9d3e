@testable import Models
import Tensors
import Testing

/// Streaming generation: the per-token callback sees every token as it is chosen and changes nothing;
/// `TextStream` never hands out half a character.
@Suite struct StreamingTests {
  @Test func onTokenSeesEveryTokenInOrderAndChangesNothing() {
    let model = TransformerLM(config: TransformerTests.tiny(), seed: 6)
    let tokenizer = ByteTokenizer()
    let prompts = [tokenizer.encode("The quick"), tokenizer.encode("brown")]
    let settings = SamplingSettings(temperature: 1, topP: 0.9, maxNewTokens: 12, stopAtEOS: false)
    var plainRandom = RandomStream(seed: 8, purpose: .sampling), streamedRandom = plainRandom
    let plain = Generator(model: model).generate(prompts: prompts, settings: settings, tokenizer: tokenizer, random: &plainRandom)
    var seen: [[Int32]] = [[], []]
    var order: [Int] = []
    let streamed = Generator(model: model).generate(prompts: prompts, settings: settings, tokenizer: tokenizer,
                                                    random: &streamedRandom) { sequence, token in
      seen[sequence].append(token)
      order.append(sequence)
    }
    #expect(streamed == plain)
    #expect(plainRandom.nextUInt32() == streamedRandom.nextUInt32(), "the random stream advanced alike")
    #expect(seen == plain.map(\.tokens))
    // One step at a time: each step reports every active sequence before the next step starts.
    #expect(order == Array([[Int]](repeating: [0, 1], count: 12).joined()))
  }

  /// `é` is two bytes; its first byte alone is held back, and the pieces add up to `decode`.
  @Test func textStreamHoldsBackAnUnfinishedCharacter() {
    let tokenizer = ByteTokenizer()
    let ids = tokenizer.encode("café ok") + [SpecialToken.answerOpen.id] + tokenizer.encode("€")
    var stream = TextStream(tokenizer: tokenizer)
    var pieces = ids.map { stream.append($0) }
    #expect(pieces[3] == "" && pieces[4] == "é")
    #expect(pieces[8] == "<answer>" && pieces[9...11] == ["", "", "€"])
    pieces.append(stream.finish())
    #expect(pieces.joined() == tokenizer.decode(ids))
    var cut = TextStream(tokenizer: tokenizer)
    #expect(cut.append(0xE2) == "" && cut.finish() == "\u{FFFD}", "an unfinished end comes out as a replacement character at the end")
  }
}
