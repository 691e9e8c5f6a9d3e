import CCurl
import Foundation

/// A remote cache over HTTP, laid out as Bazel's remote cache: `/cas/<sha256>` holds blobs by the hash
/// of their bytes, `/ac/<key>` holds action records (ours: the `ActionRecord` JSON) by cache key.
/// Any server that answers `GET`, `HEAD` and `PUT` on those paths works, e.g. nginx with WebDAV `PUT`.
///
/// Downloads are verified: a blob must hash to its name, a record must carry the key it was asked
/// for and name the outputs the lockfile records for its stage, so a damaged or malicious server
/// cannot put wrong bytes in the store, nor a self-consistent other result.
public struct RemoteCache: Sendable {
  public let base: URL

  /// - Throws: `RemoteError.badURL` unless `url` is `http(s)://host[:port][/path]`.
  public init(url: String) throws {
    guard let parsed = URL(string: url.hasSuffix("/") ? String(url.dropLast()) : url),
          ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
      throw RemoteError.badURL(url)
    }
    base = parsed
  }

  public enum Area: String, Sendable { case cas, ac }

  private func url(_ area: Area, _ name: ContentHash) -> URL {
    base.appendingPathComponent(area.rawValue).appendingPathComponent(name.hex)
  }

  /// Whether the remote holds `name`.
  public func has(_ area: Area, _ name: ContentHash) async throws -> Bool {
    let address = url(area, name).absoluteString
    switch try await send("HEAD", address).status {
    case 200: return true
    case 404: return false
    case let status: throw RemoteError.status(status, "HEAD", address)
    }
  }

  /// The bytes under `name`, or nil when the remote does not hold them.
  public func get(_ area: Area, _ name: ContentHash) async throws -> [UInt8]? {
    let address = url(area, name).absoluteString
    let (bytes, status) = try await send("GET", address)
    switch status {
    case 200: return bytes
    case 404: return nil
    default: throw RemoteError.status(status, "GET", address)
    }
  }

  public func put(_ area: Area, _ name: ContentHash, _ bytes: [UInt8]) async throws {
    let address = url(area, name).absoluteString
    let status = try await send("PUT", address, body: bytes).status
    guard (200..<300).contains(status) else { throw RemoteError.status(status, "PUT", address) }
  }

  /// One request through libcurl (`CCurl`, loaded on the first request), on a thread of its own:
  /// the call blocks until the transfer ends, and the cooperative pool has only as many threads as
  /// cores.
  private func send(_ method: String, _ address: String, body: [UInt8] = []) async throws -> (bytes: [UInt8], status: Int) {
    let base = self.base.absoluteString
    return try await withCheckedThrowingContinuation { continuation in
      Thread.detachNewThread {
        var response = lineage_http_response()
        let code = body.withUnsafeBufferPointer { lineage_http_perform(method, address, $0.baseAddress, $0.count, &response) }
        defer { lineage_http_release(&response) }
        guard code == 0 else {
          let message = withUnsafeBytes(of: response.error) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
          continuation.resume(throwing: RemoteError.unreachable(base, message))
          return
        }
        let bytes = response.body.map { Array(UnsafeBufferPointer(start: $0, count: response.length)) } ?? []
        continuation.resume(returning: (bytes, response.status))
      }
    }
  }
}

public enum RemoteError: Error, Equatable, CustomStringConvertible {
  case badURL(String)
  case unreachable(String, String)
  case status(Int, String, String)
  case corrupt(String)
  /// The remote's record for a locked stage names other outputs than the lockfile.
  case outputsDiffer(stage: String, key: ContentHash, differences: [String])

  public var description: String {
    switch self {
    case .outputsDiffer(let stage, let key, let differences):
      return "the remote's result for stage \(stage) (key \(key.short)) has other outputs than lineage.lock records "
        + "(\(differences.joined(separator: "; "))): refused it, nothing was stored"
    case .badURL(let url): return "'\(url)' is not an http:// or https:// URL"
    case .unreachable(let url, let why): return "cannot reach the remote cache \(url): \(why)"
    case .status(let code, let method, let url): return "\(method) \(url) answered HTTP \(code)"
    case .corrupt(let what): return what
    }
  }
}

/// Moving results between a store and a remote cache.
public enum RemoteSync {
  public struct Report: Equatable, Sendable {
    public var blobsSent = 0, blobsSkipped = 0, recordsSent = 0, recordsSkipped = 0
    public var blobsReceived = 0, recordsReceived = 0, missing: [String] = []
    public var bytes = 0
  }

