import Tensors

extension TransformerLM {
  /// A Mixture-of-Experts copy of this dense model that computes what the dense model computes
  /// (sparse upcycling), optionally perturbed so that its experts can diverge.
  ///
  /// Each dense SwiGLU MLP of hidden size f is split by hidden units into pieces of h =
  /// `moe.expertHiddenDim`, with (shared + 1) · h = f: the shared experts take the first shared · h
  /// units (rows of gate and up, columns of down) and every routed expert is a copy of the remaining h.
  /// SwiGLU acts unit by unit, so shared(x) + rest(x) = MLP(x). A token adds its top-k routed experts
  /// weighted by the gate, and the weights are made to add up to one copy of rest(x):
  /// - top_k > 1: the weights are renormalised to sum to one over identical copies, so Σ wᵢ · rest(x) = rest(x).
  /// - top_k = 1: the weight is not renormalised. The router starts at zero, so every token's weight is
  ///   the gate at 0 (½ for sigmoid, 1/E for softmax over E experts) and the routed down projections
  ///   are multiplied by its inverse (2, or E): a power of two times a power of two, exact in floats.
  ///
  /// Attention, embeddings, norms and heads are copied; the routing bias starts at 0. Without
  /// perturbation the logits are the dense model's up to float rounding (the split sums in another
  /// order); every router score then ties and every token goes to expert 0 (ties choose the lower
  /// expert) until the routing bias moves.
  ///
  /// With `perturbation` > 0 (seeded by `seed`): each routed expert's three matrices get Gaussian noise
  /// of `perturbation` × that matrix's RMS, a draw of their own, so the copies can diverge; and the
  /// router's rows are drawn from N(0, (perturbation / √d)²), so each token's router logits spread by
  /// about `perturbation` × the RMS of its normed hidden state: different experts win for different
  /// tokens from the first step, while every gate weight stays within about perturbation / 4 of its
  /// start. Auxiliary-loss-free balancing (`MoEConfig.Balancing`) then evens the load.
  ///
  /// With top_k = 1 and one shared expert the active parameters are the dense model's plus the router
  /// (d · E per layer). Copying follows Komatsuzaki et al., "Sparse Upcycling" (2022); the split into
  /// finer experts beside a shared one, DeepSeekMoE (Dai et al., 2024).
  ///
  /// - Parameters:
  ///   - moe: the layer to make; (`sharedExperts` + 1) · `expertHiddenDim` must equal `config.mlpHiddenDim`.
  ///   - perturbation: relative noise of the routed experts, and the router's scale (0: the exact copy).
  ///   - seed: seeds the perturbation.
  /// - Returns: a new float model with `config.moe` = `moe`.
  /// - Throws: `UpcyclingError` when the model is already MoE or quantized, or the sizes do not split.
  public func upcycled(to moe: MoEConfig, perturbation: Float = 0, seed: UInt64) throws(UpcyclingError) -> TransformerLM {
    if let existing = config.moe { throw .notDense(routedExperts: existing.routedExperts) }
    if let scheme = quantization { throw .quantized(scheme.rawValue) }
    let d = config.modelDim, f = config.mlpHiddenDim, h = moe.expertHiddenDim, shared = moe.sharedExperts
    guard (shared + 1) * h == f else { throw .hiddenMismatch(mlpHidden: f, sharedExperts: shared, expertHidden: h) }
    guard moe.topK >= 1 && moe.topK <= moe.routedExperts else {
      throw .invalid("top_k \(moe.topK) must be between 1 and the \(moe.routedExperts) routed experts")
    }
    guard perturbation >= 0 && perturbation.isFinite else { throw .invalid("perturbation \(perturbation) must be ≥ 0") }
    var target = config
    target.moe = moe
    let experts = moe.routedExperts
    let downScale: Float = moe.topK > 1 ? 1 : (moe.gate == .sigmoid ? 2 : Float(experts))
    var rng = RandomStream(seed: seed, purpose: .initialization, substream: 0x5550_4359)   // "UPCY"
    func perturbed(_ t: Tensor) -> Tensor {
      guard perturbation > 0 else { return t }
      let rms = (t.scalars.reduce(Float(0)) { $0 + $1 * $1 } / Float(max(1, t.count))).squareRoot()
      return Tensor(shape: t.shape, scalars: t.scalars.map { $0 + rng.normal() * perturbation * rms })
    }

    var tensors = tensorsByID
    for l in 0..<config.layerCount {
      func id(_ role: ParameterID.Role) -> ParameterID { ParameterID(layer: l, role: role) }
      func take(_ p: ParameterID.MLPProjection) -> Tensor {
        guard let t = tensors.removeValue(forKey: id(.mlp(p))) else { preconditionFailure("a dense model has \(id(.mlp(p)))") }
        return t
      }
      let gate = take(.gate), up = take(.up), down = take(.down)                      // [f, d], [f, d], [d, f]
      if shared > 0 {
        tensors[id(.sharedExperts(.gate))] = Self.rows(gate, 0..<shared * h)             // [shared·h, d]
        tensors[id(.sharedExperts(.up))] = Self.rows(up, 0..<shared * h)
        tensors[id(.sharedExperts(.down))] = Self.columns(down, 0..<shared * h)         // [d, shared·h]
      }
      let routedGate = Self.rows(gate, shared * h..<f), routedUp = Self.rows(up, shared * h..<f)   // [h, d]
      var routedDown = Self.columns(down, shared * h..<f)                              // [d, h]
      routedDown = Tensor(shape: routedDown.shape, scalars: routedDown.scalars.map { $0 * downScale })
      for e in 0..<experts {
        tensors[id(.expert(e, .gate))] = perturbed(routedGate)
        tensors[id(.expert(e, .up))] = perturbed(routedUp)
        tensors[id(.expert(e, .down))] = perturbed(routedDown)
      }
      let routerScale = perturbation / Float(d).squareRoot()
      tensors[id(.router)] = Tensor(shape: [experts, d], scalars: (0..<experts * d).map { _ in
        perturbation > 0 ? rng.normal() * routerScale : 0
      })
      tensors[id(.routingBias)] = Tensor(zeros: [experts])
    }
    let model = TransformerLM(config: target, seed: seed)
    do {
      try model.load(tensors)
    } catch {
      preconditionFailure("upcycling built a tensor the MoE model does not take: \(error)")
    }
    return model
  }

