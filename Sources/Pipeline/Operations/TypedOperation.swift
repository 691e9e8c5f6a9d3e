import Foundation
/// An op whose parameters are one `SettingsGroup`: its schema is derived from the group and its
/// defaults, and `run` receives the decoded value, so the op reads no parameter by string.
///
/// ```swift
/// struct PretrainOp: TypedOperation {
///   let defaults = PretrainSettings(train: TrainSettings(steps: 500, batch: 16, learningRate: 3e-3, warmup: 50))
///   func run(_ context: StageContext, settings: PretrainSettings) throws -> StageOutput { … }
/// }
/// ```
public protocol TypedOperation: StageOperation {
  associatedtype Settings: SettingsGroup
  /// The value of every parameter a stage leaves out; the schema shows them as the defaults.
  var defaults: Settings { get }
  var inputs: [InputSlot] { get }
  var outputs: [OutputSpec] { get }

  /// Checks that span several settings (each setting alone is checked by the schema). Problems name a
  /// parameter path (`model.heads`) so the loader can point at its place in the stage file.
  func problems(in settings: Settings) -> [ParameterProblem]

  /// `problems(in:)` knowing which input slots the stage fills: for a setting that needs an optional
  /// input (or refuses one). By default, `problems(in:)`.
  func problems(in settings: Settings, filledSlots: Set<String>) -> [ParameterProblem]

  /// Computes the stage's outputs from its inputs and settings.
  func run(_ context: StageContext, settings: Settings) throws -> StageOutput

  /// Why `ranks` processes cannot share the work these settings describe, or nil when they can. By
  /// default an op runs on one process only; training ops answer from their batch's micro-batches.
  func rankProblem(ranks: Int, settings: Settings) -> String?
}

extension TypedOperation {
  /// Derived from `Settings` and `defaults` once per op (the loader, the graph and the executor ask for
  /// it several times per stage: 50,000 times in a 10,000-stage recipe).
  public var schema: OpSchema {
    SchemaCache.shared.schema(of: ObjectIdentifier(Self.self), name: name) {
      OpSchema(parameters: Settings.specs(defaults: defaults), inputs: inputs, outputs: outputs)
    }
  }

  public func problems(in settings: Settings) -> [ParameterProblem] { [] }

  public func rankProblem(ranks: Int, settings: Settings) -> String? {
    ranks == 1 ? nil : "op \(name) runs on one process; only training ops split their work over ranks"
  }

  public func rankProblem(ranks: Int, parameters: ParamValue) -> String? {
    guard let settings = try? Settings.decode(parameters, defaults: defaults) else { return nil }
    return rankProblem(ranks: ranks, settings: settings)
  }

  public func problems(in settings: Settings, filledSlots: Set<String>) -> [ParameterProblem] { problems(in: settings) }

  /// The loader calls this only with schema-valid parameters, so decoding succeeds; if it ever did
  /// not, the op and its schema disagree, which the problem says rather than hiding.
  public func validate(_ parameters: ParamValue) -> [ParameterProblem] {
    do {
      return problems(in: try Settings.decode(parameters, defaults: defaults))
    } catch {
      return [ParameterProblem(path: error.path, "internal: \(error) (the op '\(name)' and its schema disagree)")]
    }
  }

  public func validate(_ parameters: ParamValue, filledSlots: Set<String>) -> [ParameterProblem] {
    do {
      return problems(in: try Settings.decode(parameters, defaults: defaults), filledSlots: filledSlots)
    } catch {
      return [ParameterProblem(path: error.path, "internal: \(error) (the op '\(name)' and its schema disagree)")]
    }
  }

  public func run(_ context: StageContext) throws -> StageOutput {
    let settings: Settings
    do {
      settings = try Settings.decode(context.parameters, defaults: defaults)
    } catch {
      throw StageFailure("\(error)")
    }
    return try run(context, settings: settings)
  }
}

/// Every typed op's schema, computed on first use. An op's schema depends only on its type (its
/// settings group, defaults, slots and outputs are constants), so it is keyed by type and name.
final class SchemaCache: @unchecked Sendable {  // `schemas` guarded by `lock`
  static let shared = SchemaCache()
  private let lock = NSLock()
  private var schemas: [ObjectIdentifier: [String: OpSchema]] = [:]

  func schema(of type: ObjectIdentifier, name: String, make: () -> OpSchema) -> OpSchema {
    lock.lock()
    if let known = schemas[type]?[name] {
      lock.unlock()
      return known
    }
    lock.unlock()
    let made = make()
    lock.lock()
    schemas[type, default: [:]][name] = made
    lock.unlock()
    return made
  }
}
