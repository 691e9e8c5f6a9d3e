internal import CLMDB
import Foundation

/// A read-only view of the store inside `Store.read`; valid only inside that closure.
public struct ReadTransaction {
  let core: Transaction
  init(_ core: Transaction) { self.core = core }

  /// A blob's bytes, checked against their hash.
  public func blob(_ hash: ContentHash) throws -> [UInt8] { try core.blob(hash) }
  /// Calls `body` with the blob's bytes in place in the map (no copy); checked unless `verify` is false.
  public func withBlob<R>(_ hash: ContentHash, verify: Bool = true, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
    try core.withBlob(hash, verify: verify, body)
  }
  public func blobSize(_ hash: ContentHash) throws -> Int? { try core.blobSize(hash) }
  public func hasBlob(_ hash: ContentHash) throws -> Bool { try core.blobSize(hash) != nil }
  public func action(for key: ContentHash) throws -> ActionRecord? { try core.action(for: key) }
  /// Whether an action record is stored under `key`, without decoding it.
  public func hasAction(for key: ContentHash) throws -> Bool { try core.withValue(.actions, key: key.bytes) { _ in true } ?? false }
  public func actions() throws -> [ActionRecord] { try core.actions() }
  public func blobHashes() throws -> [(hash: ContentHash, size: Int)] { try core.blobHashes() }
  public func checkpoint(for key: ContentHash) throws -> Checkpoint? { try core.checkpoint(for: key) }
  public func runs() throws -> [RunRecord] { try core.runs() }
  public func meta(_ key: String) throws -> [UInt8]? { try core.get(.meta, key: Array(key.utf8)) }
}

/// A write transaction inside `Store.write`; valid only inside that closure.
public struct WriteTransaction {
  let core: Transaction
  init(_ core: Transaction) { self.core = core }

  // Reads see this transaction's own writes.
  public func blob(_ hash: ContentHash) throws -> [UInt8] { try core.blob(hash) }
  public func hasBlob(_ hash: ContentHash) throws -> Bool { try core.blobSize(hash) != nil }
  public func action(for key: ContentHash) throws -> ActionRecord? { try core.action(for: key) }
  public func checkpoint(for key: ContentHash) throws -> Checkpoint? { try core.checkpoint(for: key) }

  /// Stores bytes under their hash (nothing to do when already present) and returns the hash.
  @discardableResult
  public func putBlob(_ bytes: [UInt8]) throws -> ContentHash {
    let hash = ContentHash.of(bytes)
    try putBlob(bytes, hash: hash)
    return hash
  }

  /// Stores bytes whose hash the caller computed (outside the transaction, so that a retry after the
  /// map grew does not hash them again). The hash is checked on every read, so a wrong one is caught.
  public func putBlob(_ bytes: [UInt8], hash: ContentHash) throws {
    if try core.blobSize(hash) == nil { try core.put(.blobs, key: hash.bytes, value: bytes) }
  }
  public func putAction(_ record: ActionRecord) throws {
    try core.put(.actions, key: record.key.bytes, value: try Transaction.encode(record))
  }
  public func deleteAction(_ key: ContentHash) throws { try core.delete(.actions, key: key.bytes) }
  public func deleteBlob(_ hash: ContentHash) throws { try core.delete(.blobs, key: hash.bytes) }
  /// Saves a stage's checkpoint, replacing its previous one.
  public func putCheckpoint(_ checkpoint: Checkpoint, for key: ContentHash) throws {
    try core.put(.checkpoints, key: key.bytes, value: try Transaction.encode(checkpoint))
  }
  public func deleteCheckpoint(for key: ContentHash) throws { try core.delete(.checkpoints, key: key.bytes) }
  /// Appends a run record with the next id.
  public func appendRun(_ run: RunRecord) throws {
    var run = run
    run.id = (try core.runs().last?.id ?? 0) + 1
    var id = UInt64(run.id).bigEndian
    let key = withUnsafeBytes(of: &id) { Array($0) }
    try core.put(.runs, key: key, value: try Transaction.encode(run))
  }
  public func setMeta(_ key: String, _ value: [UInt8]) throws { try core.put(.meta, key: Array(key.utf8), value: value) }
}

/// The named databases of the environment.
enum Database: String, CaseIterable {
  case blobs, actions, runs, checkpoints, meta
}

struct Databases: Sendable {
  var handles: [Database: MDB_dbi]

  static func open(_ env: OpaquePointer) throws -> Databases {
    var txn: OpaquePointer?
    try check(mdb_txn_begin(env, nil, 0, &txn), "mdb_txn_begin")
    var handles: [Database: MDB_dbi] = [:]
    do {
      for db in Database.allCases {
        var dbi = MDB_dbi()
        try check(mdb_dbi_open(txn, db.rawValue, UInt32(MDB_CREATE), &dbi), "mdb_dbi_open")
        handles[db] = dbi
      }
      try check(mdb_txn_commit(txn), "mdb_txn_commit")
    } catch {
      mdb_txn_abort(txn)
      throw error
    }
    return Databases(handles: handles)
  }
}

/// The LMDB calls behind both transaction kinds.
struct Transaction {
  let txn: OpaquePointer
  let databases: Databases

