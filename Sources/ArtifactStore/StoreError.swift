internal import CLMDB
import Foundation

/// Why the store could not do what was asked.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
  /// An LMDB call failed.
  case lmdb(function: String, code: Int32, message: String)
  /// A blob's bytes no longer hash to its key: the disk or the file was damaged.
  case corruptBlob(ContentHash, actual: ContentHash)
  case missingBlob(ContentHash)
  /// The store reached its size limit (`LINEAGE_STORE_LIMIT`, or the built-in 1 TiB).
  case storeFull(limit: Int)
  /// The file system refused to take the bytes of a commit: no space left, a quota, a file-size limit
  /// (LMDB reports a short write as an I/O error).
  case diskFull(reason: String)
  case corruptRecord(database: String, key: String, reason: String)
  case cannotOpen(path: String, reason: String)

  public var description: String {
    switch self {
    case .lmdb(let function, _, let message): return "\(function): \(message)"
    case .corruptBlob(let hash, let actual):
      return "blob \(hash.short) is corrupt (its bytes hash to \(actual.short)); run `lineage fsck`"
    case .missingBlob(let hash): return "blob \(hash.short) is not in the store"
    case .storeFull(let limit):
      return "the store is full: it reached its limit of \(StoreError.size(limit)) (set LINEAGE_STORE_LIMIT higher, "
        + "or free space with `lineage gc`); finished stages are kept"
    case .diskFull(let reason):
      return "the disk refused to write the store (\(reason)): is it full? Free some space and run again; "
        + "finished stages are kept"
    case .corruptRecord(let database, let key, let reason):
      // fsck names and removes damaged action records; the stage then reruns.
      let remedy = database == "actions" ? "; `lineage fsck` names and removes it" : ""
      return "corrupt \(database) record \(key): \(reason)\(remedy)"
    case .cannotOpen(let path, let reason): return "cannot open the store at \(path): \(reason)"
    }
  }
}

/// Turns an LMDB return code into a `StoreError`: the one place C error codes become Swift errors.
/// The file-system errors of a full disk (no space, quota, file-size limit, a short write) become
/// `.diskFull`.
func check(_ code: Int32, _ function: String) throws(StoreError) {
  guard code == MDB_SUCCESS else {
    let message = String(cString: mdb_strerror(code))
    if [ENOSPC, EDQUOT, EFBIG, EIO].contains(code) { throw StoreError.diskFull(reason: message) }
    throw StoreError.lmdb(function: function, code: code, message: message)
  }
}

extension StoreError {
  /// `1536 MiB`, `3 GiB`: sizes in messages.
  static func size(_ bytes: Int) -> String {
    if bytes >= 1 << 30 && bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
    if bytes >= 1 << 20 { return "\(bytes >> 20) MiB" }
    return "\(bytes) bytes"
  }

  var isMapFull: Bool {
    if case .lmdb(_, let code, _) = self { return code == MDB_MAP_FULL }
    return false
  }
}
