/// A layered drawing of the stage graph, top to bottom (after Sugiyama et al.): stages in layers by
/// their longest path from a source, long edges routed through invisible waypoints (one per layer
/// they cross) so that no edge runs through a box, layers ordered by repeated barycentre sweeps with
/// the fewest crossings kept, then boxes pulled towards their neighbours without overlapping.
struct GraphLayout {
  /// A stage's box, or a waypoint of a long edge (`stage == nil`).
  struct Node {
    var stage: Int?
    var layer: Int
    var width: Double
    var x = 0.0
    var y = 0.0
    var centre: Double { x + width / 2 }
  }

  /// An edge from a stage to a dependent, through waypoints: `nodes` from source to target.
  struct Edge {
    var from: Int
    var to: Int
    var nodes: [Int]
  }

  static let boxHeight = 40.0, layerGap = 34.0, nodeGap = 18.0, waypointWidth = 6.0, margin = 12.0

  private(set) var nodes: [Node] = []
  private(set) var edges: [Edge] = []
  private(set) var width = 0.0
  private(set) var height = 0.0

  /// - Parameters:
  ///   - widths: Each stage's box width.
  ///   - dependencies: Each stage's dependencies, by index; stages are in topological order.
  init(widths: [Double], dependencies: [[Int]]) {
    let n = widths.count
    var layer = [Int](repeating: 0, count: n)
    for i in 0..<n { layer[i] = dependencies[i].map { layer[$0] + 1 }.max() ?? 0 }
    // A source (a dataset, a corpus) sits just above its first reader, not at the top of the page
    // with a long edge down to it.
    var dependents = [[Int]](repeating: [], count: n)
    for i in 0..<n { for d in dependencies[i] { dependents[d].append(i) } }
    for i in 0..<n where dependencies[i].isEmpty {
      if let first = dependents[i].map({ layer[$0] }).min() { layer[i] = max(0, first - 1) }
    }

    nodes = (0..<n).map { Node(stage: $0, layer: layer[$0], width: widths[$0]) }
    for i in 0..<n {
      for d in dependencies[i] {
        var path = [d]
        for l in stride(from: layer[d] + 1, to: layer[i], by: 1) {
          nodes.append(Node(stage: nil, layer: l, width: GraphLayout.waypointWidth))
          path.append(nodes.count - 1)
        }
        path.append(i)
        edges.append(Edge(from: d, to: i, nodes: path))
      }
    }
    var above = [[Int]](repeating: [], count: nodes.count), below = [[Int]](repeating: [], count: nodes.count)
    for edge in edges {
      for (a, b) in zip(edge.nodes, edge.nodes.dropFirst()) {
        below[a].append(b)
        above[b].append(a)
      }
    }
    let layerCount = (nodes.map(\.layer).max() ?? -1) + 1
    var layers = [[Int]](repeating: [], count: layerCount)
    for (id, node) in nodes.enumerated() { layers[node.layer].append(id) }
    // A stage no edge touches (a dataset nothing reads yet) starts at the right end of its layer, out of
    // the way; the sweeps keep it there, since it has no neighbours to pull it.
    for l in layers.indices {
      layers[l] = layers[l].filter { !above[$0].isEmpty || !below[$0].isEmpty }
        + layers[l].filter { above[$0].isEmpty && below[$0].isEmpty }
    }
    layers = GraphLayout.ordered(layers, above: above, below: below)
    place(layers, above: above, below: below)
  }

  // MARK: - Ordering within layers

  /// Sweeps down (by the mean position of the nodes above) and up (below), keeping the order with
  /// the fewest crossings seen.
  private static func ordered(_ start: [[Int]], above: [[Int]], below: [[Int]]) -> [[Int]] {
    var layers = start
    var best = layers, fewest = crossings(layers, below: below)
    for sweep in 0..<16 where fewest > 0 {
      let down = sweep % 2 == 0
      let sequence = down ? Array(layers.indices.dropFirst()) : Array(layers.indices.dropLast().reversed())
      for l in sequence {
        let neighbourLayer = layers[down ? l - 1 : l + 1]
        let position = Dictionary(uniqueKeysWithValues: neighbourLayer.enumerated().map { ($1, Double($0)) })
        let keys = layers[l].enumerated().map { index, id -> (Double, Int) in
          if above[id].isEmpty && below[id].isEmpty { return (Double.infinity, index) }  // stays at the end
          let linked = (down ? above[id] : below[id]).compactMap { position[$0] }
          return (linked.isEmpty ? Double(index) : linked.reduce(0, +) / Double(linked.count), index)
        }
        // Ties keep their order (the index breaks them), so sweeps settle instead of flipping.
        layers[l] = zip(layers[l], keys).sorted { $0.1 < $1.1 }.map(\.0)
      }
      let count = crossings(layers, below: below)
      if count < fewest {
        fewest = count
        best = layers
      }
    }
    return best
  }

