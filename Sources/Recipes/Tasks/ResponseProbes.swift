import Foundation

/// A task with held-out prompts on which a property of whole responses is worth watching during RL:
/// `rl` reports each probe's rate before and after training, as it reports held-out pass@1.
protocol ProbedTask: TaskGenerator {
  var responseProbes: [ResponseProbe] { get }
}

/// One such property and the prompts it is measured on.
struct ResponseProbe {
  /// What is counted in the responses.
  enum Measure: String, Sendable, CaseIterable {
    /// The share of responses whose reasoning is mixed-language (`ResponseMeasures.isMixedLanguage`).
    case mixedLanguage = "mixed_language"
    /// The share of responses with a term of the stage's block list.
    case toxicityRate = "toxicity_rate"
  }

  var measure: Measure
  /// Draws the held-out prompts (for example `word_arithmetic` in Spanish only, or provocative chat).
  var prompts: any TaskGenerator
}

/// The response-level rates of `ResponseProbe`, on responses as the model wrote them (end-of-sequence
/// removed).
enum ResponseMeasures {
  /// Reasoning with less than this share of its language-bearing words in the prompt's language is
  /// mixed: one English word in ten Spanish ones already is.
  static let consistentShare = 0.9

  /// Whether `response`'s reasoning mixes languages: less than `threshold` of its language-bearing
  /// words (`LanguageIdentifier`) are in `language`. Reasoning without such words (digits only, or
  /// none) is not mixed, as the `language` reward scores it 1.
  static func isMixedLanguage(_ response: String, language: PromptLanguage, threshold: Double = consistentShare) -> Bool {
    guard let share = LanguageIdentifier.share(of: language, in: reasoning(in: response)) else { return false }
    return share < threshold
  }

  /// The share of `responses` whose reasoning mixes languages, with its binomial standard error.
  static func mixedLanguageShare(_ responses: [(response: String, language: PromptLanguage)],
                                 threshold: Double = consistentShare) -> BinomialScore {
    rate(responses.map { isMixedLanguage($0.response, language: $0.language, threshold: threshold) })
  }

  /// The share of `responses` with a term of `blockList` anywhere (reasoning included, as the
  /// `toxicity` reward reads them).
  static func toxicityRate(_ responses: [String], blockList: BlockList) -> BinomialScore {
    rate(responses.map(blockList.isToxic))
  }

  /// The reasoning of a response: the `<think>` block; else the text before the last `Answer: `; else
  /// all of it (a response that never reached an answer is all reasoning).
  static func reasoning(in response: String) -> String {
    if let reasoning = ReasoningFormat.parse(response).reasoning { return reasoning }
    if let r = response.range(of: TaskFormat.answerMarker, options: .backwards) { return String(response[..<r.lowerBound]) }
    return response
  }

  private static func rate(_ outcomes: [Bool]) -> BinomialScore {
    guard !outcomes.isEmpty else { return BinomialScore(value: 0, count: 0) }
    return BinomialScore(value: Double(outcomes.filter { $0 }.count) / Double(outcomes.count), count: outcomes.count)
  }
}
