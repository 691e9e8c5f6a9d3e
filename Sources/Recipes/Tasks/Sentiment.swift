/// Sentiment of a product review (name "sentiment", accuracy): "positive" or "negative", balanced.
///
/// A review cannot be classified by spotting words. Each judgement rests on a polarity word that is
/// negated half the time ("the price is not bad" is positive), and half the judgements are contrasts
/// in which the clause after "but" or "however", or the main clause of "although …", decides ("the
/// design is lovely, but the finish is flimsy" is negative); so every polarity word, and "not", is as
/// common in positive reviews as in negative ones.
///
/// Held-out reviews are of products (brands) and by reviewers that training never names, in sentence
/// frames that training never uses. Only the polarity words, aspects, connectives and filler sentences
/// are shared: a model cannot learn what a word it never saw means.
public struct SentimentTask: TaskGenerator {
  public init() {}

  public var name: String { "sentiment" }
  public var metric: TaskMetric { .accuracy }
  public var labels: [String]? { Polarity.allCases.map(\.rawValue) }

  public func example(split: Split, using rng: inout TaskRandom) -> TaskExample {
    let review = Review.random(label: Bool.random(using: &rng) ? .positive : .negative, split: split, using: &rng)
    return TaskExample(task: name, split: split, prompt: review.prompt, reasoning: "", answer: review.label.rawValue)
  }

  public func score(_ answer: String, for example: TaskExample) -> Double {
    TextMetrics.exactMatch(answer, example.answer) ? 1 : 0
  }

  // MARK: - Reviews

  /// What a review says about the product, and the label.
  public enum Polarity: String, Sendable, CaseIterable {
    case positive, negative
    var opposite: Polarity { self == .positive ? .negative : .positive }
  }

  /// One clause judging one aspect: "the price is not bad".
  struct Clause: Equatable {
    var frame: Frame
    var aspect: String
    var word: String
    /// The polarity of `word` alone.
    var wordPolarity: Polarity
    var negated: Bool

    /// What the clause says: the word's polarity, reversed by negation.
    var polarity: Polarity { negated ? wordPolarity.opposite : wordPolarity }
    var text: String { frame.clause(aspect: aspect, word: word, negated: negated) }
  }

  /// How two clauses of opposite polarity are joined; the second clause decides in each.
  enum Connective: CaseIterable {
    case but       // "The design is lovely, but the finish is flimsy."
    case although  // "Although the design is lovely, the finish is flimsy."
    case however   // "The design is lovely. However, the finish is flimsy."
  }

  /// One or two sentences that together judge the product.
  enum Judgement: Equatable {
    case single(Clause)
    case contrast(Clause, Connective, Clause)

    /// The clause that decides: the only one, or the one after the contrast.
    var deciding: Clause {
      switch self {
      case .single(let clause), .contrast(_, _, let clause): return clause
      }
    }

    var text: String {
      switch self {
      case .single(let c): return sentence(c.text)
      case .contrast(let a, .but, let b): return sentence("\(a.text), but \(b.text)")
      case .contrast(let a, .although, let b): return sentence("although \(a.text), \(b.text)")
      case .contrast(let a, .however, let b): return sentence(a.text) + " " + sentence("however, \(b.text)")
      }
    }
  }

  /// A whole review: who wrote it about what, its judgements (all of the label's polarity) and an
  /// optional neutral sentence.
  struct Review: Equatable {
    var product: String
    var reviewer: String
    var judgements: [Judgement]
    var neutral: Neutral?

    /// A sentence that judges nothing ("It came in a box."), at `position` among the judgements.
    struct Neutral: Equatable {
      var sentence: String
      var position: Int
    }

    /// The polarity every judgement's deciding clause has.
    var label: Polarity {
      let polarities = Set(judgements.map(\.deciding.polarity))
      precondition(polarities.count == 1, "a review's judgements agree")
      return polarities.first!
    }

    var prompt: String {
      var sentences = judgements.map(\.text)
      if let neutral { sentences.insert(neutral.sentence, at: min(neutral.position, sentences.count)) }
      return "Review of the \(product) by \(reviewer): \(sentences.joined(separator: " ")) Is the review positive or negative?"
    }

