import Pipeline

/// Feeds bytes to the lockfile reader: it must return a lockfile or located diagnostics, and the same
/// result as the general parser alone (`Lockfile.parseGeneral`): the fast reader of what Lineage writes
/// may only be faster, never different. A lockfile it reads must survive a round trip: written
/// (`rendered()`) and read again, it is the same value, and writing that gives the same text.
enum LockfileFuzzer {
  static let file = "lineage.lock"

  static func check(_ bytes: [UInt8]) -> String {
    let general = Result { () throws(RecipeError) -> Lockfile in try Lockfile.parseGeneral(bytes, file: file) }
    let lock: Lockfile
    do {
      lock = try Lockfile.parse(bytes, file: file)
      guard case .success(let reference) = general else {
        fatalError("read what the general parser refuses:\n\(String(decoding: bytes, as: UTF8.self))")
      }
      require(reference.rendered() == lock.rendered(), "read otherwise than the general parser:\n\(String(decoding: bytes, as: UTF8.self))")
    } catch {
      guard case .failure(let reference) = general, reference.diagnostics == error.diagnostics else {
        fatalError("refused otherwise than the general parser:\n\(String(decoding: bytes, as: UTF8.self))")
      }
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
