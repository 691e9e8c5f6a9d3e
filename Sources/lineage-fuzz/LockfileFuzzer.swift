import Pipeline

/// Feeds bytes to the lockfile reader: it must return a lockfile or located diagnostics. A lockfile it
/// reads must survive a round trip: written (`rendered()`) and read again, it is the same value, and
/// writing that gives the same text.
enum LockfileFuzzer {
  static let file = "lineage.lock"

  static func check(_ bytes: [UInt8]) -> String {
    let lock: Lockfile
    do {
      lock = try Lockfile.parse(bytes, file: file)
    } catch {
      for diagnostic in error.diagnostics {
        if let location = diagnostic.location {
          require(location.line >= 1 && location.column >= 1, "diagnostic outside the file: \(diagnostic)")
        }
      }
      return "refused: \(error.diagnostics.count) diagnostics"
    }
    let text = lock.rendered()
    let again: Lockfile
    do {
      again = try Lockfile.parse(Array(text.utf8), file: file)
    } catch {
      fatalError("the lockfile as written does not read back: \(error.diagnostics)\n--- written:\n\(text)")
    }
    let textAgain = again.rendered()
    require(textAgain == text, "writing what was read back gives other text:\n--- first:\n\(text)\n--- second:\n\(textAgain)")
    // NaN is never equal to itself; the texts, compared above, stand for values holding one.
    require(again == lock || text.contains(".nan"),
                 "the lockfile read back differs from the one written:\n--- written:\n\(text)")
    return "read: \(lock.stages.count) stages"
  }
}
