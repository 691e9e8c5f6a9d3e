#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Synchronization

/// Runs `body(i)` for `i` in `0..<count`, on every core when the work is large enough.
///
/// Each index is independent and writes its own outputs, so the result does not depend on how
/// indices are scheduled: kernels stay bit-identical across thread counts. Work is split by problem
/// size (`minimumWork` scalar operations per task), never by core count.
func parallelFor(_ count: Int, workPerItem: Int, minimumWork: Int = 1 << 16, _ body: @Sendable (Int) -> Void) {
  guard count > 1, count * workPerItem >= 2 * minimumWork else {
    for i in 0..<count { body(i) }
    return
  }
  parallelFor(count, body)
}

/// Runs `body(i)` for `i` in `0..<count` on the kernel threads and the caller (in turn, on the caller
/// alone, under `Parallelism.forceSerial` or while another thread has the kernel threads).
func parallelFor(_ count: Int, _ body: @Sendable (Int) -> Void) {
  if count > 1, !Parallelism.forceSerial, KernelThreadPool.shared.run(count, body) { return }
  for i in 0..<count { body(i) }
}

/// Switches off parallel kernels within one task (tests compare serial and parallel results bit for
/// bit): `Parallelism.$forceSerial.withValue(true) { … }`. A task-local value, so concurrent work
/// elsewhere is unaffected.
public enum Parallelism {
  @TaskLocal public static var forceSerial = false
}

/// Whether the kernels' helper threads are running, for commands and tests that must not start them.
///
/// Helper threads cost a command that computes nothing: each is a `clone`, and a helper polls (with
/// `sched_yield`) for a while after its last job, taking turns on a core from the process's real work
/// and from every other process. So they start only when a kernel first needs them: ours when a
/// parallel kernel first runs (`lineage ops`, `--help`, `status` or a run with nothing to do never
/// start them). OpenBLAS's own helpers are kept from starting when the library loads (see
/// `openBLASHelperCount`): our products run it on one thread and split the work themselves.
public enum KernelThreads {
  /// True once a parallel kernel has started the helper threads; they then live until the process ends.
  public static var isStarted: Bool { KernelThreadPool.started.load(ordering: .acquiring) }

  /// The helper threads a parallel kernel starts: one fewer than the online cores (the calling
  /// thread is the last), at most 7, or one fewer than `LINEAGE_THREADS` when that is set.
  public static var helperCount: Int { KernelThreadPool.helperCount }
}

/// The helper threads behind `parallelFor`: one fewer than the cores, the caller being the last.
///
/// A kernel's parallel section is short (a decoding step makes about 30 matrix–vector products of
/// 10–300 µs each), so waking a sleeping thread for each — about 10 µs through Dispatch here — costs
/// as much as it saves. Helpers instead keep polling for about 200 µs after their last job (yielding
/// the core to any other runnable thread on every turn), then sleep on a condition variable.
///
/// Started lazily: `shared` is created (and its threads with it) by the first parallel section, under
/// the runtime's once-only initialisation of a static, so concurrent first callers make one pool.
///
/// One job runs at a time. A job's indices are claimed through one atomic ticket holding the job's
/// generation, its count and the next index, so a helper that arrives late can never take an index of
/// a later job; the caller claims indices too and returns when all are done. A caller that finds the
/// helpers busy (another stage's kernel) runs its job alone.
final class KernelThreadPool: @unchecked Sendable {  // shared state is atomics, or written only by the job's owner before publishing
  static let shared = KernelThreadPool(helpers: helperCount)
  static var helperCount: Int {
    // `LINEAGE_THREADS=n` (set by the executor for each MPI rank, so that ranks × threads fit the cores)
    // caps the threads at n, the caller included.
    let cores = sysconf(Int32(_SC_NPROCESSORS_ONLN))
    let wanted = getenv("LINEAGE_THREADS").flatMap { Int(String(cString: $0)) }.map { max(1, $0) } ?? cores
    return min(7, max(0, min(cores, wanted) - 1))
  }
  /// Set once `shared` has started its threads (`KernelThreads.isStarted`).
  static let started = Atomic<Bool>(false)

