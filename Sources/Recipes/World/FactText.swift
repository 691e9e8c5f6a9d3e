/// How a fact about the world reads in the tasks: the plain statement passages and premises use, a
/// paraphrase and a negation for entailment hypotheses, and the question that asks for its value.
///
/// Every surface form of a fact is made here, from the fact itself, so that a test can list every way a
/// held-out fact could reach a training prompt and check that none does.
extension World {
  /// How a statement of a fact is worded.
  public enum Phrasing: Sendable, CaseIterable {
    /// "Mira lives in Arden." (the form passages, premises and summaries use)
    case plain
    /// "Mira's home is in Arden.": the same claim in other words.
    case paraphrased
    /// "Mira does not live in Arden.": the denial of the claim.
    case negated
  }

  /// The plain English statement of a fact ("Mira lives in Arden.").
  public static func english(_ fact: Fact) -> String { sentence(fact, .plain) }

  /// A statement of `fact` worded as `phrasing` says.
  public static func sentence(_ fact: Fact, _ phrasing: Phrasing) -> String {
    let s = fact.subject, o = fact.object, a = article(o)
    switch (fact.relation, phrasing) {
    case (.livesIn, .plain): return "\(s) lives in \(o)."
    case (.livesIn, .paraphrased): return "\(s)'s home is in \(o)."
    case (.livesIn, .negated): return "\(s) does not live in \(o)."
    case (.worksAs, .plain): return "\(s) works as \(a) \(o)."
    case (.worksAs, .paraphrased): return "\(s) earns a living as \(a) \(o)."
    case (.worksAs, .negated): return "\(s) does not work as \(a) \(o)."
    case (.hasAnimal, .plain): return "\(s) has \(a) \(o)."
    case (.hasAnimal, .paraphrased): return "\(s) keeps \(a) \(o)."
    case (.hasAnimal, .negated): return "\(s) does not have \(a) \(o)."
    case (.likesFood, .plain): return "\(s) likes to eat \(o)."
    case (.likesFood, .paraphrased): return "\(s) enjoys eating \(o)."
    case (.likesFood, .negated): return "\(s) does not like to eat \(o)."
    case (.animalColor, .plain), (.animalSize, .plain), (.placeClimate, .plain): return "\(s) is \(o)."
    case (.animalColor, .paraphrased): return "The color of \(s) is \(o)."
    case (.animalSize, .paraphrased): return "\(s) is \(a) \(o) animal."
    case (.placeClimate, .paraphrased): return "The climate of \(s) is \(o)."
    case (.animalColor, .negated), (.animalSize, .negated), (.placeClimate, .negated): return "\(s) is not \(o)."
    case (.placeRegion, .plain): return "\(s) is in the \(o)."
    case (.placeRegion, .paraphrased): return "\(s) lies in the \(o)."
    case (.placeRegion, .negated): return "\(s) is not in the \(o)."
    case (.ownsThing, .plain): return "\(s) owns \(a) \(o)."
    case (.ownsThing, .paraphrased): return "\(s) is the owner of \(a) \(o)."
    case (.ownsThing, .negated): return "\(s) does not own \(a) \(o)."
    case (.ownedBy, .plain): return "\(s) belongs to \(o)."
    case (.ownedBy, .paraphrased): return "\(o) owns \(s)."
    case (.ownedBy, .negated): return "\(s) does not belong to \(o)."
    }
  }

  /// The question whose answer is the fact's value ("Where does Mira live?" → "Arden"). It names only the
  /// subject and relation, so every fact with the same subject and relation is asked the same way.
  public static func question(_ fact: Fact) -> String {
    let s = fact.subject
    switch fact.relation {
    case .livesIn: return "Where does \(s) live?"
    case .worksAs: return "What is \(s)'s job?"
    case .hasAnimal: return "What animal does \(s) have?"
    case .likesFood: return "What does \(s) like to eat?"
    case .animalColor: return "What color is \(s)?"
    case .animalSize: return "What size is \(s)?"
    case .placeRegion: return "In which region is \(s)?"
    case .placeClimate: return "What is the climate of \(s)?"
    case .ownsThing: return "What object does \(s) own?"
    case .ownedBy: return "Who owns \(s)?"
    }
  }
}
