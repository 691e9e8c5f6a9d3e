/// English ↔ Spanish translation (name "translation", chrF) of short sentences from a fixed lexicon and
/// grammar: articles and adjectives agree in gender and number, Spanish adjectives follow the noun,
/// verbs are conjugated by person, negation is "no" before the verb.
public struct TranslationTask: TaskGenerator {
  public enum Direction: String, Sendable { case englishToSpanish, spanishToEnglish, both }
  public var direction: Direction

  public init(direction: Direction = .both) { self.direction = direction }

  public var name: String { "translation" }
  public var metric: TaskMetric { .chrF }

  public func example(split: Split, using rng: inout TaskRandom) -> TaskExample {
    while true {
      let sentence = Sentence.random(using: &rng)
      let toSpanish: Bool
      switch direction {
      case .englishToSpanish: toSpanish = true
      case .spanishToEnglish: toSpanish = false
      case .both: toSpanish = Bool.random(using: &rng)
      }
      // Split by the sentence, not the prompt: otherwise a held-out sentence could be trained on in the
      // other direction.
      guard Split.of(problem: sentence.english) == split else { continue }
      let prompt = toSpanish ? "Translate to Spanish: \(sentence.english)" : "Translate to English: \(sentence.spanish)"
      return TaskExample(task: name, split: split, prompt: prompt, reasoning: "",
                         answer: toSpanish ? sentence.spanish : sentence.english)
    }
  }

  public func score(_ answer: String, for example: TaskExample) -> Double {
    TextMetrics.chrF(hypothesis: answer, reference: example.answer)
  }

  /// A noun phrase: determiner, noun, optional adjective, number.
  struct NounPhrase: Sendable {
    enum Determiner: Sendable { case definite, indefinite, two }
    var noun: Word
    var adjective: Adjective?
    var determiner: Determiner
    var plural: Bool { determiner == .two || pluralDefinite }
    var pluralDefinite = false

    var english: String {
      let n = plural ? noun.pluralEnglish : noun.english
      let core = adjective.map { "\($0.english) \(n)" } ?? n
      switch determiner {
      case .definite: return "the \(core)"
      case .indefinite: return "\(World.article(core)) \(core)"
      case .two: return "two \(core)"
      }
    }

    var spanish: String {
      let n = plural ? noun.pluralSpanish : noun.spanish
      let core = adjective.map { "\(n) \($0.spanish(noun.gender, plural: plural))" } ?? n
      switch determiner {
      case .definite: return (plural ? (noun.gender == .masculine ? "los" : "las") : noun.spanishArticle) + " " + core
      case .indefinite: return noun.spanishIndefinite + " " + core
      case .two: return "dos " + core
      }
    }
  }

  /// The people a sentence can be about, with their verb forms' person. The names are none the world
  /// gives its people (`Lexicon.femaleNames`, `maleNames`): "Mira has a dog." drawn at random here would
  /// state, or contradict, a world fact that QA may hold out.
  struct Subject: Sendable {
    var english: String
    var spanish: String
    /// 0: I, 1: you, 2: he/she/it or a name, 3: we, 4: they.
    var person: Int
    static let all: [Subject] = [
      Subject(english: "I", spanish: "yo", person: 0), Subject(english: "you", spanish: "tú", person: 1),
      Subject(english: "he", spanish: "él", person: 2), Subject(english: "she", spanish: "ella", person: 2),
      Subject(english: "we", spanish: "nosotros", person: 3), Subject(english: "they", spanish: "ellos", person: 4),
    ] + ["Sara", "Gael", "Nina", "Teo"].map { Subject(english: $0, spanish: $0, person: 2) }
  }

