/// What an op accepts and produces: typed parameters, input slots and outputs.
///
/// A schema is the contract between a stage file and the op's code: the loader validates every stage
/// against it (types, ranges, required keys, input kinds) before anything runs, fills in defaults, and
/// `lineage ops NAME` prints it.
public struct OpSchema: Sendable, Equatable {
  public var parameters: [ParameterSpec]
  public var inputs: [InputSlot]
  public var outputs: [OutputSpec]

  public init(parameters: [ParameterSpec] = [], inputs: [InputSlot] = [], outputs: [OutputSpec]) {
    self.parameters = parameters
    self.inputs = inputs
    self.outputs = outputs
  }

  public func parameter(_ name: String) -> ParameterSpec? { parameters.first { $0.name == name } }
  public func input(_ name: String) -> InputSlot? { inputs.first { $0.name == name } }
  public func output(_ name: String) -> OutputSpec? { outputs.first { $0.name == name } }
  /// The output a bare reference (`v1` rather than `v1.model`) names: the first one declared.
  public var primaryOutput: OutputSpec? { outputs.first }
}

/// The kinds of artifact stages pass to each other; an input slot accepts some of them.
public enum ArtifactKind: String, Sendable, CaseIterable, Codable, Comparable {
  case model, dataset, tokenizer, corpus, metrics, report

  public static func < (a: ArtifactKind, b: ArtifactKind) -> Bool { a.rawValue < b.rawValue }
}

/// One parameter of an op: `train.lr` is the field `lr` of the record `train`.
public struct ParameterSpec: Sendable, Equatable {
  public var name: String
  public var type: ParamType
  /// Used when the stage does not set the parameter; `nil` for a required one. A record is always
  /// present with its fields' defaults, unless its default is `.null`: an optional group (`experts:`).
  public var defaultValue: ParamValue?
  /// Inclusive bounds for numbers (and for the length of lists and strings).
  public var range: ClosedRange<Double>?
  public var required: Bool
  public var doc: String

  public init(_ name: String, _ type: ParamType, default defaultValue: ParamValue? = nil,
              range: ClosedRange<Double>? = nil, required: Bool = false, doc: String) {
    self.name = name
    self.type = type
    self.defaultValue = defaultValue
    self.range = range
    self.required = required
    self.doc = doc
  }
}

/// The type of a parameter value.
public indirect enum ParamType: Sendable, Equatable {
  case int
  case float
  case bool
  case string
  /// A file or folder inside the recipe folder; its *contents* are hashed into the stage's key.
  case path
  /// One of the named built-in sources (`builtin:library`), or else a `path`.
  case pathOrBuiltin([String])
  /// One of a fixed set of words.
  case choice([String])
  case list(ParamType)
  /// A map from names (all of `keys` when given, else any) to values of one type.
  case map(keys: [String]?, values: ParamType)
  /// A group of named fields with their own specs (`train: {steps, lr, …}`).
  case record([ParameterSpec])

  /// How the type reads in messages and in `lineage ops`.
  public var name: String {
    switch self {
    case .int: return "int"
    case .float: return "float"
    case .bool: return "bool"
    case .string: return "string"
    case .path: return "path"
    case .pathOrBuiltin(let builtins): return (builtins + ["path"]).joined(separator: "|")
    case .choice(let words): return words.joined(separator: "|")
    case .list(let element): return "list of \(element.name)"
    case .map(_, let values): return "map of \(values.name)"
    case .record: return "map"
    }
  }
}

/// A named input of an op, filled by a reference to another stage's output (`from: v1`,
/// `teacher: r1.model`), by a list of them when `multiple`, or by one of `literals` (`tokenizer: bytes`).
public struct InputSlot: Sendable, Equatable {
  public var name: String
  public var kinds: [ArtifactKind]
  public var required: Bool
  public var multiple: Bool
  public var literals: [String]
  public var doc: String

  public init(_ name: String, kinds: [ArtifactKind], required: Bool = true, multiple: Bool = false,
              literals: [String] = [], doc: String) {
    self.name = name
    self.kinds = kinds
    self.required = required
    self.multiple = multiple
    self.literals = literals
    self.doc = doc
  }
}

/// A named output of an op.
public struct OutputSpec: Sendable, Equatable {
  public var name: String
  public var kind: ArtifactKind
  public var doc: String

  public init(_ name: String, kind: ArtifactKind, doc: String) {
    self.name = name
    self.kind = kind
    self.doc = doc
  }
}
