import Foundation

/// The language a prompt is written in, and so the language its reasoning should be in.
public enum PromptLanguage: String, CaseIterable, Sendable {
  case english, spanish
}

/// Tells English words from Spanish ones with the world's bilingual lexicon and each language's
/// common function words. Words of neither list (names, numbers, symbols) carry no language.
enum LanguageIdentifier {
  /// Lower-cased words known in each language (a word in both, like "no", counts for either).
  static let vocabulary: [PromptLanguage: Set<String>] = {
    var english: Set<String> = [
      "the", "a", "an", "and", "or", "but", "not", "is", "are", "was", "were", "be", "it", "this", "that", "of", "to",
      "in", "on", "at", "for", "with", "from", "by", "so", "then", "we", "i", "you", "he", "she", "they", "his", "her",
      "their", "what", "which", "who", "where", "when", "how", "why", "yes", "no", "first", "next", "add", "plus",
      "minus", "times", "equals", "sum", "carry", "digit", "digits", "column", "answer", "result", "total", "step",
      "because", "therefore", "lives", "live", "has", "have", "likes", "like", "works", "work", "good", "bad",
      "very", "all", "some", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "zero",
      "number", "numbers", "use", "make", "get", "target", "let", "us", "check", "wait", "again",
    ]
    var spanish: Set<String> = [
      "el", "la", "los", "las", "un", "una", "unos", "unas", "y", "o", "pero", "no", "es", "son", "era", "fue", "ser",
      "esto", "eso", "este", "esta", "de", "del", "a", "al", "en", "con", "por", "para", "entonces", "luego",
      "nosotros", "yo", "tú", "él", "ella", "ellos", "su", "sus", "qué", "que", "cuál", "quién", "dónde", "cuándo",
      "cómo", "por qué", "sí", "primero", "siguiente", "sumar", "suma", "más", "menos", "por", "igual", "llevamos",
      "llevo", "dígito", "dígitos", "columna", "respuesta", "resultado", "total", "paso", "porque", "vive", "viven",
      "tiene", "tienen", "le", "gusta", "trabaja", "bueno", "buena", "malo", "mala", "muy", "todo", "todos", "algún",
      "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez", "cero", "número", "números",
      "usar", "hacer", "objetivo", "comprobar", "espera", "otra", "vez",
    ]
    func words(_ text: String) -> [String] { LanguageIdentifier.words(in: text) }
    for adjective in Lexicon.colors + Lexicon.sizes + Lexicon.ages + Lexicon.climates {
      english.formUnion(words(adjective.english))
      for gender in [Word.Gender.masculine, .feminine] {
        for plural in [false, true] { spanish.formUnion(words(adjective.spanish(gender, plural: plural))) }
      }
    }
    for word in Lexicon.animals + Lexicon.objects + Lexicon.materials + Lexicon.foods + Lexicon.settlements {
      english.formUnion(words(word.english) + words(word.pluralEnglish))
      spanish.formUnion(words(word.spanish) + words(word.pluralSpanish))
    }
    for job in Lexicon.jobs {
      english.formUnion(words(job.english))
      spanish.formUnion(words(job.male) + words(job.female))
    }
    for region in Lexicon.regions {
      english.formUnion(words(region.english))
      spanish.formUnion(words(region.spanish))
    }
    return [.english: english, .spanish: spanish]
  }()

  /// Lower-cased runs of letters (accents kept).
  static func words(in text: String) -> [String] {
    text.lowercased().split { !$0.isLetter }.map(String.init)
  }

  /// The share of the text's language-bearing words (those in either vocabulary) that belong to
  /// `language`; nil when the text has none (digits-only reasoning carries no language).
  static func share(of language: PromptLanguage, in text: String) -> Double? {
    let own = vocabulary[language] ?? [], all = vocabulary.values.reduce(into: Set<String>()) { $0.formUnion($1) }
    var counted = 0, matching = 0
    for word in words(in: text) where all.contains(word) {
      counted += 1
      if own.contains(word) { matching += 1 }
    }
    return counted == 0 ? nil : Double(matching) / Double(counted)
  }
}
