import ArtifactStore
import Foundation
import Testing

/// A store in a fresh temporary folder.
final class TemporaryStore {
  let path: String
  let store: Store

  init(initialMapSize: Int = 1 << 30) throws {
    path = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-store-\(UUID().uuidString)").path
    store = try Store(path: path, initialMapSize: initialMapSize)
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  func reopened() throws -> Store { try Store(path: path) }
}

func record(_ key: ContentHash, outputs: [String: ContentHash], stage: String = "s") -> ActionRecord {
  ActionRecord(key: key, stage: stage, op: "emit", opVersion: 1,
               outputs: outputs.mapValues { ArtifactRef(hash: $0, size: 1, kind: "dataset") },
               metrics: ["loss": 0.5], log: "line one\nline two", durationSeconds: 1.25, finishedAt: 1_700_000_000,
               params: "{\"lr\":0.001}", inputs: [:], seed: 42)
}

@Suite struct ContentHashTests {
  @Test func knownVectors() {
    #expect(ContentHash.of([UInt8]()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(ContentHash.of(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  }

  @Test func hexRoundTripAndValidation() {
    let h = ContentHash.of(Array("x".utf8))
    #expect(ContentHash(hex: h.hex) == h)
    #expect(ContentHash(hex: h.hex.uppercased()) == h)
    #expect(ContentHash(hex: "abc") == nil)
    #expect(ContentHash(hex: String(repeating: "g", count: 64)) == nil)
    #expect(h.short.count == 12)
  }
}

@Suite struct StoreTests {
  @Test func blobsRoundTripAndDeduplicate() throws {
    let t = try TemporaryStore()
    let bytes = Array("hello, store".utf8)
    let h = try t.store.putBlob(bytes)
    #expect(h == ContentHash.of(bytes))
    #expect(try t.store.blob(h) == bytes)
    #expect(try t.store.putBlob(bytes) == h)
    #expect(try t.store.read { try $0.blobHashes() }.count == 1)
    #expect(throws: StoreError.missingBlob(ContentHash.of([1]))) { _ = try t.store.blob(ContentHash.of([1])) }
  }

  @Test func actionRecordsRoundTrip() throws {
    let t = try TemporaryStore()
    let key = ContentHash.of([7]), out = try t.store.putBlob([1, 2, 3])
    let r = record(key, outputs: ["data": out])
    try t.store.write { try $0.putAction(r) }
    #expect(try t.store.action(for: key) == r)
    #expect(try t.reopened().action(for: key) == r)
  }

  @Test func outputsAndRecordCommitTogetherOrNotAtAll() throws {
    struct Boom: Error {}
    let t = try TemporaryStore()
    let key = ContentHash.of([9])
    #expect(throws: Boom.self) {
      try t.store.write { txn in
        let h = try txn.putBlob(Array("half-written".utf8))
        try txn.putAction(record(key, outputs: ["data": h]))
        throw Boom()
      }
    }
    #expect(try t.store.action(for: key) == nil)
    #expect(try t.store.read { try $0.blobHashes() }.isEmpty)
  }

