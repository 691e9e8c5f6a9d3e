import Dispatch

/// Runs `body(i)` for `i` in `0..<count`, on both cores when the work is large enough.
///
/// Each index is independent and writes its own outputs, so the result does not depend on how
/// indices are scheduled: kernels stay bit-identical across thread counts. Work is split by problem
/// size (`minimumWork` scalar operations per task), never by core count.
func parallelFor(_ count: Int, workPerItem: Int, minimumWork: Int = 1 << 16, _ body: @Sendable (Int) -> Void) {
  guard count > 1, count * workPerItem >= 2 * minimumWork, !Parallelism.forceSerial else {
    for i in 0..<count { body(i) }
    return
  }
  DispatchQueue.concurrentPerform(iterations: count) { i in body(i) }
}

/// Switches off parallel kernels within one task (tests compare serial and parallel results bit for
/// bit): `Parallelism.$forceSerial.withValue(true) { … }`. A task-local value, so concurrent work
/// elsewhere is unaffected.
public enum Parallelism {
  @TaskLocal public static var forceSerial = false
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