  private static let indexBits = 20, countShift = 20, generationShift = 40
  private static let field = (1 << indexBits) - 1
  /// generation << 40 | count << 20 | next index.
  private let ticket = Atomic<Int>(0)
  private let completed = Atomic<Int>(0)
  private let owned = Atomic<Bool>(false)
  private let parked = Atomic<Int>(0)
  /// The current job's body, written by its owner before the ticket publishes it.
  private nonisolated(unsafe) var body: (@Sendable (Int) -> Void)?
  private nonisolated(unsafe) var generation = 0
  private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
  let helpers: Int

  private init(helpers: Int) {
    self.helpers = helpers
    pthread_mutex_init(lock, nil)
    pthread_cond_init(wake, nil)
    for _ in 0..<helpers {
      var thread = pthread_t()
      let context = Unmanaged.passRetained(self).toOpaque()
      pthread_create(&thread, nil, { context in
        Unmanaged<KernelThreadPool>.fromOpaque(context!).takeRetainedValue().helperLoop()
        return nil
      }, context)
      pthread_detach(thread)
    }
    if helpers > 0 { Self.started.store(true, ordering: .releasing) }
  }

  /// Runs the job on the helpers and the caller; false (nothing run) when there are no helpers, the
  /// count does not fit the ticket, or another job is running.
  func run(_ count: Int, _ job: @Sendable (Int) -> Void) -> Bool {
    guard helpers > 0, count <= Self.field,
          owned.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
    withoutActuallyEscaping(job) { job in
      body = job
      generation = generation % Self.field + 1  // 1…field: a helper starts having seen 0
      completed.store(0, ordering: .relaxed)
      ticket.store(generation << Self.generationShift | count << Self.countShift, ordering: .sequentiallyConsistent)
      if parked.load(ordering: .sequentiallyConsistent) > 0 {
        pthread_mutex_lock(lock)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(lock)
      }
      while claimAndRun(generation: generation) {}
      while completed.load(ordering: .acquiring) < count {}
      body = nil
    }
    owned.store(false, ordering: .releasing)
    return true
  }

  /// Claims the next index of job `generation` and runs it; false when that job has none left.
  private func claimAndRun(generation: Int) -> Bool {
    var current = ticket.load(ordering: .relaxed)
    while true {
      guard current >> Self.generationShift == generation,
            current & Self.field < (current >> Self.countShift) & Self.field else { return false }
      let (exchanged, original) = ticket.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
      if exchanged { break }
      current = original
    }
    body!(current & Self.field)
    completed.add(1, ordering: .releasing)
    return true
  }

  private func helperLoop() {
    var seen = 0
    while true {
      // Poll for a new job (yielding on every turn), then sleep until one is published.
      var spinStart = timespec(), now = timespec()
      clock_gettime(CLOCK_MONOTONIC, &spinStart)
      var turns = 0
      while ticket.load(ordering: .relaxed) >> Self.generationShift == seen {
        turns += 1
        if turns & 15 == 0 {
          clock_gettime(CLOCK_MONOTONIC, &now)
          if (now.tv_sec - spinStart.tv_sec) * 1_000_000_000 + (now.tv_nsec - spinStart.tv_nsec) > 200_000 {
            pthread_mutex_lock(lock)
            parked.add(1, ordering: .sequentiallyConsistent)
            while ticket.load(ordering: .sequentiallyConsistent) >> Self.generationShift == seen {
              pthread_cond_wait(wake, lock)
            }
            parked.subtract(1, ordering: .relaxed)
            pthread_mutex_unlock(lock)
            break
          }
        }
        sched_yield()
      }
      seen = ticket.load(ordering: .acquiring) >> Self.generationShift
      while claimAndRun(generation: seen) {}
    }
  }
}

/// Lets kernels hand raw buffers to `parallelFor` closures; each task writes disjoint elements.
struct SendablePointer<T>: @unchecked Sendable {  // the pointee outlives the parallel loop that uses it
  let pointer: UnsafeMutablePointer<T>
  init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

struct SendableConstPointer<T>: @unchecked Sendable {  // read-only inside the parallel loop
  let pointer: UnsafePointer<T>
  init(_ pointer: UnsafePointer<T>) { self.pointer = pointer }
}
