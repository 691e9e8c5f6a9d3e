import CMPI
import Foundation
import Pipeline

/// The world communicator of an Open MPI job, as a `ProcessGroup` (through CMPI's wrappers).
///
/// Calls come from the op's thread only (MPI_THREAD_FUNNELED asks no more of the library). Errors are
/// returned, not fatal: a failed call becomes a `ProcessGroupError`, which fails the stage.
final class MPIProcessGroup: ProcessGroup, @unchecked Sendable {  // MPI state lives in the library
  let rank: Int
  let size: Int

  /// Initialises MPI; call once per process, before any other MPI call.
  init() throws {
    var rank: Int32 = 0, size: Int32 = 0
    let code = lineage_mpi_init(&rank, &size)
    guard code == 0 else { throw ProcessGroupError("MPI_Init failed (code \(code))") }
    self.rank = Int(rank)
    self.size = Int(size)
  }

  func exchange(_ send: UnsafeBufferPointer<Float>, _ receive: UnsafeMutableBufferPointer<Float>, with partner: Int) throws {
    guard send.count <= Int(Int32.max), receive.count <= Int(Int32.max) else {
      throw ProcessGroupError("a buffer of \(max(send.count, receive.count)) floats is too large for one MPI message")
    }
    // An empty buffer's base address may be nil; MPI accepts any pointer for a count of 0.
    var none: Float = 0
    let code = withUnsafeMutablePointer(to: &none) { fallback in
      lineage_mpi_exchange_floats(send.baseAddress ?? UnsafePointer(fallback), Int32(send.count),
                                  receive.baseAddress ?? fallback, Int32(receive.count), Int32(partner))
    }
    guard code == 0 else { throw ProcessGroupError("MPI_Sendrecv with rank \(partner) failed (code \(code))") }
  }

  func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
    var counts = [Int64](repeating: 0, count: size)
    var code = lineage_mpi_allgather_counts(Int64(bytes.count), &counts)
    guard code == 0 else { throw ProcessGroupError("MPI_Allgather failed (code \(code))") }
    let total = counts.reduce(0, +)
    guard total <= Int64(Int32.max) else { throw ProcessGroupError("an all-gather of \(total) bytes is too large") }
    let sizes = counts.map { Int32($0) }
    var offsets = [Int32](repeating: 0, count: size)
    for r in 1..<max(1, size) { offsets[r] = offsets[r - 1] + sizes[r - 1] }
    var received = [UInt8](repeating: 0, count: max(1, Int(total)))
    var sending = bytes.isEmpty ? [0] : bytes
    code = sending.withUnsafeMutableBufferPointer { send in
      lineage_mpi_allgatherv_bytes(send.baseAddress, Int32(bytes.count), &received, sizes, offsets)
    }
    guard code == 0 else { throw ProcessGroupError("MPI_Allgatherv failed (code \(code))") }
    return (0..<size).map { r in Array(received[Int(offsets[r])..<Int(offsets[r] + sizes[r])]) }
  }

  /// Ends the MPI job cleanly (every rank calls it).
  func finalize() { _ = lineage_mpi_finalize() }

  /// Takes every rank down: after a failure on one rank, the others must not wait for it.
  func abort(status: Int32) { _ = lineage_mpi_abort(status) }
}
