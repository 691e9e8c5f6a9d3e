internal import CLMDB
import Foundation

/// The content-addressed store: one LMDB environment holding blobs (SHA-256 → bytes), the action
/// cache (stage key → `ActionRecord`), run records, checkpoints and a little metadata.
///
/// Every change happens in one write transaction: a crash leaves the old state or the new one, never
/// half of one. Readers see a consistent snapshot and never block writers. The memory map grows when
/// it fills (doubling, up to `maxMapSize`) instead of failing. Safe to share between threads and
/// processes.
///
/// A full disk or a map that may not grow further fails the write with `StoreError.storeFull` or
/// `.diskFull`; the transaction is rolled back, so everything committed before stays intact.
public final class Store: @unchecked Sendable {  // the env handle is thread-safe (MDB_NOTLS); `mapSize` is guarded by `gate`
  public let path: String
  private let env: OpaquePointer
  private let databases: Databases
  private let gate = ReaderWriterLock()
  private var mapSize: Int
  private let maxMapSize: Int

  /// The largest map a store may grow to unless told otherwise: 1 TiB.
  public static let defaultMaxMapSize = 1 << 40

  /// Opens the store in folder `path`, creating it if needed.
  ///
  /// The map is sparse: a large initial size costs no disk until used, and spares growth retries.
  /// `maxMapSize` caps the store (the CLI reads it from `LINEAGE_STORE_LIMIT`); the map starts at no
  /// more than the cap and doubles up to it.
  ///
  /// - Throws: `StoreError.cannotOpen` when the folder or the environment cannot be opened.
  public init(path: String, initialMapSize: Int = 1 << 30, maxMapSize: Int = Store.defaultMaxMapSize) throws {
    self.path = path
    self.maxMapSize = maxMapSize
    let initialMapSize = min(initialMapSize, maxMapSize)
    do {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
      throw StoreError.cannotOpen(path: path, reason: error.localizedDescription)
    }
    var handle: OpaquePointer?
    try check(mdb_env_create(&handle), "mdb_env_create")
    guard let env = handle else { throw StoreError.cannotOpen(path: path, reason: "mdb_env_create gave no handle") }
    do {
      try check(mdb_env_set_maxdbs(env, 8), "mdb_env_set_maxdbs")
      try check(mdb_env_set_mapsize(env, initialMapSize), "mdb_env_set_mapsize")
      try check(mdb_env_open(env, path, UInt32(MDB_NOTLS), 0o644), "mdb_env_open")
    } catch {
      mdb_env_close(env)
      throw StoreError.cannotOpen(path: path, reason: "\(error)")
    }
    // Readers left behind by killed processes would pin old pages forever.
    var dead: Int32 = 0
    mdb_reader_check(env, &dead)
    var info = MDB_envinfo()
    mdb_env_info(env, &info)
    self.env = env
    mapSize = max(initialMapSize, info.me_mapsize)
    do {
      databases = try Databases.open(env)
    } catch {
      mdb_env_close(env)
      throw error
    }
  }

  deinit { mdb_env_close(env) }

  // MARK: - Transactions

  /// Runs `body` in one write transaction: committed when it returns, rolled back when it throws.
  ///
  /// When the map is full the transaction is rolled back, the map doubled and `body` run again, so
  /// `body` must be safe to repeat (puts by hash are).
  public func write<R>(_ body: (WriteTransaction) throws -> R) throws -> R {
    while true {
      var full = false
      let result: R? = try gate.shared {
        let txn = try begin(readOnly: false)
        let value: R
        do {
          value = try body(WriteTransaction(Transaction(txn: txn, databases: databases)))
        } catch let error as StoreError where error.isMapFull {
          mdb_txn_abort(txn)
          full = true
          return nil
        } catch {
          mdb_txn_abort(txn)
          throw error
        }
        // A failed commit frees the transaction itself: it must not be aborted again.
        let rc = mdb_txn_commit(txn)
        if rc == MDB_MAP_FULL {
          full = true
          return nil
        }
        try check(rc, "mdb_txn_commit")
        return value
      }
      if let result, !full { return result }
      try grow()
    }
  }

  /// Runs `body` in a read-only snapshot.
  public func read<R>(_ body: (ReadTransaction) throws -> R) throws -> R {
    try gate.shared {
      let txn = try begin(readOnly: true)
      defer { mdb_txn_abort(txn) }
      return try body(ReadTransaction(Transaction(txn: txn, databases: databases)))
    }
  }

  private func begin(readOnly: Bool) throws -> OpaquePointer {
    for _ in 0..<3 {
      var txn: OpaquePointer?
      let rc = mdb_txn_begin(env, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &txn)
      if rc == MDB_MAP_RESIZED {
        // Another process grew the map: adopt its size and try again.
        mdb_env_set_mapsize(env, 0)
        continue
      }
      try check(rc, "mdb_txn_begin")
      if let txn { return txn }
    }
    throw StoreError.lmdb(function: "mdb_txn_begin", code: MDB_MAP_RESIZED, message: "the map keeps being resized")
  }

  /// Doubles the map; only while no transaction of this process is open.
  private func grow() throws {
    try gate.exclusive {
      var info = MDB_envinfo()
      mdb_env_info(env, &info)
      let current = max(mapSize, info.me_mapsize)
      guard current < maxMapSize else { throw StoreError.storeFull(limit: maxMapSize) }
      let target = min(current * 2, maxMapSize)
      let rc = mdb_env_set_mapsize(env, target)
      guard rc == MDB_SUCCESS else {
        throw StoreError.diskFull(reason: "the map could not grow to \(target >> 20) MiB: \(String(cString: mdb_strerror(rc)))")
      }
      mapSize = target
    }
  }