  /// A verb: English base and third-person forms, Spanish forms for persons 0–4.
  struct Verb: Sendable {
    var english: String
    var englishThird: String
    var spanish: [String]
    static let transitive: [Verb] = [
      Verb(english: "have", englishThird: "has", spanish: ["tengo", "tienes", "tiene", "tenemos", "tienen"]),
      Verb(english: "see", englishThird: "sees", spanish: ["veo", "ves", "ve", "vemos", "ven"]),
      Verb(english: "want", englishThird: "wants", spanish: ["quiero", "quieres", "quiere", "queremos", "quieren"]),
      Verb(english: "buy", englishThird: "buys", spanish: ["compro", "compras", "compra", "compramos", "compran"]),
    ]
    static let eat = Verb(english: "eat", englishThird: "eats", spanish: ["como", "comes", "come", "comemos", "comen"])
    static let live = Verb(english: "live", englishThird: "lives", spanish: ["vivo", "vives", "vive", "vivimos", "viven"])
  }

  /// One sentence in both languages.
  struct Sentence: Sendable {
    var english: String
    var spanish: String

    static func random(using rng: inout TaskRandom) -> Sentence {
      let nouns = Lexicon.animals + Lexicon.objects
      let adjectives = Lexicon.colors + Lexicon.sizes + Lexicon.ages
      func phrase(_ determiners: [NounPhrase.Determiner]) -> NounPhrase {
        var np = NounPhrase(noun: nouns.randomElement(using: &rng)!,
                            adjective: Bool.random(using: &rng) ? adjectives.randomElement(using: &rng)! : nil,
                            determiner: determiners.randomElement(using: &rng)!)
        if np.determiner == .definite { np.pluralDefinite = Int.random(in: 0..<3, using: &rng) == 0 }
        return np
      }
      switch Int.random(in: 0..<4, using: &rng) {
      case 0:  // The red house is big.
        let np = phrase([.definite])
        let adjective = adjectives.randomElement(using: &rng)!
        let negated = Int.random(in: 0..<4, using: &rng) == 0
        let be = np.plural ? "are" : "is", ser = np.plural ? "son" : "es"
        return Sentence(
          english: capitalized("\(np.english) \(be)\(negated ? " not" : "") \(adjective.english)."),
          spanish: capitalized("\(np.spanish)\(negated ? " no" : "") \(ser) \(adjective.spanish(np.noun.gender, plural: np.plural))."))
      case 1:  // She has a black cat.
        let s = Subject.all.randomElement(using: &rng)!, v = Verb.transitive.randomElement(using: &rng)!
        return clause(s, v, object: phrase([.definite, .indefinite, .two]), using: &rng)
      case 2:  // We eat bread.
        let s = Subject.all.randomElement(using: &rng)!, food = Lexicon.foods.randomElement(using: &rng)!
        return clause(s, Verb.eat, englishObject: food.english, spanishObject: food.spanish, using: &rng)
      default:  // They live in the city.
        let s = Subject.all.randomElement(using: &rng)!, place = Lexicon.settlements.randomElement(using: &rng)!
        return clause(s, Verb.live, englishObject: "in the \(place.english)", spanishObject: "en \(place.spanishWithArticle)",
                      using: &rng)
      }
    }

    static func clause(_ s: Subject, _ v: Verb, object: NounPhrase, using rng: inout TaskRandom) -> Sentence {
      clause(s, v, englishObject: object.english, spanishObject: object.spanish, using: &rng)
    }

    static func clause(_ s: Subject, _ v: Verb, englishObject: String, spanishObject: String,
                       using rng: inout TaskRandom) -> Sentence {
      let negated = Int.random(in: 0..<4, using: &rng) == 0
      let third = s.person == 2
      let englishVerb = negated ? "\(third ? "does" : "do") not \(v.english)" : (third ? v.englishThird : v.english)
      return Sentence(english: capitalized("\(s.english) \(englishVerb) \(englishObject)."),
                      spanish: capitalized("\(s.spanish)\(negated ? " no" : "") \(v.spanish[s.person]) \(spanishObject)."))
    }

    static func capitalized(_ s: String) -> String { s.prefix(1).uppercased() + s.dropFirst() }
  }
}
