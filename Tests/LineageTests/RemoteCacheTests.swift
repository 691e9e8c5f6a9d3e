import Foundation
import Testing

/// `push` and `pull` against a real nginx on loopback with WebDAV PUT, as the remote cache.
@Suite(.serialized) struct RemoteCacheTests {
  /// An nginx serving a temporary folder, stopped at deinit.
  final class Nginx {
    let root: String
    let port: Int
    private let process: Process

    init() throws {
      let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"].first { FileManager.default.isExecutableFile(atPath: $0) }
      guard let binary else { throw NginxMissing() }
      root = FileManager.default.temporaryDirectory.appendingPathComponent("lineage-nginx-\(UUID().uuidString)").path
      try FileManager.default.createDirectory(atPath: root + "/cache", withIntermediateDirectories: true)
      try FileManager.default.createDirectory(atPath: root + "/body", withIntermediateDirectories: true)
      port = Int.random(in: 20_000...40_000)
      let conf = """
        \(getuid() == 0 ? "user root;" : "")
        worker_processes 1;
        daemon off;
        pid \(root)/nginx.pid;
        error_log \(root)/error.log;
        events { worker_connections 64; }
        http {
          access_log off;
          client_body_temp_path \(root)/body;
          proxy_temp_path \(root)/body;
          fastcgi_temp_path \(root)/body;
          uwsgi_temp_path \(root)/body;
          scgi_temp_path \(root)/body;
          server {
            listen 127.0.0.1:\(port);
            root \(root)/cache;
            location / {
              dav_methods PUT;
              create_full_put_path on;
              client_max_body_size 1g;
            }
          }
        }
        """
      try conf.write(toFile: root + "/nginx.conf", atomically: true, encoding: .utf8)
      process = Process()
      process.executableURL = URL(fileURLWithPath: binary)
      process.arguments = ["-c", root + "/nginx.conf", "-p", root]
      process.standardOutput = FileHandle.nullDevice
      process.standardError = FileHandle.nullDevice
      try process.run()
      // Ready when the port accepts a request.
      for _ in 0..<100 {
        if (try? Data(contentsOf: URL(string: "http://127.0.0.1:\(port)/")!)) != nil || FileManager.default.fileExists(atPath: root + "/nginx.pid") {
          break
        }
        usleep(20_000)
      }
      usleep(100_000)
    }

    deinit {
      process.terminate()
      process.waitUntilExit()
      try? FileManager.default.removeItem(atPath: root)
    }

    var url: String { "http://127.0.0.1:\(port)/lineage" }
  }

  struct NginxMissing: Error, CustomStringConvertible {
    var description: String { "nginx is not installed (Scripts/bootstrap --tests installs it)" }
  }

  static let recipe = """
    stages:
      text: {op: corpus, source: text.txt}
      data: {op: dataset, generator: qa, count: 30}
      model:
        op: pretrain
        corpus: text
        model: {d_model: 32, layers: 1, heads: 2, context: 64}
        train: {steps: 5, batch: 4}

    """

