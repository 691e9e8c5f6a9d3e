// Shapes: x, y [rows, dim]; weight [dim]; invRMS [rows], saved for backward.

/// y = x · weight / sqrt(mean(x²) + eps), row by row.
func rmsNormForward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                    invRMS: UnsafeMutablePointer<Float>, rows: Int, dim: Int, eps: Float) {
  for r in 0..<rows {
    let row = r * dim
    var sumOfSquares: Float = 0
    for i in 0..<dim { sumOfSquares += x[row + i] * x[row + i] }
    let inv = 1 / (sumOfSquares / Float(dim) + eps).squareRoot()
    invRMS[r] = inv
    for i in 0..<dim { y[row + i] = x[row + i] * inv * weight[i] }
  }
}

/// Accumulates into dx and dWeight.
func rmsNormBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                     invRMS: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
                     rows: Int, dim: Int) {
  for r in 0..<rows {
    let row = r * dim, inv = invRMS[r]
    var dot: Float = 0  // Σ dy · weight · x over the row
    for i in 0..<dim { dot += dy[row + i] * weight[i] * x[row + i] }
    let correction = dot * inv * inv * inv / Float(dim)
    if let dWeight { for i in 0..<dim { dWeight[i] += dy[row + i] * x[row + i] * inv } }
    if let dx { for i in 0..<dim { dx[row + i] += dy[row + i] * weight[i] * inv - x[row + i] * correction } }
  }
}
