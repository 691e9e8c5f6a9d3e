/// `builtin:library`: generic text about a `World` in English and Spanish, in the styles of books
/// (short stories) and the web (encyclopedia-like pages and forum posts).
///
/// Every fact a document states is true in the world, so a model pretrained on the library can answer
/// closed-book questions about it. Documents never contain a blank line (the corpus separator).
public enum Library {
  public enum Style: String, Sendable, CaseIterable {
    case story, placePage, personPage, forum, spanishStory, spanishPlacePage
  }

  /// `count` documents, styles drawn about 3 English : 1 Spanish. Document i draws from its own stream,
  /// so a larger library starts with the documents of a smaller one.
  public static func documents(world: World, count: Int, seed: UInt64, stream: String = "library") -> [String] {
    (0..<count).map { i in
      var rng = TaskRandom(seed: seed, stream: "\(stream)/\(i)")
      let styles: [Style] = [.story, .story, .placePage, .personPage, .forum, .forum, .spanishStory, .spanishPlacePage]
      return document(styles.randomElement(using: &rng)!, world: world, using: &rng)
    }
  }

  static func document(_ style: Style, world: World, using rng: inout TaskRandom) -> String {
    switch style {
    case .story: return story(world, person: Int.random(in: 0..<world.people.count, using: &rng), using: &rng)
    case .placePage: return placePage(world, place: Int.random(in: 0..<world.places.count, using: &rng))
    case .personPage: return personPage(world, person: Int.random(in: 0..<world.people.count, using: &rng), using: &rng)
    case .forum: return forum(world, using: &rng)
    case .spanishStory: return spanishStory(world, person: Int.random(in: 0..<world.people.count, using: &rng), using: &rng)
    case .spanishPlacePage: return spanishPlacePage(world, place: Int.random(in: 0..<world.places.count, using: &rng))
    }
  }

  // MARK: - English

  static func story(_ w: World, person i: Int, using rng: inout TaskRandom) -> String {
    let p = w.people[i], a = w.animals[p.pet], place = w.places[p.home], thing = w.things[i]
    let he = p.female ? "she" : "he", He = p.female ? "She" : "He", his = p.female ? "her" : "his"
    let openings = ["Once upon a time, \(p.name) lived in \(place.name), a \(place.climate.english) \(place.kind.english) in the \(Lexicon.regions[place.region].english).",
                    "In the \(place.climate.english) \(place.kind.english) of \(place.name) there lived a \(Lexicon.jobs[p.job].english) called \(p.name).",
                    "This is the story of \(p.name), who lived in \(place.name)."]
    var s = [openings.randomElement(using: &rng)!]
    s.append(["Every morning \(p.name) went to work as \(World.article(Lexicon.jobs[p.job].english)) \(Lexicon.jobs[p.job].english).",
              "\(He) worked as \(World.article(Lexicon.jobs[p.job].english)) \(Lexicon.jobs[p.job].english) and loved it."].randomElement(using: &rng)!)
    s.append("\(p.name) had \(World.article(a.size.english)) \(a.size.english) \(a.color.english) \(a.kind.english) named \(a.name).")
    let events = ["One day \(a.name) ran away into the fields, and \(p.name) looked for \(a.name) until the evening.",
                  "When it rained, \(a.name) slept next to \(his) \(thing.kind.english), which was made of \(thing.material.english).",
                  "\(a.name) followed \(p.name) everywhere, even to the market.",
                  "At night \(p.name) read stories to \(a.name) by the fire."]
    s.append(events.randomElement(using: &rng)!)
    s.append(["For dinner \(p.name) always ate \(p.food.english), because \(he) liked to eat \(p.food.english) more than anything.",
              "\(p.name) likes to eat \(p.food.english), and \(a.name) waited for the leftovers."].randomElement(using: &rng)!)
    s.append(["And so \(p.name) and \(a.name) lived happily in \(place.name).", "The end."].randomElement(using: &rng)!)
    return s.joined(separator: " ")
  }

  static func placePage(_ w: World, place i: Int) -> String {
    let place = w.places[i]
    var s = ["\(place.name) is a \(place.kind.english) in the \(Lexicon.regions[place.region].english).",
             "The climate of \(place.name) is \(place.climate.english)."]
    let residents = w.people.filter { $0.home == i }
    if residents.isEmpty {
      s.append("Few people live in \(place.name) today.")
    } else {
      s.append("People who live in \(place.name) include " + list(residents.map {
        "\($0.name), \(World.article(Lexicon.jobs[$0.job].english)) \(Lexicon.jobs[$0.job].english)"
      }) + ".")
      let animals = residents.map { w.animals[$0.pet] }
      s.append("Animals of \(place.name) include " + list(animals.map { "\($0.name) the \($0.kind.english)" }) + ".")
    }
    return s.joined(separator: " ")
  }

