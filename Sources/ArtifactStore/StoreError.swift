internal import CLMDB

/// Why the store could not do what was asked.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
  /// An LMDB call failed.
  case lmdb(function: String, code: Int32, message: String)
  /// A blob's bytes no longer hash to its key: the disk or the file was damaged.
  case corruptBlob(ContentHash, actual: ContentHash)
  case missingBlob(ContentHash)
  /// The map could not grow any further (disk full or the configured maximum).
  case mapFull(requestedBytes: Int)
  case corruptRecord(database: String, key: String, reason: String)
  case cannotOpen(path: String, reason: String)

  public var description: String {
    switch self {
    case .lmdb(let function, _, let message): return "\(function): \(message)"
    case .corruptBlob(let hash, let actual):
      return "blob \(hash.short) is corrupt (its bytes hash to \(actual.short)); run `lineage fsck`"
    case .missingBlob(let hash): return "blob \(hash.short) is not in the store"
    case .mapFull(let bytes):
      return "the store is full: it could not grow to \(bytes >> 20) MiB (is the disk full?)"
    case .corruptRecord(let database, let key, let reason): return "corrupt \(database) record \(key): \(reason)"
    case .cannotOpen(let path, let reason): return "cannot open the store at \(path): \(reason)"
    }
  }
}

/// Turns an LMDB return code into a `StoreError`: the one place C error codes become Swift errors.
func check(_ code: Int32, _ function: String) throws(StoreError) {
  guard code == MDB_SUCCESS else {
    throw StoreError.lmdb(function: function, code: code, message: String(cString: mdb_strerror(code)))
  }
}

extension StoreError {
  var isMapFull: Bool {
    if case .lmdb(_, let code, _) = self { return code == MDB_MAP_FULL }
    return false
  }
}