  func dbi(_ db: Database) -> MDB_dbi { databases.handles[db]! }

  /// Calls `body` with the value in place, or returns nil when the key is absent.
  func withValue<R>(_ db: Database, key: [UInt8], _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
    // LMDB only reads the key: the array's own storage, not a mutable copy of it.
    try key.withUnsafeBytes { keyBytes in
      var keyVal = MDB_val(mv_size: keyBytes.count, mv_data: UnsafeMutableRawPointer(mutating: keyBytes.baseAddress))
      var value = MDB_val()
      let rc = mdb_get(txn, dbi(db), &keyVal, &value)
      if rc == MDB_NOTFOUND { return nil }
      try check(rc, "mdb_get")
      return try body(UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
    }
  }

  func get(_ db: Database, key: [UInt8]) throws -> [UInt8]? { try withValue(db, key: key) { Array($0) } }

  func put(_ db: Database, key: [UInt8], value: [UInt8]) throws {
    // LMDB only reads key and value; passing the arrays' own storage avoids copying large blobs.
    try key.withUnsafeBytes { keyBytes in
      try value.withUnsafeBytes { valueBytes in
        var keyVal = MDB_val(mv_size: keyBytes.count, mv_data: UnsafeMutableRawPointer(mutating: keyBytes.baseAddress))
        var valueVal = MDB_val(mv_size: valueBytes.count,
                               mv_data: UnsafeMutableRawPointer(mutating: valueBytes.baseAddress))
        try check(mdb_put(txn, dbi(db), &keyVal, &valueVal, 0), "mdb_put")
      }
    }
  }

  func delete(_ db: Database, key: [UInt8]) throws {
    var k = key
    try k.withUnsafeMutableBytes { keyBytes in
      var keyVal = MDB_val(mv_size: keyBytes.count, mv_data: keyBytes.baseAddress)
      let rc = mdb_del(txn, dbi(db), &keyVal, nil)
      if rc != MDB_NOTFOUND { try check(rc, "mdb_del") }
    }
  }

  /// Visits every entry of a database in key order.
  func forEach(_ db: Database, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws {
    var cursor: OpaquePointer?
    try check(mdb_cursor_open(txn, dbi(db), &cursor), "mdb_cursor_open")
    defer { mdb_cursor_close(cursor) }
    var key = MDB_val(), value = MDB_val()
    var op = MDB_FIRST
    while true {
      let rc = mdb_cursor_get(cursor, &key, &value, op)
      if rc == MDB_NOTFOUND { return }
      try check(rc, "mdb_cursor_get")
      try body(UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size),
               UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
      op = MDB_NEXT
    }
  }

  // MARK: - Typed reads

  func blob(_ hash: ContentHash) throws -> [UInt8] { try withBlob(hash, verify: true) { Array($0) } }

  func withBlob<R>(_ hash: ContentHash, verify: Bool, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
    let result = try withValue(.blobs, key: hash.bytes) { bytes -> R in
      if verify {
        let actual = ContentHash.of(bytes)
        guard actual == hash else { throw StoreError.corruptBlob(hash, actual: actual) }
      }
      return try body(bytes)
    }
    guard let result else { throw StoreError.missingBlob(hash) }
    return result
  }

  func blobSize(_ hash: ContentHash) throws -> Int? { try withValue(.blobs, key: hash.bytes) { $0.count } }

  func action(for key: ContentHash) throws -> ActionRecord? {
    try get(.actions, key: key.bytes).map { try Transaction.decode(ActionRecord.self, $0, database: "actions", key: key.hex) }
  }

  func actions() throws -> [ActionRecord] {
    var out: [ActionRecord] = []
    try forEach(.actions) { key, value in
      out.append(try Transaction.decode(ActionRecord.self, Array(value), database: "actions",
                                        key: ContentHash(digest: Array(key)).hex))
    }
    return out
  }

  func blobHashes() throws -> [(hash: ContentHash, size: Int)] {
    var out: [(hash: ContentHash, size: Int)] = []
    try forEach(.blobs) { key, value in out.append((ContentHash(digest: Array(key)), value.count)) }
    return out
  }

  func checkpoint(for key: ContentHash) throws -> Checkpoint? {
    try get(.checkpoints, key: key.bytes).map { try Transaction.decode(Checkpoint.self, $0, database: "checkpoints", key: key.hex) }
  }

  func checkpoints() throws -> [Checkpoint] {
    var out: [Checkpoint] = []
    try forEach(.checkpoints) { key, value in
      out.append(try Transaction.decode(Checkpoint.self, Array(value), database: "checkpoints",
                                        key: ContentHash(digest: Array(key)).hex))
    }
    return out
  }

  func runs() throws -> [RunRecord] {
    var out: [RunRecord] = []
    try forEach(.runs) { _, value in out.append(try Transaction.decode(RunRecord.self, Array(value), database: "runs", key: "")) }
    return out
  }

  // MARK: - Encoding

  static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return Array(try encoder.encode(value))
  }

  static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], database: String, key: String) throws -> T {
    do {
      return try JSONDecoder().decode(type, from: Data(bytes))
    } catch {
      throw StoreError.corruptRecord(database: database, key: key, reason: "\(error)")
    }
  }
}