  /// Rows `range` of a matrix `[rows, columns]`.
  private static func rows(_ t: Tensor, _ range: Range<Int>) -> Tensor {
    let columns = t.shape[1]
    return Tensor(shape: [range.count, columns], scalars: Array(t.scalars[range.lowerBound * columns..<range.upperBound * columns]))
  }

  /// Columns `range` of a matrix `[rows, columns]`.
  private static func columns(_ t: Tensor, _ range: Range<Int>) -> Tensor {
    let rows = t.shape[0], columns = t.shape[1]
    var out: [Float] = []
    out.reserveCapacity(rows * range.count)
    for r in 0..<rows { out += t.scalars[r * columns + range.lowerBound..<r * columns + range.upperBound] }
    return Tensor(shape: [rows, range.count], scalars: out)
  }
}

/// Why a model cannot be upcycled to the Mixture of Experts asked for.
public enum UpcyclingError: Error, Equatable, CustomStringConvertible {
  /// The model is a Mixture of Experts already.
  case notDense(routedExperts: Int)
  /// The model's weights are int8 (the scheme's name): upcycle the float model, then quantize.
  case quantized(String)
  /// (shared + 1) · expert hidden ≠ the dense MLP's hidden size.
  case hiddenMismatch(mlpHidden: Int, sharedExperts: Int, expertHidden: Int)
  case invalid(String)

  public var description: String {
    switch self {
    case .notDense(let n):
      return "the model is already a Mixture of Experts (\(n) routed experts); only a dense model can be upcycled"
    case .quantized(let scheme):
      return "the model is quantized (\(scheme)); upcycle the float model it came from"
    case .hiddenMismatch(let f, let shared, let h):
      let fits = f % (shared + 1) == 0 ? "hidden: \(f / (shared + 1))" : "a shared count s with (s + 1) dividing \(f)"
      return "the dense MLP's hidden size \(f) does not split into \(shared) shared and one routed expert of hidden \(h): "
        + "(shared + 1) · hidden must equal \(f); use \(fits)"
    case .invalid(let why): return why
    }
  }
}
