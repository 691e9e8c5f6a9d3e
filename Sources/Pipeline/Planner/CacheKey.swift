import ArtifactStore
import Foundation

/// The cache key of a stage: SHA-256 over a canonical encoding of what determines its outputs.
///
/// Encoded: op name, op version, resolved parameters (defaults filled in, numbers normalised, map keys
/// sorted), the content hashes of its input artifacts and of the files its `path` parameters name, and
/// its seed. Nothing else: not the stage's name, file, comments, formatting or key order — so a
/// reformatted recipe never reruns, and two identical stages share one result. Because inputs enter
/// by *content*, an upstream rerun that produces identical bytes leaves the key unchanged (early cutoff).
public struct CacheKeyInputs: Sendable, Equatable {
  public var op: String
  public var opVersion: Int
  public var parameters: ParamValue
  /// Slot → hashes of the artifacts filling it, in order.
  public var inputs: [String: [ContentHash]]
  /// `path` parameter → content hash of the file or folder.
  public var files: [String: ContentHash]
  public var seed: UInt64

  public init(op: String, opVersion: Int, parameters: ParamValue, inputs: [String: [ContentHash]],
              files: [String: ContentHash], seed: UInt64) {
    self.op = op
    self.opVersion = opVersion
    self.parameters = parameters
    self.inputs = inputs
    self.files = files
    self.seed = seed
  }

  /// The canonical text hashed into the key (JSON, sorted keys, no white space): the canonical JSON
  /// of `{files, inputs, op, params, seed, version}` after a `lineage-key-v1` line.
  public var canonicalText: String { String(decoding: canonicalBytes, as: UTF8.self) }

  /// `canonicalText` as UTF-8, written directly rather than through a `ParamValue` document: every
  /// stage's key is computed on every run.
  var canonicalBytes: [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(512)
    out += "lineage-key-v1\n{\"files\":{".utf8
    for (i, file) in files.sorted(by: { $0.key < $1.key }).enumerated() {
      if i > 0 { out.append(UInt8(ascii: ",")) }
      ParamValue.appendJSONQuoted(file.key, to: &out)
      out.append(UInt8(ascii: ":"))
      ParamValue.appendJSONQuoted(file.value.hex, to: &out)
    }
    out += "},\"inputs\":{".utf8
    for (i, slot) in inputs.sorted(by: { $0.key < $1.key }).enumerated() {
      if i > 0 { out.append(UInt8(ascii: ",")) }
      ParamValue.appendJSONQuoted(slot.key, to: &out)
      out += ":[".utf8
      for (j, hash) in slot.value.enumerated() {
        if j > 0 { out.append(UInt8(ascii: ",")) }
        ParamValue.appendJSONQuoted(hash.hex, to: &out)
      }
      out.append(UInt8(ascii: "]"))
    }
    out += "},\"op\":".utf8
    ParamValue.appendJSONQuoted(op, to: &out)
    out += ",\"params\":".utf8
    parameters.writeCanonical(into: &out)
    // The seed as a string: a UInt64 may not fit an Int.
    out += ",\"seed\":\"".utf8
    out += String(seed).utf8
    out += "\",\"version\":".utf8
    out += String(opVersion).utf8
    out.append(UInt8(ascii: "}"))
    return out
  }

  public var key: ContentHash { ContentHash.of(canonicalBytes) }
}

/// Content hashes of the files and folders `path` parameters name.
public enum FileDigest {
  /// A file hashes to the SHA-256 of its bytes; a folder to the SHA-256 of its sorted listing of
  /// relative paths and their files' hashes (hidden entries skipped), so renaming a file changes it and
  /// touching one does not.
  ///
  /// - Throws: `StageFailure` when the path cannot be read.
  public static func hash(path: String) throws -> ContentHash {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw StageFailure("no file or folder '\(path)'")
    }
    guard isDirectory.boolValue else { return try hashFile(path) }
    guard let enumerator = FileManager.default.enumerator(atPath: path) else {
      throw StageFailure("cannot list folder '\(path)'")
    }
    var entries: [String] = []
    while let relative = enumerator.nextObject() as? String {
      if PathComponents.hasHiddenComponent(relative) { continue }
      var dir: ObjCBool = false
      if FileManager.default.fileExists(atPath: path + "/" + relative, isDirectory: &dir), !dir.boolValue {
        entries.append(relative)
      }
    }
    var listing = "lineage-folder-v1\n"
    for relative in entries.sorted() {
      listing += "\(try hashFile(path + "/" + relative).hex)  \(relative)\n"
    }
    return ContentHash.of(Array(listing.utf8))
  }

  static func hashFile(_ path: String) throws -> ContentHash {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw StageFailure("cannot read '\(path)'")
    }
    return ContentHash.of(data)
  }
}
