import ArtifactStore
import Foundation

/// `manifest.json`, the first entry of a bundle: every other file with its SHA-256 and size, and the
/// stages whose results the bundle carries.
///
/// Written with sorted keys and sorted lists, so the same bundle contents give the same bytes. An
/// importer trusts nothing the manifest does not vouch for: an unlisted file, or a listed one whose
/// size or hash differs, rejects the whole bundle.
public struct BundleManifest: Codable, Equatable, Sendable {
  public static let formatName = "lineage-bundle"

  /// One file of the bundle (every entry but `manifest.json` itself).
  public struct File: Codable, Equatable, Sendable {
    /// The entry name: `recipe/…`, `artifacts/<sha256>` or `actions/<key>.json`.
    public var path: String
    public var sha256: ContentHash
    public var size: Int

    public init(path: String, sha256: ContentHash, size: Int) {
      self.path = path
      self.sha256 = sha256
      self.size = size
    }
  }

  /// A stage whose result the bundle carries: its cache key (the name of its action record) and outputs.
  public struct Stage: Codable, Equatable, Sendable {
    public var name: String
    public var key: ContentHash
    public var outputs: [String: ArtifactRef]

    public init(name: String, key: ContentHash, outputs: [String: ArtifactRef]) {
      self.name = name
      self.key = key
      self.outputs = outputs
    }
  }

  /// Always `lineage-bundle`.
  public var format: String
  public var version: Int
  /// Sorted by path.
  public var files: [File]
  /// Sorted by name.
  public var stages: [Stage]

  public init(files: [File], stages: [Stage]) {
    format = BundleManifest.formatName
    version = RecipeBundle.formatVersion
    self.files = files.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
    self.stages = stages.sorted { $0.name < $1.name }
  }

  /// The JSON text: pretty, keys sorted, slashes unescaped.
  public func encoded() -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    // Strings, integers and hashes only: encoding cannot fail.
    guard let data = try? encoder.encode(self) else { preconditionFailure("a manifest always encodes") }
    return Array(data) + [UInt8(ascii: "\n")]
  }

  /// Parses `manifest.json`, checking the format name and version before the rest.
  static func decode(_ bytes: [UInt8]) throws(BundleError) -> BundleManifest {
    struct Header: Decodable {
      var format: String?
      var version: Int?
    }
    let data = Data(bytes)
    let header: Header
    do {
      header = try JSONDecoder().decode(Header.self, from: data)
    } catch {
      throw .malformedManifest(BundleManifest.reason(error))
    }
    guard header.format == formatName else {
      throw .malformedManifest("'format' is \(header.format.map { "'\($0)'" } ?? "missing"), not '\(formatName)'")
    }
    guard let version = header.version else { throw .malformedManifest("no 'version'") }
    guard version == RecipeBundle.formatVersion else { throw .unsupportedVersion(version) }
    do {
      return try JSONDecoder().decode(BundleManifest.self, from: data)
    } catch {
      throw .malformedManifest(BundleManifest.reason(error))
    }
  }

  /// A decoding error in one line: where, and what.
  static func reason(_ error: any Error) -> String {
    func place(_ path: [any CodingKey]) -> String {
      path.isEmpty ? "" : " at " + path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    }
    switch error as? DecodingError {
    case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?, .dataCorrupted(let context)?:
      return context.debugDescription + place(context.codingPath)
    case .keyNotFound(let key, let context)?:
      return "no '\(key.stringValue)'" + place(context.codingPath)
    default:
      return "\(error)"
    }
  }
}
