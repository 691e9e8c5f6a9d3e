/// A group of op settings declared once: the same declaration yields the schema (validation,
/// `lineage ops`) and the typed value the op receives.
///
/// A conforming type is a plain struct whose stored properties hold the typed values; `fields` says,
/// for each YAML key, which property it fills, its type, range and one-line doc. Defaults come from a
/// value of the type (an op may declare its own: continued training wants a lower `lr` than
/// pretraining), so the schema's defaults and the op's defaults are one value and cannot drift apart.
///
/// ```swift
/// struct TrainSettings: SettingsGroup {
///   var steps = 100
///   var learningRate = 3e-3
///   var schedule = Schedule.cosine
///   static let fields: [SettingField<Self>] = [
///     .int("steps", \.steps, range: 1...10_000_000, doc: "Optimizer steps"),
///     .float("lr", \.learningRate, range: 1e-7...1, doc: "Peak learning rate"),
///     .choice("schedule", \.schedule, doc: "After warm-up: cosine decay, or constant"),
///   ]
/// }
/// ```
///
/// Floating-point settings are `Double`, as the YAML value is: a `Float` default would print and hash
/// as `0.0030000000260770321` instead of `0.003`.
public protocol SettingsGroup: Sendable {
  /// The fields in the order `lineage ops` prints them.
  static var fields: [SettingField<Self>] { get }
}

extension SettingsGroup {
  /// The parameter specs of this group, with `defaults` giving every default value.
  public static func specs(defaults: Self) -> [ParameterSpec] { fields.map { $0.spec(defaults) } }

  /// The typed value of validated parameters (a map; keys it does not declare are ignored, e.g. an
  /// input slot's literal), starting from `defaults` for keys the map lacks.
  ///
  /// - Parameter path: the dotted path of the group, for messages.
  /// - Throws: `SettingsError` when a value has the wrong type: validation should have refused it first,
  ///   so this means the op and its schema disagree, and the stage fails instead of guessing.
  public static func decode(_ value: ParamValue, defaults: Self, path: String = "") throws(SettingsError) -> Self {
    guard value.map != nil || value.isNull else { throw SettingsError(path: path, expected: "a map", found: value) }
    var result = defaults
    for field in fields {
      let child = value[field.key]
      if child.isNull && !field.nullIsValue { continue }
      try field.decode(child, &result, path.isEmpty ? field.key : "\(path).\(field.key)")
    }
    return result
  }
}

/// A choice among fixed words (`schedule: cosine|constant`): an enum whose raw values are the YAML words.
public protocol SettingChoice: RawRepresentable, CaseIterable, Sendable where RawValue == String {}

/// A setting whose value has the wrong type for its declaration.
public struct SettingsError: Error, Equatable, Sendable, CustomStringConvertible {
  public var path: String
  public var expected: String
  public var found: ParamValue
  public init(path: String, expected: String, found: ParamValue) {
    self.path = path
    self.expected = expected
    self.found = found
  }
  public var description: String {
    "setting '\(path)' should be \(expected), got \(found.displayText)"
  }
}

/// One key of a settings group: its spec (built from the group's defaults) and how its value is stored.
public struct SettingField<Root>: Sendable {
  public let key: String
  let spec: @Sendable (Root) -> ParameterSpec
  let decode: @Sendable (ParamValue, inout Root, String) throws(SettingsError) -> Void
  /// An optional group: `null` (absent) decodes to nil instead of keeping the default.
  var nullIsValue = false
}

// MARK: - Scalars

extension SettingField {
  public static func int(_ key: String, _ path: WritableKeyPath<Root, Int> & Sendable,
                         range: ClosedRange<Double>? = nil, doc: String) -> Self {
    SettingField(key: key, spec: { ParameterSpec(key, .int, default: .int($0[keyPath: path]), range: range, doc: doc) },
                 decode: { value, root, at throws(SettingsError) in root[keyPath: path] = try value.typedInt(at) })
  }

  /// An int without a default: absent means the op decides (documented in `doc`).
  public static func int(_ key: String, _ path: WritableKeyPath<Root, Int?> & Sendable,
                         range: ClosedRange<Double>? = nil, doc: String) -> Self {
    SettingField(key: key, spec: { ParameterSpec(key, .int, default: $0[keyPath: path].map { .int($0) }, range: range, doc: doc) },
                 decode: { value, root, at throws(SettingsError) in root[keyPath: path] = try value.typedInt(at) })
  }

