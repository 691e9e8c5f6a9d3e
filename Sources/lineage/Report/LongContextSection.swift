import Foundation

/// The charts of a `long_context` stage: passkey retrieval by prompt length, held-out perplexity by
/// position before and after the extension, and what attention costs per token at each length.
///
/// The metric keys they read (scalars, as `LongContextOp` writes them): `passkey_accuracy/N` and
/// `passkey_accuracy/N_se` per passkey length N; `perplexity_before/BUCKET` and `perplexity/BUCKET`
/// per position bucket (`0k-1k`, `1k-2k`, … or `1k-1536` when the context is no power of two);
/// `attention_bytes_per_token/N` and `attention_flops_per_token/N` for N = 512, 1024, … up to the
/// context. A chart whose keys are missing (an artifact of an earlier version) is left out. Measured
/// times are in the run's log only: they vary from run to run, so the artifact does not keep them.
enum LongContextSection {
  static let note = "Passkey retrieval on held-out passkeys and filler, at each prompt length; held-out perplexity "
    + "on long library documents by position, of the input model (before) and the extended one (after); and what "
    + "attention costs per token at each length, from the model's attention pattern, summed over its layers. "
    + "Measured times vary from run to run: they are in the run's log, not here."

  static func figures(_ stage: StageSummary) -> SectionFigures {
    guard let scalars = stage.metrics?.scalars else { return SectionFigures() }
    var out = SectionFigures()
    if let passkey = passkeyFigure(stage.name, scalars) { out.figures.append(passkey) }
    if let perplexity = perplexityFigure(stage.name, scalars) { out.figures.append(perplexity) }
    out.figures += costFigures(stage.name, scalars)
    out.claimed = Set(scalars.keys.filter { key in keyPrefixes.contains { key.hasPrefix($0) } })
    return out
  }

  static let keyPrefixes = ["passkey_accuracy/", "perplexity_before/", "perplexity/", "attention_bytes_per_token/",
                            "attention_flops_per_token/"]

  // MARK: - The figures

  /// Accuracy per passkey length, each with its standard error, on a 0–100% axis.
  static func passkeyFigure(_ stage: String, _ scalars: [String: Double]) -> Figure? {
    let lengths = byLength(scalars, prefix: "passkey_accuracy/")
    guard !lengths.isEmpty else { return nil }
    let chart = BarChart(categories: lengths.map { String($0.length) }, series: [
      .init(name: "passkeys retrieved", values: lengths.map {
        BarChart.Bar(value: $0.value, standardError: scalars["passkey_accuracy/\($0.length)_se"])
      }),
    ], format: .percent, xLabel: "prompt length (tokens)", axisCovers: [0, 1])
    let (svg, legend) = chart.render(title: "\(stage): passkey retrieval by prompt length")
    return Figure(kind: .longContextPasskey, stage: stage, title: "Passkey retrieval by length",
                  subtitle: "\(stage) · share of held-out passkeys answered exactly, greedy decoding",
                  body: svg, legend: legend, span: chart.span)
  }

  /// Perplexity per position bucket, before and after, buckets in order of their first position.
  static func perplexityFigure(_ stage: String, _ scalars: [String: Double]) -> Figure? {
    let labels = Set(["perplexity_before/", "perplexity/"].flatMap { prefix in
      scalars.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    })
    guard !labels.isEmpty else { return nil }
    let buckets = labels.sorted { a, b in
      switch (bucketStart(a), bucketStart(b)) {
      case let (x?, y?): return x != y ? x < y : a < b
      case (.some, nil): return true    // a label this reader cannot place goes last, still drawn
      case (nil, .some): return false
      case (nil, nil): return a < b
      }
    }
    let series = [("perplexity_before/", "before (input model)"), ("perplexity/", "after (extended)")]
      .filter { prefix, _ in buckets.contains { scalars[prefix + $0] != nil } }
      .map { prefix, name in
        BarChart.Series(name: name, values: buckets.map { scalars[prefix + $0].map { BarChart.Bar(value: $0) } })
      }
    let chart = BarChart(categories: buckets, series: series, xLabel: "positions in the sequence (tokens)")
    let (svg, legend) = chart.render(title: "\(stage): held-out perplexity by position, before and after")
    var subtitle = "\(stage) · held-out long documents"
    if let last = buckets.last, let before = scalars["perplexity_before/" + last], let after = scalars["perplexity/" + last] {
      subtitle += " · at \(last): \(ValueFormat.plain.text(before)) → \(ValueFormat.plain.text(after))"
    }
    return Figure(kind: .longContextPerplexity, stage: stage, title: "Held-out perplexity by position",
                  subtitle: subtitle, body: svg, legend: legend, span: chart.span)
  }

  /// Two charts over the same lengths: attention weights saved per token for the backward pass, and
  /// the forward pass's attention FLOPs per token.
  static func costFigures(_ stage: String, _ scalars: [String: Double]) -> [Figure] {
    let measures: [(key: String, title: String, series: String, format: ValueFormat, scale: Double, about: String)] = [
      ("attention_bytes_per_token", "Attention memory per token", "saved attention weights per token", .bytes, 1,
       "attention weights a training step keeps for the backward pass"),
      ("attention_flops_per_token", "Attention compute per token", "MFLOP per token", .plain, 1e-6,
       "MFLOP of q·k, p·v and block scores in the forward pass"),
    ]
    return measures.compactMap { measure in
      let lengths = byLength(scalars, prefix: measure.key + "/")
      guard let first = lengths.first, let last = lengths.last else { return nil }
      let chart = BarChart(categories: lengths.map { String($0.length) }, series: [
        .init(name: measure.series, values: lengths.map { BarChart.Bar(value: $0.value * measure.scale) }),
      ], format: measure.format, xLabel: "sequence length (tokens)")
      let (svg, legend) = chart.render(title: "\(stage): \(measure.title.lowercased()) by length")
      var subtitle = "\(stage) · \(measure.about), summed over layers"
      if lengths.count > 1, first.value > 0 {
        subtitle += " · ×" + String(format: "%.1f", last.value / first.value) + " from \(first.length) to \(last.length) tokens"
      }
      return Figure(kind: .longContextCost, stage: stage, metric: measure.key, title: measure.title, subtitle: subtitle,
                    body: svg, legend: legend, span: chart.span)
    }
  }

  // MARK: - Reading the keys

  /// The scalars `PREFIX N` with N a whole length in tokens, shortest first (`N_se` is not one).
  static func byLength(_ scalars: [String: Double], prefix: String) -> [(length: Int, value: Double)] {
    scalars.compactMap { key, value -> (length: Int, value: Double)? in
      guard key.hasPrefix(prefix), let length = Int(key.dropFirst(prefix.count)) else { return nil }
      return (length, value)
    }.sorted { $0.length < $1.length }
  }

  /// The first position of a bucket label, as `PositionBuckets.label` writes it: `1k-2k` → 1024,
  /// `1536-2k` → 1536; nil for a label of another form.
  static func bucketStart(_ label: String) -> Int? {
    guard let start = label.split(separator: "-", maxSplits: 1).first else { return nil }
    if start.hasSuffix("k") { return Int(start.dropLast()).map { $0 * 1024 } }
    return Int(start)
  }
}
