#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// The exclusive lock a process holds while it writes results into a store (`lineage run`, `gc`,
/// `bundle import`): `flock` on `<store>/run.lock`, which the kernel releases when the process ends,
/// even by SIGKILL, so a crashed run never leaves a stale lock. Readers (`status`, `show`, `metrics`)
/// never take it: LMDB gives them a consistent snapshot while a writer works.
public final class RunLock {
  private let descriptor: Int32
  public let path: String

  /// Takes the lock of the store at `storePath` (the folder is created if needed).
  ///
  /// - Parameters:
  ///   - wait: block until the holder finishes; when false, throw at once.
  ///   - onWait: called once, with the holder's process id when known, before blocking.
  /// - Throws: `RunLockError.held` (no waiting), `.cannotOpen`.
  public init(storePath: String, wait: Bool, onWait: (Int32?) -> Void = { _ in }) throws {
    mkdir(storePath, 0o755)
    path = storePath + "/run.lock"
    descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
      throw RunLockError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
    }
    if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
      let holder = RunLock.holder(descriptor)
      guard wait else {
        close(descriptor)
        throw RunLockError.held(path: path, pid: holder)
      }
      onWait(holder)
      while flock(descriptor, LOCK_EX) != 0 {
        guard errno == EINTR else {
          let reason = String(cString: strerror(errno))
          close(descriptor)
          throw RunLockError.cannotOpen(path: path, reason: reason)
        }
      }
    }
    // Record who holds it, for the message a waiting process prints.
    let text = Array("\(getpid())\n".utf8)
    _ = ftruncate(descriptor, 0)
    _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
  }

  deinit {
    flock(descriptor, LOCK_UN)
    close(descriptor)
  }

  private static func holder(_ descriptor: Int32) -> Int32? {
    var buffer = [UInt8](repeating: 0, count: 32)
    let n = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, 31, 0) }
    guard n > 0 else { return nil }
    return Int32(String(decoding: buffer[0..<n], as: UTF8.self).trimmingWhitespace)
  }
}

public enum RunLockError: Error, Equatable, CustomStringConvertible {
  case held(path: String, pid: Int32?)
  case cannotOpen(path: String, reason: String)

  public var description: String {
    switch self {
    case .held(let path, let pid):
      return "another lineage process\(pid.map { " (pid \($0))" } ?? "") is writing to this store (\(path)); "
        + "run again without --no-wait to wait for it"
    case .cannotOpen(let path, let reason): return "cannot open the lock \(path): \(reason)"
    }
  }
}

extension String {
  fileprivate var trimmingWhitespace: String {
    String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
  }
}