  public static func float(_ key: String, _ path: WritableKeyPath<Root, Double> & Sendable,
                           range: ClosedRange<Double>? = nil, doc: String) -> Self {
    SettingField(key: key, spec: { ParameterSpec(key, .float, default: .float($0[keyPath: path]), range: range, doc: doc) },
                 decode: { value, root, at throws(SettingsError) in root[keyPath: path] = try value.typedDouble(at) })
  }

  /// A float without a default: absent means the op decides (documented in `doc`).
  public static func float(_ key: String, _ path: WritableKeyPath<Root, Double?> & Sendable,
                           range: ClosedRange<Double>? = nil, doc: String) -> Self {
    SettingField(key: key, spec: { ParameterSpec(key, .float, default: $0[keyPath: path].map { .float($0) }, range: range, doc: doc) },
                 decode: { value, root, at throws(SettingsError) in root[keyPath: path] = try value.typedDouble(at) })
  }

  public static func bool(_ key: String, _ path: WritableKeyPath<Root, Bool> & Sendable, doc: String) -> Self {
    SettingField(key: key, spec: { ParameterSpec(key, .bool, default: .bool($0[keyPath: path]), doc: doc) },
                 decode: { value, root, at throws(SettingsError) in
                   guard let v = value.bool else { throw SettingsError(path: at, expected: "true or false", found: value) }
                   root[keyPath: path] = v
                 })
  }

  /// A file or folder in the recipe folder (`.path`), or one of `builtins` as well when given.
  public static func path(_ key: String, _ path: WritableKeyPath<Root, String?> & Sendable, builtins: [String] = [],
                          doc: String) -> Self {
    SettingField(key: key,
                 spec: { ParameterSpec(key, builtins.isEmpty ? .path : .pathOrBuiltin(builtins),
                                       default: $0[keyPath: path].map { .string($0) }, doc: doc) },
                 decode: { value, root, at throws(SettingsError) in root[keyPath: path] = try value.typedString(at) })
  }

  /// A path with a default (usually one of `builtins`).
  public static func path(_ key: String, _ path: WritableKeyPath<Root, String> & Sendable, builtins: [String] = [],
                          doc: String) -> Self {
    SettingField(key: key,
                 spec: { ParameterSpec(key, builtins.isEmpty ? .path : .pathOrBuiltin(builtins),
                                       default: .string($0[keyPath: path]), doc: doc) },
                 decode: { value, root, at throws(SettingsError) in root[keyPath: path] = try value.typedString(at) })
  }

  public static func choice<E: SettingChoice>(_ key: String, _ path: WritableKeyPath<Root, E> & Sendable,
                                              doc: String) -> Self {
    SettingField(key: key,
                 spec: { ParameterSpec(key, .choice(E.allCases.map(\.rawValue)), default: .string($0[keyPath: path].rawValue), doc: doc) },
                 decode: { value, root, at throws(SettingsError) in root[keyPath: path] = try value.typedChoice(at) })
  }

  /// A choice without a default: absent means nil (e.g. "either `generator:` or `source:`").
  public static func choice<E: SettingChoice>(_ key: String, _ path: WritableKeyPath<Root, E?> & Sendable,
                                              doc: String) -> Self {
    SettingField(key: key,
                 spec: { ParameterSpec(key, .choice(E.allCases.map(\.rawValue)), default: $0[keyPath: path].map { .string($0.rawValue) }, doc: doc) },
                 decode: { value, root, at throws(SettingsError) in root[keyPath: path] = try value.typedChoice(at) as E })
  }
}

extension SettingField {
  /// One word of `among` without a default (names looked up in a registry, such as a task name).
  public static func word(_ key: String, _ path: WritableKeyPath<Root, String?> & Sendable, among: [String],
                          doc: String) -> Self {
    SettingField(key: key,
                 spec: { ParameterSpec(key, .choice(among), default: $0[keyPath: path].map { .string($0) }, doc: doc) },
                 decode: { value, root, at throws(SettingsError) in
                   let word = try value.typedString(at)
                   guard among.contains(word) else {
                     throw SettingsError(path: at, expected: among.joined(separator: "|"), found: value)
                   }
                   root[keyPath: path] = word
                 })
  }
}

// MARK: - Lists, maps and groups

