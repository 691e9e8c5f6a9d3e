import Foundation
import Tensors
import Testing

/// The kernels' helper threads start when a kernel first needs them, and OpenBLAS starts none.
///
/// That commands which compute nothing start none is checked on the real binary
/// (`LineageTests/KernelThreadsCLITests`): in this process other tests run kernels first.
@Suite struct KernelThreadsTests {
  /// OpenBLAS's load-time constructor found its pool preset to one thread (the caller), and our
  /// products keep it there.
  @Test func openBLASKeepsNoHelperThreads() {
    #expect(KernelThreads.openBLASHelperCount == 0)
    let a = Tensor(shape: [256, 256], scalars: (0..<(256 * 256)).map { Float($0 % 7) })
    _ = Tensor.matmul(a, a)
    #expect(KernelThreads.openBLASHelperCount == 0)
  }

  /// A product large enough to be split across cores starts our helpers (when there is a second core).
  @Test func aParallelKernelStartsTheHelpers() {
    let a = Tensor(shape: [256, 256], scalars: (0..<(256 * 256)).map { Float($0 % 5) })
    _ = Tensor.matmul(a, a)  // 256 rows, 2²⁴ multiply–adds: cut into two halves of rows
    #expect(KernelThreads.isStarted == (KernelThreads.helperCount > 0))
  }
}