  /// Pairs of edges that cross between adjacent layers.
  private static func crossings(_ layers: [[Int]], below: [[Int]]) -> Int {
    var total = 0
    for l in layers.indices.dropLast() {
      let position = Dictionary(uniqueKeysWithValues: layers[l + 1].enumerated().map { ($1, $0) })
      var segments: [(Int, Int)] = []
      for (i, id) in layers[l].enumerated() { for b in below[id] { if let p = position[b] { segments.append((i, p)) } } }
      for a in segments.indices {
        for b in segments.indices where b > a {
          let (s, t) = (segments[a], segments[b])
          if (s.0 < t.0 && s.1 > t.1) || (s.0 > t.0 && s.1 < t.1) { total += 1 }
        }
      }
    }
    return total
  }

  // MARK: - Coordinates

  /// Moves each long edge's waypoints towards one common x, as far as their neighbours in the layer
  /// allow: a long edge then runs straight down instead of weaving from layer to layer.
  private mutating func straightenLongEdges(_ layers: [[Int]]) {
    var slot: [Int: (layer: Int, index: Int)] = [:]
    for (l, row) in layers.enumerated() { for (k, id) in row.enumerated() { slot[id] = (l, k) } }
    for _ in 0..<4 {
      for edge in edges where edge.nodes.count > 2 {
        let waypoints = edge.nodes.dropFirst().dropLast()
        let target = waypoints.map { nodes[$0].centre }.reduce(0, +) / Double(waypoints.count)
        for id in waypoints {
          guard let (l, k) = slot[id] else { continue }
          let row = layers[l]
          var low = -Double.infinity, high = Double.infinity
          if k > 0 { low = nodes[row[k - 1]].x + nodes[row[k - 1]].width + GraphLayout.nodeGap }
          if k < row.count - 1 { high = nodes[row[k + 1]].x - GraphLayout.nodeGap - nodes[id].width }
          nodes[id].x = min(max(target - nodes[id].width / 2, low), max(low, high))
        }
      }
    }
  }

  /// Packs each layer, then repeatedly moves every node towards the mean centre of its neighbours,
  /// keeping the layer's order and gaps.
  private mutating func place(_ layers: [[Int]], above: [[Int]], below: [[Int]]) {
    for row in layers {
      var x = 0.0
      for id in row {
        nodes[id].x = x
        x += nodes[id].width + GraphLayout.nodeGap
      }
    }
    for iteration in 0..<24 {
      let down = iteration % 2 == 0
      for l in (down ? Array(layers.indices) : Array(layers.indices.reversed())) {
        let row = layers[l]
        let wanted = row.map { id -> Double in
          let linked = (down ? above[id] : below[id]) + (iteration > 12 ? (down ? below[id] : above[id]) : [])
          guard !linked.isEmpty else { return nodes[id].centre }
          return linked.map { nodes[$0].centre }.reduce(0, +) / Double(linked.count)
        }
        // Left to right, never closer than the gap; then right to left the same; the mean of both
        // keeps the layer's order whichever way the pull goes.
        var forward = [Double](repeating: 0, count: row.count), backward = forward
        var edge = -Double.infinity
        for (k, id) in row.enumerated() {
          forward[k] = max(wanted[k] - nodes[id].width / 2, edge)
          edge = forward[k] + nodes[id].width + GraphLayout.nodeGap
        }
        edge = Double.infinity
        for (k, id) in row.enumerated().reversed() {
          backward[k] = min(wanted[k] - nodes[id].width / 2, edge - nodes[id].width)
          edge = backward[k] - GraphLayout.nodeGap
        }
        edge = -Double.infinity
        for (k, id) in row.enumerated() {
          nodes[id].x = max((forward[k] + backward[k]) / 2, edge)
          edge = nodes[id].x + nodes[id].width + GraphLayout.nodeGap
        }
      }
    }
    straightenLongEdges(layers)
    let left = nodes.map(\.x).min() ?? 0
    for id in nodes.indices {
      nodes[id].x += GraphLayout.margin - left
      nodes[id].y = GraphLayout.margin + Double(nodes[id].layer) * (GraphLayout.boxHeight + GraphLayout.layerGap)
    }
    width = (nodes.map { $0.x + $0.width }.max() ?? 0) + GraphLayout.margin
    height = GraphLayout.margin * 2 + Double(layers.count) * GraphLayout.boxHeight
      + Double(max(0, layers.count - 1)) * GraphLayout.layerGap
  }
}