extension SettingField {
  /// A list of ints; `range` bounds each element, `count` the list's length.
  public static func ints(_ key: String, _ path: WritableKeyPath<Root, [Int]> & Sendable, count: ClosedRange<Double>,
                          doc: String) -> Self {
    SettingField(key: key,
                 spec: { ParameterSpec(key, .list(.int), default: .list($0[keyPath: path].map { .int($0) }), range: count, doc: doc) },
                 decode: { value, root, at throws(SettingsError) in
                   guard let items = value.list else { throw SettingsError(path: at, expected: "a list of ints", found: value) }
                   var out: [Int] = []
                   for (i, item) in items.enumerated() { out.append(try item.typedInt("\(at)[\(i)]")) }
                   root[keyPath: path] = out
                 })
  }

  /// A list of words, each one of `among` (names looked up in a registry, such as task names).
  public static func words(_ key: String, _ path: WritableKeyPath<Root, [String]> & Sendable, among: [String],
                           count: ClosedRange<Double>, doc: String) -> Self {
    SettingField(key: key,
                 spec: { ParameterSpec(key, .list(.choice(among)), default: .list($0[keyPath: path].map { .string($0) }),
                                       range: count, doc: doc) },
                 decode: { value, root, at throws(SettingsError) in
                   guard let items = value.list else { throw SettingsError(path: at, expected: "a list", found: value) }
                   var out: [String] = []
                   for (i, item) in items.enumerated() {
                     let word = try item.typedString("\(at)[\(i)]")
                     guard among.contains(word) else {
                       throw SettingsError(path: "\(at)[\(i)]", expected: among.joined(separator: "|"), found: item)
                     }
                     out.append(word)
                   }
                   root[keyPath: path] = out
                 })
  }

  /// A map from names (each one of `keys`) to floats, such as task weights.
  public static func weights(_ key: String, _ path: WritableKeyPath<Root, [String: Double]> & Sendable, keys: [String],
                             required: Bool = false, doc: String) -> Self {
    SettingField(key: key,
                 spec: { root in
                   ParameterSpec(key, .map(keys: keys, values: .float),
                                 default: required ? nil : .map(root[keyPath: path].mapValues { .float($0) }),
                                 required: required, doc: doc)
                 },
                 decode: { value, root, at throws(SettingsError) in
                   guard let entries = value.map else { throw SettingsError(path: at, expected: "a map", found: value) }
                   var out: [String: Double] = [:]
                   for (name, weight) in entries { out[name] = try weight.typedDouble("\(at).\(name)") }
                   root[keyPath: path] = out
                 })
  }

  /// A nested group that is always present (`train:`), its fields' defaults taken from the parent's.
  public static func group<G: SettingsGroup>(_ key: String, _ path: WritableKeyPath<Root, G> & Sendable,
                                             doc: String) -> Self {
    SettingField(key: key,
                 spec: { ParameterSpec(key, .record(G.specs(defaults: $0[keyPath: path])), doc: doc) },
                 decode: { value, root, at throws(SettingsError) in
                   root[keyPath: path] = try G.decode(value, defaults: root[keyPath: path], path: at)
                 })
  }

  /// An optional group (`experts:`): absent means nil; when given, its missing fields take `fieldDefaults`.
  public static func optionalGroup<G: SettingsGroup>(_ key: String, _ path: WritableKeyPath<Root, G?> & Sendable,
                                                     fieldDefaults: G, doc: String) -> Self {
    var field = SettingField(key: key,
                             spec: { _ in ParameterSpec(key, .record(G.specs(defaults: fieldDefaults)), default: .null, doc: doc) },
                             decode: { value, root, at throws(SettingsError) in
                               root[keyPath: path] = value.isNull ? nil : try G.decode(value, defaults: fieldDefaults, path: at)
                             })
    field.nullIsValue = true
    return field
  }
}

// MARK: - Typed reads of one value

extension ParamValue {
  func typedInt(_ path: String) throws(SettingsError) -> Int {
    guard let v = int else { throw SettingsError(path: path, expected: "an int", found: self) }
    return v
  }

  func typedDouble(_ path: String) throws(SettingsError) -> Double {
    guard let v = double else { throw SettingsError(path: path, expected: "a number", found: self) }
    return v
  }

  func typedString(_ path: String) throws(SettingsError) -> String {
    guard let v = string else { throw SettingsError(path: path, expected: "a string", found: self) }
    return v
  }

  func typedChoice<E: SettingChoice>(_ path: String) throws(SettingsError) -> E {
    guard let word = string, let v = E(rawValue: word) else {
      throw SettingsError(path: path, expected: E.allCases.map(\.rawValue).joined(separator: "|"), found: self)
    }
    return v
  }
}
