@testable import Models
import Tensors
import Testing

/// The generator's shortcuts give what the plain way gives, bit for bit.
@Suite struct GenerationTests {
  /// The integer-key sort orders ids as the comparison of logits did: decreasing, ties by id, −0 = +0.
  @Test func decreasingOrderMatchesTheComparisonSort() {
    var random = RandomStream(seed: 4, purpose: .evaluation)
    for trial in 0..<50 {
      let count = trial == 0 ? 1 : 1 + Int(random.nextUInt32() % 300)
      var logits = (0..<count).map { _ in random.normal() * 3 }
      for i in logits.indices where random.nextUInt32() % 5 == 0 {   // ties, signed zeros, infinities
        logits[i] = [0, -0.0, 1.5, -2, .infinity, -.infinity][Int(random.nextUInt32() % 6)]
      }
      let expected = logits.indices.sorted { logits[$0] != logits[$1] ? logits[$0] > logits[$1] : $0 < $1 }
      #expect(Sampler.decreasingOrder(logits) == expected, "trial \(trial)")
    }
  }

  /// Repeated prompts (a GRPO group) are read once and copied; what they generate does not change.
  @Test func repeatedPromptsGenerateWhatEachGeneratesAlone() {
    let model = TransformerLM(config: TransformerTests.tiny(), seed: 5)
    let tokenizer = ByteTokenizer()
    let a = tokenizer.encode("The quick"), b = tokenizer.encode("brown")
    let settings = SamplingSettings(temperature: 0, maxNewTokens: 10, stopAtEOS: false)
    var random = RandomStream(seed: 1, purpose: .sampling)
    let together = Generator(model: model).generate(prompts: [a, b, a, a, b], settings: settings, tokenizer: tokenizer,
                                                    random: &random)
    for (i, prompt) in [a, b, a, a, b].enumerated() {
      let alone = Generator(model: model).generate(prompts: [prompt], settings: settings, tokenizer: tokenizer,
                                                   random: &random)[0]
      #expect(alone.tokens == together[i].tokens, "prompt \(i)")
    }
  }
}
