/// GRPO's advantage: each sample's reward against the other samples of its prompt's group,
/// (r − mean)/(std + ε), with no value network.
///
/// The standard deviation is the sample one (n − 1), as in TRL and the PyTorch prototype (one right
/// answer in a group of 8 gets +2.47, the others −0.35). A group whose rewards are all equal has
/// advantage 0 everywhere: it teaches nothing, and its share is the first thing to watch when RL stalls.
struct GroupAdvantage {
  var advantages: [Float]
  /// The share of groups whose rewards were all equal.
  var zeroVarianceShare: Double

  /// - Parameters:
  ///   - rewards: `groups × size` rewards, group by group.
  ///   - size: samples per group (≥ 2).
  ///   - epsilon: added to the standard deviation.
  init(rewards: [Double], groupSize size: Int, epsilon: Double = 1e-4) {
    precondition(size >= 2 && rewards.count % size == 0)
    var advantages = [Float](repeating: 0, count: rewards.count)
    var flat = 0
    let groups = rewards.count / size
    for g in 0..<groups {
      let group = rewards[(g * size)..<((g + 1) * size)]
      let mean = group.reduce(0, +) / Double(size)
      let variance = group.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(size - 1)
      if group.allSatisfy({ $0 == group.first }) {
        flat += 1
        continue
      }
      for (i, r) in zip(group.indices, group) { advantages[i] = Float((r - mean) / (variance.squareRoot() + epsilon)) }
    }
    self.advantages = advantages
    zeroVarianceShare = groups == 0 ? 0 : Double(flat) / Double(groups)
  }
}
