/// The built-in corpora stage files can name.
enum BuiltinCorpus {
  static let libraryName = "builtin:library"
  static let defaultDocuments = 2000
  /// The world every built-in task and the library describe unless a stage picks another.
  static let defaultWorld: UInt64 = 1

  /// The library's documents of one split: documents are drawn in order and kept when their text
  /// falls in `split` (one in ten is held out, by a hash of its text), until `documents` are kept.
  static func library(documents: Int, world: UInt64, split: Split, seed: UInt64) -> [String] {
    let world = World(seed: world)
    var kept: [String] = []
    var seen = Set<String>()
    var index = 0
    while kept.count < documents && index < documents * 50 {
      let document = Library.documents(world: world, count: 1, seed: seed, stream: "library/\(index)")[0]
      index += 1
      if Split.of(problem: document) == split && seen.insert(document).inserted { kept.append(document) }
    }
    return kept
  }
}
