import Pipeline

/// A stage's metrics artifact: canonical JSON (sorted keys, normalised numbers), so the same run
/// always gives the same bytes. Headline scalars go into the lockfile as well; curves and tables only
/// here.
struct MetricsArtifact {
  private var fields: [String: ParamValue] = [:]

  subscript(key: String) -> ParamValue? {
    get { fields[key] }
    set { fields[key] = newValue }
  }

  mutating func set(_ key: String, _ value: Double) { fields[key] = .float(value) }

  /// A curve sampled at most `points` times (every step when short), as `[[step, value], …]` with 1-based steps.
  mutating func setCurve(_ key: String, _ values: [Float], points: Int = 200) {
    let stride = max(1, (values.count + points - 1) / points)
    var list: [ParamValue] = []
    for i in Swift.stride(from: 0, to: values.count, by: stride) {
      list.append(.list([.int(i + 1), .float(Double(values[i]))]))
    }
    if let last = values.indices.last, last % stride != 0 { list.append(.list([.int(last + 1), .float(Double(values[last]))])) }
    fields[key] = .list(list)
  }

  var bytes: [UInt8] { Array((ParamValue.map(fields).canonicalJSON + "\n").utf8) }
}
