import Foundation
import Pipeline

/// Turns run events into text: on a terminal one progress line per running stage, redrawn in place;
/// elsewhere (CI, a log file) plain timestamped lines, a few per stage.
final class ProgressPrinter: EventSink, @unchecked Sendable {  // state guarded by `lock`
  private let lock = NSLock()
  private let terminal: Bool
  private let verbose: Bool
  private var lines: [String: String] = [:]   // stage → current progress line (terminal)
  private var order: [String] = []
  private var drawn = 0
  private var lastPlain: [String: Date] = [:]
  private var firstStep: [String: Int] = [:]

  init(terminal: Bool, verbose: Bool = false) {
    self.terminal = terminal
    self.verbose = verbose
  }

  func emit(_ event: RunEvent) {
    lock.lock()
    defer { lock.unlock() }
    switch event {
    case .planned(let execute, let restore, let upToDate):
      var parts = ["\(execute.count) to run"]
      if !restore.isEmpty { parts.append("\(restore.count) to restore from cache") }
      parts.append("\(upToDate.count) up to date")
      say("plan: " + parts.joined(separator: ", "))
    case .stageStarted(let stage, let reasons):
      firstStep[stage] = 0
      say("run \(stage): " + reasons.map(\.description).joined(separator: "; "))
      setLine(stage, "\(stage): starting")
    case .stageProgress(let stage, let progress):
      let text = describe(stage, progress)
      if terminal {
        setLine(stage, text)
      } else if progress.step == progress.total || lastPlain[stage].map({ Date().timeIntervalSince($0) >= 10 }) ?? true {
        lastPlain[stage] = Date()
        say(text)
      }
    case .stageLog(let stage, let line):
      if verbose { say("\(stage): \(line)") }
    case .stageResumed(let stage, let step, let total):
      firstStep[stage] = step
      say("resume \(stage) from checkpoint at step \(step)/\(total)")
    case .stageRestored(let stage):
      say("restore \(stage) from cache")
    case .stageFinished(let stage, let seconds, let metrics, let reports):
      clearLine(stage)
      // A stage with a report (the eval table) has it printed whole when the run ends; its metrics
      // on one line would repeat the table, unreadably.
      let detail = !reports.isEmpty ? "; its \(reports.joined(separator: ", ")) follows when the run ends"
        : metrics.isEmpty ? "" : ": " + Console.metrics(metrics)
      say("done \(stage) in \(Console.duration(seconds))" + detail)
    case .stageFailed(let stage, let message):
      clearLine(stage)
      say("FAILED \(stage): \(message)")
    case .stageSkipped(let stage, let failed):
      say("skip \(stage): depends on failed stage \(failed)")
    case .stageCancelled(let stage):
      clearLine(stage)
      say("interrupted \(stage); the next run starts it again, from its last checkpoint if it saved one")
    }
  }

  private func describe(_ stage: String, _ p: StageProgress) -> String {
    var text = "\(stage): step \(p.step)/\(p.total)"
    for scalar in p.scalars { text += " \(scalar.name) \(Console.number(scalar.value))" }
    if let left = p.estimatedSecondsLeft(sinceStep: firstStep[stage] ?? 0), p.step < p.total {
      text += " ETA \(Console.duration(left))"
    }
    return text
  }

  // MARK: - Drawing

  private func say(_ text: String) {
    erase()
    let stamp = terminal ? "" : "[\(ProgressPrinter.clock())] "
    FileHandle.standardError.write(Data((stamp + text + "\n").utf8))
    redraw()
  }

  private func setLine(_ stage: String, _ text: String) {
    guard terminal else { return }
    if lines[stage] == nil { order.append(stage) }
    lines[stage] = text
    erase()
    redraw()
  }

  private func clearLine(_ stage: String) {
    guard terminal, lines[stage] != nil else { return }
    erase()
    lines[stage] = nil
    order.removeAll { $0 == stage }
    redraw()
  }

  private func erase() {
    guard terminal, drawn > 0 else { return }
    FileHandle.standardError.write(Data(String(repeating: "\u{1B}[1A\u{1B}[2K", count: drawn).utf8))
    drawn = 0
  }

  private func redraw() {
    guard terminal else { return }
    for stage in order {
      FileHandle.standardError.write(Data(("\u{1B}[2K" + (lines[stage] ?? "") + "\n").utf8))
    }
    drawn = order.count
  }

  private static func clock() -> String {
    let formatter = DateFormatter()
    formatter.dateFormat = "HH:mm:ss"
    return formatter.string(from: Date())
  }
}