  // MARK: - Conveniences, one transaction each

  @discardableResult
  public func putBlob(_ bytes: [UInt8]) throws -> ContentHash {
    let hash = ContentHash.of(bytes)
    try write { try $0.putBlob(bytes, hash: hash) }
    return hash
  }

  /// A blob's bytes, checked against their hash.
  public func blob(_ hash: ContentHash) throws -> [UInt8] { try read { try $0.blob(hash) } }

  public func hasBlob(_ hash: ContentHash) throws -> Bool { try read { try $0.hasBlob(hash) } }

  public func action(for key: ContentHash) throws -> ActionRecord? { try read { try $0.action(for: key) } }

  /// Rehashes every blob, decodes every action record and checks that every record's outputs exist.
  ///
  /// Nothing is changed: the caller decides what to remove (`deleteBlob`, `deleteAction`).
  public func fsck() throws -> FsckReport {
    try read { txn in
      var report = FsckReport()
      try txn.core.forEach(.blobs) { key, value in
        report.blobsChecked += 1
        report.bytesChecked += value.count
        let actual = ContentHash.of(value)
        if actual.bytes != Array(key) { report.corrupt.append(ContentHash(digest: Array(key))) }
      }
      var records: [ActionRecord] = []
      try txn.core.forEach(.actions) { keyBytes, value in
        guard keyBytes.count == 32 else { return }  // keys are written as 32 digest bytes only
        let key = ContentHash(digest: Array(keyBytes))
        do {
          let record = try JSONDecoder().decode(ActionRecord.self, from: Data(value))
          guard record.key == key else {
            report.damagedRecords.append(.init(key: key, stage: record.stage,
                                               reason: "it carries key \(record.key.short), not the one it is stored under"))
            return
          }
          records.append(record)
        } catch {
          report.damagedRecords.append(.init(key: key, stage: Store.stageField(of: Array(value)),
                                             reason: "it cannot be decoded (\(Store.decodingReason(error)))"))
        }
      }
      let corrupt = Set(report.corrupt)
      for record in records {
        for (output, ref) in record.outputs where corrupt.contains(ref.hash) {
          report.corruptUsers[ref.hash, default: []].append("\(record.stage).\(output)")
        }
        let missing = try record.outputs.values.map(\.hash).filter { try !txn.hasBlob($0) }
        if !missing.isEmpty {
          report.actionsWithMissingOutputs.append(.init(action: record.key, stage: record.stage, missing: missing))
        }
      }
      for hash in report.corruptUsers.keys { report.corruptUsers[hash] = Array(Set(report.corruptUsers[hash] ?? [])).sorted() }
      return report
    }
  }

  /// The `stage` field of a record that does not decode as a whole, when the JSON still parses.
  static func stageField(of bytes: [UInt8]) -> String? {
    guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return nil }
    return object["stage"] as? String
  }

  /// A decoding error in a few words: the missing or mistyped field, or the JSON error.
  static func decodingReason(_ error: any Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, _): return "no '\(key.stringValue)' field"
    case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
         DecodingError.dataCorrupted(let context):
      let path = context.codingPath.map(\.stringValue).joined(separator: ".")
      return path.isEmpty ? "not valid JSON" : "field '\(path)': \(context.debugDescription)"
    default: return "\(error)"
    }
  }

  /// Deletes cached results not in `keepingActions`, then every blob that no kept result, no
  /// checkpoint and nothing in `keepingBlobs` references.
  public func collectGarbage(keepingActions: Set<ContentHash>, keepingBlobs: Set<ContentHash>,
                             dryRun: Bool) throws -> GCReport {
    let body = { (txn: Transaction) throws -> GCReport in
      var report = GCReport()
      var referenced = keepingBlobs
      for record in try txn.actions() {
        if keepingActions.contains(record.key) {
          report.actionsKept += 1
          referenced.formUnion(record.outputs.values.map(\.hash))
        } else {
          report.actionsDeleted += 1
          if !dryRun { try txn.delete(.actions, key: record.key.bytes) }
        }
      }
      for checkpoint in try txn.checkpoints() { referenced.insert(checkpoint.state) }
      for (hash, size) in try txn.blobHashes() {
        if referenced.contains(hash) {
          report.blobsKept += 1
        } else {
          report.blobsDeleted += 1
          report.bytesFreed += size
          if !dryRun { try txn.delete(.blobs, key: hash.bytes) }
        }
      }
      return report
    }
    return dryRun ? try read { try body($0.core) } : try write { try body($0.core) }
  }

  /// Counts for `lineage status` and benchmarks.
  public func statistics() throws -> (blobs: Int, bytes: Int, actions: Int, mapSize: Int) {
    let (blobs, bytes, actions) = try read { txn -> (Int, Int, Int) in
      let hashes = try txn.blobHashes()
      return (hashes.count, hashes.reduce(0) { $0 + $1.size }, try txn.actions().count)
    }
    return (blobs, bytes, actions, gate.shared { mapSize })
  }
}

/// Many readers or one writer, for the map size (which LMDB lets change only while no transaction of
/// the process is open).
final class ReaderWriterLock: @unchecked Sendable {  // wraps a pthread rwlock
  private var lock = pthread_rwlock_t()

  init() { pthread_rwlock_init(&lock, nil) }
  deinit { pthread_rwlock_destroy(&lock) }

  func shared<R>(_ body: () throws -> R) rethrows -> R {
    pthread_rwlock_rdlock(&lock)
    defer { pthread_rwlock_unlock(&lock) }
    return try body()
  }

  func exclusive<R>(_ body: () throws -> R) rethrows -> R {
    pthread_rwlock_wrlock(&lock)
    defer { pthread_rwlock_unlock(&lock) }
    return try body()
  }
}
