/// The text similarity and pass-rate measures `eval` reports, with their standard errors and the
/// majority-class baseline.
public enum TextMetrics {
  /// chrF (Popović 2015, sacrebleu's defaults): character n-grams for n = 1…6, whitespace removed;
  /// precision and recall averaged over the orders both strings have, F with β = 2. In 0…1.
  public static func chrF(hypothesis: String, reference: String, order: Int = 6, beta: Double = 2) -> Double {
    let h = Array(hypothesis.filter { !$0.isWhitespace }), r = Array(reference.filter { !$0.isWhitespace })
    if h.isEmpty || r.isEmpty { return h == r ? 1 : 0 }
    var precision = 0.0, recall = 0.0, orders = 0
    for n in 1...order {
      guard h.count >= n, r.count >= n else { break }
      let hg = ngrams(h, n), rg = ngrams(r, n)
      var overlap = 0
      for (gram, count) in hg { overlap += min(count, rg[gram] ?? 0) }
      precision += Double(overlap) / Double(h.count - n + 1)
      recall += Double(overlap) / Double(r.count - n + 1)
      orders += 1
    }
    guard orders > 0 else { return 0 }
    precision /= Double(orders)
    recall /= Double(orders)
    guard precision + recall > 0 else { return 0 }
    let b2 = beta * beta
    return (1 + b2) * precision * recall / (b2 * precision + recall)
  }

  private static func ngrams(_ chars: [Character], _ n: Int) -> [String: Int] {
    var out: [String: Int] = [:]
    for i in 0...(chars.count - n) { out[String(chars[i..<(i + n)]), default: 0] += 1 }
    return out
  }

  /// ROUGE-L F1: the longest common subsequence of lowercase words (punctuation removed).
  public static func rougeL(hypothesis: String, reference: String) -> Double {
    let h = words(hypothesis), r = words(reference)
    guard !h.isEmpty, !r.isEmpty else { return h.isEmpty && r.isEmpty ? 1 : 0 }
    var previous = [Int](repeating: 0, count: r.count + 1)
    for a in h {
      var current = [Int](repeating: 0, count: r.count + 1)
      for (j, b) in r.enumerated() { current[j + 1] = a == b ? previous[j] + 1 : max(previous[j + 1], current[j]) }
      previous = current
    }
    let lcs = Double(previous[r.count])
    guard lcs > 0 else { return 0 }
    let p = lcs / Double(h.count), q = lcs / Double(r.count)
    return 2 * p * q / (p + q)
  }

  static func words(_ text: String) -> [String] {
    text.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init)
  }

  /// Lowercase, inner whitespace collapsed, trimmed, one final period dropped.
  public static func normalizedAnswer(_ text: String) -> String {
    var s = text.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
    if s.hasSuffix(".") { s.removeLast() }
    return s.split(whereSeparator: \.isWhitespace).joined(separator: " ")
  }

  public static func exactMatch(_ answer: String, _ reference: String) -> Bool {
    normalizedAnswer(answer) == normalizedAnswer(reference)
  }

  /// The unbiased pass@k of Chen et al. (2021): 1 − C(n−c, k) / C(n, k) for c correct of n samples,
  /// as a product so that large n do not overflow.
  public static func passAtK(samples n: Int, correct c: Int, k: Int) -> Double {
    precondition(n >= 1 && (0...n).contains(c) && (1...n).contains(k))
    if c == 0 { return 0 }
    if n - c < k { return 1 }
    var failAll = 1.0
    for i in (n - c + 1)...n { failAll *= 1 - Double(k) / Double(i) }
    return 1 - failAll
  }

  // MARK: - Uncertainty and baselines

  /// The binomial standard error of an accuracy `p` measured on `n` independent examples, √(p(1 − p)/n):
  /// the spread one would see between evaluations on other samples of `n` examples.
  ///
  /// - Returns: 0 when `p` is 0 or 1 (as the formula gives; the true rate may still lie near them).
  public static func binomialStandardError(accuracy p: Double, examples n: Int) -> Double {
    precondition(n >= 1 && (0...1).contains(p))
    return (p * (1 - p) / Double(n)).squareRoot()
  }

  /// The standard error of the mean of per-example scores (chrF, ROUGE-L): s / √n, with s the sample
  /// standard deviation (n − 1 in its denominator, the usual unbiased variance).
  ///
  /// - Returns: NaN for fewer than two scores, where no spread can be estimated.
  public static func standardErrorOfMean(_ values: [Double]) -> Double {
    let n = Double(values.count)
    guard values.count >= 2 else { return .nan }
    let mean = values.reduce(0, +) / n
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
    return (variance / n).squareRoot()
  }

  /// The accuracy of always giving the most common reference answer (compared as exact match compares):
  /// the score a classifier that ignores its input reaches on these examples.
  public static func majorityClassAccuracy(_ answers: [String]) -> Double {
    precondition(!answers.isEmpty)
    let commonest = normalizedAnswer(commonestAnswer(answers))
    return Double(answers.filter { normalizedAnswer($0) == commonest }.count) / Double(answers.count)
  }

  /// The most common of `answers` (compared as exact match compares), as first written; a tie goes to
  /// the answer that sorts first, so the choice does not depend on order.
  public static func commonestAnswer(_ answers: [String]) -> String {
    precondition(!answers.isEmpty)
    var counts: [String: (count: Int, first: String)] = [:]
    for answer in answers { counts[normalizedAnswer(answer), default: (0, answer)].count += 1 }
    return counts.min { a, b in a.value.count != b.value.count ? a.value.count > b.value.count : a.key < b.key }!.value.first
  }
}