  /// Uploads the action records under `keys` and their output blobs, only what the remote lacks.
  public static func push(_ keys: [ContentHash], from store: Store, to remote: RemoteCache) async throws -> Report {
    var report = Report()
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    for key in keys {
      guard let record = try store.action(for: key) else {
        report.missing.append(key.short)
        continue
      }
      for ref in record.outputs.values.sorted(by: { $0.hash.hex < $1.hash.hex }) {
        if try await remote.has(.cas, ref.hash) {
          report.blobsSkipped += 1
        } else {
          let bytes = try store.blob(ref.hash)  // verified against its hash on read
          try await remote.put(.cas, ref.hash, bytes)
          report.blobsSent += 1
          report.bytes += bytes.count
        }
      }
      // The record goes last, so a remote never lists a result whose blobs it lacks.
      if try await remote.has(.ac, key) {
        report.recordsSkipped += 1
      } else {
        try await remote.put(.ac, key, Array(try encoder.encode(record)))
        report.recordsSent += 1
      }
    }
    return report
  }

  /// A result to download: the stage and key `lineage.lock` gives, and the outputs it records.
  public struct LockedResult: Sendable, Equatable {
    public var stage: String
    public var key: ContentHash
    public var outputs: [String: ArtifactRef]

    public init(stage: String, key: ContentHash, outputs: [String: ArtifactRef]) {
      self.stage = stage
      self.key = key
      self.outputs = outputs
    }
  }

  /// Downloads the action records of `results` (those the store lacks) and their blobs, checks every
  /// hash and every record's outputs against the lockfile's, then writes them in one store
  /// transaction: all or nothing.
  ///
  /// A record's key alone does not prove it is the locked result: a server could answer with another
  /// run's record under that key, whose blobs hash right. So its outputs must be the locked ones,
  /// checked before any of its blobs is fetched.
  ///
  /// - Throws: `RemoteError.outputsDiffer` for a substituted result, `.corrupt` for bytes that do not
  ///   match their names; nothing is stored then.
  public static func pull(_ results: [LockedResult], into store: Store, from remote: RemoteCache) async throws -> Report {
    var report = Report()
    var records: [ActionRecord] = []
    var blobs: [ContentHash: [UInt8]] = [:]
    for result in results where try store.action(for: result.key) == nil {
      let key = result.key
      guard let bytes = try await remote.get(.ac, key) else {
        report.missing.append(key.short)
        continue
      }
      guard let record = try? JSONDecoder().decode(ActionRecord.self, from: Data(bytes)), record.key == key else {
        throw RemoteError.corrupt("the remote's record \(key.short) is not a Lineage action record for that key")
      }
      let differences = outputDifferences(remote: record.outputs, locked: result.outputs)
      guard differences.isEmpty else {
        throw RemoteError.outputsDiffer(stage: result.stage, key: key, differences: differences)
      }
      for ref in record.outputs.values {
        guard blobs[ref.hash] == nil, try !store.hasBlob(ref.hash) else { continue }
        guard let blob = try await remote.get(.cas, ref.hash) else {
          throw RemoteError.corrupt("the remote lists result \(key.short) but lacks its blob \(ref.hash.short)")
        }
        let actual = ContentHash.of(blob)
        guard actual == ref.hash else {
          throw RemoteError.corrupt("blob \(ref.hash.short) from the remote hashes to \(actual.short); nothing was stored")
        }
        blobs[ref.hash] = blob
        report.bytes += blob.count
      }
      records.append(record)
    }
    try store.write { txn in
      for (hash, bytes) in blobs.sorted(by: { $0.key.hex < $1.key.hex }) { try txn.putBlob(bytes, hash: hash) }
      for record in records { try txn.putAction(record) }
    }
    report.blobsReceived = blobs.count
    report.recordsReceived = records.count
    return report
  }

  /// How a record's outputs differ from the locked ones, one phrase per output, sorted by name.
  static func outputDifferences(remote: [String: ArtifactRef], locked: [String: ArtifactRef]) -> [String] {
    Set(remote.keys).union(locked.keys).sorted().compactMap { name in
      switch (remote[name], locked[name]) {
      case (let r?, let l?) where r == l: return nil
      case (let r?, let l?): return "\(name): \(r.hash.short), locked \(l.hash.short)"
      case (_?, nil): return "\(name): not in lineage.lock"
      case (nil, _?): return "\(name): missing"
      case (nil, nil): return nil
      }
    }
  }
}
