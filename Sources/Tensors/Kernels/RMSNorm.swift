// Shapes: x, y [rows, dim]; weight [dim]; invRMS [rows], saved for backward.

/// Rows per task: fixed, so the split (and the order of the weight gradient's sum) never depends on
/// the cores.
let normRowChunk = 64

/// y = x · weight / sqrt(mean(x²) + eps), row by row.
func rmsNormForward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                    invRMS: UnsafeMutablePointer<Float>, rows: Int, dim: Int, eps: Float) {
  let xp = SendableConstPointer(x), wp = SendableConstPointer(weight)
  let yp = SendablePointer(y), ip = SendablePointer(invRMS)
  parallelFor((rows + normRowChunk - 1) / normRowChunk, workPerItem: normRowChunk * dim * 3) { chunk in
    let x = xp.pointer, weight = wp.pointer, y = yp.pointer
    for r in (chunk * normRowChunk)..<min(rows, (chunk + 1) * normRowChunk) {
      let row = r * dim
      let inv = 1 / (dot(x + row, x + row, dim) / Float(dim) + eps).squareRoot()
      ip.pointer[r] = inv
      for i in 0..<dim { y[row + i] = x[row + i] * inv * weight[i] }
    }
  }
}

/// Accumulates into dx and dWeight. Each chunk of rows sums its share of dWeight apart; the shares
/// are then added in chunk order.
func rmsNormBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                     invRMS: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
                     rows: Int, dim: Int) {
  let chunks = (rows + normRowChunk - 1) / normRowChunk
  var shares = [Float](repeating: 0, count: dWeight == nil ? 0 : chunks * dim)
  let dyp = SendableConstPointer(dy), xp = SendableConstPointer(x), wp = SendableConstPointer(weight)
  let ip = SendableConstPointer(invRMS), dxp = dx.map { SendablePointer($0) }
  shares.withUnsafeMutableBufferPointer { buffer in
    // An empty array's buffer may still have a base address: without dWeight there are no shares to write.
    let sp = dWeight == nil ? nil : buffer.baseAddress.map { SendablePointer($0) }
    parallelFor(chunks, workPerItem: normRowChunk * dim * 6) { chunk in
      let dy = dyp.pointer, x = xp.pointer, weight = wp.pointer
      let share = sp.map { $0.pointer + chunk * dim }
      for r in (chunk * normRowChunk)..<min(rows, (chunk + 1) * normRowChunk) {
        let row = r * dim, inv = ip.pointer[r]
        let correction = dot(dy + row, weight, x + row, dim) * inv * inv * inv / Float(dim)
        if let share { for i in 0..<dim { share[i] += dy[row + i] * x[row + i] * inv } }
        if let dxp { let dx = dxp.pointer; for i in 0..<dim { dx[row + i] += dy[row + i] * weight[i] * inv - x[row + i] * correction } }
      }
    }
  }
  if let dWeight {
    for chunk in 0..<chunks {
      for i in 0..<dim { dWeight[i] += shares[chunk * dim + i] }
    }
  }
}
