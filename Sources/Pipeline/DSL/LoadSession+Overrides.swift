import Foundation

/// Values layered over what the stage files say: recipe.yaml's `defaults:` under every stage of their
/// op, and `--set stage.key=value` overrides over everything, each value keeping where it came from.
extension LoadSession {
  func applyDefaults(_ defaults: [String: YAMLNode], to raw: [RawStage]) -> [RawStage] {
    guard !defaults.isEmpty else { return raw }
    var interpolator = Interpolator(variables: [])
    return raw.map { stage in
      guard case .string(let op)? = stage.value["op"]?.scalar, let node = defaults[op] else { return stage }
      let base = interpolator.value(of: node, origin: { .defaults($0) })
      var stage = stage
      stage.value = SourceValue.merged(base: base, overlay: stage.value)
      return stage
    }
  }

  mutating func applyOverrides(to raw: [RawStage]) -> [RawStage] {
    var raw = raw
    for text in loader.overrides {
      guard let equals = text.firstIndex(of: "=") ?? nil else {
        diagnostics.append(Diagnostic("--set '\(text)' must look like stage.key=value", at: nil))
        continue
      }
      // A stage name may itself contain '=' (matrix stages): find the longest stage or group prefix.
      let candidates = Set(raw.map(\.name) + raw.compactMap(\.group))
      var match: (name: String, rest: Substring)?
      for name in candidates where text.hasPrefix(name + ".") {
        if match == nil || name.count > match!.name.count {
          match = (name, text.dropFirst(name.count + 1))
        }
      }
      guard let match, let eq = match.rest.firstIndex(of: "=") else {
        let stagePart = String(text[..<equals]).split(separator: ".").first.map(String.init) ?? text
        diagnostics.append(Diagnostic(
          "--set '\(text)': no stage named '\(stagePart)'\(Suggestion.phrase(for: stagePart, among: candidates))",
          at: nil))
        continue
      }
      let path = match.rest[..<eq].split(separator: ".").map(String.init)
      let valueText = String(match.rest[match.rest.index(after: eq)...])
      guard !path.isEmpty, !RecipeLoader.reservedKeys.contains(path[0]) || path[0] == "seed" else {
        diagnostics.append(Diagnostic("--set '\(text)' cannot change '\(path.first ?? "")'", at: nil))
        continue
      }
      let value = overrideValue(valueText, text: text)
      for i in raw.indices where raw[i].name == match.name || raw[i].group == match.name {
        raw[i].value.set(path: path[...], to: value)
      }
    }
    return raw
  }

  /// An override's value is read as a YAML scalar (`3e-4` is a float, `true` a bool).
  func overrideValue(_ valueText: String, text: String) -> SourceValue {
    var interpolator = Interpolator(variables: [])
    if let node = try? YAMLParser.parse(Array(valueText.utf8), file: "--set", limits: loader.limits),
       case .scalar = node.content {
      return interpolator.value(of: node, origin: { _ in .override(text) }).withOrigin(.override(text), at: nil)
    }
    return SourceValue(content: .scalar(.string(valueText)), location: nil, origin: .override(text), raw: valueText)
  }
}