    /// One or two judgements of `label`, each a single clause or a contrast, with words, negations,
    /// aspects and frames drawn independently of the label; names and frames from `split`'s lists.
    static func random(label: Polarity, split: Split, using rng: inout TaskRandom) -> Review {
      let names = Vocabulary.names(split)
      let frames = Frame.allCases.filter { ($0.isHeldOut ? Split.heldout : .train) == split }
      var aspects = Vocabulary.aspects.shuffled(using: &rng)[...]
      func clause(_ polarity: Polarity) -> Clause {
        let negated = Bool.random(using: &rng)
        let wordPolarity = negated ? polarity.opposite : polarity
        return Clause(frame: frames.randomElement(using: &rng)!, aspect: aspects.popFirst()!,
                      word: Vocabulary.words(wordPolarity).randomElement(using: &rng)!,
                      wordPolarity: wordPolarity, negated: negated)
      }
      var judgements: [Judgement] = []
      for _ in 0..<Int.random(in: 1...2, using: &rng) {
        if Bool.random(using: &rng) {
          judgements.append(.single(clause(label)))
        } else {
          let first = clause(label.opposite)
          judgements.append(.contrast(first, Connective.allCases.randomElement(using: &rng)!, clause(label)))
        }
      }
      let product = "\(names.brands.randomElement(using: &rng)!) \(Lexicon.objects.randomElement(using: &rng)!.english)"
      let reviewer = names.reviewers.randomElement(using: &rng)!
      let neutral = Bool.random(using: &rng)
        ? Neutral(sentence: Vocabulary.neutral.randomElement(using: &rng)!,
                  position: Int.random(in: 0...judgements.count, using: &rng)) : nil
      return Review(product: product, reviewer: reviewer, judgements: judgements, neutral: neutral)
    }
  }

  /// A way of saying that an aspect is (or is not) something. Training uses six frames; three more are
  /// held out, so the held-out reviews are phrased in ways training never shows.
  enum Frame: CaseIterable {
    case plain, found, think, felt, wouldCall, turnedOut
    case seems, inMyView, weThought

    var isHeldOut: Bool {
      switch self {
      case .plain, .found, .think, .felt, .wouldCall, .turnedOut: return false
      case .seems, .inMyView, .weThought: return true
      }
    }

    /// The clause, lowercase where a sentence would capitalise it.
    func clause(aspect a: String, word w: String, negated: Bool) -> String {
      switch (self, negated) {
      case (.plain, false): return "the \(a) is \(w)"
      case (.plain, true): return "the \(a) is not \(w)"
      case (.found, false): return "I found the \(a) \(w)"
      case (.found, true): return "I did not find the \(a) \(w)"
      case (.think, false): return "I think the \(a) is \(w)"
      case (.think, true): return "I do not think the \(a) is \(w)"
      case (.felt, false): return "the \(a) felt \(w) to me"
      case (.felt, true): return "the \(a) did not feel \(w) to me"
      case (.wouldCall, false): return "I would call the \(a) \(w)"
      case (.wouldCall, true): return "I would not call the \(a) \(w)"
      case (.turnedOut, false): return "the \(a) turned out \(w)"
      case (.turnedOut, true): return "the \(a) did not turn out \(w)"
      case (.seems, false): return "the \(a) seems \(w)"
      case (.seems, true): return "the \(a) does not seem \(w)"
      case (.inMyView, false): return "in my view the \(a) is \(w)"
      case (.inMyView, true): return "in my view the \(a) is not \(w)"
      case (.weThought, false): return "we thought the \(a) was \(w)"
      case (.weThought, true): return "we did not think the \(a) was \(w)"
      }
    }
  }

  /// The words reviews are made of. Brands and reviewers are invented names that the world and the
  /// library never use; the held-out ones appear in no training review.
  enum Vocabulary {
    static let positive = ["good", "great", "excellent", "lovely", "solid", "wonderful"]
    static let negative = ["bad", "poor", "awful", "flimsy", "terrible", "disappointing"]
    static let aspects = ["quality", "price", "design", "finish", "size", "delivery", "handle", "color"]
    static let neutral = ["It arrived on Monday.", "I use it every day.", "My friend has one too.", "It came in a box."]

    static let trainBrands = ["Zorbo", "Kelvix", "Brillo", "Vantor", "Orlique", "Pintado", "Quasar", "Rumbel",
                              "Sablex", "Tundro", "Mellow", "Gravik"]
    static let heldoutBrands = ["Yarrowby", "Wexley", "Nimbra", "Jovian", "Fenwick", "Odessa"]
    static let trainReviewers = ["Arlo", "Bianca", "Cyrus", "Delia", "Enzo", "Fiona", "Gideon", "Hazel", "Ingrid",
                                 "Jasper", "Kira", "Lionel"]
    static let heldoutReviewers = ["Mabel", "Nestor", "Ophelia", "Quentin", "Rhoda", "Silas"]

    static func words(_ polarity: Polarity) -> [String] { polarity == .positive ? positive : negative }

    static func names(_ split: Split) -> (brands: [String], reviewers: [String]) {
      switch split {
      case .train: return (trainBrands, trainReviewers)
      case .heldout: return (heldoutBrands, heldoutReviewers)
      }
    }
  }
}

/// The text with its first letter capitalised and a final period.
private func sentence(_ text: String) -> String { text.prefix(1).uppercased() + text.dropFirst() + "." }