  @Test func pushThenPullIntoAnEmptyStoreRestoresEveryStage() throws {
    let nginx = try Nginx()
    let text = (0..<40).map { "Document \($0) about the hills of Arden." }.joined(separator: "\n\n")
    let a = try CLITests.Folder()
    try a.write("text.txt", text)
    try a.write("s.yaml", Self.recipe)
    #expect(try CLITests().lineage(["run"], in: a).status == 0)

    let pushed = try CLITests().lineage(["push", "--remote", nginx.url], in: a)
    #expect(pushed.status == 0, "\(pushed.stderr)\n\((try? String(contentsOfFile: nginx.root + "/error.log", encoding: .utf8)) ?? "")")
    #expect(pushed.stderr.contains("pushed 3 results and 4 blobs"), "\(pushed.stderr)")
    let again = try CLITests().lineage(["push", "--remote", nginx.url], in: a)
    #expect(again.stderr.contains("pushed 0 results and 0 blobs") && again.stderr.contains("already had 3 and 4"), "\(again.stderr)")

    // A second user: the recipe and its lockfile, an empty store.
    let b = try CLITests.Folder()
    try b.write("text.txt", text)
    try b.write("s.yaml", Self.recipe)
    try b.write("recipe.yaml", "remote: \(nginx.url)\n")
    try b.write("lineage.lock", try #require(a.read("lineage.lock")))
    let pulled = try CLITests().lineage(["pull"], in: b)
    #expect(pulled.status == 0, "\(pulled.stderr)")
    #expect(pulled.stderr.contains("pulled 3 results and 4 blobs"), "\(pulled.stderr)")
    let run = try CLITests().lineage(["run"], in: b)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(!run.stderr.contains(" ran"), "every stage came from the pulled cache: \(run.stderr)")
    #expect(b.read("lineage.lock") == a.read("lineage.lock"))
  }

  /// HTTP goes through libcurl, loaded on the first request: a remote nobody answers at is a clear
  /// error and a failed command, and a blob of several megabytes travels whole both ways.
  @Test func anUnreachableRemoteFailsClearlyAndALargeBlobRoundTrips() throws {
    let a = try CLITests.Folder()
    try a.write("s.yaml", "stages:\n  big: {op: corpus, source: big.txt}\n")
    // 4.2 MB of text that does not repeat, so nothing along the way can shorten it.
    var generator = SystemRandomNumberGenerator()
    let words = (0..<600_000).map { _ in String(UInt32.random(in: 100_000...999_999, using: &generator)) }
    try a.write("big.txt", words.joined(separator: " "))
    #expect(try CLITests().lineage(["run"], in: a).status == 0)

    // A port nothing listens on (nginx not started): refused at once.
    let closed = try CLITests().lineage(["push", "--remote", "http://127.0.0.1:9/lineage"], in: a)
    #expect(closed.status != 0)
    #expect(closed.stderr.contains("cannot reach the remote cache http://127.0.0.1:9/lineage"), "\(closed.stderr)")

    let nginx = try Nginx()
    let pushed = try CLITests().lineage(["push", "--remote", nginx.url], in: a)
    #expect(pushed.status == 0, "\(pushed.stderr)")
    let b = try CLITests.Folder()
    try b.write("s.yaml", "stages:\n  big: {op: corpus, source: big.txt}\n")
    try b.write("big.txt", try #require(a.read("big.txt")))
    try b.write("lineage.lock", try #require(a.read("lineage.lock")))
    let pulled = try CLITests().lineage(["pull", "--remote", nginx.url], in: b)
    #expect(pulled.status == 0, "\(pulled.stderr)")
    #expect(pulled.stderr.contains("pulled 1 result and"), "\(pulled.stderr)")
    let verified = try CLITests().lineage(["fsck"], in: b)
    #expect(verified.status == 0, "\(verified.stderr)")
  }

  @Test func aCorruptBlobOnTheRemoteIsRefusedAndNothingIsStored() throws {
    let nginx = try Nginx()
    let a = try CLITests.Folder()
    try a.write("s.yaml", "stages:\n  data: {op: dataset, generator: arithmetic, count: 20}\n")
    #expect(try CLITests().lineage(["run"], in: a).status == 0)
    #expect(try CLITests().lineage(["push", "--remote", nginx.url], in: a).status == 0)
    // Damage the blob on the server's disk.
    let cas = nginx.root + "/cache/lineage/cas"
    let name = try #require(try FileManager.default.contentsOfDirectory(atPath: cas).first)
    var bytes = try Data(contentsOf: URL(fileURLWithPath: cas + "/" + name))
    bytes[bytes.count / 2] ^= 0xFF
    try bytes.write(to: URL(fileURLWithPath: cas + "/" + name))

    let b = try CLITests.Folder()
    try b.write("s.yaml", "stages:\n  data: {op: dataset, generator: arithmetic, count: 20}\n")
    try b.write("lineage.lock", try #require(a.read("lineage.lock")))
    let pulled = try CLITests().lineage(["pull", "--remote", nginx.url], in: b)
    #expect(pulled.status == 1)
    #expect(pulled.stderr.contains("from the remote hashes to") && pulled.stderr.contains("nothing was stored"), "\(pulled.stderr)")
    let status = try CLITests().lineage(["status"], in: b)
    #expect(status.stdout.contains("stale"), "the stage is not restored from corrupt bytes: \(status.stdout)")
  }

  /// A server substitutes a self-consistent other result: the record under the locked key is another
  /// run's record (count 21 instead of 20) with its key rewritten, and its blob is on the server and
  /// hashes right. Pull compares the record's outputs with lineage.lock and refuses it.
  @Test func aRecordWhoseOutputsDifferFromTheLockfileIsRefused() throws {
    let nginx = try Nginx()
    let recipe = "stages:\n  data: {op: dataset, generator: arithmetic, count: 20}\n"
    let a = try CLITests.Folder()
    try a.write("s.yaml", recipe)
    #expect(try CLITests().lineage(["run"], in: a).status == 0)
    #expect(try CLITests().lineage(["push", "--remote", nginx.url], in: a).status == 0)
    let lock = try #require(a.read("lineage.lock"))
    let ac = nginx.root + "/cache/lineage/ac"
    let locked = try #require(try FileManager.default.contentsOfDirectory(atPath: ac).first)

    try a.write("s.yaml", recipe.replacingOccurrences(of: "count: 20", with: "count: 21"))
    #expect(try CLITests().lineage(["run"], in: a).status == 0)
    #expect(try CLITests().lineage(["push", "--remote", nginx.url], in: a).status == 0)
    let other = try #require(try FileManager.default.contentsOfDirectory(atPath: ac).first { $0 != locked })
    let forged = try String(contentsOfFile: ac + "/" + other, encoding: .utf8).replacingOccurrences(of: other, with: locked)
    try forged.write(toFile: ac + "/" + locked, atomically: true, encoding: .utf8)

    let b = try CLITests.Folder()
    try b.write("s.yaml", recipe)
    try b.write("lineage.lock", lock)
    let pulled = try CLITests().lineage(["pull", "--remote", nginx.url], in: b)
    #expect(pulled.status == 1, "\(pulled.stderr)")
    #expect(pulled.stderr.contains("stage data") && pulled.stderr.contains("lineage.lock"), "\(pulled.stderr)")
    #expect(pulled.stderr.contains("nothing was stored"), "\(pulled.stderr)")
    let status = try CLITests().lineage(["status"], in: b)
    #expect(status.stdout.contains("stale"), "the stage is not restored from the substitute: \(status.stdout)")
    let fsck = try CLITests().lineage(["fsck"], in: b)
    #expect(fsck.stdout.contains("checked 0 blobs"), "no byte of the refused record was stored: \(fsck.stdout)")
  }
}
