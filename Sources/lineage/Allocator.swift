import Foundation
/// Process-wide allocator tuning.
enum Allocator {
  /// One malloc arena for every thread, set before any thread starts: a block freed on the kernels'
  /// helper thread otherwise stays in that thread's arena, out of reach of the thread that trains, and
  /// (with `keepFreedMemory`) the default lineage's peak memory grew from 544 MiB to 0.94–1.0 GiB
  /// (both measured with `/usr/bin/time -v`).
  static func shareOneArena() {
    #if os(Linux)
    _ = glibcMallopt(-8, 1)  // M_ARENA_MAX
    #endif
  }

  /// For training: glibc hands large freed blocks back to the kernel, so every training step's
  /// activations would fault in fresh zeroed pages (≈10% of a step, measured with perf). Keeping freed
  /// memory for reuse removes that. Called once by commands that train.
  static func keepFreedMemory() {
    #if os(Linux)
    _ = glibcMallopt(-3, 32 << 20)  // M_MMAP_THRESHOLD: the largest value glibc accepts
    _ = glibcMallopt(-1, 1 << 30)   // M_TRIM_THRESHOLD
    #endif
  }
}

#if os(Linux)
/// glibc's `mallopt` (declared in <malloc.h>, which the Glibc module does not export).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

/// The most memory this process has held at once (its resident high-water mark, VmHWM).
enum PeakMemory {
  static var bytes: Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kib = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
    return kib * 1024
  }
}
