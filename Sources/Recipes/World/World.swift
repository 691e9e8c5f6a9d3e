/// A seeded world of places, people, animals and objects with attributes: what the library's texts
/// describe, and what the question-answering, summarisation and entailment tasks ask about.
///
/// The same seed always gives the same world, so a model pretrained on the library can later be asked
/// about it (closed-book QA).
public struct World: Sendable {
  public struct Place: Sendable {
    public var name: String
    var kind: Word
    var region: Int
    var climate: Adjective
  }

  public struct Person: Sendable {
    public var name: String
    public var female: Bool
    /// Index into `places`.
    public var home: Int
    var job: Int
    var food: Word
    /// Index into `animals`.
    public var pet: Int
  }

  public struct Animal: Sendable {
    public var name: String
    var kind: Word
    var color: Adjective
    var size: Adjective
    /// Index into `people`.
    public var owner: Int
  }

  public struct Thing: Sendable {
    var kind: Word
    var color: Adjective
    var material: Word
    /// Index into `people`.
    public var owner: Int
  }

  public let seed: UInt64
  public private(set) var places: [Place] = []
  public private(set) var people: [Person] = []
  public private(set) var animals: [Animal] = []
  public private(set) var things: [Thing] = []

  /// A world of `people` people (at most 40, names are unique), a place for every four of them, one
  /// animal each and an object each.
  public init(seed: UInt64, people count: Int = 32) {
    precondition((1...40).contains(count), "a world holds 1 to 40 people")
    self.seed = seed
    var rng = TaskRandom(seed: seed, stream: "world")
    let placeNames = Lexicon.placeNames.shuffled(using: &rng)
    for i in 0..<max(2, count / 4) {
      places.append(Place(name: placeNames[i], kind: Lexicon.settlements.randomElement(using: &rng)!,
                          region: Int.random(in: 0..<Lexicon.regions.count, using: &rng),
                          climate: Lexicon.climates.randomElement(using: &rng)!))
    }
    let women = Lexicon.femaleNames.shuffled(using: &rng), men = Lexicon.maleNames.shuffled(using: &rng)
    let pets = Lexicon.petNames.shuffled(using: &rng) + Lexicon.petNames.shuffled(using: &rng).map { $0 + "o" }
    for i in 0..<count {
      let female = i % 2 == 0
      people.append(Person(name: female ? women[i / 2] : men[i / 2], female: female,
                           home: Int.random(in: 0..<places.count, using: &rng),
                           job: Int.random(in: 0..<Lexicon.jobs.count, using: &rng),
                           food: Lexicon.foods.randomElement(using: &rng)!, pet: i))
      animals.append(Animal(name: pets[i], kind: Lexicon.animals.randomElement(using: &rng)!,
                            color: Lexicon.colors.randomElement(using: &rng)!,
                            size: Lexicon.sizes.randomElement(using: &rng)!, owner: i))
      things.append(Thing(kind: Lexicon.objects.randomElement(using: &rng)!, color: Lexicon.colors.randomElement(using: &rng)!,
                          material: Lexicon.materials.randomElement(using: &rng)!, owner: i))
    }
  }

  // MARK: - Facts

  /// One true statement about the world: a subject (a person, animal or place, by name), a relation and
  /// its value.
  ///
  /// Tasks split by fact, not by text: `Split.of(fact:)` looks at the subject and relation only, so a
  /// held-out fact stays held out however it is phrased, asked, paraphrased or contradicted.
  public struct Fact: Hashable, Sendable {
    public enum Relation: String, Sendable, CaseIterable {
      case livesIn, worksAs, hasAnimal, likesFood, animalColor, animalSize, placeRegion, placeClimate, ownsThing
      /// An animal's owner ("Pip belongs to Mira."): the person, asked as "Who owns Pip?".
      case ownedBy

      /// Whether a subject has exactly one value, so that stating one denies the others: "Mira lives in
      /// Arden." entails "Mira does not live in Corvo.", but "Mira has a dog." says nothing about cats.
      public var isFunctional: Bool {
        switch self {
        case .livesIn, .worksAs, .animalColor, .animalSize, .placeRegion, .placeClimate, .ownedBy: return true
        case .hasAnimal, .likesFood, .ownsThing: return false
        }
      }
    }
    public var subject: String
    public var relation: Relation
    public var object: String

    public init(subject: String, relation: Relation, object: String) {
      self.subject = subject
      self.relation = relation
      self.object = object
    }
  }

  /// Every fact, in a fixed order.
  public var facts: [Fact] { people.indices.flatMap { personFacts($0) } + places.indices.flatMap { placeFacts($0) } }

  /// The facts of one split (`Split.of(fact:)`), in the order of `facts`.
  public func facts(in split: Split) -> [Fact] { facts.filter { Split.of(fact: $0) == split } }

  /// What the world says about person `i`, their animal and their object.
  public func personFacts(_ i: Int) -> [Fact] {
    let p = people[i], a = animals[p.pet]
    return [Fact(subject: p.name, relation: .livesIn, object: places[p.home].name),
            Fact(subject: p.name, relation: .worksAs, object: Lexicon.jobs[p.job].english),
            Fact(subject: p.name, relation: .hasAnimal, object: a.kind.english),
            Fact(subject: p.name, relation: .likesFood, object: p.food.english),
            Fact(subject: a.name, relation: .animalColor, object: a.color.english),
            Fact(subject: a.name, relation: .animalSize, object: a.size.english),
            Fact(subject: p.name, relation: .ownsThing, object: things[i].kind.english),
            Fact(subject: a.name, relation: .ownedBy, object: p.name)]
  }

  public func placeFacts(_ i: Int) -> [Fact] {
    [Fact(subject: places[i].name, relation: .placeRegion, object: Lexicon.regions[places[i].region].english),
     Fact(subject: places[i].name, relation: .placeClimate, object: places[i].climate.english)]
  }

  /// Every value `relation` can take in this world (its places and people, the lexicon's words; at
  /// least two in a world of two people or more): the candidates for a changed ("Mira lives in Corvo.") or denied ("Mira does not live
  /// in Corvo.") value.
  public func values(of relation: Fact.Relation) -> [String] {
    switch relation {
    case .livesIn: return places.map(\.name)
    case .ownedBy: return people.map(\.name)
    case .worksAs: return Lexicon.jobs.map(\.english)
    case .hasAnimal: return Lexicon.animals.map(\.english)
    case .likesFood: return Lexicon.foods.map(\.english)
    case .animalColor: return Lexicon.colors.map(\.english)
    case .animalSize: return Lexicon.sizes.map(\.english)
    case .placeRegion: return Lexicon.regions.map(\.english)
    case .placeClimate: return Lexicon.climates.map(\.english)
    case .ownsThing: return Lexicon.objects.map(\.english)
    }
  }

  static func article(_ word: String) -> String { "aeiou".contains(word.first ?? "x") ? "an" : "a" }

  /// Words that describe a person's job in Spanish.
  func spanishJob(_ p: Person) -> String { p.female ? Lexicon.jobs[p.job].female : Lexicon.jobs[p.job].male }
}
