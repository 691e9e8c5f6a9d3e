/// A word in English and Spanish, with the Spanish gender that articles and adjectives agree with.
struct Word: Hashable, Sendable {
  enum Gender: Sendable { case masculine, feminine }
  var english: String
  var spanish: String
  var gender: Gender = .masculine
  /// Spanish plural when it is not just "+s".
  var spanishPlural: String?
  var englishPlural: String?

  var spanishArticle: String { gender == .masculine ? "el" : "la" }
  var spanishIndefinite: String { gender == .masculine ? "un" : "una" }
  /// "el perro", "la casa".
  var spanishWithArticle: String { spanishArticle + " " + spanish }
  var pluralSpanish: String { spanishPlural ?? spanish + "s" }
  var pluralEnglish: String { englishPlural ?? english + "s" }
}

/// An adjective in English and Spanish, agreeing in gender and number in Spanish.
struct Adjective: Hashable, Sendable {
  var english: String
  /// Masculine singular.
  var spanish: String
  /// Feminine singular when it differs ("roja"); invariable adjectives ("verde", "azul") have none.
  var spanishFeminine: String?
  var spanishPluralSuffix: String = "s"

  func spanish(_ gender: Word.Gender, plural: Bool) -> String {
    let base = gender == .feminine ? (spanishFeminine ?? spanish) : spanish
    return plural ? base + spanishPluralSuffix : base
  }
}

/// The fixed bilingual vocabulary the world, the library and the translation task share.
enum Lexicon {
  static let colors: [Adjective] = [
    Adjective(english: "red", spanish: "rojo", spanishFeminine: "roja"),
    Adjective(english: "black", spanish: "negro", spanishFeminine: "negra"),
    Adjective(english: "white", spanish: "blanco", spanishFeminine: "blanca"),
    Adjective(english: "yellow", spanish: "amarillo", spanishFeminine: "amarilla"),
    Adjective(english: "green", spanish: "verde"),
    Adjective(english: "blue", spanish: "azul", spanishPluralSuffix: "es"),
    Adjective(english: "gray", spanish: "gris", spanishPluralSuffix: "es"),
  ]
  static let sizes: [Adjective] = [
    Adjective(english: "small", spanish: "pequeño", spanishFeminine: "pequeña"),
    Adjective(english: "big", spanish: "grande"),
  ]
  /// Only the translation task uses these (an animal's size is small or big, never old).
  static let ages: [Adjective] = [
    Adjective(english: "old", spanish: "viejo", spanishFeminine: "vieja"),
    Adjective(english: "young", spanish: "joven", spanishPluralSuffix: "es"),
    Adjective(english: "new", spanish: "nuevo", spanishFeminine: "nueva"),
  ]
  static let animals: [Word] = [
    Word(english: "dog", spanish: "perro"), Word(english: "cat", spanish: "gato"),
    Word(english: "horse", spanish: "caballo"), Word(english: "bird", spanish: "pájaro"),
    Word(english: "fox", spanish: "zorro", englishPlural: "foxes"), Word(english: "rabbit", spanish: "conejo"),
    Word(english: "cow", spanish: "vaca", gender: .feminine), Word(english: "goat", spanish: "cabra", gender: .feminine),
  ]
  static let objects: [Word] = [
    Word(english: "book", spanish: "libro"), Word(english: "lamp", spanish: "lámpara", gender: .feminine),
    Word(english: "box", spanish: "caja", gender: .feminine, englishPlural: "boxes"),
    Word(english: "chair", spanish: "silla", gender: .feminine), Word(english: "cup", spanish: "taza", gender: .feminine),
    Word(english: "table", spanish: "mesa", gender: .feminine), Word(english: "clock", spanish: "reloj", spanishPlural: "relojes"),
  ]
  static let materials: [Word] = [
    Word(english: "wood", spanish: "madera"), Word(english: "glass", spanish: "vidrio"),
    Word(english: "metal", spanish: "metal"), Word(english: "paper", spanish: "papel"), Word(english: "stone", spanish: "piedra"),
  ]
  /// Jobs: English, Spanish for a man, Spanish for a woman.
  static let jobs: [(english: String, male: String, female: String)] = [
    ("baker", "panadero", "panadera"), ("teacher", "maestro", "maestra"), ("farmer", "granjero", "granjera"),
    ("doctor", "médico", "médica"), ("painter", "pintor", "pintora"), ("fisher", "pescador", "pescadora"),
    ("carpenter", "carpintero", "carpintera"), ("singer", "cantante", "cantante"),
  ]
  static let foods: [Word] = [
    Word(english: "bread", spanish: "pan"), Word(english: "apples", spanish: "manzanas", gender: .feminine),
    Word(english: "fish", spanish: "pescado"), Word(english: "cheese", spanish: "queso"),
    Word(english: "rice", spanish: "arroz"), Word(english: "soup", spanish: "sopa", gender: .feminine),
    Word(english: "carrots", spanish: "zanahorias", gender: .feminine), Word(english: "honey", spanish: "miel", gender: .feminine),
  ]
  static let climates: [Adjective] = [
    Adjective(english: "cold", spanish: "frío", spanishFeminine: "fría"),
    Adjective(english: "warm", spanish: "cálido", spanishFeminine: "cálida"),
    Adjective(english: "rainy", spanish: "lluvioso", spanishFeminine: "lluviosa"),
    Adjective(english: "dry", spanish: "seco", spanishFeminine: "seca"),
    Adjective(english: "windy", spanish: "ventoso", spanishFeminine: "ventosa"),
  ]
  static let regions: [(english: String, spanish: String)] = [
    ("north", "norte"), ("south", "sur"), ("east", "este"), ("west", "oeste"),
  ]
  static let settlements: [Word] = [
    Word(english: "town", spanish: "pueblo"), Word(english: "village", spanish: "aldea", gender: .feminine),
    Word(english: "city", spanish: "ciudad", gender: .feminine, spanishPlural: "ciudades", englishPlural: "cities"),
  ]

  /// Invented, pronounceable names.
  static let femaleNames = ["Mira", "Lena", "Sofia", "Ana", "Nora", "Iris", "Clara", "Elena", "Rosa", "Vera", "Lucia",
                            "Marta", "Julia", "Alba", "Ines", "Paula", "Eva", "Lola", "Irene", "Carla"]
  static let maleNames = ["Tomas", "Pablo", "Hugo", "Mateo", "Leo", "Bruno", "Dario", "Marco", "Ivan", "Raul", "Lucas",
                          "Diego", "Oscar", "Simon", "Elias", "Adrian", "Hector", "Felix", "Nico", "Ramon"]
  static let placeNames = ["Arden", "Belmar", "Corvo", "Dunmar", "Elbra", "Faro", "Galen", "Hollin", "Istra", "Jarrow",
                           "Kelso", "Lorca", "Merin", "Norvo", "Oster", "Palma", "Quill", "Rosk", "Sarn", "Tarlo"]
  static let petNames = ["Pip", "Coco", "Max", "Luna", "Toby", "Kiki", "Bolt", "Nube", "Rufo", "Perla", "Chispa", "Duna",
                         "Tango", "Mimi", "Ozzy", "Pelusa", "Rayo", "Sol", "Tita", "Zuri"]
}