  @Test func theMapGrowsInsteadOfFailing() throws {
    let t = try TemporaryStore(initialMapSize: 1 << 20)
    var hashes: [ContentHash] = []
    for i in 0..<20 {
      var chunk = [UInt8](repeating: UInt8(i), count: 1 << 20)
      chunk[0] = UInt8(i &+ 1)
      hashes.append(try t.store.putBlob(chunk))
    }
    let reopened = try t.reopened()
    for (i, h) in hashes.enumerated() { #expect(try reopened.blob(h).count == 1 << 20, "blob \(i)") }
  }

  @Test func aFlippedByteIsDetectedOnReadAndByFsck() throws {
    let t = try TemporaryStore()
    let marker = Array("MARKER-0123456789-unique-payload-for-the-test".utf8)
    let bad = try t.store.putBlob(marker)
    let good = try t.store.putBlob(Array("intact".utf8))
    try t.store.write { try $0.putAction(record(ContentHash.of([1]), outputs: ["data": bad], stage: "victim")) }

    // Damage the file on disk behind LMDB's back: every copy of the payload (copy-on-write leaves
    // stale copies in freed pages, and the live one is among them).
    let file = t.path + "/data.mdb"
    var data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    let places = find(marker, in: data)
    #expect(!places.isEmpty)
    for at in places { data[at + 3] ^= 0x01 }
    try Data(data).write(to: URL(fileURLWithPath: file))

    let store = try t.reopened()
    #expect(throws: StoreError.self) { _ = try store.blob(bad) }
    #expect(try store.blob(good) == Array("intact".utf8))
    let report = try store.fsck()
    #expect(report.corrupt == [bad])
    #expect(report.blobsChecked == 2)
  }

  func find(_ needle: [UInt8], in haystack: [UInt8]) -> [Int] {
    guard haystack.count >= needle.count else { return [] }
    return (0...(haystack.count - needle.count)).filter {
      haystack[$0] == needle[0] && Array(haystack[$0..<$0 + needle.count]) == needle
    }
  }

  @Test func garbageCollectionKeepsWhatIsReferenced() throws {
    let t = try TemporaryStore()
    let kept = try t.store.putBlob([1]), dropped = try t.store.putBlob([2]), pinned = try t.store.putBlob([3])
    let checkpointState = try t.store.putBlob([4])
    let keepKey = ContentHash.of([10]), dropKey = ContentHash.of([11])
    try t.store.write { txn in
      try txn.putAction(record(keepKey, outputs: ["data": kept]))
      try txn.putAction(record(dropKey, outputs: ["data": dropped]))
      try txn.putCheckpoint(Checkpoint(step: 3, total: 10, state: checkpointState, savedAt: 0), for: ContentHash.of([12]))
    }
    let dry = try t.store.collectGarbage(keepingActions: [keepKey], keepingBlobs: [pinned], dryRun: true)
    #expect(dry.actionsDeleted == 1 && dry.blobsDeleted == 1)
    #expect(try t.store.hasBlob(dropped), "a dry run deletes nothing")
    let report = try t.store.collectGarbage(keepingActions: [keepKey], keepingBlobs: [pinned], dryRun: false)
    #expect(report == dry)
    #expect(try !t.store.hasBlob(dropped))
    #expect(try t.store.action(for: dropKey) == nil)
    for h in [kept, pinned, checkpointState] { #expect(try t.store.hasBlob(h)) }
  }

  @Test func checkpointsReplaceAndDelete() throws {
    let t = try TemporaryStore()
    let key = ContentHash.of([5])
    let a = try t.store.putBlob([1]), b = try t.store.putBlob([2])
    try t.store.write { try $0.putCheckpoint(Checkpoint(step: 1, total: 9, state: a, savedAt: 1), for: key) }
    try t.store.write { try $0.putCheckpoint(Checkpoint(step: 2, total: 9, state: b, savedAt: 2), for: key) }
    #expect(try t.store.read { try $0.checkpoint(for: key) }?.step == 2)
    try t.store.write { try $0.deleteCheckpoint(for: key) }
    #expect(try t.store.read { try $0.checkpoint(for: key) } == nil)
  }

  @Test func runsAreNumberedInOrder() throws {
    let t = try TemporaryStore()
    for i in 0..<3 {
      try t.store.write {
        try $0.appendRun(RunRecord(startedAt: Double(i), finishedAt: Double(i), executed: ["s\(i)"], restored: [],
                                   failed: [], command: "lineage run"))
      }
    }
    let runs = try t.store.read { try $0.runs() }
    #expect(runs.map(\.id) == [1, 2, 3])
    #expect(runs.map(\.executed) == [["s0"], ["s1"], ["s2"]])
  }

  @Test func readersSeeConsistentSnapshotsWhileAWriterWrites() async throws {
    let t = try TemporaryStore(initialMapSize: 1 << 20)
    let store = t.store
    // Each write puts a blob and an action naming it in one transaction: a reader must never see the
    // action without its blob.
    await withTaskGroup(of: Int.self) { group in
      group.addTask {
        for i in 0..<200 {
          _ = try? store.write { txn in
            let h = try txn.putBlob([UInt8](repeating: UInt8(i % 256), count: 4096 + i))
            try txn.putAction(record(ContentHash.of([UInt8(i % 256), UInt8(i / 256)]), outputs: ["data": h]))
          }
        }
        return 0
      }
      for _ in 0..<2 {
        group.addTask {
          var inconsistent = 0
          for _ in 0..<200 {
            inconsistent += (try? store.read { txn in
              try txn.actions().filter { try !txn.hasBlob($0.outputs["data"]!.hash) }.count
            }) ?? 1
          }
          return inconsistent
        }
      }
      var total = 0
      for await n in group { total += n }
      #expect(total == 0)
    }
    #expect(try store.read { try $0.actions() }.count == 200)
  }
}
