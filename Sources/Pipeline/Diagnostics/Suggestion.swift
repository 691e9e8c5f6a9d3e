/// "Did you mean …?" for unknown keys, ops, stages and variables.
public enum Suggestion {
  /// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo:
  /// at most a third of the word's length (and at least one edit), ties broken alphabetically.
  public static func closest(to word: String, among candidates: some Sequence<String>) -> String? {
    let limit = max(1, word.count / 3)
    var best: (distance: Int, name: String)?
    for candidate in candidates {
      let d = editDistance(word.lowercased(), candidate.lowercased())
      guard d <= limit else { continue }
      if best == nil || d < best!.distance || (d == best!.distance && candidate < best!.name) {
        best = (d, candidate)
      }
    }
    return best?.name
  }

  /// `"; did you mean 'x'?"`, or nothing.
  public static func phrase(for word: String, among candidates: some Sequence<String>) -> String {
    closest(to: word, among: candidates).map { "; did you mean '\($0)'?" } ?? ""
  }

  /// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
  static func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var d = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
    for i in 0...x.count { d[i][0] = i }
    for j in 0...y.count { d[0][j] = j }
    for i in 1...x.count {
      for j in 1...y.count {
        let cost = x[i - 1] == y[j - 1] ? 0 : 1
        d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
        if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] {
          d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
        }
      }
    }
    return d[x.count][y.count]
  }
}
