/// The dependency graph of a recipe's stages: who reads whose outputs.
///
/// Pure data over stage indices, built once per load. Cycles are found by the loader with
/// `findCycle`; a `StageGraph` inside a `Recipe` is acyclic.
public struct StageGraph: Sendable {
  public var names: [String]
  public var index: [String: Int]
  /// dependencies[i]: the stages stage i reads from.
  public var dependencies: [[Int]]
  /// dependents[i]: the stages that read from stage i.
  public var dependents: [[Int]]

  public init(names: [String], dependencies: [[Int]]) {
    self.names = names
    self.dependencies = dependencies
    var index: [String: Int] = [:]
    for (i, name) in names.enumerated() { index[name] = i }
    self.index = index
    var dependents = [[Int]](repeating: [], count: names.count)
    for (i, deps) in dependencies.enumerated() {
      for d in deps { dependents[d].append(i) }
    }
    self.dependents = dependents
  }

  /// A cycle as a path of names that ends where it starts (`a → b → a`), or nil.
  ///
  /// Depth-first in definition order, so the same recipe always reports the same cycle.
  public func findCycle() -> [String]? {
    enum Mark { case unvisited, active, done }
    var mark = [Mark](repeating: .unvisited, count: names.count)
    var stack: [Int] = []
    func visit(_ i: Int) -> [String]? {
      mark[i] = .active
      stack.append(i)
      for d in dependencies[i] {
        switch mark[d] {
        case .active:
          let start = stack.firstIndex(of: d)!
          return (stack[start...] + [d]).map { names[$0] }
        case .unvisited:
          if let cycle = visit(d) { return cycle }
        case .done: break
        }
      }
      stack.removeLast()
      mark[i] = .done
      return nil
    }
    for i in names.indices where mark[i] == .unvisited {
      if let cycle = visit(i) { return cycle.reversed() }
    }
    return nil
  }

  /// Stage indices in an order where every stage comes after its dependencies; ties keep
  /// definition order.
  public func topologicalOrder() -> [Int] {
    var remaining = dependencies.map(\.count)
    var ready = remaining.indices.filter { remaining[$0] == 0 }
    var order: [Int] = []
    order.reserveCapacity(names.count)
    var head = 0
    while head < ready.count {
      let i = ready[head]
      head += 1
      order.append(i)
      for d in dependents[i] {
        remaining[d] -= 1
        if remaining[d] == 0 { ready.append(d) }
      }
    }
    return order
  }

  /// The given stages and everything they depend on, directly or not.
  public func closure(of targets: [Int]) -> Set<Int> {
    var seen = Set<Int>()
    var stack = targets
    while let i = stack.popLast() {
      guard seen.insert(i).inserted else { continue }
      stack += dependencies[i]
    }
    return seen
  }

  /// Everything that depends on `i`, directly or not.
  public func descendants(of i: Int) -> Set<Int> {
    var seen = Set<Int>()
    var stack = dependents[i]
    while let j = stack.popLast() {
      guard seen.insert(j).inserted else { continue }
      stack += dependents[j]
    }
    return seen
  }
}