  static func personPage(_ w: World, person i: Int, using rng: inout TaskRandom) -> String {
    let p = w.people[i], a = w.animals[p.pet], thing = w.things[i]
    let pronoun = p.female ? "She" : "He"
    var facts = ["\(pronoun) lives in \(w.places[p.home].name).",
                 "\(pronoun) works as \(World.article(Lexicon.jobs[p.job].english)) \(Lexicon.jobs[p.job].english).",
                 "\(pronoun) likes to eat \(p.food.english).",
                 "\(pronoun) owns \(World.article(thing.color.english)) \(thing.color.english) \(thing.kind.english) made of \(thing.material.english)."]
    facts.shuffle(using: &rng)
    return (["\(p.name) is a resident of \(w.places[p.home].name)."] + facts
            + ["\(p.name) has \(World.article(a.kind.english)) \(a.kind.english) called \(a.name). \(a.name) is \(a.color.english) and \(a.size.english)."])
      .joined(separator: " ")
  }

  static func forum(_ w: World, using rng: inout TaskRandom) -> String {
    let i = Int.random(in: 0..<w.people.count, using: &rng)
    let p = w.people[i], a = w.animals[p.pet]
    let threads: [(String, String)] = [
      ("Does anyone know where \(p.name) lives?", "\(p.name) lives in \(w.places[p.home].name). I see \(p.female ? "her" : "him") there every week."),
      ("What kind of animal is \(a.name)?", "\(a.name) is \(World.article(a.kind.english)) \(a.kind.english). \(a.name) is \(a.color.english). It belongs to \(p.name)."),
      ("Who is the \(Lexicon.jobs[p.job].english) in \(w.places[p.home].name)?", "That is \(p.name). \(p.name) works as \(World.article(Lexicon.jobs[p.job].english)) \(Lexicon.jobs[p.job].english)."),
      ("What is the weather like in \(w.places[p.home].name)?", "\(w.places[p.home].name) is \(w.places[p.home].climate.english) most of the year. It is in the \(Lexicon.regions[w.places[p.home].region].english)."),
      ("What does \(p.name) like to eat?", "\(p.name) likes to eat \(p.food.english). Everyone in \(w.places[p.home].name) knows it."),
    ]
    let (q, answer) = threads.randomElement(using: &rng)!
    let users = ["reader42", "mapmaker", "old_friend", "curious_cat", "traveler"]
    return "Q (\(users.randomElement(using: &rng)!)): \(q) A (\(users.randomElement(using: &rng)!)): \(answer)"
  }

  // MARK: - Spanish

  static func spanishStory(_ w: World, person i: Int, using rng: inout TaskRandom) -> String {
    let p = w.people[i], a = w.animals[p.pet], place = w.places[p.home]
    let kind = a.kind
    let color = a.color.spanish(kind.gender, plural: false), size = a.size.spanish(kind.gender, plural: false)
    var s = ["Había una vez \(p.female ? "una" : "un") \(w.spanishJob(p)) que se llamaba \(p.name).",
             "\(p.name) vive en \(place.name), \(place.kind.spanishIndefinite) \(place.kind.spanish) \(place.climate.spanish(place.kind.gender, plural: false)) del \(Lexicon.regions[place.region].spanish).",
             "\(p.name) tiene \(kind.spanishIndefinite) \(kind.spanish) \(color) y \(size) que se llama \(a.name)."]
    s.append(["Cada día \(p.name) come \(p.food.spanish), porque le gusta mucho.",
              "A \(p.name) le gusta comer \(p.food.spanish)."].randomElement(using: &rng)!)
    s.append(["\(a.name) duerme en casa de \(p.name).", "\(p.name) y \(a.name) pasean juntos por la tarde.",
              "Un día \(a.name) se perdió, pero volvió a casa por la noche."].randomElement(using: &rng)!)
    return s.joined(separator: " ")
  }

  static func spanishPlacePage(_ w: World, place i: Int) -> String {
    let place = w.places[i]
    var s = ["\(place.name) es \(place.kind.spanishIndefinite) \(place.kind.spanish) del \(Lexicon.regions[place.region].spanish).",
             "El clima de \(place.name) es \(place.climate.spanish)."]
    let residents = w.people.filter { $0.home == i }
    if !residents.isEmpty {
      s.append("En \(place.name) viven " + list(residents.map { "\($0.name), \($0.female ? "una" : "un") \(w.spanishJob($0))" }, and: "y") + ".")
    }
    return s.joined(separator: " ")
  }

  static func list(_ items: [String], and word: String = "and") -> String {
    guard items.count > 1 else { return items.first ?? "" }
    return items.dropLast().joined(separator: "; ") + " \(word) " + items.last!
  }
}
